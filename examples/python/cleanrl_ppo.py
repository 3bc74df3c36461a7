"""A single-file PPO in the shape of CleanRL's ``ppo_continuous_action.py`` that learns
``dex/Reach-v0`` on dex's native vector environment (Rust steps every environment in
parallel; Gymnasium's NEXT_STEP auto-reset).

    python examples/python/cleanrl_ppo.py --minutes 5 --num-envs 16 --out reach-cleanrl.csv

Needs ``torch`` (``pip install torch``) besides ``dex``. Prints one line per update and
writes the learning curve (env steps, seconds, mean return and success of the episodes
that ended) to ``--out``.

NEXT_STEP detail: the step after an episode ends is a reset step (its action is
ignored, its reward is 0); it is not a transition of the MDP, so it is masked out of
the loss and the returns, and GAE is cut where an episode ended. Its input is the
ended episode's last observation, so an episode cut by the time limit (truncated, not
terminated) bootstraps from that observation's value, as SB3 does.
"""

from __future__ import annotations

import argparse
import csv
import time

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Normal

import dex  # noqa: F401  (registers dex/Reach-v0)
from _settings import parse_sets


def layer(i: int, o: int, std: float = np.sqrt(2)) -> nn.Linear:
    lin = nn.Linear(i, o)
    nn.init.orthogonal_(lin.weight, std)
    nn.init.constant_(lin.bias, 0.0)
    return lin


class Agent(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int) -> None:
        super().__init__()
        self.critic = nn.Sequential(layer(obs_dim, 256), nn.Tanh(), layer(256, 256), nn.Tanh(), layer(256, 1, 1.0))
        self.actor = nn.Sequential(
            layer(obs_dim, 256), nn.Tanh(), layer(256, 256), nn.Tanh(), layer(256, act_dim, 0.01)
        )
        self.log_std = nn.Parameter(torch.full((act_dim,), -0.5))

    def value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x).squeeze(-1)

    def act(self, x: torch.Tensor, a: torch.Tensor | None = None):
        dist = Normal(self.actor(x), self.log_std.exp())
        if a is None:
            a = dist.sample()
        return a, dist.log_prob(a).sum(-1), dist.entropy().sum(-1), self.value(x)


