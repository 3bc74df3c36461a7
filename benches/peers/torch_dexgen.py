#!/usr/bin/env python3
"""dex-diffusion's DexGen workloads against PyTorch (CPU, one thread), side by side.

The workloads (the same network, shapes, loss and optimiser on both sides):

- dexgen_train_{default,paper}: one DDPM training step of the denoiser on a batch of
  256 motions (48 values) with conditions of 242: a step t per row drawn from a
  100-step cosine schedule, Gaussian noise, the noised motion, the network's predicted
  noise, mean squared error, backward, AdamW (lr 1e-3, weight decay 1e-4), then the
  exponential moving average of the weights (decay 0.995).
- dexgen_control_{default,paper}: one guided control step at batch 1: the state
  encoder once, 10 DDIM steps (each: the network, the denoised estimate clamped to
  [-5, 5], the guidance pull towards the command, re-noising), then the inverse
  dynamics model (a residual MLP, 290 -> 256, 3 blocks, -> 32), without gradients.

The network (dex_diffusion::Denoiser): a state encoder of Linear -> GroupNorm (groups
of 8 channels) -> ELU layers, projected to the hidden width; a sinusoidal step
embedding through Linear -> ELU -> Linear, added to the state code; an input layer,
encoder blocks and decoder blocks (which take the matching encoder output
concatenated), each Linear -> GroupNorm -> FiLM (gamma, beta from the condition) ->
ELU plus a residual projection; an output layer. default: hidden 256, 2 + 2 blocks,
state encoder 3 x 256. paper: hidden 768, 3 + 3 blocks, state encoder 6 x 1024
(DexterityGen App. F).

dex side: `cargo run --release -p dex-diffusion --example dexgen_workloads -- SECONDS`
with RAYON_NUM_THREADS=1 (mimalloc with purging off, as the `dex` binary runs). PyTorch
side: this script, torch.set_num_threads(1), inference under torch.inference_mode.
Each round times dex, then PyTorch; the table compares the medians over the rounds.
Ratios are dex time / PyTorch time (above 1: dex is slower).

Run from the repository root (installs torch into a virtual environment the first
time):

    python3 benches/peers/torch_dexgen.py [--seconds 5] [--rounds 3] [--venv /tmp/dex-torch-venv]
"""

import argparse
import math
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
from torch_policy import ensure_torch, time_calls  # noqa: E402  (the sibling peer script)

PRESETS = {
    "default": dict(hidden=256, blocks=2, state_layers=3, state_hidden=256),
    "paper": dict(hidden=768, blocks=3, state_layers=6, state_hidden=1024),
}
MOTION, CONDITION, TIME_DIM, GROUP = 48, 242, 64, 8


