"""Policies from dex checkpoints, acting as `dex eval` does."""

from __future__ import annotations

import pathlib
import re
import subprocess

import numpy as np
import pytest

import dex


def python_eval(policy: dex.Policy, episodes: int, seed: int, num_envs: int) -> tuple[float, float]:
    """`dex eval`'s loop written against the Gymnasium vector env: deterministic actions
    clipped to the bounds, NEXT_STEP reset steps skipped, each environment running its
    share of the episodes. Returns (success rate, mean return)."""
    venv = dex.DexVectorEnv(policy.task, num_envs, hand=policy.hand, **__import__("json").loads(policy.config_json))
    obs, _ = venv.reset(seed=seed)
    low, high = venv.single_action_space.low, venv.single_action_space.high
    quota = [episodes // num_envs + int(i < episodes % num_envs) for i in range(num_envs)]
    prev_done = np.zeros(num_envs, bool)
    ret = np.zeros(num_envs)
    returns, successes = [], []
    while len(returns) < episodes:
        a = np.clip(policy.act(obs), low, high)
        obs, r, term, trunc, info = venv.step(a)
        for i in range(num_envs):
            if prev_done[i]:
                continue
            ret[i] += r[i]
            if (term[i] or trunc[i]) and quota[i] > 0:
                quota[i] -= 1
                returns.append(ret[i])
                successes.append(bool(info["success"][i]))
                ret[i] = 0.0
            elif term[i] or trunc[i]:
                ret[i] = 0.0
        prev_done = term | trunc
    return float(np.mean(successes)), float(np.mean(returns))


def test_a_policy_acts_as_dex_eval_does(dex_bin: pathlib.Path, reach_student: pathlib.Path) -> None:
    out = subprocess.run(
        [str(dex_bin), "eval", "--checkpoint", str(reach_student), "--episodes", "6", "--seed", "3", "--envs", "2"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    success = float(re.search(r"^success (\S+)$", out, re.M).group(1))
    mean_return = float(re.search(r"mean_return (\S+)", out).group(1))
    policy = dex.Policy.load(reach_student)
    assert (policy.algorithm, policy.task, policy.hand) == ("dagger", "reach", "leap")
    ours = python_eval(policy, episodes=6, seed=3, num_envs=2)
    assert ours[0] == pytest.approx(success, abs=1e-12)
    assert ours[1] == pytest.approx(mean_return, abs=5e-4)
    rust = policy.evaluate(episodes=6, seed=3, num_envs=2)
    assert rust["success_rate"] == pytest.approx(success, abs=1e-12)
    assert rust["mean_return"] == pytest.approx(mean_return, abs=5e-4)


def test_act_checks_its_input(reach_student: pathlib.Path) -> None:
    policy = dex.Policy.load(reach_student)
    x = np.zeros((3, policy.observation_dim), np.float32)
    assert policy.act(x).shape == (3, policy.action_dim)
    with pytest.raises(ValueError):
        policy.act(np.zeros((1, policy.observation_dim + 1), np.float32))
    x[0, 0] = np.nan
    with pytest.raises(ValueError):
        policy.act(x)


def test_a_missing_or_corrupt_checkpoint_is_an_error(tmp_path: pathlib.Path) -> None:
    with pytest.raises(FileNotFoundError):
        dex.Policy.load(tmp_path / "nothing-here")
    (tmp_path / "checkpoint.toml").write_text("this is not [toml")
    with pytest.raises(ValueError):
        dex.Policy.load(tmp_path)
