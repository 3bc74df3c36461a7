"""What the Python binding costs: env-steps/s of dex's native vector environment
stepped from Python (``gym.make_vec(..., "vector_entry_point")``) against the Rust
``VecEnv`` stepped by Rust alone in the same process, same task, same threads.

    python dex-py/benches/vector_overhead.py [--steps 200] [--tasks reach,rotate]

Prints, per task and batch size, both rates, their ratio and the overhead per batch
step in microseconds. ``mock`` is the kinematic mock physics (a step costs almost
nothing, so the binding's own cost shows); the others run rapier. Thread count:
``RAYON_NUM_THREADS`` (default: all cores).
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import dex
from dex import _core


def python_rate(task: str, n: int, steps: int, settings: dict) -> float:
    env_id = {v: k for k, v in dex.ENV_IDS.items()}[task]
    venv = gym.make_vec(env_id, num_envs=n, vectorization_mode="vector_entry_point", **settings)
    venv.reset(seed=0)
    a = np.zeros(venv.action_space.shape, np.float32)
    for _ in range(3):
        venv.step(a)
    t = time.perf_counter()
    for _ in range(steps):
        venv.step(a)
    rate = n * steps / (time.perf_counter() - t)
    venv.close()
    return rate


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--tasks", default="mock,reach,rotate")
    p.add_argument("--sizes", default="1,64")
    p.add_argument("--rounds", type=int, default=3, help="best of this many rounds")
    args = p.parse_args()
    print(f"{'task':8} {'envs':>5} {'rust steps/s':>13} {'python steps/s':>15} {'ratio':>6} {'overhead us/step':>17}")
    for name in args.tasks.split(","):
        task, settings = ("reach", {"mock_physics": True}) if name == "mock" else (name, {})
        # Long episodes: no resets inside the timed loop.
        settings = dict(settings, episode_steps=1_000_000)
        for n in [int(s) for s in args.sizes.split(",")]:
            steps = args.steps if n == 1 or name == "mock" else max(args.steps // 8, 5)
            rust = max(
                _core._rust_env_steps_per_s(task, n, steps, dex.envs.settings_json(settings))
                for _ in range(args.rounds)
            )
            py = max(python_rate(task, n, steps, settings) for _ in range(args.rounds))
            overhead_us = (n / py - n / rust) * 1e6
            print(f"{name:8} {n:5d} {rust:13.0f} {py:15.0f} {py / rust:6.3f} {overhead_us:17.1f}")


if __name__ == "__main__":
    main()
