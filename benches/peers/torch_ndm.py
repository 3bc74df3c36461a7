#!/usr/bin/env python3
"""dex-ndm's dynamics models against PyTorch (CPU, one thread), side by side.

The workloads (the same networks, shapes, features, loss and optimiser on both sides):

- ndm_train_{joint,whole}: one training step on a batch of 256 samples gathered at
  random from a dataset of 16-joint histories (W = 10 steps of position and target):
  the features of each joint (its present position standardised, its earlier
  positions and every target relative to the present one, scaled), the network, the
  squared error against the scaled next change, backward, AdamW (lr 1e-3, no decay).
  joint: 16 per-joint MLPs 20 -> 64 -> 64 -> 64 -> 1 (ReLU) as batched matrix
  products; whole: one MLP 320 -> 256 -> 256 -> 256 -> 16 (ReLU).
- ndm_predict_{joint,whole}: one prediction for 16 joints at batch 1, without
  gradients (torch.inference_mode).

dex side: `cargo run --release -p dex-ndm --example ndm_workloads -- SECONDS` with
RAYON_NUM_THREADS=1 (a training step there is a 50-step `fit` divided by 50, which
includes gathering each batch from the dataset, as here). PyTorch side: this script,
torch.set_num_threads(1). Each round times dex, then PyTorch; the table compares the
medians over the rounds. Ratios are dex time / PyTorch time (above 1: dex is slower).

Run from the repository root (installs torch into a virtual environment the first
time):

    python3 benches/peers/torch_ndm.py [--seconds 5] [--rounds 3] [--venv /tmp/dex-torch-venv]
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

DOF, W, BATCH, SAMPLES = 16, 10, 256, 15000


def build(torch, kind):
    nn = torch.nn

    class JointWise(nn.Module):
        def __init__(self, sizes=(2 * W, 64, 64, 64, 1)):
            super().__init__()
            self.w = nn.ParameterList()
            self.b = nn.ParameterList()
            for i, o in zip(sizes[:-1], sizes[1:]):
                bound = 1.0 / i**0.5
                self.w.append(nn.Parameter(torch.empty(DOF, i, o).uniform_(-bound, bound)))
                self.b.append(nn.Parameter(torch.zeros(DOF, 1, o)))

        def forward(self, x):  # x: B x DOF x F
            h = x.transpose(0, 1)  # DOF x B x F
            last = len(self.w) - 1
            for k, (w, b) in enumerate(zip(self.w, self.b)):
                h = torch.baddbmm(b, h, w)
                if k < last:
                    h = torch.relu(h)
            return h.squeeze(2).transpose(0, 1)

    class Whole(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(
                nn.Linear(DOF * 2 * W, 256), nn.ReLU(),
                nn.Linear(256, 256), nn.ReLU(),
                nn.Linear(256, 256), nn.ReLU(),
                nn.Linear(256, DOF),
            )

        def forward(self, x):
            return self.net(x.reshape(x.shape[0], -1))

    return JointWise() if kind == "joint" else Whole()


def features(torch, q, a, scales):
    mean, std, motion, error = scales
    qt = q[:, W - 1 : W, :]
    pos = (qt - mean) / std
    mot = (q[:, : W - 1, :] - qt) / motion
    err = (a - qt) / error
    return torch.cat([pos, mot, err], 1).transpose(1, 2).contiguous(), qt.squeeze(1)


def torch_times(torch, seconds):
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    q = torch.rand(SAMPLES, W + 1, DOF, generator=g) - 0.5
    a = q + 0.05 * torch.randn(SAMPLES, W + 1, DOF, generator=g)
    scales = (torch.zeros(1, 1, DOF), torch.full((1, 1, DOF), 0.3), torch.full((1, 1, DOF), 0.05),
              torch.full((1, 1, DOF), 0.05))
    step_scale = torch.full((1, DOF), 0.02)
    times = {}
    for kind in ("joint", "whole"):
        net = build(torch, kind)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.0)

        def train_step():
            idx = torch.randint(0, SAMPLES, (BATCH,))
            hist_q, hist_a = q[idx, :W], a[idx, :W]
            nxt = q[idx, W]
            x, qt = features(torch, hist_q, hist_a, scales)
            y = net(x)
            loss = ((y - (nxt - qt) / step_scale) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        times[f"ndm_train_{kind}"] = time_calls(train_step, seconds)
        q1, a1 = q[:1, :W].clone(), a[:1, :W].clone()

        def predict():
            with torch.inference_mode():
                x, qt = features(torch, q1, a1, scales)
                return qt + net(x) * step_scale

        times[f"ndm_predict_{kind}"] = time_calls(predict, seconds)
    return times


def dex_times(seconds):
    env = dict(os.environ, RAYON_NUM_THREADS="1")
    cmd = ["cargo", "run", "--release", "-q", "-p", "dex-ndm", "--example", "ndm_workloads",
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
