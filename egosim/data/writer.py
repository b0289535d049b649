"""Writes a dataset one finished episode at a time, so that a kill at any moment leaves a valid one.

Every commit builds the dataset's next version beside it (`.<name>.next`: hard links to the
existing data and video files, the new episode's files, fresh meta files) and swaps it in with one
atomic `renameat2(RENAME_EXCHANGE)`. A reader, or a process killed with SIGKILL, therefore sees
either the old version or the new one, never a mix: no orphan data file, no info.json that
disagrees with the episodes table. An episode being recorded lives in `.<name>.work` and is thrown
away if the process dies; reopening the folder removes these leftovers and reloads the metadata.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from egosim.data.format import (
    ATTEMPTS_PATH,
    CAMERA_KEYS,
    CAMERA_POSE_KEY,
    CONFIDENCE_KEY,
    DATA_PATH,
    EPISODES_PATH,
    HUMAN_CAMERAS,
    HUMAN_ROBOT_TYPE,
    INFO_PATH,
    KEYPOINTS_KEY,
    KINDS,
    MODALITY_PATH,
    STATS_PATH,
    TASKS_PATH,
    VIDEO_PATH,
    WRIST_POSE_KEY,
    DatasetError,
    aggregate_stats,
    episode_location,
    feature_stats,
    image_stats,
    make_features,
    make_human_features,
    make_info,
    make_modality,
    read_json,
    stats_to_json,
    video_key,
)
from egosim.data.video import VideoWriter

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_STAT_STRIDE = 5  # every 5th frame, 4x downsampled, feeds the image stats
META_PER_FILE = 100  # episodes-table rows per meta/episodes file: a commit rewrites only the last file


def _exchange(a: Path, b: Path) -> None:
    """Atomically swaps two paths (Linux renameat2); elsewhere two renames with a recovery point."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        fn = None
    if fn is not None:
        fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
            return
        err = ctypes.get_errno()
        if err not in (22, 38, 95):  # EINVAL / ENOSYS / EOPNOTSUPP: fall back below
            raise OSError(err, f"renameat2({a}, {b}) failed: {os.strerror(err)}")
    old = a.parent / f".{a.name}.old"
    os.rename(a, old)
    os.rename(b, a)
    os.rename(old, b)


def _link_or_copy(src: Path, dst: Path) -> None:
    """A hard link (free), or a copy on file systems without them."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _write_rows(rows: list[dict[str, Any]], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def _tasks_table(tasks: Sequence[str]) -> Any:
    """meta/tasks.parquet as pandas would write LeRobot's DataFrame (index `task`, column `task_index`)."""
    import pyarrow as pa

    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()),
                      "task": pa.array(list(tasks), pa.string())})
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object",
                            "metadata": {"encoding": "UTF-8"}}],
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64",
             "metadata": None},
            {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object", "metadata": None},
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.0",
    }
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})


