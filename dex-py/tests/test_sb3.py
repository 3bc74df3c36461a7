"""Stable-Baselines3 over the native batch: its own env checker, the SAME_STEP infos
it relies on, and a short PPO run (runs where stable-baselines3 is installed)."""

from __future__ import annotations

import numpy as np
import pytest

sb3 = pytest.importorskip("stable_baselines3")

from dex.sb3 import make_sb3_vec_env  # noqa: E402


def test_terminal_observations_and_time_limits_reach_sb3() -> None:
    venv = make_sb3_vec_env("dex/Reach-v0", num_envs=2, seed=4, episode_steps=3)
    obs = venv.reset()
    assert obs.shape == (2, venv.observation_space.shape[0])
    seen_end = False
    for _ in range(4):
        venv.step_async(np.zeros((2, 16), np.float32))
        obs, rewards, dones, infos = venv.step_wait()
        assert rewards.dtype == np.float32
        for i, done in enumerate(dones):
            if done:
                seen_end = True
                assert infos[i]["terminal_observation"].shape == obs[i].shape
                assert not np.array_equal(infos[i]["terminal_observation"], obs[i])
                assert infos[i]["TimeLimit.truncated"] is True
    assert seen_end
    venv.close()


def test_sb3_ppo_trains_on_the_native_batch() -> None:
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    venv = make_sb3_vec_env("dex/Reach-v0", num_envs=4, seed=0)
    model = sb3.PPO("MlpPolicy", venv, n_steps=128, batch_size=128, n_epochs=2, device="cpu", seed=0)
    model.learn(2_048)
    assert model.num_timesteps >= 2_048
    action, _ = model.predict(venv.reset(), deterministic=True)
    assert action.shape == (4, 16)
    venv.close()
