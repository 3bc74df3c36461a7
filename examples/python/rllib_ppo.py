"""Ray RLlib PPO on a dex environment with several env runners, each stepping dex's
native vector environment (Rust, NEXT_STEP auto-reset, as RLlib's
``SingleAgentEnvRunner`` expects).

On one machine (starts a local Ray):

    python examples/python/rllib_ppo.py --runners 2 --envs-per-runner 8 --iterations 20

On a Ray cluster: install the dex wheel on every node (``pip install ./dex-py``, or
build once with ``maturin build --release`` and install the wheel everywhere), start
the cluster (``ray start --head`` on one node, ``ray start --address=HEAD:6379`` on
the others), then run the same script with ``--address auto`` (or
``RAY_ADDRESS=HEAD:6379``) and as many runners as the cluster has CPUs for. The env is
named ``dex:dex/Reach-v0``: the ``dex:`` prefix makes every runner import dex, which
registers the environments there.

On a 2-core machine keep ``runners × cpus-per-runner ≤ 2``: with more runners than
free CPUs at 1 CPU each, RLlib waits forever for resources (use fractional
``--cpus-per-runner``). Prints one line per iteration and writes the learning curve
and env-steps/s to ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import os
import time

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

import gymnasium as gym  # noqa: E402
import ray  # noqa: E402
from ray.rllib.algorithms.ppo import PPOConfig  # noqa: E402
from _settings import parse_sets  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env-id", default="dex/Reach-v0")
    p.add_argument("--runners", type=int, default=2)
    p.add_argument("--envs-per-runner", type=int, default=8)
    p.add_argument("--cpus-per-runner", type=float, default=1.0)
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--minutes", type=float, default=None, help="stop after this long")
    p.add_argument("--batch", type=int, default=2048, help="train batch size per learner")
    p.add_argument("--address", default=None, help="a Ray cluster's address, or 'auto'")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="a task setting (TOML [task] key), e.g. --set action_mode=relative")
    args = p.parse_args()
    settings = parse_sets(args.sets)

    if args.address:
        ray.init(address=args.address)
    else:
        ray.init(num_cpus=max(2, int(args.runners * args.cpus_per_runner + 0.999)), include_dashboard=False)
    config = (
        PPOConfig()
        .environment(f"dex:{args.env_id}", env_config=settings)
        .env_runners(
            num_env_runners=args.runners,
            num_envs_per_env_runner=args.envs_per_runner,
            num_cpus_per_env_runner=args.cpus_per_runner,
            gym_env_vectorize_mode=gym.VectorizeMode.VECTOR_ENTRY_POINT,
            rollout_fragment_length="auto",
        )
        .learners(num_learners=0)
        .training(
            train_batch_size_per_learner=args.batch,
            minibatch_size=256,
            num_epochs=5,
            lr=3e-4,
            model={"fcnet_hiddens": [256, 256], "fcnet_activation": "tanh"},
        )
        .debugging(seed=args.seed)
    )
    algo = config.build_algo()
    writer = csv.writer(open(args.out, "w", newline="")) if args.out else None
    if writer:
        writer.writerow(["iteration", "env_steps", "seconds", "env_steps_per_s", "sampling_env_steps_per_s", "mean_return"])
    start = time.time()
    last_steps, last_t = 0, start
    try:
        for it in range(1, args.iterations + 1):
            res = algo.train()
            runners = res.get("env_runners", {})
            steps = int(runners.get("num_env_steps_sampled_lifetime", 0))
            now = time.time()
            # Whole iterations (sampling and learning) and sampling alone (RLlib's timer).
            rate = (steps - last_steps) / max(now - last_t, 1e-9)
            sampling_s = float(res.get("timers", {}).get("env_runner_sampling_timer", float("nan")))
            sample_rate = (steps - last_steps) / sampling_s if sampling_s > 0 else float("nan")
            ret = runners.get("episode_return_mean", float("nan"))
            print(
                f"iter {it:3d}  steps {steps:8d}  {now - start:6.0f} s  {rate:6.0f} env-steps/s "
                f"(sampling {sample_rate:6.0f})  return {ret:8.2f}",
                flush=True,
            )
            if writer:
                writer.writerow([it, steps, f"{now - start:.1f}", f"{rate:.0f}", f"{sample_rate:.0f}", f"{ret:.4f}"])
            last_steps, last_t = steps, now
            if args.minutes is not None and now - start > args.minutes * 60:
                break
    finally:
        algo.stop()
        ray.shutdown()


if __name__ == "__main__":
    main()
