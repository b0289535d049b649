"""The schema check every egosim dataset must pass (and any LeRobot v3.0 folder can be put through).

`validate_dataset(root)` checks the file layout, info.json against the parquet columns, dtypes and
shapes, the episode index ranges, video frame counts against episode lengths, the stats keys, and
`meta/modality.json` against the embodiment's action/state slices (DESIGN.md "Spaces"). Human datasets
(`egosim.data.format`) are also checked for their four human features (shapes, dtypes; finite
keypoints, confidences in [0, 1], unit quaternions), for carrying no `observation.state`, and for
action slices that match the robot their modality file names. It returns a summary, or raises
`DatasetError` listing every problem found.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from egosim.data.format import (
    CAMERA_POSE_KEY,
    CODEBASE_VERSION,
    CONFIDENCE_KEY,
    DEFAULT_FEATURES,
    EPISODES_PATH,
    HUMAN_KEYS,
    INFO_PATH,
    KEYPOINTS_KEY,
    MODALITY_PATH,
    STATS_PATH,
    TASKS_PATH,
    WRIST_POSE_KEY,
    DatasetError,
    column_to_numpy,
    dataset_kind,
    make_human_features,
    read_json,
)

INFO_KEYS = ("codebase_version", "robot_type", "total_episodes", "total_frames", "total_tasks", "chunks_size",
             "data_files_size_in_mb", "video_files_size_in_mb", "fps", "splits", "data_path", "video_path",
             "features")
EPISODE_COLUMNS = ("episode_index", "tasks", "length", "data/chunk_index", "data/file_index", "dataset_from_index",
                   "dataset_to_index", "meta/episodes/chunk_index", "meta/episodes/file_index")
# Required of any v3.0 folder; egosim also writes LeRobot's quantiles q01 q10 q50 q90 q99, which older v3.0
# datasets lack.
REQUIRED_STATS = ("min", "max", "mean", "std", "count")
_ARROW_DTYPES = {"float32": "float", "float64": "double", "int64": "int64", "bool": "bool", "string": "string"}


@dataclass
class DatasetSummary:
    """What a valid dataset holds."""

    root: str
    robot_type: str
    kind: str
    action_embodiment: str | None
    episodes: int
    frames: int
    tasks: list[str]
    video_keys: list[str]
    lengths: list[int] = field(default_factory=list)


def validate_dataset(root: str | os.PathLike[str], *, decode_videos: bool = True,
                     state_dim: int | None = None, action_dim: int | None = None,
                     slices: Mapping[str, slice] | None = None) -> DatasetSummary:
    """Checks a dataset folder against LeRobot v3.0 and egosim's modality file.

    Args:
        root: The dataset folder.
        decode_videos: Count frames by decoding every video (exact; slower) rather than not at all.
        state_dim, action_dim: Expected widths (e.g. from an env's spaces); default: from the embodiment
            named by info.json's robot_type when it is registered.
        slices: Expected modality slices; default: `side_slices(dof)` of that embodiment.

    Raises:
        DatasetError: listing every problem found.
    """
    import pyarrow.parquet as pq

    root = Path(root)
    problems: list[str] = []
    if not (root / INFO_PATH).is_file():
        raise DatasetError(f"{root} is not a dataset: {INFO_PATH} is missing")
    info = read_json(root / INFO_PATH)
    missing = [k for k in INFO_KEYS if k not in info]
    if missing:
        raise DatasetError(f"{root / INFO_PATH} lacks keys {missing}")
    if info["codebase_version"] != CODEBASE_VERSION:
        problems.append(f"codebase_version is {info['codebase_version']!r}, expected {CODEBASE_VERSION!r}")
    feats: dict[str, Any] = info["features"]
    for k, v in DEFAULT_FEATURES.items():
        if k not in feats or feats[k]["dtype"] != v["dtype"]:
            problems.append(f"feature {k!r} missing or not {v['dtype']}")
    video_keys = [k for k, f in feats.items() if f.get("dtype") == "video"]
    if video_keys and not info["video_path"]:
        problems.append("video features but video_path is null")
    modality = read_json(root / MODALITY_PATH) if (root / MODALITY_PATH).is_file() else {}
    try:
        kind = dataset_kind(modality, info)
    except DatasetError as exc:
        problems.append(str(exc))
        kind = "robot"
    action_embodiment = (modality.get("egosim") or {}).get("action_embodiment")
    if kind == "human":
        problems += _check_human_features(feats, action_embodiment)

    # tasks
    tasks: list[str] = []
    if not (root / TASKS_PATH).is_file():
        problems.append(f"{TASKS_PATH} is missing")
    else:
        t = pq.read_table(root / TASKS_PATH)
        if set(t.column_names) != {"task_index", "task"}:
            problems.append(f"{TASKS_PATH} has columns {t.column_names}, expected task_index and task")
        else:
            tasks = [str(x) for x in t.column("task").to_pylist()]
            if t.column("task_index").to_pylist() != list(range(len(tasks))):
                problems.append(f"{TASKS_PATH} task_index is not 0..{len(tasks) - 1}")
    if info["total_tasks"] != len(tasks):
        problems.append(f"info total_tasks={info['total_tasks']} but {TASKS_PATH} has {len(tasks)}")

    # episodes metadata
    rows: list[dict[str, Any]] = []
    for f in sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet")):
        rows += pq.read_table(f).to_pylist()
    rows.sort(key=lambda r: r.get("episode_index", -1))
    if info["total_episodes"] != len(rows):
        problems.append(f"info total_episodes={info['total_episodes']} but the episodes table has {len(rows)} rows")
    expected_cols = list(EPISODE_COLUMNS)
    for key in video_keys:
        expected_cols += [f"videos/{key}/{p}" for p in ("chunk_index", "file_index", "from_timestamp", "to_timestamp")]
    numeric = [k for k, f in feats.items() if f["dtype"] not in ("string",)]
    expected_cols += [f"stats/{k}/{s}" for k in numeric for s in REQUIRED_STATS]
    if rows:
        lacking = [c for c in expected_cols if c not in rows[0]]
        if lacking:
            problems.append(f"episodes table lacks columns {lacking[:8]}{' ...' if len(lacking) > 8 else ''}")
    if info["total_episodes"] and info["splits"].get("train") != f"0:{info['total_episodes']}":
        problems.append(f"splits {info['splits']} do not cover 0:{info['total_episodes']}")

    fps = float(info["fps"])
    nxt = 0
    lengths: list[int] = []
    data_files: set[Path] = set()
    for i, r in enumerate(rows):
        if problems and len(problems) > 30:
            break
        if any(c not in r for c in EPISODE_COLUMNS):
            continue
        ep = r["episode_index"]
        if ep != i:
            problems.append(f"episode indices are not contiguous: row {i} has episode_index {ep}")
        if r["dataset_from_index"] != nxt or r["dataset_to_index"] - r["dataset_from_index"] != r["length"]:
            problems.append(f"episode {ep}: index range [{r['dataset_from_index']}, {r['dataset_to_index']}) "
                            f"does not follow {nxt} with length {r['length']}")
        nxt = r["dataset_to_index"]
        lengths.append(int(r["length"]))
        for t in r["tasks"]:
            if t not in tasks:
                problems.append(f"episode {ep}: task {t!r} is not in {TASKS_PATH}")
        path = root / info["data_path"].format(chunk_index=r["data/chunk_index"], file_index=r["data/file_index"])
        data_files.add(path)
        if not path.is_file():
            problems.append(f"episode {ep}: data file {path.relative_to(root)} is missing")
        for key in video_keys:
            vpath = root / info["video_path"].format(video_key=key, chunk_index=r[f"videos/{key}/chunk_index"],
                                                     file_index=r[f"videos/{key}/file_index"])
            if not vpath.is_file():
                problems.append(f"episode {ep}: video {vpath.relative_to(root)} is missing")
                continue
            span = (r[f"videos/{key}/to_timestamp"] - r[f"videos/{key}/from_timestamp"]) * fps
            if abs(span - r["length"]) > 1e-3:
                problems.append(f"episode {ep}: {key} spans {span:.2f} frames, length is {r['length']}")
            if decode_videos:
                from egosim.data.video import probe

                try:
                    vi = probe(vpath)
                except DatasetError as exc:
                    problems.append(str(exc))
                    continue
                first = round(r[f"videos/{key}/from_timestamp"] * fps)
                if vi["frames"] < first + r["length"] or (first == 0 and vi["frames"] != r["length"]):
                    problems.append(f"episode {ep}: {vpath.relative_to(root)} has {vi['frames']} frames, "
                                    f"episode length is {r['length']}")
                shape = feats[key]["shape"]
                if (vi["height"], vi["width"]) != (shape[0], shape[1]) or vi["codec"] != "h264":
                    problems.append(f"{vpath.relative_to(root)}: {vi['codec']} {vi['height']}x{vi['width']}, "
                                    f"info.json says h264 {shape[0]}x{shape[1]}")
    if info["total_frames"] != nxt:
        problems.append(f"info total_frames={info['total_frames']} but the episodes end at index {nxt}")

    # data files: columns vs features, shapes, per-frame indices; no file the metadata does not name
    on_disk = set((root / "data").glob("chunk-*/file-*.parquet")) if (root / "data").exists() else set()
    for extra in sorted(on_disk - data_files):
        problems.append(f"data file {extra.relative_to(root)} belongs to no episode")
    non_video = {k: f for k, f in feats.items() if f["dtype"] not in ("video", "image")}
    by_file: dict[Path, list[dict[str, Any]]] = {}
    for r in rows:
        p = root / info["data_path"].format(chunk_index=r["data/chunk_index"], file_index=r["data/file_index"])
        by_file.setdefault(p, []).append(r)
    for path, eps in sorted(by_file.items()):
        if not path.is_file():
            continue
        table = pq.read_table(path)
        cols = set(table.column_names)
        if cols != set(non_video):
            problems.append(f"{path.relative_to(root)}: columns {sorted(cols ^ set(non_video))} differ from info.json")
            continue
        col_problems = [m for k, f in non_video.items()
                        for m in _check_column(path.relative_to(root), k, f, table.schema.field(k).type)]
        problems += col_problems
        if kind == "human" and not col_problems:
            problems += _check_human_values(path.relative_to(root), table)
        ep_col = table.column("episode_index").to_numpy()
        idx_col = table.column("index").to_numpy()
        fr_col = table.column("frame_index").to_numpy()
        ts_col = table.column("timestamp").to_numpy()
        task_col = table.column("task_index").to_numpy()
        if len(task_col) and (task_col.min() < 0 or task_col.max() >= len(tasks)):
            problems.append(f"{path.relative_to(root)}: task_index outside 0..{len(tasks) - 1}")
        for r in eps:
            sel = ep_col == r["episode_index"]
            n = int(sel.sum())
            if n != r["length"]:
                problems.append(f"episode {r['episode_index']}: {n} rows in {path.relative_to(root)}, "
                                f"length {r['length']}")
                continue
            if not np.array_equal(idx_col[sel], np.arange(r["dataset_from_index"], r["dataset_to_index"])):
                problems.append(f"episode {r['episode_index']}: column index is not its dataset range")
            if not np.array_equal(fr_col[sel], np.arange(n)):
                problems.append(f"episode {r['episode_index']}: frame_index is not 0..{n - 1}")
            elif np.abs(ts_col[sel] - fr_col[sel] / fps).max(initial=0.0) > 1e-4:  # LeRobot's sync tolerance
                problems.append(f"episode {r['episode_index']}: timestamps are not frame_index / fps ({fps:g})")

    # stats.json
    if not (root / STATS_PATH).is_file():
        problems.append(f"{STATS_PATH} is missing")
    elif rows:
        stats = read_json(root / STATS_PATH)
        for k in numeric:
            if k not in stats:
                problems.append(f"{STATS_PATH} lacks feature {k!r}")
                continue
            lack = [s for s in REQUIRED_STATS if s not in stats[k]]
            if lack:
                problems.append(f"{STATS_PATH}[{k!r}] lacks {lack}")
                continue
            want = (3, 1, 1) if feats[k]["dtype"] == "video" else tuple(feats[k]["shape"])
            if np.shape(stats[k]["mean"]) != want or np.shape(stats[k]["count"]) != (1,):
                problems.append(f"{STATS_PATH}[{k!r}] mean has shape {np.shape(stats[k]['mean'])}, expected {want}")
            elif feats[k]["dtype"] != "video" and int(stats[k]["count"][0]) != info["total_frames"]:
                problems.append(f"{STATS_PATH}[{k!r}] count {stats[k]['count']} != total_frames {info['total_frames']}")

    problems += _check_modality(root, info, state_dim, action_dim, slices, kind)
    if problems:
        raise DatasetError(f"{root} is not a valid dataset ({len(problems)} problems): " + "; ".join(problems[:30]))
    return DatasetSummary(root=str(root), robot_type=str(info["robot_type"]), kind=kind,
                          action_embodiment=action_embodiment, episodes=len(rows), frames=nxt, tasks=tasks,
                          video_keys=video_keys, lengths=lengths)


def _check_column(rel: Path, key: str, feat: Mapping[str, Any], arrow_type: Any) -> list[str]:
    """The parquet type of a feature: a scalar for shape [1], else fixed-size lists nested per dimension."""
    import pyarrow as pa

    want = _ARROW_DTYPES.get(feat["dtype"])
    shape = list(feat["shape"])
    if shape == [1]:
        ok = str(arrow_type) == want
    else:
        t, ok = arrow_type, True
        for size in shape:
            if not (pa.types.is_fixed_size_list(t) and t.list_size == size):
                ok = False
                break
            t = t.value_type
        ok = ok and str(t) == want
    return [] if ok else [f"{rel}: column {key!r} is {arrow_type}, info.json says {feat['dtype']} {shape}"]


def _check_human_features(feats: Mapping[str, Any], action_embodiment: str | None) -> list[str]:
    """A human dataset's features: the four human arrays as the format defines them, no robot state, and
    `action` exactly when the modality file names a robot."""
    problems: list[str] = []
    want = make_human_features(None, 1, ())
    for key in HUMAN_KEYS:
        if key not in feats:
            problems.append(f"human dataset lacks feature {key!r}")
        elif (feats[key]["dtype"], list(feats[key]["shape"])) != (want[key]["dtype"], want[key]["shape"]):
            problems.append(f"feature {key!r} is {feats[key]['dtype']} {feats[key]['shape']}, the human format says "
                            f"{want[key]['dtype']} {want[key]['shape']}")
    if "observation.state" in feats:
        problems.append("human dataset has observation.state (human data carries no proprioception)")
    if ("action" in feats) != (action_embodiment is not None):
        problems.append(f"human dataset {'has' if 'action' in feats else 'lacks'} an action feature but modality.json "
                        f"egosim.action_embodiment is {action_embodiment!r}")
    return problems


def _check_human_values(rel: Path, table: Any) -> list[str]:
    """Value checks no schema expresses: finite keypoints, confidences in [0, 1], unit quaternions."""
    if any(k not in table.column_names for k in HUMAN_KEYS):
        return []
    problems: list[str] = []
    kp = column_to_numpy(table.column(KEYPOINTS_KEY))
    if not np.all(np.isfinite(kp)):
        problems.append(f"{rel}: {KEYPOINTS_KEY} has non-finite values")
    conf = column_to_numpy(table.column(CONFIDENCE_KEY))
    if conf.size and (not np.all(np.isfinite(conf)) or conf.min() < 0.0 or conf.max() > 1.0):
        problems.append(f"{rel}: {CONFIDENCE_KEY} outside [0, 1]")
    for key in (WRIST_POSE_KEY, CAMERA_POSE_KEY):
        pose = column_to_numpy(table.column(key))
        norm = np.linalg.norm(pose[..., 3:7], axis=-1)
        if pose.size and (not np.all(np.isfinite(pose)) or np.abs(norm - 1.0).max() > 1e-3):
            problems.append(f"{rel}: {key} has non-finite values or quaternions that are not unit length")
    return problems


def _check_modality(root: Path, info: Mapping[str, Any], state_dim: int | None, action_dim: int | None,
                    slices: Mapping[str, slice] | None, kind: str = "robot") -> list[str]:
    from egosim.actions import side_slices
    from egosim.embodiment import embodiment_names, get_embodiment

    if not (root / MODALITY_PATH).is_file():
        return [f"{MODALITY_PATH} is missing"]
    mod = read_json(root / MODALITY_PATH)
    problems: list[str] = []
    feats = info["features"]
    # the robot whose action layout `action` follows: robot datasets their own, human ones the retarget target
    target = (mod.get("egosim") or {}).get("action_embodiment") or (info["robot_type"] if kind == "robot" else None)
    if slices is None and target is not None and target in embodiment_names():
        slices = side_slices(get_embodiment(target).dof)
    if kind == "human" and mod.get("state"):
        problems.append(f"{MODALITY_PATH} has state slices, but a human dataset has no observation.state")
    named = (mod.get("egosim") or {}).get("action_embodiment")
    if kind == "robot" and named not in (None, info["robot_type"]):
        problems.append(f"{MODALITY_PATH} says the actions are for {named!r}, robot_type is {info['robot_type']!r}")
    for part, feat in (("state", "observation.state"), ("action", "action")):
        width = feats.get(feat, {}).get("shape", [0])[0]
        expect = state_dim if part == "state" else action_dim
        if expect is not None and width != expect:
            problems.append(f"{feat} has width {width}, the env's space has {expect}")
        entries = mod.get(part, {})
        covered = sorted((e["start"], e["end"]) for e in entries.values())
        pos = 0
        for s, e in covered:
            if s != pos or e <= s:
                problems.append(f"{MODALITY_PATH} {part} slices {covered} do not tile 0..{width}")
                break
            pos = e
        else:
            if pos != width:
                problems.append(f"{MODALITY_PATH} {part} slices end at {pos}, {feat} has width {width}")
        if slices is not None and (part == "action" or kind == "robot") and feat in feats:
            want = {k: [s.start, s.stop] for k, s in slices.items()}
            got = {k: [e["start"], e["end"]] for k, e in entries.items()}
            if got != want:
                problems.append(f"{MODALITY_PATH} {part} is {got}, the env's slices are {want}")
    videos = {v.get("original_key") for v in mod.get("video", {}).values()}
    if videos != {k for k, f in feats.items() if f["dtype"] == "video"}:
        problems.append(f"{MODALITY_PATH} video keys {sorted(videos)} differ from the video features")
    return problems


def main(argv: list[str] | None = None) -> int:
    """`python -m egosim.data.validate DIR [DIR ...]`: prints each folder's summary or its problems."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m egosim.data.validate", description=main.__doc__)
    ap.add_argument("roots", nargs="+", metavar="DIR")
    ap.add_argument("--no-decode", action="store_true", help="do not decode videos to count their frames")
    args = ap.parse_args(argv)
    status = 0
    for root in args.roots:
        try:
            s = validate_dataset(root, decode_videos=not args.no_decode)
        except DatasetError as exc:
            print(f"INVALID {exc}")
            status = 1
            continue
        what = s.robot_type if s.kind == "robot" else f"human data, actions for {s.action_embodiment or 'no robot'}"
        print(f"ok {root}: {what}, {s.episodes} episodes, {s.frames} frames, {len(s.tasks)} task(s), "
              f"videos {s.video_keys or 'none'}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
