"""The MuJoCo backend from Python: ``backend="mujoco"`` in a task's settings.

With dex built with the ``mujoco`` feature (``DEX_PY_MUJOCO=1``, as
``scripts/ci-mujoco.sh`` builds it) every task runs on it, seeded runs repeat, and a
MuJoCo Menagerie hand file loads through ``mjcf``; without the feature the error
names it.
"""

from __future__ import annotations

import os

import gymnasium as gym
import numpy as np
import pytest

import dex  # noqa: F401  (registers the environments)

WITH_MUJOCO = os.environ.get("DEX_PY_MUJOCO") == "1"


def _rollout(env: gym.Env, seed: int, steps: int = 20) -> np.ndarray:
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    rows = [obs]
    for _ in range(steps):
        action = rng.uniform(-1.0, 1.0, env.action_space.shape).astype(np.float32)
        obs, _, terminated, truncated, _ = env.step(action)
        rows.append(obs)
        if terminated or truncated:
            obs, _ = env.reset()
    return np.stack(rows)


@pytest.mark.skipif(WITH_MUJOCO, reason="dex built with the mujoco feature")
def test_without_the_feature_the_backend_is_an_error_that_names_it() -> None:
    with pytest.raises(Exception, match="mujoco"):
        gym.make("dex/Reach-v0", backend="mujoco")


@pytest.mark.skipif(not WITH_MUJOCO, reason="needs dex built with the mujoco feature")
def test_tasks_run_on_mujoco_and_repeat_for_a_seed() -> None:
    for task in ("dex/Reach-v0", "dex/Rotate-v0"):
        env = gym.make(task, backend="mujoco")
        a = _rollout(env, seed=3)
        b = _rollout(env, seed=3)
        np.testing.assert_array_equal(a, b)
        rapier = _rollout(gym.make(task), seed=3)
        assert a.shape == rapier.shape
        assert not np.array_equal(a, rapier), f"{task}: the backends gave the same run"


@pytest.mark.skipif(not WITH_MUJOCO, reason="needs dex built with the mujoco feature")
def test_a_menagerie_hand_file_loads_with_a_joint_map(root) -> None:
    path = root.parent / "shared" / "assets" / "menagerie" / "leap_hand" / "right_hand.xml"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    env = gym.make("dex/Reach-v0", backend="mujoco", mjcf={"path": str(path)})
    run = _rollout(env, seed=1)
    assert np.isfinite(run).all()
    with pytest.raises(Exception, match="no_such_joint"):
        gym.make(
            "dex/Reach-v0",
            backend="mujoco",
            mjcf={"path": str(path), "joints": {"if_mcp": "no_such_joint"}},
        )