def build(torch, hidden, blocks, state_layers, state_hidden):
    nn = torch.nn
    F = torch.nn.functional

    class NormLayer(nn.Module):
        def __init__(self, i, o):
            super().__init__()
            self.linear = nn.Linear(i, o)
            self.norm = nn.GroupNorm(o // GROUP, o)

        def pre(self, x):
            return self.norm(self.linear(x))

        def forward(self, x):
            return F.elu(self.pre(x))

    class FilmBlock(nn.Module):
        def __init__(self, i, h):
            super().__init__()
            self.layer = NormLayer(i, h)
            self.film = nn.Linear(h, 2 * h)
            self.skip = None if i == h else nn.Linear(i, h)

        def forward(self, x, c):
            h = self.layer.pre(x)
            gamma, beta = self.film(c).chunk(2, dim=-1)
            h = F.elu(h * (gamma + 1) + beta)
            return h + (x if self.skip is None else self.skip(x))

    class Denoiser(nn.Module):
        def __init__(self):
            super().__init__()
            widths = [CONDITION] + [state_hidden] * state_layers
            self.state = nn.ModuleList(NormLayer(widths[i], widths[i + 1]) for i in range(state_layers))
            self.state_out = nn.Linear(state_hidden, hidden)
            self.time1 = nn.Linear(TIME_DIM, hidden)
            self.time2 = nn.Linear(hidden, hidden)
            self.input = nn.Linear(MOTION, hidden)
            self.down = nn.ModuleList(FilmBlock(hidden, hidden) for _ in range(blocks))
            self.up = nn.ModuleList(FilmBlock(2 * hidden, hidden) for _ in range(blocks))
            self.output = nn.Linear(hidden, MOTION)

        def encode(self, cond):
            h = cond
            for layer in self.state:
                h = layer(h)
            return self.state_out(h)

        def forward(self, x, temb, code):
            c = code + self.time2(F.elu(self.time1(temb)))
            h = self.input(x)
            skips = []
            for b in self.down:
                h = b(h, c)
                skips.append(h)
            for b in self.up:
                h = b(torch.cat([h, skips.pop()], dim=-1), c)
            return self.output(h)

    class Idm(nn.Module):
        def __init__(self):
            super().__init__()
            self.input = nn.Linear(CONDITION + MOTION, 256)
            self.blocks = nn.ModuleList(
                nn.ModuleList([nn.Linear(256, 256), nn.Linear(256, 256)]) for _ in range(3))
            self.output = nn.Linear(256, 32)

        def forward(self, x):
            h = self.input(x)
            for a, b in self.blocks:
                h = h + b(F.elu(a(F.elu(h))))
            return self.output(F.elu(h))[:, :16]

    return Denoiser(), Idm()


def embedding(torch, t):
    half = TIME_DIM // 2
    f = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    a = t.float()[:, None] * f[None, :]
    return torch.cat([a.sin(), a.cos()], dim=-1)


def cosine_alpha_bar(torch, steps=100, s=0.008):
    f = lambda t: math.cos((t / steps + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    betas = [min(1 - f(t + 1) / f(t), 0.999) for t in range(steps)]
    out, acc = [], 1.0
    for b in betas:
        acc *= 1 - b
        out.append(acc)
    return torch.tensor(out)


def train_workload(torch, preset):
    net, _ = build(torch, **PRESETS[preset])
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    ema = [p.detach().clone() for p in net.parameters()]
    abar = cosine_alpha_bar(torch)
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(256, MOTION, generator=g) - 0.5
    cond = torch.rand(256, CONDITION, generator=g)

    def step():
        t = torch.randint(0, 100, (256,), generator=g)
        noise = torch.randn(256, MOTION, generator=g)
        a = abar[t][:, None]
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        pred = net(xt, embedding(torch, t), net.encode(cond))
        loss = ((pred - noise) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            params = [p.detach() for p in net.parameters()]
            torch._foreach_lerp_(ema, params, 1 - 0.995)

    return step


def control_workload(torch, preset):
    net, idm = build(torch, **PRESETS[preset])
    net.eval()
    idm.eval()
    abar = cosine_alpha_bar(torch)
    steps = [round(i * 99 / 9) for i in range(10)][::-1]
    g = torch.Generator().manual_seed(2)
    cond = torch.rand(1, CONDITION, generator=g)
    command = torch.full((1, 24), 0.3)

    def step():
        with torch.inference_mode():
            code = net.encode(cond)
            x = torch.randn(1, MOTION, generator=g)
            for i, t in enumerate(steps):
                a = abar[t]
                eps = net(x, embedding(torch, torch.tensor([t])), code)
                x0 = ((x - (1 - a).sqrt() * eps) / a.sqrt()).clamp(-5, 5)
                x0 = x0 + 0.5 * (command.repeat(1, 2) - x0)
                ap = abar[steps[i + 1]] if i + 1 < len(steps) else torch.tensor(1.0)
                x = ap.sqrt() * x0 + (1 - ap).sqrt() * eps
            idm(torch.cat([cond, x], dim=-1))

    return step


def dex_times(seconds):
    env = dict(os.environ, RAYON_NUM_THREADS="1")
    cmd = [
        "cargo", "run", "--release", "-q", "-p", "dex-diffusion", "--example",
        "dexgen_workloads", "--", str(seconds),
    ]
    out = subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    return {name: float(ms) for name, ms in (line.split() for line in out.splitlines())}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="timing per workload and side")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds, each timing dex then PyTorch; the medians are compared")
    ap.add_argument("--venv", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "dex-torch-venv"))
    args = ap.parse_args()
    ensure_torch(args.venv)
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    workloads = {}
    for preset in PRESETS:
        workloads[f"dexgen_train_{preset}"] = train_workload(torch, preset)
        workloads[f"dexgen_control_{preset}"] = control_workload(torch, preset)
    dex_rounds, peer_rounds = [], []
    for r in range(args.rounds):
        dex_rounds.append(dex_times(args.seconds))
        peer_rounds.append({name: time_calls(f, args.seconds) for name, f in workloads.items()})
        line = ", ".join(f"{n} {dex_rounds[-1][n] / peer_rounds[-1][n]:.2f}" for n in workloads)
        print(f"round {r + 1}: ratios {line}", flush=True)
    print(f"torch {torch.__version__}, one thread each; median ms per call over {args.rounds} "
          "rounds; ratio = dex / torch (> 1: dex slower)")
    print(f"{'workload':<24} {'dex ms':>10} {'torch ms':>10} {'ratio':>7}")
    for name in workloads:
        d = statistics.median(r[name] for r in dex_rounds)
        t = statistics.median(r[name] for r in peer_rounds)
        print(f"{name:<24} {d:>10.2f} {t:>10.2f} {d / t:>7.2f}")


if __name__ == "__main__":
    main()
