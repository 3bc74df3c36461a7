"""Gymnasium environments over dex's tasks: :class:`DexEnv` (one environment) and
:class:`DexVectorEnv` (a native batch stepped in parallel by Rust)."""

from __future__ import annotations

import json
import secrets
from typing import Any, Mapping, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from dex import _core

#: Gymnasium id → dex task name. Every id also has a vector entry point.
ENV_IDS: dict[str, str] = {
    "dex/Reach-v0": "reach",
    "dex/ReachDepth-v0": "reach-depth",
    "dex/Rotate-v0": "rotate",
    "dex/Anypose-v0": "anypose",
    "dex/AnyposeTable-v0": "anypose-table",
    "dex/AnyposeProxy-v0": "anypose-proxy",
    "dex/Anygrasp-v0": "anygrasp",
}

# Tasks that have no simulator to render (physics-free).
_NO_RENDER = {"anypose-proxy"}


def _jsonable(value: Any) -> Any:
    """numpy scalars and arrays in task settings, as JSON values."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"task setting of type {type(value).__name__} is not a number, list or dict")


def settings_json(settings: Mapping[str, Any]) -> str:
    """Task settings (the keys of the TOML ``[task]`` table) as the JSON dex reads."""
    return json.dumps(dict(settings), default=_jsonable)


def _box(low: Sequence[float], high: Sequence[float]) -> spaces.Box:
    return spaces.Box(np.asarray(low, np.float32), np.asarray(high, np.float32), dtype=np.float32)


def _spaces(core: Any) -> tuple[spaces.Space, spaces.Box]:
    """(single observation space, single action space) of a core env or batch."""
    state = _box(*core.state_bounds)
    action = _box(*core.action_bounds)
    if core.depth_shape is None:
        return state, action
    h, w = core.depth_shape
    depth = spaces.Box(0.0, np.inf, shape=(h, w), dtype=np.float32)
    return spaces.Dict({"state": state, "depth": depth}), action


def _control_hz(settings: Mapping[str, Any]) -> float:
    return 1.0 / (float(settings.get("dt", 0.002)) * int(settings.get("substeps", 25)))


class DexEnv(gym.Env):
    """One dex task as a ``gymnasium.Env``.

    Args:
        task: a dex task name (``reach``, ``reach-depth``, ``rotate``, ``anypose``,
            ``anypose-table``, ``anypose-proxy``, ``anygrasp``).
        hand: ``leap``, ``allegro`` or a URDF file.
        render_mode: ``None`` or ``"rgb_array"`` (the scene's grey camera image,
            ``(height, width, 3)`` uint8).
        render_size: ``(width, height)`` of rendered images.
        **settings: task settings with the keys of the TOML ``[task]`` table, e.g.
            ``episode_steps=100``, ``action_mode="relative"``,
            ``randomization={"object_mass": [0.8, 1.2]}``. An unknown key raises
            ``ValueError`` naming the known ones.

    Observations are the task's state vector (float32), or for tasks that observe
    depth a dict ``{"state", "depth"}``. Actions lie in ``[-1, 1]^n``; an action of the
    wrong shape, with a NaN or outside the bounds raises ``ValueError`` and changes
    nothing. Rust steps with the GIL released.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        task: str,
        hand: str = "leap",
        render_mode: str | None = None,
        render_size: tuple[int, int] = (320, 240),
        **settings: Any,
    ) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode {render_mode!r}: dex renders None or 'rgb_array'")
        if render_mode is not None and task in _NO_RENDER:
            raise ValueError(f"task {task!r} is physics-free and cannot render")
        self._core = _core.Env(task, hand, settings_json(settings))
        self.task = task
        self.hand = hand
        self.render_mode = render_mode
        self.render_size = (int(render_size[0]), int(render_size[1]))
        self.observation_space, self.action_space = _spaces(self._core)
        self.metadata = dict(
            self.metadata,
            render_fps=_control_hz(settings),
            render_modes=[] if task in _NO_RENDER else ["rgb_array"],
        )
        self._seeded = False

    def _obs(self, state: np.ndarray, depth: np.ndarray | None) -> Any:
        return state if depth is None else {"state": state, "depth": depth}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Starts an episode. ``seed`` reseeds it; ``None`` continues the random stream
        (the first unseeded reset draws a seed from ``self.np_random``)."""
        super().reset(seed=seed)
        if seed is None and not self._seeded:
            seed = int(self.np_random.integers(0, 2**63 - 1))
        if seed is not None:
            self._seeded = True
        state, depth, info = self._core.reset(seed)
        return self._obs(state, depth), info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        a = np.asarray(action, dtype=np.float32)
        if a.shape != self.action_space.shape:
            raise ValueError(f"action has shape {a.shape}; expected {self.action_space.shape}")
        state, depth, reward, terminated, truncated, info = self._core.step(np.ascontiguousarray(a))
        return self._obs(state, depth), float(reward), bool(terminated), bool(truncated), info

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            return None
        return self._core.render(*self.render_size)

    def scene(self) -> dict[str, Any]:
        """The scene now, in the world frame: ``time``, ``q``, ``qdot``, ``targets``,
        ``link_names``, ``link_poses`` (links, 4, 4), ``fingertips`` (fingers, 3),
        ``object_poses`` (objects, 4, 4)."""
        return self._core.scene()

    def state_digest(self) -> int | None:
        """A digest of the simulator's whole state (same seed and actions, same digest)."""
        return self._core.state_digest()