class FrameRecorder:
    """Buffers one episode's per-frame arrays and streams its camera frames to mp4 files in its own folder.

    The base of `EpisodeRecorder` (robot frames) and `HumanEpisodeRecorder` (human frames): each frame
    adds one value per recorded feature (`columns`, by feature key) and one image per camera. After
    `finish()` it holds only arrays and paths, so a worker process can hand it to the writer's process
    (pickle) for the commit.
    """

    def __init__(self, work: str | os.PathLike[str], fps: int, image_size: tuple[int, int] | None,
                 cameras: Sequence[str] = CAMERA_KEYS) -> None:
        self.work = Path(work)
        if self.work.exists():
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True)
        self.columns: dict[str, list[NDArray[Any]]] = {}
        self.n_frames = 0
        self.videos: dict[str, Path] = {}
        self._writers: dict[str, VideoWriter] = {}
        self._samples: dict[str, list[NDArray[np.uint8]]] = {}
        if image_size is not None:
            for cam in cameras:
                self._writers[cam] = VideoWriter(self.work / f"{cam}.mp4", fps, *image_size)
                self._samples[cam] = []

    def _add(self, values: Mapping[str, NDArray[Any]], images: Mapping[str, NDArray[np.uint8]] | None) -> None:
        k = self.n_frames
        for cam in self._writers:
            if images is None or cam not in images:
                raise DatasetError(f"frame {k} lacks camera {cam!r}; this dataset records {sorted(self._writers)}")
        for key, value in values.items():
            self.columns.setdefault(key, []).append(value)
        for cam, writer in self._writers.items():
            writer.append(images[cam])  # type: ignore[index]
            if k % _STAT_STRIDE == 0:
                self._samples[cam].append(np.asarray(images[cam])[::4, ::4].copy())  # type: ignore[index]
        self.n_frames += 1

    def column(self, key: str) -> NDArray[Any]:
        """The recorded values of one feature, stacked along the first axis."""
        if key not in self.columns:
            raise DatasetError(f"the episode recorded no {key!r} (it has {sorted(self.columns)})")
        return np.stack(self.columns[key])

    def __len__(self) -> int:
        return self.n_frames

    def finish(self) -> dict[str, Path]:
        """Closes the video files (idempotent); returns them by camera."""
        for cam, w in self._writers.items():
            w.close()
            self.videos[cam] = self.work / f"{cam}.mp4"
        self._writers = {}
        return dict(self.videos)

    def discard(self) -> None:
        """Drops the episode's files (an attempt that is not kept)."""
        self.finish()
        shutil.rmtree(self.work, ignore_errors=True)

    def image_stats(self) -> dict[str, dict[str, NDArray[Any]]]:
        return {video_key(cam): image_stats(np.stack(s), len(self)) for cam, s in self._samples.items() if s}


class EpisodeRecorder(FrameRecorder):
    """A robot episode: state, the action the env was stepped with and its reward, per frame."""

    def add(self, state: NDArray[Any], action: NDArray[Any], reward: float,
            images: Mapping[str, NDArray[np.uint8]] | None = None) -> None:
        """Adds frame t: the observation before the action, the action, and the reward it earned."""
        self._add({"observation.state": np.asarray(state, dtype=np.float32).copy(),
                   "action": np.asarray(action, dtype=np.float64).copy(),
                   "next.reward": np.float32(reward)}, images)


class HumanEpisodeRecorder(FrameRecorder):
    """A human episode (simulated demo or import): keypoints, confidences, wrist and camera poses per frame.

    Shapes and frames are those of `egosim.data.format` (left hand then right, world frame, z up).
    Robot actions come from retargeting the whole episode afterwards (`set_actions`, e.g. with
    `egosim.retarget.retarget_recorder`), since the labels are smoothed over time.
    """

    def __init__(self, work: str | os.PathLike[str], fps: int, image_size: tuple[int, int] | None,
                 cameras: Sequence[str] = HUMAN_CAMERAS) -> None:
        super().__init__(work, fps, image_size, cameras)
        self.actions: NDArray[np.float64] | None = None

    def add(self, keypoints: NDArray[Any], keypoint_confidence: NDArray[Any] | None, wrist_pose: NDArray[Any],
            camera_pose: NDArray[Any], images: Mapping[str, NDArray[np.uint8]] | None = None) -> None:
        """Adds one frame. `keypoint_confidence` None means fully confident (1.0)."""
        kp = np.asarray(keypoints, dtype=np.float32)
        conf = (np.ones((2, 21), np.float32) if keypoint_confidence is None
                else np.asarray(keypoint_confidence, dtype=np.float32))
        wrist = np.asarray(wrist_pose, dtype=np.float32)
        cam = np.asarray(camera_pose, dtype=np.float32)
        for name, arr, shape in ((KEYPOINTS_KEY, kp, (2, 21, 3)), (CONFIDENCE_KEY, conf, (2, 21)),
                                 (WRIST_POSE_KEY, wrist, (2, 7)), (CAMERA_POSE_KEY, cam, (7,))):
            if arr.shape != shape:
                raise DatasetError(f"frame {len(self)}: {name} has shape {arr.shape}, expected {shape}")
            if not np.all(np.isfinite(arr)):
                raise DatasetError(f"frame {len(self)}: {name} has non-finite values")
        if conf.min() < 0.0 or conf.max() > 1.0:
            raise DatasetError(f"frame {len(self)}: keypoint confidence outside [0, 1]: "
                               f"[{conf.min():g}, {conf.max():g}]")
        self._add({KEYPOINTS_KEY: kp.copy(), CONFIDENCE_KEY: conf.copy(), WRIST_POSE_KEY: wrist.copy(),
                   CAMERA_POSE_KEY: cam.copy()}, images)

    def set_actions(self, actions: NDArray[Any]) -> None:
        """Sets the retargeted per-step robot actions (T, D), one per frame."""
        a = np.asarray(actions, dtype=np.float64)
        if a.ndim != 2 or a.shape[0] != len(self) or not np.all(np.isfinite(a)):
            raise DatasetError(f"actions of shape {a.shape} (or non-finite) for an episode of {len(self)} frames")
        self.actions = a.copy()

    def column(self, key: str) -> NDArray[Any]:
        if key == "action":
            if self.actions is None:
                raise DatasetError("this dataset stores retargeted actions, but the episode has none: "
                                   "retarget it first (egosim.retarget.retarget_recorder)")
            return self.actions
        return super().column(key)


