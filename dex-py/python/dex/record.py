"""Rollouts of a dex policy written as a LeRobot v3 dataset.

    python -m dex.record --task reach --checkpoint DIR --episodes N --out DIR
        [--seed S] [--no-video] [--image-size 320x240]

The policy acts deterministically (as ``dex eval`` does) on its own task settings;
episode ``k`` is reset with seed ``env_seed(S, k)``. Frames carry the observed state,
the action applied (clipped to the bounds), the reward, done and success flags of
the step, and — when PyAV is installed and the task has a scene — the grey camera
image as ``observation.images.camera`` video. The last line is
``episodes N frames M success <fraction>``.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

from dex import _core
from dex.envs import DexEnv, _NO_RENDER
from dex.lerobot import Episode, LeRobotWriter


def record(
    task: str,
    checkpoint: str | pathlib.Path,
    episodes: int,
    out: str | pathlib.Path,
    seed: int = 0,
    video: bool = True,
    image_size: tuple[int, int] = (320, 240),
) -> tuple[LeRobotWriter, list[Episode]]:
    """Rolls the checkpoint's policy out for ``episodes`` episodes on ``task`` and
    writes them to ``out``; returns the writer and the episodes written."""
    if episodes <= 0:
        raise ValueError("--episodes must be positive")
    policy = _core.Policy.load(str(checkpoint))
    if policy.task != task:
        raise ValueError(f"--task {task}: the checkpoint was trained on `{policy.task}`")
    settings = json.loads(policy.config_json)
    can_render = video and task not in _NO_RENDER
    env = DexEnv(task, policy.hand, render_mode="rgb_array" if can_render else None, render_size=image_size, **settings)
    fps = int(round(env.metadata["render_fps"]))
    writer = LeRobotWriter(
        out,
        fps=fps,
        task=f"dex {task} ({policy.hand})",
        robot_type=policy.hand,
        video=can_render,
        dex_env={"task": task, "hand": policy.hand, "obs": "state", "config": settings},
    )
    low, high = env.action_space.low, env.action_space.high
    recorded = []
    for k in range(episodes):
        obs, _ = env.reset(seed=_core.env_seed(seed, k))
        policy.reset(0)
        states, actions, rewards, dones, successes, images = [], [], [], [], [], []
        done = False
        while not done:
            if writer.codec is not None:
                images.append(env.render())
            a = np.clip(policy.act(np.asarray(obs, np.float32)[None])[0], low, high)
            states.append(obs)
            actions.append(a)
            obs, r, term, trunc, info = env.step(a)
            done = term or trunc
            rewards.append(r)
            dones.append(done)
            successes.append(bool(info["success"]))
        ep = Episode(
            states=np.asarray(states, np.float32),
            actions=np.asarray(actions, np.float32),
            rewards=np.asarray(rewards, np.float32),
            dones=np.asarray(dones, bool),
            successes=np.asarray(successes, bool),
            images=np.asarray(images, np.uint8) if images else None,
        )
        writer.add_episode(ep)
        recorded.append(ep)
    writer.finalize()
    return writer, recorded


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dex.record", description=__doc__.split("\n\n")[0])
    p.add_argument("--task", required=True, help="dex task name (must be the checkpoint's)")
    p.add_argument("--checkpoint", required=True, help="a `dex train` checkpoint directory")
    p.add_argument("--episodes", type=int, required=True)
    p.add_argument("--out", required=True, help="a new directory for the dataset")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-video", action="store_true", help="record no camera frames")
    p.add_argument("--image-size", default="320x240", help="WIDTHxHEIGHT of the camera frames")
    args = p.parse_args(argv)
    try:
        w, h = (int(v) for v in args.image_size.lower().split("x"))
        writer, eps = record(
            args.task, args.checkpoint, args.episodes, args.out, args.seed, not args.no_video, (w, h)
        )
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    frames = sum(len(e.states) for e in eps)
    video = "video: " + (writer.codec_note if writer.codec else f"none ({writer.codec_note})")
    print(f"wrote {args.out}: LeRobot {'v3.0'} dataset, {writer.fps} fps; {video}")
    success = float(np.mean([e.successes[-1] for e in eps]))
    print(f"episodes {len(eps)} frames {frames} success {success}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
