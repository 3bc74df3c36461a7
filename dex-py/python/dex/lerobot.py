"""LeRobot v3 datasets, written and read with pyarrow alone (no ``lerobot`` install
needed), and their conversion into dex's behaviour-cloning format.

Layout written (LeRobot's ``CODEBASE_VERSION`` "v3.0")::

    ROOT/meta/info.json                  fps, features, totals, path templates
    ROOT/meta/stats.json                 min/max/mean/std/count/q01..q99 per feature
    ROOT/meta/tasks.parquet              task_index, task (pandas index metadata)
    ROOT/meta/episodes/chunk-000/file-000.parquet   one row per episode
    ROOT/data/chunk-000/file-000.parquet            one row per frame
    ROOT/videos/observation.images.camera/chunk-000/file-000.mp4   (when frames are given
                                                                     and PyAV is installed)
    ROOT/meta/dex.json                   dex's environment (task, hand, settings): LeRobot
                                         ignores it; dex uses it to evaluate

Frame features: ``observation.state`` (float32), ``action`` (float32), ``next.reward``
(float32), ``next.done`` (bool), ``next.success`` (bool), and the five LeRobot adds to
every dataset (``timestamp``, ``frame_index``, ``episode_index``, ``index``,
``task_index``).
"""

from __future__ import annotations

import json
import pathlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dex import _core

CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"
CAMERA_KEY = "observation.images.camera"
_QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}


def _pa():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ImportError("LeRobot datasets need pyarrow: pip install pyarrow") from e
    return pa, pq


def video_encoder() -> tuple[str | None, str]:
    """The codec PyAV can encode here (``libsvtav1``, LeRobot's default, then
    ``libx264``, ``mpeg4``), or ``None`` and why not."""
    try:
        import av
    except ImportError:
        return None, "PyAV (`pip install av`) is not installed"
    for codec in ("libsvtav1", "libx264", "mpeg4"):
        try:
            av.codec.Codec(codec, "w")
            return codec, f"PyAV {av.__version__}, {codec}"
        except Exception:  # noqa: BLE001 - PyAV raises several kinds for a missing codec
            continue
    return None, "PyAV has none of libsvtav1, libx264, mpeg4"


def _stats(x: np.ndarray) -> dict[str, list]:
    """LeRobot's per-feature statistics over the first axis (images: per channel)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    axes = tuple(i for i in range(x.ndim) if i != x.ndim - 1) if x.ndim == 4 else (0,)
    out = {
        "min": x.min(axis=axes),
        "max": x.max(axis=axes),
        "mean": x.mean(axis=axes),
        "std": x.std(axis=axes),
    }
    for k, q in _QUANTILES.items():
        out[k] = np.quantile(x, q, axis=axes)
    if x.ndim == 4:  # images: (c, 1, 1) per statistic, values in [0, 1]
        out = {k: (v / 255.0).reshape(-1, 1, 1) for k, v in out.items()}
    res = {k: np.asarray(v).tolist() for k, v in out.items()}
    res["count"] = [int(x.shape[0])]
    return res


@dataclass
class Episode:
    """One episode's frames (all arrays share the first axis)."""

    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    successes: np.ndarray
    images: np.ndarray | None = None


@dataclass
class LeRobotData:
    """A LeRobot v3 dataset read back: per-frame arrays in global index order."""

    fps: int
    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray | None
    dones: np.ndarray | None
    successes: np.ndarray | None
    episode_index: np.ndarray
    frame_index: np.ndarray
    tasks: list[str]
    dex_env: dict[str, Any] | None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def num_episodes(self) -> int:
        return int(len(np.unique(self.episode_index)))