class DatasetWriter:
    """Creates or reopens one dataset at `root` and commits finished episodes.

    Args:
        root: The dataset folder (created on the first commit).
        robot_type: The embodiment name (info.json `robot_type`); human datasets: "human" (the default).
        joint_names: Hand joint names, one side, in action order (robot datasets).
        fps: Frames per second of data and videos (the control frequency for robot demos).
        image_size: (height, width) of the camera streams, or None for a dataset without video.
        kind: "robot" (state, action, reward; `start_episode` gives an `EpisodeRecorder`) or "human"
            (keypoints, confidences, wrist and camera poses; a `HumanEpisodeRecorder`).
        action_embodiment: Human datasets only: the registered robot hand the episodes are retargeted
            to; adds `action` in that robot's layout (every episode then needs its actions). None: no action.
        cameras: Camera streams to record (default: the rig's three for robots, `ego_view` for humans).

    Reopening a folder whose features differ (another hand, image size, kind or video setting) raises
    `DatasetError`, so a resume never mixes two layouts.
    """

    def __init__(self, root: str | os.PathLike[str], *, robot_type: str | None = None,
                 joint_names: Sequence[str] | None = None, fps: int, image_size: tuple[int, int] | None,
                 kind: str = "robot", action_embodiment: str | None = None,
                 cameras: Sequence[str] | None = None) -> None:
        if kind not in KINDS:
            raise DatasetError(f"unknown dataset kind {kind!r}; valid choices: {', '.join(KINDS)}")
        self.root = Path(root)
        self.kind = kind
        self.fps = int(fps)
        self.image_size = tuple(image_size) if image_size is not None else None
        default_cams = CAMERA_KEYS if kind == "robot" else HUMAN_CAMERAS
        self.cameras = list(cameras if cameras is not None else default_cams) if image_size is not None else []
        if kind == "robot":
            if robot_type is None or joint_names is None or action_embodiment is not None:
                raise DatasetError("a robot dataset needs robot_type and joint_names (and no action_embodiment)")
            self.robot_type = robot_type
            self.action_embodiment: str | None = robot_type
            self.hand_dof: int | None = len(joint_names)
            self.features = make_features(joint_names, self.image_size, self.fps, self.cameras)  # type: ignore[arg-type]
        else:
            self.robot_type = robot_type or HUMAN_ROBOT_TYPE
            self.action_embodiment = action_embodiment
            action_joints = None
            if action_embodiment is not None:
                from egosim.embodiment import get_embodiment

                action_joints = get_embodiment(action_embodiment).joint_names
            self.hand_dof = len(action_joints) if action_joints is not None else None
            self.features = make_human_features(self.image_size, self.fps, self.cameras,  # type: ignore[arg-type]
                                                action_joint_names=action_joints)
        self._work = self.root.parent / f".{self.root.name}.work"
        self._next = self.root.parent / f".{self.root.name}.next"
        self.episodes: list[dict[str, Any]] = []
        self.tasks: list[str] = []
        self.attempts: list[dict[str, Any]] = []
        self._stats: dict[str, dict[str, Any]] = {}
        self._stats_upto = 0  # episodes folded into _stats
        self._recover()
        self._load()

    # ------------------------------------------------------------------ open / resume
    def _recover(self) -> None:
        """Removes an unfinished episode and an unfinished commit left by a killed process."""
        old = self.root.parent / f".{self.root.name}.old"
        if not self.root.exists() and old.exists():  # killed inside the fallback exchange
            os.rename(old, self.root)
        for p in (self._work, self._next, old):
            if p.exists():
                shutil.rmtree(p)

    def _load(self) -> None:
        if not self.root.exists():
            return
        import pyarrow.parquet as pq

        info = read_json(self.root / INFO_PATH)
        if info.get("features") != json.loads(json.dumps(self.features)) or info.get("robot_type") != self.robot_type:
            raise DatasetError(
                f"{self.root} holds a dataset with other features (robot_type {info.get('robot_type')!r}, "
                f"features {sorted(info.get('features', {}))}); collect into another output_dir, or delete it")
        if (self.root / TASKS_PATH).exists():
            self.tasks = [str(t) for t in pq.read_table(self.root / TASKS_PATH).column("task").to_pylist()]
        ep_files = sorted((self.root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
        for f in ep_files:
            self.episodes += pq.read_table(f).to_pylist()
        self.episodes.sort(key=lambda r: r["episode_index"])
        if (self.root / ATTEMPTS_PATH).exists():
            for line in (self.root / ATTEMPTS_PATH).read_text().splitlines():
                if line.strip():
                    self.attempts.append(json.loads(line))

    # ------------------------------------------------------------------ recording
    def work_dir(self, name: str) -> Path:
        """A folder for an episode being recorded (removed when it is committed or discarded, and on reopen)."""
        return self._work / name

    def close(self) -> None:
        """Removes the work folder (call when no episode of this dataset is being recorded)."""
        shutil.rmtree(self._work, ignore_errors=True)

    def start_episode(self, name: str = "episode") -> Any:
        """A fresh recorder in `work_dir(name)` (an earlier unfinished one of that name is discarded):
        an `EpisodeRecorder` for a robot dataset, a `HumanEpisodeRecorder` for a human one."""
        cls = EpisodeRecorder if self.kind == "robot" else HumanEpisodeRecorder
        return cls(self.work_dir(name), self.fps, self.image_size, self.cameras)  # type: ignore[arg-type]

    @property
    def total_frames(self) -> int:
        return int(self.episodes[-1]["dataset_to_index"]) if self.episodes else 0

    def commit(self, attempt: Mapping[str, Any], recorder: FrameRecorder | None, task: str) -> int | None:
        """Adds a finished attempt: its episode when `recorder` is given (kept), else only its record.

        `attempt` is a flat record (JSON values) kept in `meta/egosim_attempts.jsonl`; for a kept
        episode its entries also become `egosim/<key>` columns of the episodes table (dicts and lists as
        JSON text), so every episode of a dataset must carry the same keys with the same types.

        Returns the new episode's index, or None when nothing but the attempt record was added.
        """
        t0 = time.perf_counter()
        files: dict[str, Path] = {}
        ep_index: int | None = None
        new_episode: dict[str, Any] | None = None
        tasks = list(self.tasks)
        if recorder is not None:
            if len(recorder) == 0:
                raise DatasetError("an episode needs at least one frame")
            if task not in tasks:
                tasks.append(task)
            ep_index = len(self.episodes)
            videos = recorder.finish()
            new_episode, data_rel, table = self._episode_row(ep_index, recorder, tasks.index(task), task, attempt)
            data_tmp = recorder.work / "data.parquet"
            import pyarrow.parquet as pq

            pq.write_table(table, data_tmp)
            files[data_rel] = data_tmp
            chunk, fidx = episode_location(ep_index)
            for cam, path in videos.items():
                files[VIDEO_PATH.format(video_key=video_key(cam), chunk_index=chunk, file_index=fidx)] = path
        record = {**attempt, "kept": recorder is not None, "episode_index": -1 if ep_index is None else ep_index,
                  "commit_s": 0.0}
        episodes = self.episodes + ([new_episode] if new_episode is not None else [])
        self._publish(files, episodes, tasks, [*self.attempts, record])
        self.episodes, self.tasks = episodes, tasks
        record["commit_s"] = round(time.perf_counter() - t0, 4)
        self.attempts.append(record)
        if recorder is not None:
            shutil.rmtree(recorder.work, ignore_errors=True)
        return ep_index

    def _episode_row(self, ep_index: int, rec: FrameRecorder, task_index: int, task: str,
                     attempt: Mapping[str, Any]) -> tuple[dict[str, Any], str, Any]:
        import pyarrow as pa

        n = len(rec)
        start = self.total_frames
        frame_index = np.arange(n, dtype=np.int64)
        done = np.zeros(n, dtype=bool)
        done[-1] = True
        computed: dict[str, NDArray[Any]] = {
            "next.done": done, "timestamp": (frame_index / self.fps).astype(np.float32), "frame_index": frame_index,
            "episode_index": np.full(n, ep_index, dtype=np.int64), "index": np.arange(start, start + n, dtype=np.int64),
            "task_index": np.full(n, task_index, dtype=np.int64),
        }
        columns: dict[str, Any] = {}
        stats: dict[str, dict[str, NDArray[Any]]] = {}
        for key, feat in self.features.items():
            if feat["dtype"] == "video":
                continue
            values = computed[key] if key in computed else rec.column(key)
            if values.shape != (n, *([] if feat["shape"] == [1] else feat["shape"])):
                raise DatasetError(f"{key}: recorded shape {values.shape}, the dataset stores (frames={n}, "
                                   f"{', '.join(map(str, feat['shape']))})")
            columns[key] = _arrow_column(values, feat)
            stats[key] = feature_stats(values.astype(np.float64) if values.dtype == bool else values)
        table = pa.table(columns)
        stats.update(rec.image_stats())
        chunk, fidx = episode_location(ep_index)
        row: dict[str, Any] = {
            "episode_index": ep_index, "tasks": [task], "length": n,
            "data/chunk_index": chunk, "data/file_index": fidx,
            "dataset_from_index": start, "dataset_to_index": start + n,
        }
        for cam in self.cameras:
            key = video_key(cam)
            row.update({f"videos/{key}/chunk_index": chunk, f"videos/{key}/file_index": fidx,
                        f"videos/{key}/from_timestamp": 0.0, f"videos/{key}/to_timestamp": n / self.fps})
        row.update({"meta/episodes/chunk_index": 0, "meta/episodes/file_index": ep_index // META_PER_FILE})
        for feat, st in stats_to_json(stats).items():
            for name, value in st.items():
                row[f"stats/{feat}/{name}"] = value
        row.update(self._meta_columns(attempt))
        return row, DATA_PATH.format(chunk_index=chunk, file_index=fidx), table

    def _meta_columns(self, attempt: Mapping[str, Any]) -> dict[str, Any]:
        """`egosim/<key>` columns of an episode from its attempt record (robot demos: the fixed set
        the replay needs), with the same keys and types as the episodes before it."""
        if self.kind == "robot":
            cols: dict[str, Any] = {
                "egosim/task": str(attempt["task"]), "egosim/attempt": int(attempt["attempt"]),
                "egosim/seed": int(attempt["seed"]), "egosim/initial_state_id": int(attempt["initial_state_id"]),
                "egosim/initial_state": json.dumps(attempt["initial_state"], sort_keys=True),
                "egosim/policy": str(attempt["policy"]), "egosim/score": float(attempt["score"]),
                "egosim/success": bool(attempt["success"]), "egosim/end": str(attempt["end"]),
                "egosim/milestones": json.dumps(attempt["milestones"], sort_keys=True),
            }
        else:
            cols = {f"egosim/{k}": (json.dumps(v, sort_keys=True) if isinstance(v, (dict, list, tuple)) or v is None
                                    else v.item() if isinstance(v, np.generic) else v) for k, v in attempt.items()}
        if self.episodes:
            prev = {k: type(v) for k, v in self.episodes[-1].items() if k.startswith("egosim/")}
            now = {k: type(v) for k, v in cols.items()}
            if prev != now:
                diff = sorted(set(prev.items()) ^ set(now.items()), key=str)
                raise DatasetError(f"episode metadata differs from the previous episode's in {diff}; every "
                                   "episode of a dataset needs the same attempt keys with the same types")
        return cols

    # ------------------------------------------------------------------ the atomic swap
    def _publish(self, files: Mapping[str, Path], episodes: list[dict[str, Any]], tasks: list[str],
                 attempts: list[dict[str, Any]]) -> None:
        nxt = self._next
        if nxt.exists():
            shutil.rmtree(nxt)
        nxt.mkdir(parents=True)
        if self.root.exists():
            for dirpath, _dirs, names in os.walk(self.root):
                rel = Path(dirpath).relative_to(self.root)
                if rel.parts[:1] == ("meta",) and rel.parts[1:2] != ("episodes",):
                    continue  # rewritten below
                (nxt / rel).mkdir(parents=True, exist_ok=True)
                for name in names:
                    _link_or_copy(Path(dirpath) / name, nxt / rel / name)
        for rel, src in files.items():
            (nxt / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, nxt / rel)
        self._write_meta(nxt, episodes, tasks, attempts)
        if self.root.exists():
            _exchange(self.root, nxt)
            shutil.rmtree(nxt)
        else:
            self.root.parent.mkdir(parents=True, exist_ok=True)
            os.rename(nxt, self.root)

    def _write_meta(self, root: Path, episodes: list[dict[str, Any]], tasks: list[str],
                    attempts: list[dict[str, Any]]) -> None:
        import pyarrow.parquet as pq

        meta = root / "meta"
        meta.mkdir(parents=True, exist_ok=True)
        total_frames = int(episodes[-1]["dataset_to_index"]) if episodes else 0
        info = make_info(self.robot_type, self.fps, self.features, len(episodes), total_frames, len(tasks))
        (root / INFO_PATH).write_text(json.dumps(info, indent=4) + "\n")
        modality = make_modality(self.hand_dof, self.cameras, kind=self.kind, action_embodiment=self.action_embodiment)
        (root / MODALITY_PATH).write_text(json.dumps(modality, indent=4) + "\n")
        pq.write_table(_tasks_table(tasks), root / TASKS_PATH)
        if episodes:
            last = (len(episodes) - 1) // META_PER_FILE
            path = root / EPISODES_PATH.format(chunk_index=0, file_index=last)
            path.unlink(missing_ok=True)  # a hard link to the previous version: never write through it
            _write_rows(episodes[last * META_PER_FILE:], path)
        self._stats = self._fold_stats(episodes)
        (root / STATS_PATH).write_text(json.dumps(stats_to_json(self._stats) if episodes else {}, indent=4) + "\n")
        (root / ATTEMPTS_PATH).write_text("".join(json.dumps(a, sort_keys=True) + "\n" for a in attempts))


    def _fold_stats(self, episodes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Dataset stats folded episode by episode (as LeRobot's save_episode does), cached, so a commit
        costs one aggregation and a resumed dataset gets the same figures as an uninterrupted one."""
        cached, stats = self._stats_upto, self._stats
        if cached > len(episodes):
            cached, stats = 0, {}
        for r in episodes[cached:]:
            st = episode_stats(r)
            stats = aggregate_stats([stats, st]) if stats else st
        self._stats_upto = len(episodes)
        return stats


def _arrow_column(values: NDArray[Any], feat: Mapping[str, Any]) -> Any:
    """A parquet column of a feature: scalars for shape [1], nested fixed-size lists otherwise."""
    import pyarrow as pa

    types = {"float32": pa.float32(), "float64": pa.float64(), "int64": pa.int64(), "bool": pa.bool_()}
    arr: Any = pa.array(np.ascontiguousarray(values).ravel(), types[feat["dtype"]])
    if feat["shape"] != [1]:
        for size in reversed(feat["shape"]):
            arr = pa.FixedSizeListArray.from_arrays(arr, int(size))
    return arr


def episode_stats(row: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The `stats/<feature>/<stat>` columns of an episodes-table row, as {feature: {stat: array}}."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in row.items():
        if key.startswith("stats/"):
            feat, stat = key[len("stats/"):].rsplit("/", 1)
            out.setdefault(feat, {})[stat] = np.asarray(value)
    return out