class RunningNorm:
    """Observation normalisation by running mean and variance (as CleanRL's wrapper)."""

    def __init__(self, dim: int) -> None:
        self.mean, self.var, self.count = np.zeros(dim), np.ones(dim), 1e-4

    def update(self, x: np.ndarray) -> None:
        m, v, n = x.mean(0), x.var(0), x.shape[0]
        delta, total = m - self.mean, self.count + n
        self.mean = self.mean + delta * n / total
        self.var = (self.var * self.count + v * n + delta**2 * self.count * n / total) / total
        self.count = total

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.clip((x - self.mean) / np.sqrt(self.var + 1e-8), -10, 10).astype(np.float32)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env-id", default="dex/Reach-v0")
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--num-steps", type=int, default=64, help="steps per environment per update")
    p.add_argument("--total-steps", type=int, default=10_000_000)
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--minibatches", type=int, default=4)
    p.add_argument("--gamma", type=float, default=0.99)
    p.add_argument("--gae-lambda", type=float, default=0.95)
    p.add_argument("--clip", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="learning-curve CSV")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="a task setting (TOML [task] key), e.g. --set action_mode=relative")
    args = p.parse_args()
    settings = parse_sets(args.sets)

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    envs = gym.make_vec(args.env_id, num_envs=args.num_envs, vectorization_mode="vector_entry_point", **settings)
    n, obs_dim = args.num_envs, envs.single_observation_space.shape[0]
    act_dim = envs.single_action_space.shape[0]
    agent = Agent(obs_dim, act_dim)
    opt = torch.optim.Adam(agent.parameters(), lr=args.lr, eps=1e-5)
    norm = RunningNorm(obs_dim)

    T = args.num_steps
    obs_b = np.zeros((T, n, obs_dim), np.float32)
    act_b = np.zeros((T, n, act_dim), np.float32)
    logp_b, rew_b, val_b = np.zeros((T, n)), np.zeros((T, n)), np.zeros((T, n))
    done_b, valid_b = np.zeros((T, n), bool), np.zeros((T, n), bool)
    term_b = np.zeros((T, n), bool)

    raw, _ = envs.reset(seed=args.seed)
    prev_done = np.zeros(n, bool)
    ep_ret = np.zeros(n)
    finished_ret, finished_succ = [], []
    writer = csv.writer(open(args.out, "w", newline="")) if args.out else None
    if writer:
        writer.writerow(["env_steps", "seconds", "mean_return", "success"])
    start, steps = time.time(), 0
    while steps < args.total_steps and time.time() - start < args.minutes * 60:
        for t in range(T):
            norm.update(raw[~prev_done] if (~prev_done).any() else raw)
            x = norm(raw)
            with torch.no_grad():
                a, logp, _, v = agent.act(torch.from_numpy(x))
            action = np.clip(a.numpy(), -1.0, 1.0)
            raw, r, term, trunc, info = envs.step(action)
            done = term | trunc
            obs_b[t], act_b[t], logp_b[t], val_b[t] = x, a.numpy(), logp.numpy(), v.numpy()
            rew_b[t], done_b[t], term_b[t], valid_b[t] = r, done, term, ~prev_done
            ep_ret += np.where(prev_done, 0.0, r)
            for i in np.flatnonzero(done & ~prev_done):
                finished_ret.append(ep_ret[i])
                finished_succ.append(float(info["success"][i]))
                ep_ret[i] = 0.0
            prev_done = done
            steps += int((valid_b[t]).sum())
        with torch.no_grad():
            next_v = agent.value(torch.from_numpy(norm(raw))).numpy()
        adv = np.zeros((T, n))
        last = np.zeros(n)
        for t in reversed(range(T)):
            # V of the observation after step t: for an ended episode, its last
            # observation (the input of the reset step that follows).
            nv = next_v if t == T - 1 else val_b[t + 1]
            # Bootstrap unless the task terminated; cut the GAE recursion at any end.
            delta = rew_b[t] + args.gamma * nv * (1.0 - term_b[t]) - val_b[t]
            last = delta + args.gamma * args.gae_lambda * (1.0 - done_b[t]) * last
            # A reset step carries no transition: cut the recursion through it.
            last = np.where(valid_b[t], last, 0.0)
            adv[t] = last
        ret = adv + val_b
        m = valid_b.reshape(-1)
        bo = torch.from_numpy(obs_b.reshape(-1, obs_dim)[m])
        ba = torch.from_numpy(act_b.reshape(-1, act_dim)[m])
        blp = torch.from_numpy(logp_b.reshape(-1)[m]).float()
        badv = torch.from_numpy(adv.reshape(-1)[m]).float()
        bret = torch.from_numpy(ret.reshape(-1)[m]).float()
        size = bo.shape[0]
        for _ in range(args.epochs):
            # Exactly `minibatches` near-equal parts: the number of valid rows varies
            # with the reset steps masked out, and a leftover minibatch of one row
            # would make the advantage's standard deviation NaN.
            for idx in torch.tensor_split(torch.randperm(size), args.minibatches):
                _, lp, ent, v = agent.act(bo[idx], ba[idx])
                ratio = (lp - blp[idx]).exp()
                a_n = (badv[idx] - badv[idx].mean()) / (badv[idx].std() + 1e-8)
                pg = torch.max(-a_n * ratio, -a_n * ratio.clamp(1 - args.clip, 1 + args.clip)).mean()
                vf = 0.5 * ((v - bret[idx]) ** 2).mean()
                loss = pg + 0.5 * vf - 0.0 * ent.mean()
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), 0.5)
                opt.step()
        recent_r = float(np.mean(finished_ret[-100:])) if finished_ret else float("nan")
        recent_s = float(np.mean(finished_succ[-100:])) if finished_succ else float("nan")
        secs = time.time() - start
        print(f"steps {steps:8d}  {secs:6.0f} s  return {recent_r:8.2f}  success {recent_s:.2f}", flush=True)
        if writer:
            writer.writerow([steps, f"{secs:.1f}", f"{recent_r:.4f}", f"{recent_s:.4f}"])
    envs.close()


if __name__ == "__main__":
    main()