def _autoreset_mode(mode: AutoresetMode | str) -> AutoresetMode:
    if isinstance(mode, AutoresetMode):
        m = mode
    else:
        try:
            m = AutoresetMode(mode)
        except ValueError:
            by_name = {x.name.lower(): x for x in AutoresetMode}
            if str(mode).lower() not in by_name:
                raise ValueError(f"autoreset_mode {mode!r}: use NEXT_STEP or SAME_STEP") from None
            m = by_name[str(mode).lower()]
    if m not in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):
        raise ValueError(f"autoreset_mode {m}: dex batches auto-reset NEXT_STEP or SAME_STEP")
    return m


class DexVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` environments of one dex task stepped in parallel by Rust (rayon; set
    ``RAYON_NUM_THREADS`` to bound the threads), as a ``gymnasium.vector.VectorEnv``.

    ``autoreset_mode`` is Gymnasium's ``NEXT_STEP`` (the default: the step after an
    episode ends resets that environment, ignores its action and returns reward 0) or
    ``SAME_STEP`` (the ending step resets at once; ``info["final_obs"]`` and
    ``info["final_info"]`` hold the ended episode's last observation and info, masked
    by ``info["_final_obs"]``). Environment ``i`` of ``reset(seed=s)`` is seeded with
    ``env_seed(s, i)``, as dex's Rust ``VecEnv`` does, so results match it bit for bit.
    Other keyword arguments are as :class:`DexEnv`'s.
    """

    def __init__(
        self,
        task: str,
        num_envs: int = 1,
        hand: str = "leap",
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        render_mode: str | None = None,
        **settings: Any,
    ) -> None:
        if render_mode is not None:
            raise ValueError("the native vector environment does not render; use DexEnv")
        mode = _autoreset_mode(autoreset_mode)
        self.metadata = {"autoreset_mode": mode, "render_modes": []}
        self.render_mode = None
        core_mode = "same_step" if mode == AutoresetMode.SAME_STEP else "next_step"
        self._core = _core.VecEnv(task, int(num_envs), hand, settings_json(settings), core_mode)
        self.task = task
        self.hand = hand
        self.num_envs = int(num_envs)
        self.single_observation_space, self.single_action_space = _spaces(self._core)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._seeded = False

    def _obs(self, states: np.ndarray, depth: np.ndarray | None) -> Any:
        return states if depth is None else {"state": states, "depth": depth}

    def reset(
        self,
        *,
        seed: int | Sequence[int] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        """Resets every environment: ``seed`` seeds environment ``i`` with
        ``env_seed(seed, i)``; ``None`` continues each one's stream (the first
        unseeded reset draws a seed)."""
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise ValueError(
                "dex batches take one int seed (environment i gets env_seed(seed, i)), "
                f"not {type(seed).__name__}"
            )
        if seed is None and not self._seeded:
            seed = secrets.randbits(63)
        if seed is not None:
            self._seeded = True
            self._np_random, self._np_random_seed = gym.utils.seeding.np_random(int(seed))
        states, depth, infos = self._core.reset(None if seed is None else int(seed))
        return self._obs(states, depth), infos

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        a = np.asarray(actions, dtype=np.float32)
        if a.shape != self.action_space.shape:
            raise ValueError(f"actions have shape {a.shape}; expected {self.action_space.shape}")
        states, depth, rewards, terminated, truncated, infos, final = self._core.step(
            np.ascontiguousarray(a)
        )
        if final is not None:
            f_states, f_depth, ended, f_infos = final
            final_obs = np.empty(self.num_envs, dtype=object)
            for i in np.flatnonzero(ended):
                final_obs[i] = (
                    f_states[i] if f_depth is None else {"state": f_states[i], "depth": f_depth[i]}
                )
            infos["final_obs"] = final_obs
            infos["_final_obs"] = ended
            infos["final_info"] = f_infos
            infos["_final_info"] = ended
        return self._obs(states, depth), rewards, terminated, truncated, infos

    def close_extras(self, **kwargs: Any) -> None:
        self._core = None


def make_env(task: str, hand: str = "leap", **settings: Any) -> DexEnv:
    """A :class:`DexEnv` for a dex task name (no Gymnasium wrappers)."""
    return DexEnv(task, hand, **settings)


def register_envs() -> None:
    """Registers :data:`ENV_IDS` with Gymnasium (done on ``import dex``; repeated
    calls change nothing)."""
    for env_id, task in ENV_IDS.items():
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point="dex.envs:DexEnv",
            vector_entry_point="dex.envs:DexVectorEnv",
            kwargs={"task": task},
            disable_env_checker=False,
        )