class LeRobotWriter:
    """Collects episodes and writes them as a LeRobot v3 dataset in ``root`` on
    :meth:`finalize`.

    Args:
        root: a new directory.
        fps: frames per second (dex's control rate).
        task: the task string every episode carries.
        robot_type: LeRobot's ``robot_type`` (e.g. ``leap``).
        video: write ``observation.images.camera`` as an mp4 when episodes carry images
            (needs PyAV; see :func:`video_encoder`).
        dex_env: dex's environment (``{"task", "hand", "obs", "config"}``), stored in
            ``meta/dex.json``.
    """

    def __init__(
        self,
        root: str | pathlib.Path,
        fps: int,
        task: str,
        robot_type: str = "dex",
        video: bool = True,
        dex_env: dict[str, Any] | None = None,
    ) -> None:
        self.root = pathlib.Path(root)
        if (self.root / "meta" / "info.json").exists():
            raise FileExistsError(f"{self.root} already holds a LeRobot dataset")
        if int(fps) <= 0:
            raise ValueError(f"fps {fps}: needs a positive integer")
        self.fps, self.task, self.robot_type = int(fps), task, robot_type
        self.codec, self.codec_note = video_encoder() if video else (None, "video off")
        self.dex_env = dex_env
        self.episodes: list[Episode] = []

    def add_episode(self, episode: Episode) -> None:
        n = len(episode.states)
        for name in ("actions", "rewards", "dones", "successes"):
            if len(getattr(episode, name)) != n:
                raise ValueError(f"episode {name} has {len(getattr(episode, name))} frames, states {n}")
        if n == 0:
            raise ValueError("an episode needs at least one frame")
        if episode.images is not None and len(episode.images) != n:
            raise ValueError(f"episode images have {len(episode.images)} frames, states {n}")
        if self.episodes and episode.states.shape[1:] != self.episodes[0].states.shape[1:]:
            raise ValueError("episodes have different state widths")
        self.episodes.append(episode)

    def _features(self, video_shape: tuple[int, int] | None) -> dict[str, Any]:
        e = self.episodes[0]
        f = {
            "observation.state": {"dtype": "float32", "shape": [int(e.states.shape[1])], "names": None},
            "action": {"dtype": "float32", "shape": [int(e.actions.shape[1])], "names": None},
            "next.reward": {"dtype": "float32", "shape": [1], "names": None},
            "next.done": {"dtype": "bool", "shape": [1], "names": None},
            "next.success": {"dtype": "bool", "shape": [1], "names": None},
        }
        if video_shape is not None:
            h, w = video_shape
            f[CAMERA_KEY] = {
                "dtype": "video",
                "shape": [h, w, 3],
                "names": ["height", "width", "channels"],
                "info": {
                    "video.height": h,
                    "video.width": w,
                    "video.codec": {"libsvtav1": "av1", "libx264": "h264"}.get(self.codec, self.codec),
                    "video.pix_fmt": "yuv420p",
                    "video.is_depth_map": False,
                    "video.fps": self.fps,
                    "video.channels": 3,
                    "has_audio": False,
                },
            }
        for name, dtype in (
            ("timestamp", "float32"),
            ("frame_index", "int64"),
            ("episode_index", "int64"),
            ("index", "int64"),
            ("task_index", "int64"),
        ):
            f[name] = {"dtype": dtype, "shape": [1], "names": None}
        return f

    def _write_video(self, path: pathlib.Path, frames: np.ndarray) -> None:
        import av

        path.parent.mkdir(parents=True, exist_ok=True)
        with av.open(str(path), "w") as container:
            stream = container.add_stream(self.codec, rate=self.fps)
            stream.height, stream.width = int(frames.shape[1]), int(frames.shape[2])
            stream.pix_fmt = "yuv420p"
            if self.codec == "libsvtav1":
                stream.options = {"g": "2", "crf": "30"}
            for img in frames:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)

    def finalize(self) -> pathlib.Path:
        """Writes the dataset; returns its root."""
        if not self.episodes:
            raise ValueError("no episodes to write")
        pa, pq = _pa()
        with_images = all(e.images is not None for e in self.episodes)
        video_shape = None
        if with_images and self.codec is not None:
            h, w = self.episodes[0].images.shape[1:3]
            if h % 2 or w % 2:
                raise ValueError(f"video frames need even sizes, got {w}x{h}")
            video_shape = (int(h), int(w))
        features = self._features(video_shape)
        lengths = [len(e.states) for e in self.episodes]
        total = int(sum(lengths))
        ep_idx = np.repeat(np.arange(len(lengths)), lengths).astype(np.int64)
        frame_idx = np.concatenate([np.arange(n) for n in lengths]).astype(np.int64)
        cols = {
            "observation.state": np.concatenate([e.states for e in self.episodes]).astype(np.float32),
            "action": np.concatenate([e.actions for e in self.episodes]).astype(np.float32),
            "next.reward": np.concatenate([e.rewards for e in self.episodes]).astype(np.float32),
            "next.done": np.concatenate([e.dones for e in self.episodes]).astype(bool),
            "next.success": np.concatenate([e.successes for e in self.episodes]).astype(bool),
            "timestamp": (frame_idx / self.fps).astype(np.float32),
            "frame_index": frame_idx,
            "episode_index": ep_idx,
            "index": np.arange(total, dtype=np.int64),
            "task_index": np.zeros(total, np.int64),
        }

        def column(x: np.ndarray):
            if x.ndim == 2:
                return pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1])
            return pa.array(x)

        data_path = self.root / DATA_PATH.format(chunk_index=0, file_index=0)
        data_path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({k: column(v) for k, v in cols.items()}), data_path)

        video_ranges: list[tuple[float, float]] = []
        frames = None
        if video_shape is not None:
            frames = np.concatenate([e.images for e in self.episodes])
            if frames.ndim == 3 or frames.shape[-1] == 1:  # grey -> RGB
                frames = np.repeat(frames.reshape(*frames.shape[:3], 1), 3, axis=-1)
            self._write_video(
                self.root / VIDEO_PATH.format(video_key=CAMERA_KEY, chunk_index=0, file_index=0), frames
            )
            t = 0.0
            for n in lengths:
                video_ranges.append((t, t + n / self.fps))
                t += n / self.fps

        # Episodes: one row each, with its frame range and statistics.
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        rows: dict[str, list] = {
            "episode_index": list(range(len(lengths))),
            "tasks": [[self.task] for _ in lengths],
            "length": lengths,
            "data/chunk_index": [0] * len(lengths),
            "data/file_index": [0] * len(lengths),
            "dataset_from_index": starts.tolist(),
            "dataset_to_index": (starts + np.asarray(lengths)).tolist(),
        }
        if video_shape is not None:
            rows[f"videos/{CAMERA_KEY}/chunk_index"] = [0] * len(lengths)
            rows[f"videos/{CAMERA_KEY}/file_index"] = [0] * len(lengths)
            rows[f"videos/{CAMERA_KEY}/from_timestamp"] = [a for a, _ in video_ranges]
            rows[f"videos/{CAMERA_KEY}/to_timestamp"] = [b for _, b in video_ranges]
        for name, values in cols.items():
            per_ep = [_stats(values[s : s + n]) for s, n in zip(starts, lengths)]
            for stat in per_ep[0]:
                rows[f"stats/{name}/{stat}"] = [p[stat] for p in per_ep]
        rows["meta/episodes/chunk_index"] = [0] * len(lengths)
        rows["meta/episodes/file_index"] = [0] * len(lengths)
        ep_path = self.root / EPISODES_PATH
        ep_path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(rows), ep_path)

        # Tasks: LeRobot reads this file with pandas, the task string as the index.
        tasks = pa.table({"task_index": pa.array([0], pa.int64()), "task": pa.array([self.task])})
        pandas_meta = {
            "index_columns": ["task"],
            "column_indexes": [
                {
                    "name": None,
                    "field_name": None,
                    "pandas_type": "unicode",
                    "numpy_type": "object",
                    "metadata": {"encoding": "UTF-8"},
                }
            ],
            "columns": [
                {"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64", "metadata": None},
                {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object", "metadata": None},
            ],
            "attributes": {},
            "creator": {"library": "pyarrow", "version": pa.__version__},
            "pandas_version": "2.3.3",
        }
        tasks = tasks.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})
        pq.write_table(tasks, self.root / "meta" / "tasks.parquet")

        stats = {name: _stats(values) for name, values in cols.items()}
        if frames is not None:
            stats[CAMERA_KEY] = _stats(frames[:: max(1, len(frames) // 200)])
        (self.root / "meta" / "stats.json").write_text(json.dumps(stats, indent=1))
        info = {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": self.robot_type,
            "total_episodes": len(lengths),
            "total_frames": total,
            "total_tasks": 1,
            "chunks_size": 1000,
            "data_files_size_in_mb": 100,
            "video_files_size_in_mb": 200,
            "fps": self.fps,
            "splits": {"train": f"0:{len(lengths)}"},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if video_shape is not None else None,
            "features": features,
        }
        (self.root / "meta" / "info.json").write_text(json.dumps(info, indent=4))
        if self.dex_env is not None:
            (self.root / "meta" / "dex.json").write_text(json.dumps(self.dex_env, indent=1))
        return self.root


def load(root: str | pathlib.Path) -> LeRobotData:
    """Reads a LeRobot v3 dataset (any, not only dex's) into per-frame numpy arrays,
    in global index order. ``ValueError`` for a dataset of another version or without
    ``observation.state`` and ``action``."""
    pa, pq = _pa()
    root = pathlib.Path(root)
    info_path = root / "meta" / "info.json"
    if not info_path.is_file():
        raise FileNotFoundError(f"{root}: no meta/info.json (not a LeRobot dataset)")
    info = json.loads(info_path.read_text())
    if info.get("codebase_version") != CODEBASE_VERSION:
        raise ValueError(f"{root}: LeRobot {info.get('codebase_version')} dataset; dex reads {CODEBASE_VERSION}")
    for need in ("observation.state", "action"):
        if need not in info.get("features", {}):
            raise ValueError(f"{root}: the dataset has no `{need}` feature")
    files = sorted((root / "data").glob("chunk-*/file-*.parquet"))
    if not files:
        raise ValueError(f"{root}: no data files")
    table = pa.concat_tables([pq.read_table(f) for f in files])
    order = np.argsort(table.column("index").to_numpy(), kind="stable")

    def col(name: str, dtype) -> np.ndarray | None:
        if name not in table.column_names:
            return None
        c = table.column(name).combine_chunks()
        if pa.types.is_fixed_size_list(c.type) or pa.types.is_list(c.type):
            width = int(info["features"][name]["shape"][0])
            x = c.flatten().to_numpy(zero_copy_only=False).reshape(-1, width)
        else:
            x = c.to_numpy(zero_copy_only=False)
        return np.asarray(x, dtype=dtype)[order]

    task_table = pq.read_table(root / "meta" / "tasks.parquet")
    names = dict(zip(task_table.column("task_index").to_pylist(), task_table.column("task").to_pylist()))
    task_idx = col("task_index", np.int64)
    dex_json = root / "meta" / "dex.json"
    return LeRobotData(
        fps=int(info["fps"]),
        states=col("observation.state", np.float32),
        actions=col("action", np.float32),
        rewards=col("next.reward", np.float32),
        dones=col("next.done", bool),
        successes=col("next.success", bool),
        episode_index=col("episode_index", np.int64),
        frame_index=col("frame_index", np.int64),
        tasks=[names.get(int(i), str(i)) for i in task_idx],
        dex_env=json.loads(dex_json.read_text()) if dex_json.is_file() else None,
        info=info,
    )


def to_dex(root: str | pathlib.Path, out: str | pathlib.Path, env: dict[str, Any] | None = None) -> int:
    """Converts a LeRobot v3 dataset into a dex dataset in ``out`` (observation.state →
    observations, action → actions) for ``dex train bc --data OUT``. ``env`` (task,
    hand, and optionally obs and config) names the environment the student is
    evaluated on; by default the dataset's own ``meta/dex.json``. Returns the rows."""
    data = load(root)
    env = env if env is not None else data.dex_env
    meta: dict[str, Any] = {"source": "lerobot", "lerobot_root": str(pathlib.Path(root).resolve())}
    if data.tasks:
        meta["task_string"] = data.tasks[0]
    if env is not None:
        # The task settings default to dex's (an empty table reads as the defaults).
        meta["env"] = {"obs": "state", "config": {}, **env}
    return _core.write_dataset(str(out), data.states, data.actions, json.dumps(meta))
