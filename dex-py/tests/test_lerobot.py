"""LeRobot v3 datasets: dex → LeRobot → dex round trip, `python -m dex.record`,
`dex train bc` on the converted data, and (when lerobot is installed) LeRobotDataset
loading what dex wrote."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from dex import _core
from dex import lerobot as L
from dex.record import main as record_main
from dex.record import record


def test_round_trip_gives_the_same_arrays(tmp_path: pathlib.Path, reach_student: pathlib.Path) -> None:
    writer, eps = record("reach", reach_student, episodes=4, out=tmp_path / "lr", seed=1, video=False)
    data = L.load(tmp_path / "lr")
    assert data.num_episodes == 4 and data.fps == 20
    assert np.array_equal(data.states, np.concatenate([e.states for e in eps]))
    assert np.array_equal(data.actions, np.concatenate([e.actions for e in eps]))
    assert np.array_equal(data.rewards, np.concatenate([e.rewards for e in eps]))
    assert np.array_equal(data.dones, np.concatenate([e.dones for e in eps]))
    assert data.tasks[0] == "dex reach (leap)"
    assert data.dex_env["task"] == "reach"
    # ... and into dex's behaviour-cloning format.
    rows = L.to_dex(tmp_path / "lr", tmp_path / "bc")
    x, y, meta = _core.read_dataset(str(tmp_path / "bc"))
    assert rows == len(data.states)
    assert np.array_equal(x, data.states) and np.array_equal(y, data.actions)
    assert json.loads(meta)["env"]["task"] == "reach"


def test_the_recorded_policy_matches_a_fresh_rollout(tmp_path: pathlib.Path, reach_student: pathlib.Path) -> None:
    _, eps = record("reach", reach_student, episodes=2, out=tmp_path / "a", seed=5, video=False)
    _, again = record("reach", reach_student, episodes=2, out=tmp_path / "b", seed=5, video=False)
    for e1, e2 in zip(eps, again):
        assert np.array_equal(e1.states, e2.states) and np.array_equal(e1.actions, e2.actions)


def test_record_refuses_a_mismatched_task_with_exit_code_2(tmp_path: pathlib.Path, reach_student: pathlib.Path, capsys) -> None:
    code = record_main(["--task", "rotate", "--checkpoint", str(reach_student), "--episodes", "1", "--out", str(tmp_path / "x")])
    assert code == 2
    assert "trained on `reach`" in capsys.readouterr().err
    assert record_main(["--task", "reach", "--checkpoint", str(tmp_path / "none"), "--episodes", "1", "--out", str(tmp_path / "y")]) == 2


def test_loading_something_else_is_a_clear_error(tmp_path: pathlib.Path) -> None:
    with pytest.raises(FileNotFoundError, match="info.json"):
        L.load(tmp_path)
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "info.json").write_text(json.dumps({"codebase_version": "v2.1", "features": {}}))
    with pytest.raises(ValueError, match="v2.1"):
        L.load(tmp_path)


def test_dex_train_bc_learns_from_a_lerobot_dataset(tmp_path: pathlib.Path, reach_student: pathlib.Path, dex_bin: pathlib.Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "dex.record", "--task", "reach", "--checkpoint", str(reach_student),
         "--episodes", "20", "--out", str(tmp_path / "lr"), "--no-video"],
        check=True, capture_output=True,
    )
    L.to_dex(tmp_path / "lr", tmp_path / "bc")
    out = subprocess.run(
        [str(dex_bin), "train", "bc", "--data", str(tmp_path / "bc"), "--out", str(tmp_path / "student"),
         "--seed", "1", "--set", "bc.epochs=30", "--set", "run.eval_episodes=8", "--set", "run.eval_envs=4"],
        check=True, capture_output=True, text=True,
    ).stdout
    assert out.strip().splitlines()[-1].startswith("success ")
    # The student is a dex checkpoint like any other.
    policy = _core.Policy.load(str(tmp_path / "student"))
    assert (policy.task, policy.algorithm) == ("reach", "dagger")


def test_video_frames_when_an_encoder_is_present(tmp_path: pathlib.Path, reach_student: pathlib.Path) -> None:
    codec, why = L.video_encoder()
    if codec is None:
        pytest.skip(f"no video encoder: {why}")
    writer, eps = record("reach", reach_student, episodes=2, out=tmp_path / "v", seed=2, image_size=(64, 48))
    info = json.loads((tmp_path / "v" / "meta" / "info.json").read_text())
    assert info["features"][L.CAMERA_KEY]["shape"] == [48, 64, 3]
    assert (tmp_path / "v" / "videos" / L.CAMERA_KEY / "chunk-000" / "file-000.mp4").stat().st_size > 0


def test_lerobot_loads_what_dex_wrote(tmp_path: pathlib.Path, reach_student: pathlib.Path) -> None:
    lerobot = pytest.importorskip("lerobot.datasets.lerobot_dataset")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    video = L.video_encoder()[0] is not None
    _, eps = record("reach", reach_student, episodes=3, out=tmp_path / "lr", seed=3, video=video, image_size=(64, 48))
    ds = lerobot.LeRobotDataset("local/dex-reach", root=tmp_path / "lr")
    assert len(ds) == sum(len(e.states) for e in eps) and ds.num_episodes == 3
    item = ds[len(eps[0].states)]  # the first frame of episode 1
    assert np.allclose(item["observation.state"].numpy(), eps[1].states[0])
    assert np.allclose(item["action"].numpy(), eps[1].actions[0])
    assert item["task"] == "dex reach (leap)"
    if video:
        assert tuple(item[L.CAMERA_KEY].shape) == (3, 48, 64)
