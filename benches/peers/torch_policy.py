#!/usr/bin/env python3
"""dex-policy's training workloads against PyTorch (CPU, one thread), side by side.

The workloads (the same shapes, losses and optimiser steps on both sides):

- ppo_update: one PPO minibatch step. Actor and critic MLPs 96 -> 512 -> 256 -> 128
  (ELU) -> 16 / 1, a state-independent log std; clipped surrogate (0.2), value loss
  clipped around the old values (0.2), value weight 1, no entropy bonus; backward,
  global gradient-norm clip 1.0, Adam (lr 3e-4). Batch 4,096.
- sac_c51_update: one SAC update with twin C51 critics (51 atoms on [-10, 10]).
  Observations 64, actions 16; actor and critics with hidden [256, 256], LayerNorm
  before each ReLU; a batch of 1,024 sampled from a replay buffer; target from the
  target critic with the lower expected value, minus alpha log pi, projected onto the
  support; cross-entropy of both critics; tanh-Gaussian actor loss; temperature loss;
  Polyak update (tau 0.01). Three Adam optimisers (lr 3e-4).
- sac_depth_update: one SAC update on 16 x 16 depth images, reach-depth's defaults:
  observations of 64 values plus the image (stored as bytes, scaled to [0, 1]); a
  CNN encoder (conv 1 -> 32, kernel 4, stride 2; two convs 32 -> 32, kernel 3; ReLU;
  linear 288 -> 64, LayerNorm, ReLU) shared by both critics and trained by their
  loss, its features concatenated with the state; the actor reads them detached; the
  targets use the target encoder (Polyak-averaged with the critics) and the actor on
  the online encoder's features. C51 with 101 atoms on [-20, 20], hidden [256, 256]
  with LayerNorm, batch 512; otherwise as sac_c51_update.
- pointnet_forward: PointNet 3 -> 64 -> 128 -> 256 (ReLU) shared per point, max-pool,
  linear 256 -> 256, on 64 clouds of 512 points, without gradients.

dex side: `cargo run --release -p dex-policy --example train_workloads -- SECONDS`
with RAYON_NUM_THREADS=1 (the example uses mimalloc with purging off, as the `dex`
binary does); it prints `NAME ms_per_call`. PyTorch side: this script,
torch.set_num_threads(1). Each round times dex, then PyTorch; the table compares the
medians over the rounds (a shared machine has slow spells that single timings catch).

Ratios printed are dex time / PyTorch time (above 1: dex is slower).

Run from the repository root; the script installs torch from PyPI into a virtual
environment the first time (a large download: the Linux wheel brings CUDA libraries
it does not use here):

    python3 benches/peers/torch_policy.py [--seconds 5] [--rounds 3] [--venv /tmp/dex-torch-venv]
"""

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))


def ensure_torch(venv):
    """Re-runs this script inside a virtual environment that has torch."""
    try:
        import torch  # noqa: F401

        return
    except ImportError:
        pass
    py = os.path.join(venv, "bin", "python")
    if not os.path.exists(py):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run([py, "-m", "pip", "install", "--quiet", "torch", "numpy"], check=True)
    os.execv(py, [py] + sys.argv)


def time_calls(f, seconds):
    for _ in range(3):
        f()
    t0 = time.perf_counter()
    calls = 0
    while calls < 3 or time.perf_counter() - t0 < seconds:
        f()
        calls += 1
    return (time.perf_counter() - t0) * 1e3 / calls


def mlp(torch, sizes, act, layer_norm=False):
    nn = torch.nn
    layers = []
    for i in range(len(sizes) - 2):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if layer_norm:
            layers.append(nn.LayerNorm(sizes[i + 1]))
        layers.append(act())
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)


