"""Stable-Baselines3 PPO on ``dex/Reach-v0`` through dex's native batch as SB3's own
``VecEnv`` (``dex.sb3.make_sb3_vec_env``).

    python examples/python/sb3_ppo.py --minutes 5 --num-envs 16 --out reach-sb3.csv

Needs ``stable-baselines3`` besides ``dex``. Writes the learning curve (env steps,
seconds, mean return and success of the episodes that ended since the last row).
"""

from __future__ import annotations

import argparse
import csv
import time

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecNormalize

from _settings import parse_sets
from dex.sb3 import make_sb3_vec_env


class Curve(BaseCallback):
    """Logs ended episodes after every rollout; stops at the time budget."""

    def __init__(self, out: str | None, minutes: float) -> None:
        super().__init__()
        self.deadline = time.time() + minutes * 60
        self.start = time.time()
        self.ret: list[float] = []
        self.succ: list[float] = []
        self.running: np.ndarray | None = None
        self.writer = csv.writer(open(out, "w", newline="")) if out else None
        if self.writer:
            self.writer.writerow(["env_steps", "seconds", "mean_return", "success"])

    def _on_step(self) -> bool:
        rewards = self.training_env.get_original_reward()
        if self.running is None:
            self.running = np.zeros_like(rewards, dtype=float)
        self.running += rewards
        for i, done in enumerate(self.locals["dones"]):
            if done:
                self.ret.append(float(self.running[i]))
                self.succ.append(float(self.locals["infos"][i].get("success", 0.0)))
                self.running[i] = 0.0
        return time.time() < self.deadline

    def _on_rollout_end(self) -> None:
        r = float(np.mean(self.ret[-100:])) if self.ret else float("nan")
        s = float(np.mean(self.succ[-100:])) if self.succ else float("nan")
        secs = time.time() - self.start
        print(f"steps {self.num_timesteps:8d}  {secs:6.0f} s  return {r:8.2f}  success {s:.2f}", flush=True)
        if self.writer:
            self.writer.writerow([self.num_timesteps, f"{secs:.1f}", f"{r:.4f}", f"{s:.4f}"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env-id", default="dex/Reach-v0")
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--total-steps", type=int, default=10_000_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="a task setting (TOML [task] key), e.g. --set action_mode=relative")
    args = p.parse_args()
    settings = parse_sets(args.sets)
    torch.set_num_threads(1)
    venv = VecNormalize(make_sb3_vec_env(args.env_id, num_envs=args.num_envs, seed=args.seed, **settings), norm_reward=False)
    model = PPO(
        "MlpPolicy",
        venv,
        n_steps=64,
        batch_size=256,
        n_epochs=5,
        learning_rate=3e-4,
        policy_kwargs={"net_arch": [256, 256], "log_std_init": -0.5},
        seed=args.seed,
        device="cpu",
        verbose=0,
    )
    model.learn(args.total_steps, callback=Curve(args.out, args.minutes))
    venv.close()


if __name__ == "__main__":
    main()
