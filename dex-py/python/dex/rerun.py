"""Log dex scenes to the rerun viewer through the ``rerun-sdk`` wheel.

The entity paths are those ``dex demo --rerun`` and ``dex eval --rerun`` write, so a
recording made from Python and one made by the command line look the same in the
viewer:

- ``world/hand/<link>``: each link's pose, its collision shapes below it
  (``world/hand/<link>/collision/...``, static);
- ``world/objects/<i>``: each object's pose, its shape at ``world/objects/<i>/shape``;
- ``joints/<name>/target`` and ``joints/<name>/measured``: joint targets against
  measured angles (rad);
- ``world/camera``: the camera's pose, ``world/camera/image`` its pinhole and images,
  ``world/camera/image/tracked`` tracked points.

Timelines: ``tick`` (the control step) and ``sim_time`` (simulated seconds).

Tested with ``rerun-sdk==0.35.0``; recordings open in the rerun viewer 0.35::

    import rerun as rr
    import gymnasium as gym
    import dex
    from dex.rerun import SceneLogger

    rec = rr.RecordingStream("dex")
    rec.save("reach.rrd")
    env = gym.make("dex/Rotate-v0")
    log = SceneLogger(env, recording=rec)
    env.reset(seed=0)
    for _ in range(50):
        env.step(env.action_space.sample())
        log.log()
    rec.disconnect()  # closes the file
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from . import _core

__all__ = ["HAND", "OBJECTS", "JOINTS", "SceneLogger"]

HAND = "world/hand"
OBJECTS = "world/objects"
JOINTS = "joints"

# The colours dex-rerun draws with.
_HAND_COLOR = (200, 200, 210, 255)
_OBJECT_COLOR = (230, 140, 40, 255)
_TRACK_COLOR = (40, 220, 80, 255)


def _rerun() -> Any:
    try:
        import rerun as rr
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "dex.rerun needs the rerun SDK: pip install 'rerun-sdk==0.35.*'"
        ) from e
    return rr


def _segment(name: str) -> str:
    return "".join("_" if c == "/" or c.isspace() else c for c in name)


def _z_to(d: np.ndarray) -> list[float]:
    """The quaternion ``[x, y, z, w]`` turning +z onto the direction ``d``."""
    n = float(np.linalg.norm(d))
    if n == 0.0:
        return [0.0, 0.0, 0.0, 1.0]
    u = d / n
    if u[2] < -1.0 + 1e-9:
        return [1.0, 0.0, 0.0, 0.0]
    q = np.array([-u[1], u[0], 0.0, 1.0 + u[2]])
    return list(q / np.linalg.norm(q))


def _log_shapes(rr: Any, rec: Any, path: str, shapes: Sequence[dict], color: tuple) -> None:
    """Logs primitive dicts (``HandModel.collision_shapes``) as static archetypes, one
    per kind below ``path``, as dex-rerun does."""
    by_kind: dict[str, list[dict]] = {}
    for s in shapes:
        by_kind.setdefault(s["kind"], []).append(s)
    if "box" in by_kind:
        b = by_kind["box"]
        rr.log(f"{path}/boxes", rr.Boxes3D(
            centers=[s["center"] for s in b], half_sizes=[s["half_size"] for s in b],
            quaternions=[rr.Quaternion(xyzw=s["rotation"]) for s in b],
            fill_mode="solid", colors=[color]), static=True, recording=rec)
    if "sphere" in by_kind:
        b = by_kind["sphere"]
        rr.log(f"{path}/spheres", rr.Ellipsoids3D(
            centers=[s["center"] for s in b], half_sizes=[[s["radius"]] * 3 for s in b],
            fill_mode="solid", colors=[color]), static=True, recording=rec)
    if "capsule" in by_kind:
        b = by_kind["capsule"]
        d = [np.asarray(s["end"]) - np.asarray(s["start"]) for s in b]
        rr.log(f"{path}/capsules", rr.Capsules3D(
            lengths=[float(np.linalg.norm(v)) for v in d], radii=[s["radius"] for s in b],
            translations=[s["start"] for s in b],
            quaternions=[rr.Quaternion(xyzw=_z_to(v)) for v in d],
            colors=[color]), static=True, recording=rec)
    if "cylinder" in by_kind:
        b = by_kind["cylinder"]
        rr.log(f"{path}/cylinders", rr.Cylinders3D(
            lengths=[s["length"] for s in b], radii=[s["radius"] for s in b],
            centers=[s["center"] for s in b],
            quaternions=[rr.Quaternion(xyzw=s["rotation"]) for s in b],
            colors=[color]), static=True, recording=rec)
    if "points" in by_kind:
        pts = [p for s in by_kind["points"] for p in s["points"]]
        rr.log(f"{path}/points", rr.Points3D(pts, radii=0.002, colors=[color]),
               static=True, recording=rec)


def _transform(rr: Any, pose: np.ndarray) -> Any:
    return rr.Transform3D(translation=pose[:3, 3], mat3x3=pose[:3, :3])


class SceneLogger:
    """Logs a dex environment's scene at every call of :meth:`log`.

    ``env`` is a :class:`dex.DexEnv` (or a wrapper of one, as ``gym.make`` returns);
    ``recording`` a ``rerun.RecordingStream`` (the global recording when ``None``).
    The hand's collision shapes are logged once, here; an object's shape when it is
    first seen and whenever the task draws a new one.
    """

    def __init__(self, env: Any, recording: Any = None) -> None:
        self._rr = _rerun()
        self._env = getattr(env, "unwrapped", env)
        if not hasattr(self._env, "scene"):
            raise TypeError(f"{type(self._env).__name__} is not a dex environment (no scene())")
        self._rec = recording
        model = _core.HandModel.load(self._env.hand)
        self._links = [f"{HAND}/{_segment(n)}" for n in model.link_names]
        self._joints = [_segment(n) for n in model.joint_names]
        self._objects: list[dict] = []
        self._tick = 0
        rr = self._rr
        rr.log("world", rr.ViewCoordinates.RIGHT_HAND_Z_UP, static=True, recording=self._rec)
        for path, shapes in zip(self._links, model.collision_shapes()):
            if shapes:
                _log_shapes(rr, self._rec, f"{path}/collision", shapes, _HAND_COLOR)

    def set_time(self, tick: int, seconds: float) -> None:
        """The time of what follows (as ``Recorder::set_time`` in Rust)."""
        self._tick = int(tick)
        self._rr.set_time("tick", sequence=int(tick), recording=self._rec)
        self._rr.set_time("sim_time", duration=float(seconds), recording=self._rec)

    def log(self, tick: int | None = None) -> None:
        """Logs the scene now: link and object poses, joint targets and measured angles.
        ``tick`` defaults to one more than the last."""
        rr, rec = self._rr, self._rec
        scene = self._env.scene()
        self.set_time(self._tick + 1 if tick is None else tick, scene["time"])
        for path, pose in zip(self._links, scene["link_poses"]):
            rr.log(path, _transform(rr, pose), recording=rec)
        shapes = self._env._core.object_shapes()
        for i, (shape, pose) in enumerate(zip(shapes, scene["object_poses"])):
            path = f"{OBJECTS}/{i}"
            if i >= len(self._objects) or self._objects[i] != shape:
                _log_shapes(rr, rec, f"{path}/shape", [shape], _OBJECT_COLOR)
            rr.log(path, _transform(rr, pose), recording=rec)
        self._objects = list(shapes)
        for name, q, t in zip(self._joints, scene["q"], scene["targets"]):
            rr.log(f"{JOINTS}/{name}/measured", rr.Scalars(float(q)), recording=rec)
            rr.log(f"{JOINTS}/{name}/target", rr.Scalars(float(t)), recording=rec)

    def log_camera(
        self,
        image: np.ndarray | None = None,
        tracked: np.ndarray | None = None,
        name: str = "camera",
    ) -> None:
        """A camera image at ``world/<name>/image``, with ``tracked`` pixel positions
        ``(N, 2)`` over it (``world/<name>/image/tracked``).

        Without ``image``, renders the environment's overview camera (``env.render()``'s,
        at the environment's ``render_size``) and logs its pose and pinhole too, so the
        image sits in the 3D scene; a given image (``H × W`` or ``H × W × 3``) is logged
        as it is."""
        rr, rec = self._rr, self._rec
        path = f"world/{_segment(name)}"
        if image is None:
            width, height = self._env.render_size
            cam = self._env._core.camera(width, height)
            image = self._env._core.render(width, height)
            rr.log(path, _transform(rr, cam["pose"]), recording=rec)
            rr.log(f"{path}/image", rr.Pinhole(
                focal_length=[cam["fx"], cam["fy"]], principal_point=[cam["cx"], cam["cy"]],
                width=cam["width"], height=cam["height"], image_plane_distance=0.05),
                recording=rec)
        rr.log(f"{path}/image", rr.Image(np.asarray(image)), recording=rec)
        if tracked is not None:
            pts = np.asarray(tracked, dtype=np.float32).reshape(-1, 2)
            rr.log(f"{path}/image/tracked", rr.Points2D(pts, radii=1.5, colors=[_TRACK_COLOR]),
                   recording=rec)
