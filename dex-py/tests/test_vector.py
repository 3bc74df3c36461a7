"""The native vector environment: make_vec's three modes, and NEXT_STEP / SAME_STEP
semantics step by step against Gymnasium's own SyncVectorEnv over single dex envs."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import dex
from dex import _core


@pytest.mark.parametrize("mode", ["sync", "async", "vector_entry_point"])
def test_make_vec_in_every_mode(mode: str) -> None:
    # Async workers start by spawn: forking a process whose Rust thread pool is running
    # is unsafe.
    vector_kwargs = {"context": "spawn"} if mode == "async" else None
    venv = gym.make_vec(
        "dex/Reach-v0", num_envs=2, vectorization_mode=mode, vector_kwargs=vector_kwargs, episode_steps=4
    )
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (2, venv.single_observation_space.shape[0])
    for _ in range(5):
        obs, rew, term, trunc, info = venv.step(venv.action_space.sample())
    assert obs.shape[0] == 2 and rew.shape == (2,)
    venv.close()


def reference(num_envs: int, seed: int, mode: AutoresetMode, **settings) -> SyncVectorEnv:
    """Gymnasium's SyncVectorEnv over single dex envs, each seeded as dex seeds batch member i."""
    venv = SyncVectorEnv(
        [lambda: dex.DexEnv("reach", **settings) for _ in range(num_envs)], autoreset_mode=mode
    )
    venv.reset(seed=[_core.env_seed(seed, i) for i in range(num_envs)])
    return venv


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_autoreset_matches_gymnasiums_sync_vector_env(mode: AutoresetMode) -> None:
    n, seed = 3, 11
    settings = {"episode_steps": 3}
    native = dex.DexVectorEnv("reach", n, autoreset_mode=mode, **settings)
    obs, _ = native.reset(seed=seed)
    ref = reference(n, seed, mode, **settings)
    ref_obs = np.stack([e.unwrapped._core.reset(_core.env_seed(seed, i))[0] for i, e in enumerate(ref.envs)])
    assert np.array_equal(obs, ref_obs)
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(10):
        a = rng.uniform(-1, 1, (n, 16)).astype(np.float32)
        o1, r1, te1, tr1, i1 = native.step(a)
        o2, r2, te2, tr2, i2 = ref.step(a)
        assert np.array_equal(o1, o2)
        assert np.array_equal(r1, r2)
        assert np.array_equal(te1, te2) and np.array_equal(tr1, tr2)
        if mode == AutoresetMode.SAME_STEP and "_final_obs" in i2:
            assert np.array_equal(i1["_final_obs"], i2["_final_obs"])
            for k in np.flatnonzero(i2["_final_obs"]):
                assert np.array_equal(i1["final_obs"][k], i2["final_obs"][k])
                ended += 1
        ended += int((te1 | tr1).sum()) if mode == AutoresetMode.NEXT_STEP else 0
    assert ended > 0


def test_next_step_resets_on_the_step_after_the_end() -> None:
    venv = dex.DexVectorEnv("reach", 2, episode_steps=2)
    venv.reset(seed=0)
    a = np.zeros((2, 16), np.float32)
    venv.step(a)
    _, _, _, trunc, _ = venv.step(a)
    assert trunc.all()
    obs, rew, term, trunc, _ = venv.step(np.full((2, 16), 5.0, np.float32))  # ignored: a reset step
    assert (rew == 0).all() and not term.any() and not trunc.any()


def test_vector_bad_input_raises() -> None:
    venv = dex.DexVectorEnv("reach", 2)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        venv.step(np.zeros((3, 16), np.float32))
    bad = np.zeros((2, 16), np.float32)
    bad[1, 3] = np.nan
    with pytest.raises(ValueError):
        venv.step(bad)
    with pytest.raises(ValueError, match="autoreset"):
        dex.DexVectorEnv("reach", 2, autoreset_mode="sometimes")
    with pytest.raises(ValueError, match="num_envs"):
        dex.DexVectorEnv("reach", 0)


def test_same_seed_same_batch() -> None:
    def run() -> np.ndarray:
        venv = gym.make_vec("dex/Rotate-v0", num_envs=2, vectorization_mode="vector_entry_point")
        obs, _ = venv.reset(seed=5)
        for _ in range(3):
            obs, *_ = venv.step(np.full((2, 16), 0.3, np.float32))
        return obs

    assert np.array_equal(run(), run())
