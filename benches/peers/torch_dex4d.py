#!/usr/bin/env python3
"""The Dex4D student (dex-policy's point_track) against PyTorch (CPU, one thread).

The workloads (the same network, shapes, loss and optimiser on both sides):

- dex4d_train_{default,paper}: one training step on a batch of 512 pose-proxy
  observations (64 point pairs, a quarter of them hidden as zeros in both sets):
  the paired point encoding (each set centred on the mean of its visible points,
  shared per-point MLP 12 -> p -> 2p with ReLU, max over the first p channels and
  mean over the last p of the visible points, 2p -> 2p -> w), four tokens through
  pre-LayerNorm transformer blocks (multi-head attention, GELU (tanh) feed-forward)
  with a final LayerNorm, the action head on the last-action token and the
  world-model heads on the joint tokens; L1 behaviour cloning + L1 world model,
  backward, Adam (lr 3e-4, no weight decay). default: w 64, p 32, 2 blocks, 4 heads,
  feed-forward 128; paper: w 128, p 128, 4 blocks, 4 heads, feed-forward 512.
- dex4d_act_{default,paper}: one action at batch 1 from an observation row, without
  gradients (torch.inference_mode), attention through
  torch.nn.functional.scaled_dot_product_attention (PyTorch's fused path).

dex side: `cargo run --release -p dex-policy --example dex4d_workloads -- SECONDS` with
RAYON_NUM_THREADS=1. PyTorch side: this script, torch.set_num_threads(1). Each round
times dex, then PyTorch; the table compares the medians over the rounds. Ratios are
dex time / PyTorch time (above 1: dex is slower).

Run from the repository root (installs torch into a virtual environment the first
time):

    python3 benches/peers/torch_dex4d.py [--seconds 5] [--rounds 3] [--venv /tmp/dex-torch-venv]
"""

import argparse
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
from torch_policy import ensure_torch, time_calls  # noqa: E402  (the sibling peer script)

N, J, A, BATCH = 64, 6, 6, 512
SIZES = {"default": (64, 32, 2, 4, 128), "paper": (128, 128, 4, 4, 512)}


def build(torch, width, point, layers, heads, ff):
    nn, F = torch.nn, torch.nn.functional

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.n1, self.n2 = nn.LayerNorm(width), nn.LayerNorm(width)
            self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
            self.ff1, self.ff2 = nn.Linear(width, ff), nn.Linear(ff, width)

        def forward(self, x):
            b, t, d = x.shape
            qkv = self.qkv(self.n1(x)).reshape(b, t, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
            a = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
            x = x + self.proj(a.transpose(1, 2).reshape(b, t, d))
            return x + self.ff2(F.gelu(self.ff1(self.n2(x)), approximate="tanh"))

    class Student(nn.Module):
        def __init__(self):
            super().__init__()
            self.tq, self.tv, self.ta = nn.Linear(J, width), nn.Linear(J, width), nn.Linear(A, width)
            self.p0, self.p1 = nn.Linear(12, point), nn.Linear(point, 2 * point)
            self.h0, self.h1 = nn.Linear(2 * point, 2 * point), nn.Linear(2 * point, width)
            self.blocks = nn.ModuleList([Block() for _ in range(layers)])
            self.norm = nn.LayerNorm(width)
            self.action_head = nn.Linear(width, A)
            self.qpos_head, self.qvel_head = nn.Linear(width, J), nn.Linear(width, J)

        def forward(self, obs):
            qpos, qvel, act = obs[:, 0:6], obs[:, 6:12], obs[:, 12:18]
            cur = obs[:, 18 : 18 + 3 * N].reshape(-1, N, 3)
            goal = obs[:, 18 + 3 * N : 18 + 6 * N].reshape(-1, N, 3)
            m = ((cur != 0) | (goal != 0)).any(-1).to(obs.dtype).unsqueeze(-1)
            count = m.sum(1).clamp(min=1.0)

            def centred(x):
                mean = ((x * m).sum(1) / count).unsqueeze(1).expand_as(x)
                return torch.cat([mean, x - mean], 2)

            h = torch.relu(self.p1(torch.relu(self.p0(torch.cat([centred(cur), centred(goal)], 2)))))
            maxed = (h[..., :point] - (1 - m) * 1e9).amax(1) * m.amax(1)
            meaned = (h[..., point:] * m).sum(1) / count
            pt = self.h1(torch.relu(self.h0(torch.cat([maxed, meaned], 1))))
            x = torch.stack([self.tq(qpos), self.tv(qvel), self.ta(act), pt], 1)
            for blk in self.blocks:
                x = blk(x)
            x = self.norm(x)
            return self.action_head(x[:, 2]), self.qpos_head(x[:, 0]), self.qvel_head(x[:, 1])

    return Student()


def observations(torch, rows, g):
    x = torch.rand(rows, 18 + 6 * N + 14, generator=g) * 2 - 1
    hidden = torch.rand(rows, N, generator=g) < 0.25
    for start in (18, 18 + 3 * N):
        block = x[:, start : start + 3 * N].reshape(rows, N, 3)
        block[hidden] = 0.0
    return x


def torch_times(torch, seconds):
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    obs = observations(torch, BATCH, g)
    labels = torch.rand(BATCH, A, generator=g) * 2 - 1
    nxt = torch.rand(BATCH, 2 * J, generator=g) * 2 - 1
    one = observations(torch, 1, g)
    times = {}
    for name, sizes in SIZES.items():
        net = build(torch, *sizes)
        opt = torch.optim.Adam(net.parameters(), lr=3e-4)

        def train_step():
            a, q, v = net(obs)
            loss = (a - labels).abs().mean() + (q - nxt[:, :J]).abs().mean() + (v - nxt[:, J:]).abs().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        times[f"dex4d_train_{name}"] = time_calls(train_step, seconds)

        def act():
            with torch.inference_mode():
                return net(one)[0].clamp(-1, 1)

        times[f"dex4d_act_{name}"] = time_calls(act, seconds)
    return times


def dex_times(seconds):
    env = dict(os.environ, RAYON_NUM_THREADS="1")
    cmd = ["cargo", "run", "--release", "-q", "-p", "dex-policy", "--example", "dex4d_workloads",
           "--", str(seconds)]
    out = subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    return {name: float(ms) for name, ms in (line.split() for line in out.splitlines())}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--venv", default="/tmp/dex-torch-venv")
    args = p.parse_args()
    ensure_torch(args.venv)
    import torch

    dex, peer = {}, {}
    for r in range(args.rounds):
        for k, v in dex_times(args.seconds).items():
            dex.setdefault(k, []).append(v)
        for k, v in torch_times(torch, args.seconds).items():
            peer.setdefault(k, []).append(v)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    print(f"torch {torch.__version__}, one thread, medians of {args.rounds} rounds")
    print(f"{'workload':<22}{'dex ms':>10}{'torch ms':>10}{'dex/torch':>11}")
    for k in sorted(dex):
        d, t = statistics.median(dex[k]), statistics.median(peer[k])
        print(f"{k:<22}{d:>10.4f}{t:>10.4f}{d / t:>11.2f}")


if __name__ == "__main__":
    main()
