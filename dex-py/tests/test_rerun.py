"""dex.rerun: recordings made from Python, read back with rerun's own reader; and, when
a `dex` built with the `rerun` feature is given (DEX_RERUN_BIN), the same entity paths
as `dex eval --rerun` writes."""

from __future__ import annotations

import os
import pathlib
import subprocess
from collections import Counter

import gymnasium as gym
import numpy as np
import pytest

import dex
from dex.rerun import HAND, JOINTS, OBJECTS, SceneLogger, _z_to

rr = pytest.importorskip("rerun")


def rows_per_path(path: pathlib.Path) -> Counter:
    """Rows logged per entity path, read with rerun's reader."""
    from rerun.experimental import RrdReader

    rows: Counter = Counter()
    for chunk in RrdReader(str(path)).stream().to_chunks():
        rows[str(chunk.entity_path)] += chunk.num_rows
    return rows


def record_python(env_id: str, out: pathlib.Path, steps: int, seed: int = 0) -> Counter:
    env = gym.make(env_id, render_mode="rgb_array")
    rec = rr.RecordingStream("dex-test")
    rec.save(str(out))
    log = SceneLogger(env, recording=rec)
    env.reset(seed=seed)
    log.log(tick=0)
    log.log_camera()
    for _ in range(steps):
        env.step(np.zeros(env.action_space.shape, dtype=np.float32))
        log.log()
        log.log_camera()
    rec.disconnect()  # closes the file (writes its footer)
    env.close()
    return rows_per_path(out)


def test_a_recording_holds_links_objects_joints_and_the_camera(tmp_path: pathlib.Path) -> None:
    rows = record_python("dex/Rotate-v0", tmp_path / "rotate.rrd", steps=4)
    model = dex.HandModel.load("leap")
    for name, shapes in zip(model.link_names, model.collision_shapes()):
        # A pose per tick (the reset and 4 steps).
        assert rows[f"/{HAND}/{name}"] == 5, name
        if shapes:
            assert any(p.startswith(f"/{HAND}/{name}/collision/") for p in rows), name
    for name in model.joint_names:
        assert rows[f"/{JOINTS}/{name}/target"] == 5
        assert rows[f"/{JOINTS}/{name}/measured"] == 5
    assert rows[f"/{OBJECTS}/0"] == 5
    assert rows[f"/{OBJECTS}/0/shape/boxes"] == 1  # the rotate task's cube, drawn once
    assert rows["/world/camera/image"] >= 5
    assert rows["/world/camera"] == 5


def test_capsules_turn_z_onto_their_axis() -> None:
    for d in ([0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.3, -0.4, 0.2], [0.0, 0.0, -2.0]):
        x, y, z, w = _z_to(np.asarray(d))
        # Rotate +z by the quaternion (x, y, z, w).
        r = np.array([2 * (x * z + w * y), 2 * (y * z - w * x), 1 - 2 * (x * x + y * y)])
        np.testing.assert_allclose(r, np.asarray(d) / np.linalg.norm(d), atol=1e-9)


def test_a_logger_wants_a_dex_environment() -> None:
    with pytest.raises(TypeError, match="not a dex environment"):
        SceneLogger(object())


@pytest.mark.skipif("DEX_RERUN_BIN" not in os.environ, reason="needs dex built with --features rerun")
def test_the_command_line_writes_the_same_entity_paths(
    tmp_path: pathlib.Path, reach_student: pathlib.Path
) -> None:
    rust = tmp_path / "eval.rrd"
    run = subprocess.run(
        [os.environ["DEX_RERUN_BIN"], "eval", "--checkpoint", str(reach_student),
         "--episodes", "1", "--envs", "1", "--rerun", str(rust)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    # stderr: "rerun FILE: one episode, N steps, return R"
    line = next(l for l in run.stderr.splitlines() if l.startswith("rerun "))
    steps = int(line.split("one episode, ")[1].split(" steps")[0])
    rust_rows = rows_per_path(rust)
    py_rows = record_python("dex/Reach-v0", tmp_path / "py.rrd", steps=3)
    ours = {p for p in py_rows if not p.startswith("/__")}
    theirs = {p for p in rust_rows if not p.startswith("/__")}
    assert ours == theirs, (ours ^ theirs)
    # One pose and one joint sample per control step of the episode, the reset included.
    model = dex.HandModel.load("leap")
    assert rust_rows[f"/{HAND}/{model.link_names[1]}"] == steps + 1
    assert rust_rows[f"/{JOINTS}/{model.joint_names[0]}/target"] == steps + 1
    assert rust_rows["/world/camera"] == steps + 1