def ppo_workload(torch):
    nn = torch.nn
    obs, act, batch = 96, 16, 4096
    actor = mlp(torch, [obs, 512, 256, 128, act], nn.ELU)
    critic = mlp(torch, [obs, 512, 256, 128, 1], nn.ELU)
    log_std = nn.Parameter(torch.full((act,), -0.5))
    params = list(actor.parameters()) + list(critic.parameters()) + [log_std]
    opt = torch.optim.Adam(params, lr=3e-4)
    g = torch.Generator().manual_seed(1)
    u = lambda *s: torch.rand(*s, generator=g) * 2 - 1  # noqa: E731
    x, a = u(batch, obs), u(batch, act)
    old_lp, adv, ret, old_v = u(batch) - 10, u(batch), u(batch), u(batch)
    half_log_2pi = 0.5 * torch.log(torch.tensor(2 * torch.pi))

    def step():
        mu = actor(x)
        z = (a - mu) / log_std.exp()
        lp = (-0.5 * z * z - log_std - half_log_2pi).sum(-1)
        ratio = (lp - old_lp).exp()
        pl = -torch.minimum(ratio * adv, ratio.clamp(0.8, 1.2) * adv).mean()
        v = critic(x).squeeze(1)
        v_clip = old_v + (v - old_v).clamp(-0.2, 0.2)
        vl = 0.5 * torch.maximum((v - ret) ** 2, (v_clip - ret) ** 2).mean()
        loss = pl + vl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    return step


def depth_encoder(torch):
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 32, 4, stride=2), nn.ReLU(),
        nn.Conv2d(32, 32, 3), nn.ReLU(),
        nn.Conv2d(32, 32, 3), nn.ReLU(),
        nn.Flatten(), nn.Linear(32 * 3 * 3, 64), nn.LayerNorm(64), nn.ReLU(),
    )


def sac_workload(torch, batch=1024, atoms=51, v_max=10.0, image=False):
    import numpy as np

    nn = torch.nn
    F = torch.nn.functional
    state, act = 64, 16
    v_min, gamma, tau = -v_max, 0.9, 0.01
    obs = state + (64 if image else 0)
    actor = mlp(torch, [obs, 256, 256, 2 * act], nn.ReLU, layer_norm=True)
    q = [mlp(torch, [obs + act, 256, 256, atoms], nn.ReLU, layer_norm=True) for _ in range(2)]
    qt = [mlp(torch, [obs + act, 256, 256, atoms], nn.ReLU, layer_norm=True) for _ in range(2)]
    enc = depth_encoder(torch) if image else None
    enc_t = depth_encoder(torch) if image else None
    pairs = list(zip(qt, q)) + ([(enc_t, enc)] if image else [])
    for t, o in pairs:
        t.load_state_dict(o.state_dict())
    log_alpha = nn.Parameter(torch.tensor(np.log(0.1), dtype=torch.float32))
    actor_opt = torch.optim.Adam(actor.parameters(), lr=3e-4)
    critic_params = list(q[0].parameters()) + list(q[1].parameters())
    if image:
        critic_params += list(enc.parameters())
    critic_opt = torch.optim.Adam(critic_params, lr=3e-4)
    alpha_opt = torch.optim.Adam([log_alpha], lr=3e-4)
    support = torch.linspace(v_min, v_max, atoms)
    dz = (v_max - v_min) / (atoms - 1)
    rng = np.random.default_rng(0)
    size = 16 * 200
    buf_obs = rng.uniform(-1, 1, (size, state)).astype(np.float32)
    buf_img = rng.integers(0, 256, (size, 1, 16, 16), dtype=np.uint8)
    buf_act = rng.uniform(-1, 1, (size, act)).astype(np.float32)
    buf_rew = rng.uniform(-2, 0, size).astype(np.float32)

    def features(e, idx):
        x = torch.from_numpy(buf_obs[idx])
        if not image:
            return x
        img = torch.from_numpy(buf_img[idx]).float() / 255.0
        return torch.cat([x, e(img)], 1)

    def sample_action(x):
        out = actor(x)
        mu, raw = out[:, :act], out[:, act:]
        log_std = (raw.tanh() + 1) * 3.5 - 5.0
        eps = torch.randn_like(mu)
        u = mu + log_std.exp() * eps
        a = u.tanh()
        gauss = (-0.5 * eps * eps - log_std - 0.5 * np.log(2 * np.pi))
        log_det = 2 * (np.log(2) - u - F.softplus(-2 * u))
        return a, (gauss - log_det).sum(-1)

    def expected(logits):
        return (F.softmax(logits, -1) * support).sum(-1)

    def update():
        idx = rng.integers(0, size - 1, batch)
        x = features(enc, idx)
        a = torch.from_numpy(buf_act[idx])
        r = torch.from_numpy(buf_rew[idx])
        alpha = log_alpha.exp().item()
        with torch.no_grad():
            a2, lp2 = sample_action(features(enc, idx + 1))
            x2_target = features(enc_t, idx + 1) if image else features(None, idx + 1)
            xa2 = torch.cat([x2_target, a2], 1)
            p1, p2 = F.softmax(qt[0](xa2), -1), F.softmax(qt[1](xa2), -1)
            e1, e2 = (p1 * support).sum(-1), (p2 * support).sum(-1)
            p = torch.where((e2 < e1).unsqueeze(1), p2, p1)
            tz = (r.unsqueeze(1) + gamma * (support.unsqueeze(0) - alpha * lp2.unsqueeze(1))).clamp(v_min, v_max)
            pos = (tz - v_min) / dz
            lo, hi = pos.floor().long(), pos.ceil().long()
            target = torch.zeros_like(p)
            same = (lo == hi).float()
            target.scatter_add_(1, lo, p * (hi.float() - pos + same))
            target.scatter_add_(1, hi, p * (pos - lo.float()) * (1 - same))
        xa = torch.cat([x, a], 1)
        critic_loss = sum(-(F.log_softmax(qi(xa), -1) * target).sum(-1).mean() for qi in q)
        critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        critic_opt.step()
        x = x.detach()
        an, lp = sample_action(x)
        xan = torch.cat([x, an], 1)
        qmin = torch.minimum(expected(q[0](xan)), expected(q[1](xan)))
        actor_loss = (alpha * lp - qmin).mean()
        actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        actor_opt.step()
        alpha_loss = -log_alpha * (lp.detach().mean() - act)
        alpha_opt.zero_grad(set_to_none=True)
        alpha_loss.backward()
        alpha_opt.step()
        with torch.no_grad():
            for t, o in pairs:
                for pt, po in zip(t.parameters(), o.parameters()):
                    pt.mul_(1 - tau).add_(po, alpha=tau)

    return update


