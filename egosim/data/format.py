"""The on-disk dataset format: LeRobot v3.0 plus GR00T's `meta/modality.json` (DESIGN.md "Data").

The layout, info.json keys, feature records, episodes-metadata columns and statistics follow
LeRobot's own source (`lerobot/datasets/utils.py`: INFO_PATH, DEFAULT_FEATURES, the chunk/file path
patterns, `create_empty_dataset_info`; `dataset_metadata.py`: CODEBASE_VERSION = "v3.0",
`save_episode` / `_save_episode_metadata`; `compute_stats.py`: min/max/mean/std/count and the
quantiles q01..q99, image stats per channel in [0, 1] with shape (3, 1, 1), and `aggregate_stats`),
and `meta/modality.json` follows GR00T's `getting_started/LeRobot_compatible_data_schema.md`.

    meta/info.json                                  codebase_version "v3.0", totals, paths, features
    meta/stats.json                                 per feature: min max mean std count q01 q10 q50 q90 q99
    meta/tasks.parquet                              task (pandas index) -> task_index
    meta/episodes/chunk-000/file-000.parquet        one row per episode (indices, files, stats/...)
    meta/modality.json                              GR00T: slices of observation.state and action;
                                                    egosim: data kind, the robot the action is for
    meta/egosim_attempts.jsonl                      egosim: every collection attempt (kept or not)
    data/chunk-XXX/file-YYY.parquet                 one file per episode
    videos/<video_key>/chunk-XXX/file-YYY.mp4       one H.264 file per episode and camera

egosim writes one file per episode (file index = episode index mod chunks_size), which v3.0 allows
(its episodes metadata names each episode's file), so a finished episode never rewrites another's.

Two kinds of dataset share the layout (DESIGN.md "Data"):
- robot (`robot_type` = the embodiment): `observation.state`, `action`, `next.reward`, `next.done`, the three
  cameras.
- human (`robot_type` "human"; simulated demos and imports such as EgoDex): no proprioception; per frame
  `observation.human.keypoints` (2, 21, 3), `observation.human.keypoint_confidence` (2, 21),
  `observation.human.wrist_pose` (2, 7), `observation.human.camera_pose` (7), `next.done`, and the
  cameras (by default `ego_view` only). `action` (the robot's action layout, from retargeting) only
  when the episode was retargeted; `modality.json`'s `egosim.action_embodiment` names that robot.

Human arrays: left hand then right, metres, world frame with z up, keypoints in the order of
`egosim.embodiment.HUMAN_KEYPOINTS`; poses are xyz + quaternion (w, x, y, z). `wrist_pose` is the
canonical wrist frame of `egosim.keypoints.wrist_frame` (origin at the wrist keypoint, x toward the
middle finger's knuckle, z out of the palm), so retargeting can map it to a robot wrist with one fixed
offset per hand. `camera_pose` is the pose of the camera frame as MuJoCo and ARKit define it (looking
along its -z, image up along +y). Multi-dimensional features are nested fixed-size lists in parquet.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from egosim.actions import WRIST_DIM, side_slices
from egosim.embodiment import HUMAN_KEYPOINTS, SIDES
from egosim.errors import EgosimError

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000  # files per chunk folder (LeRobot's DEFAULT_CHUNK_SIZE)
DATA_FILES_SIZE_IN_MB = 100
VIDEO_FILES_SIZE_IN_MB = 500
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
MODALITY_PATH = "meta/modality.json"
ATTEMPTS_PATH = "meta/egosim_attempts.jsonl"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
QUANTILE_KEYS = tuple(f"q{int(round(q * 100)):02d}" for q in QUANTILES)
STAT_KEYS = ("min", "max", "mean", "std", "count", *QUANTILE_KEYS)
CAMERA_KEYS = ("ego_view", "left_wrist_view", "right_wrist_view")
KINDS = ("robot", "human")
HUMAN_ROBOT_TYPE = "human"  # info.json robot_type of human datasets
HUMAN_CAMERAS = ("ego_view",)
POSE_NAMES = ["x", "y", "z", "qw", "qx", "qy", "qz"]
KEYPOINTS_KEY = "observation.human.keypoints"
CONFIDENCE_KEY = "observation.human.keypoint_confidence"
WRIST_POSE_KEY = "observation.human.wrist_pose"
CAMERA_POSE_KEY = "observation.human.camera_pose"
HUMAN_KEYS = (KEYPOINTS_KEY, CONFIDENCE_KEY, WRIST_POSE_KEY, CAMERA_POSE_KEY)
# LeRobot's DEFAULT_FEATURES, present in every dataset.
DEFAULT_FEATURES: dict[str, dict[str, Any]] = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}


class DatasetError(EgosimError, ValueError):
    """A dataset folder that breaks the format, or a collection setting it cannot honour."""


def video_key(camera: str) -> str:
    """Feature key of a camera stream (`observation.images.<camera>`, GR00T's naming)."""
    return f"observation.images.{camera}"


def episode_location(episode_index: int) -> tuple[int, int]:
    """(chunk_index, file_index) of an episode's data and video files (one file per episode)."""
    return episode_index // CHUNKS_SIZE, episode_index % CHUNKS_SIZE


def vector_names(joint_names: Sequence[str]) -> list[str]:
    """Per-dimension names of a bimanual state/action vector (left wrist, left hand, right ...)."""
    wrist = ["x", "y", "z", "rot6d_0", "rot6d_1", "rot6d_2", "rot6d_3", "rot6d_4", "rot6d_5"]
    out: list[str] = []
    for side in ("left", "right"):
        out += [f"{side}_wrist_eef.{w}" for w in wrist]
        out += [f"{side}_hand_joints.{j}" for j in joint_names]
    return out


def _video_feature(image_size: tuple[int, int], fps: int) -> dict[str, Any]:
    h, w = image_size
    return {
        "dtype": "video",
        "shape": [h, w, 3],
        "names": ["height", "width", "channels"],
        "info": {
            "video.height": h, "video.width": w, "video.codec": "h264", "video.pix_fmt": "yuv420p",
            "video.is_depth_map": False, "video.fps": fps, "video.channels": 3, "has_audio": False,
        },
    }


def make_features(
    joint_names: Sequence[str], image_size: tuple[int, int] | None, fps: int,
    cameras: Sequence[str] = CAMERA_KEYS,
) -> dict[str, dict[str, Any]]:
    """The info.json feature records of an egosim robot dataset.

    `observation.state` is float32 (the env's dtype). `action` is float64, the exact per-step action
    the env was stepped with, so replaying it reproduces the episode bit for bit (float32 rounding
    would not). `image_size` None means no camera streams (video=false).
    """
    names = vector_names(joint_names)
    dim = len(names)
    feats: dict[str, dict[str, Any]] = {
        "observation.state": {"dtype": "float32", "shape": [dim], "names": names},
        "action": {"dtype": "float64", "shape": [dim], "names": names},
    }
    if image_size is not None:
        for cam in cameras:
            feats[video_key(cam)] = _video_feature(image_size, fps)
    feats["next.reward"] = {"dtype": "float32", "shape": [1], "names": None}
    feats["next.done"] = {"dtype": "bool", "shape": [1], "names": None}
    feats.update({k: dict(v) for k, v in DEFAULT_FEATURES.items()})
    return feats


def make_human_features(
    image_size: tuple[int, int] | None, fps: int, cameras: Sequence[str] = HUMAN_CAMERAS,
    action_joint_names: Sequence[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """The info.json feature records of a human dataset (module docstring).

    `action_joint_names` (the hand joints of the robot the episodes are retargeted to) adds the
    `action` feature in that robot's layout; None (not retargeted) leaves it out.
    """
    sides, kps = list(SIDES), list(HUMAN_KEYPOINTS)
    feats: dict[str, dict[str, Any]] = {
        KEYPOINTS_KEY: {"dtype": "float32", "shape": [2, len(kps), 3],
                        "names": {"side": sides, "keypoint": kps, "axis": ["x", "y", "z"]}},
        CONFIDENCE_KEY: {"dtype": "float32", "shape": [2, len(kps)], "names": {"side": sides, "keypoint": kps}},
        WRIST_POSE_KEY: {"dtype": "float32", "shape": [2, 7], "names": {"side": sides, "pose": POSE_NAMES}},
        CAMERA_POSE_KEY: {"dtype": "float32", "shape": [7], "names": list(POSE_NAMES)},
    }
    if action_joint_names is not None:
        names = vector_names(action_joint_names)
        feats["action"] = {"dtype": "float64", "shape": [len(names)], "names": names}
    if image_size is not None:
        for cam in cameras:
            feats[video_key(cam)] = _video_feature(image_size, fps)
    feats["next.done"] = {"dtype": "bool", "shape": [1], "names": None}
    feats.update({k: dict(v) for k, v in DEFAULT_FEATURES.items()})
    return feats


def make_info(robot_type: str, fps: int, features: Mapping[str, Any], total_episodes: int, total_frames: int,
              total_tasks: int) -> dict[str, Any]:
    """meta/info.json (the keys of LeRobot's `create_empty_dataset_info`, totals filled in)."""
    has_video = any(f["dtype"] == "video" for f in features.values())
    return {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": robot_type,
        "total_episodes": total_episodes,
        "total_frames": total_frames,
        "total_tasks": total_tasks,
        "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": DATA_FILES_SIZE_IN_MB,
        "video_files_size_in_mb": VIDEO_FILES_SIZE_IN_MB,
        "fps": fps,
        "splits": {"train": f"0:{total_episodes}"} if total_episodes else {},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if has_video else None,
        "features": dict(features),
    }


def make_modality(hand_dof: int | None, cameras: Sequence[str], *, kind: str = "robot",
                  action_embodiment: str | None = None) -> dict[str, Any]:
    """GR00T's meta/modality.json: the slices of state and action, the cameras and the task text.

    Slice names are those of DESIGN.md "Spaces" (`egosim.actions.side_slices`). Wrist actions are
    relative (a delta of the commanded pose), hand joint targets absolute. Human datasets have no
    state slices, and action slices only when retargeted (`hand_dof` of that robot; None: no action).
    The extra `egosim` entry (GR00T's schema ignores unknown keys) records the data kind and the
    embodiment whose action layout `action` follows.
    """
    slices = side_slices(hand_dof) if hand_dof is not None else {}
    state = {k: {"start": s.start, "end": s.stop} for k, s in slices.items()} if kind == "robot" else {}
    action = {k: {"start": s.start, "end": s.stop, "absolute": not k.endswith("wrist_eef")}
              for k, s in slices.items()}
    return {
        "state": state,
        "action": action,
        "video": {cam: {"original_key": video_key(cam)} for cam in cameras},
        "annotation": {"human.task_description": {"original_key": "task_index"}},
        "egosim": {"kind": kind, "action_embodiment": action_embodiment if hand_dof is not None else None},
    }


def dataset_kind(modality: Mapping[str, Any], info: Mapping[str, Any]) -> str:
    """"robot" or "human": from modality.json's `egosim.kind`, else (folders from before it was written,
    or from other tools) "human" when info.json's robot_type says so."""
    kind = (modality.get("egosim") or {}).get("kind")
    if kind is None:
        kind = "human" if info.get("robot_type") == HUMAN_ROBOT_TYPE else "robot"
    if kind not in KINDS:
        raise DatasetError(f"modality.json egosim.kind is {kind!r}; valid choices: {', '.join(KINDS)}")
    return str(kind)


# ---------------------------------------------------------------------- statistics
def feature_stats(values: NDArray[Any]) -> dict[str, NDArray[Any]]:
    """LeRobot's per-episode stats of a numeric feature (frames along axis 0).

    Quantiles are exact here (np.quantile); LeRobot estimates them from histograms.
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    out: dict[str, NDArray[Any]] = {
        "min": arr.min(axis=0), "max": arr.max(axis=0), "mean": arr.mean(axis=0), "std": arr.std(axis=0),
        "count": np.array([arr.shape[0]], dtype=np.int64),
    }
    qs = np.quantile(arr, QUANTILES, axis=0)
    for key, q in zip(QUANTILE_KEYS, qs):
        out[key] = q
    return out


def image_stats(frames: NDArray[np.uint8], count: int) -> dict[str, NDArray[Any]]:
    """Per-channel stats of sampled frames (N, H, W, 3) in [0, 1], shaped (3, 1, 1) as LeRobot's."""
    px = np.asarray(frames, dtype=np.float64).reshape(-1, 3) / 255.0
    st = feature_stats(px)
    return {k: (v if k == "count" else v.reshape(3, 1, 1)) for k, v in st.items()} | {
        "count": np.array([count], dtype=np.int64)}


def aggregate_stats(per_episode: Sequence[Mapping[str, Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Dataset stats from episode stats, as LeRobot's `aggregate_stats`: min of mins, max of maxes,
    count-weighted mean, pooled variance, count-weighted quantiles."""
    out: dict[str, dict[str, Any]] = {}
    keys = sorted({k for s in per_episode for k in s})
    for key in keys:
        group = [s[key] for s in per_episode if key in s]
        means = np.stack([np.asarray(g["mean"], dtype=np.float64) for g in group])
        var = np.stack([np.asarray(g["std"], dtype=np.float64) ** 2 for g in group])
        counts = np.stack([np.asarray(g["count"], dtype=np.float64) for g in group])
        total = counts.sum(axis=0)
        w = counts.reshape(counts.shape[:1] + (1,) * (means.ndim - 1))
        mean = (means * w).sum(axis=0) / total
        variance = ((var + (means - mean) ** 2) * w).sum(axis=0) / total
        agg: dict[str, Any] = {
            "min": np.min(np.stack([np.asarray(g["min"]) for g in group]), axis=0),
            "max": np.max(np.stack([np.asarray(g["max"]) for g in group]), axis=0),
            "mean": mean, "std": np.sqrt(variance), "count": total.astype(np.int64),
        }
        for q in QUANTILE_KEYS:
            agg[q] = (np.stack([np.asarray(g[q], dtype=np.float64) for g in group]) * w).sum(axis=0) / total
        out[key] = agg
    return out


def stats_to_json(stats: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Stats with arrays as (nested) lists, for stats.json and the episodes table."""
    return {k: {s: np.asarray(v).tolist() for s, v in st.items()} for k, st in stats.items()}


def column_to_numpy(column: Any) -> NDArray[Any]:
    """A parquet column as a numpy array (frames, *shape): nested fixed-size lists unfold one level per dimension."""
    col = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    n = len(col)
    shape: list[int] = []
    while hasattr(col.type, "list_size"):
        shape.append(col.type.list_size)
        col = col.flatten()
    return col.to_numpy(zero_copy_only=False).reshape(n, *shape)


def read_json(path: Path) -> Any:
    """Parses a JSON file, naming the file when it is not valid JSON."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None


__all__ = [
    "ATTEMPTS_PATH", "CAMERA_KEYS", "CAMERA_POSE_KEY", "CHUNKS_SIZE", "CODEBASE_VERSION", "CONFIDENCE_KEY",
    "DATA_PATH", "DEFAULT_FEATURES", "DatasetError", "EPISODES_PATH", "HUMAN_CAMERAS", "HUMAN_KEYS",
    "HUMAN_ROBOT_TYPE", "INFO_PATH", "KEYPOINTS_KEY", "KINDS", "MODALITY_PATH", "POSE_NAMES", "QUANTILE_KEYS",
    "STATS_PATH", "STAT_KEYS", "TASKS_PATH", "VIDEO_PATH", "WRIST_DIM", "WRIST_POSE_KEY", "aggregate_stats",
    "column_to_numpy", "dataset_kind", "episode_location", "feature_stats", "image_stats", "make_features",
    "make_human_features", "make_info", "make_modality", "read_json", "stats_to_json", "vector_names",
    "video_key",
]
