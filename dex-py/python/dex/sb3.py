"""Stable-Baselines3's ``VecEnv`` over dex's native batch (SAME_STEP auto-reset, as SB3
expects: ``infos[i]["terminal_observation"]`` and ``"TimeLimit.truncated"``).

>>> from stable_baselines3 import PPO                      # doctest: +SKIP
>>> from dex.sb3 import make_sb3_vec_env
>>> venv = make_sb3_vec_env("dex/Reach-v0", num_envs=16, seed=0)
>>> PPO("MlpPolicy", venv).learn(20_000)
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from dex.envs import ENV_IDS, DexVectorEnv


class DexSb3VecEnv(VecEnv):
    """A :class:`dex.DexVectorEnv` in SAME_STEP mode as an SB3 ``VecEnv``."""

    def __init__(self, venv: DexVectorEnv) -> None:
        if venv.metadata["autoreset_mode"] != gym.vector.AutoresetMode.SAME_STEP:
            raise ValueError("SB3 needs a DexVectorEnv with autoreset_mode=SAME_STEP")
        self.venv = venv
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self._actions: np.ndarray | None = None

    def reset(self) -> Any:
        seed = self._seeds[0] if self._seeds and self._seeds[0] is not None else None
        obs, _ = self.venv.reset(seed=seed)
        self._reset_seeds()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.float32).reshape(self.venv.action_space.shape)

    def step_wait(self) -> tuple[Any, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        if self._actions is None:
            raise RuntimeError("step_wait() without step_async()")
        obs, rewards, terminated, truncated, info = self.venv.step(self._actions)
        self._actions = None
        dones = terminated | truncated
        infos: list[dict[str, Any]] = []
        for i in range(self.num_envs):
            src = info["final_info"] if dones[i] else info
            d = {k: _item(v[i]) for k, v in src.items() if not k.startswith("_") and isinstance(v, np.ndarray)}
            if dones[i]:
                d["terminal_observation"] = info["final_obs"][i]
                d["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            infos.append(d)
        return obs, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(self.venv, attr_name) for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list[Any]:
        return [getattr(self.venv, method_name)(*args, **kwargs) for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False for _ in self._indices(indices)]

    def _indices(self, indices: Any) -> Sequence[int] | Iterable[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int):
            return [indices]
        return indices


def _item(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def make_sb3_vec_env(env_id: str, num_envs: int = 8, seed: int | None = None, **kwargs: Any) -> DexSb3VecEnv:
    """An SB3 ``VecEnv`` of ``num_envs`` environments of ``env_id`` (a :data:`dex.ENV_IDS`
    key) or a dex task name; ``kwargs`` are task settings as for ``gym.make``."""
    task = ENV_IDS.get(env_id, env_id)
    venv = DexVectorEnv(task, num_envs, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP, **kwargs)
    env = DexSb3VecEnv(venv)
    if seed is not None:
        env.seed(seed)
    return env