def pointnet_workload(torch):
    nn = torch.nn
    shared = nn.Sequential(
        nn.Linear(3, 64), nn.ReLU(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 256), nn.ReLU()
    )
    head = nn.Linear(256, 256)
    x = (torch.rand(64, 512, 3) * 2 - 1) * 0.1

    def forward():
        with torch.no_grad():
            head(shared(x).max(1).values)

    return forward


def dex_times(seconds):
    env = dict(os.environ, RAYON_NUM_THREADS="1")
    cmd = [
        "cargo", "run", "--release", "-q", "-p", "dex-policy", "--example", "train_workloads",
        "--", str(seconds),
    ]
    out = subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    times = {}
    for line in out.splitlines():
        name, ms = line.split()
        times[name] = float(ms)
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="timing per workload and side")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds, each timing dex then PyTorch; the medians are compared")
    ap.add_argument("--venv", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "dex-torch-venv"))
    args = ap.parse_args()
    ensure_torch(args.venv)
    import statistics

    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    workloads = {
        "ppo_update": ppo_workload(torch),
        "sac_c51_update": sac_workload(torch),
        "sac_depth_update": sac_workload(torch, batch=512, atoms=101, v_max=20.0, image=True),
        "pointnet_forward": pointnet_workload(torch),
    }
    dex_rounds, peer_rounds = [], []
    for r in range(args.rounds):
        # Alternating the sides within each round spreads slow spells of a shared
        # machine over both.
        dex_rounds.append(dex_times(args.seconds))
        peer_rounds.append({name: time_calls(f, args.seconds) for name, f in workloads.items()})
        line = ", ".join(f"{n} {dex_rounds[-1][n] / peer_rounds[-1][n]:.2f}" for n in workloads)
        print(f"round {r + 1}: ratios {line}", flush=True)
    print(f"torch {torch.__version__}, one thread each; median ms per call over {args.rounds} "
          "rounds; ratio = dex / torch (> 1: dex slower)")
    print(f"{'workload':<18} {'dex ms':>10} {'torch ms':>10} {'ratio':>7}")
    for name in workloads:
        d = statistics.median(r[name] for r in dex_rounds)
        t = statistics.median(r[name] for r in peer_rounds)
        print(f"{name:<18} {d:>10.2f} {t:>10.2f} {d / t:>7.2f}")


if __name__ == "__main__":
    main()
