"""Reads an egosim (LeRobot v3.0) dataset back for training: observation + action-chunk windows.

`ChunkDataset[i]` is frame i of the dataset (global index) with the next `horizon` actions of its
episode. Past the episode's end the chunk is padded (hold: identity wrist step, last hand targets)
and `action_is_pad` marks the padding, as LeRobot's `delta_timestamps` windows do.

Human datasets (`egosim.data.format`) serve the same items for pretraining: their retargeted actions
in the robot's layout, an empty `observation.state` with `has_state` False (the VLA puts its learned
placeholder there, EgoScale's human samples carry no proprioception), and the human arrays.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from egosim.actions import WRIST_DIM, step_actions_to_chunk
from egosim.data.format import (
    HUMAN_KEYS,
    INFO_PATH,
    MODALITY_PATH,
    DatasetError,
    column_to_numpy,
    dataset_kind,
    read_json,
)
from egosim.geometry import matrix_to_rot6d

try:
    from torch.utils.data import Dataset as _TorchDataset
except ImportError:  # pragma: no cover - torch is a dependency; keep the reader usable without it
    _TorchDataset = object  # type: ignore[assignment,misc]


def load_episodes_table(root: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The episodes metadata rows (without per-episode stats), ordered by episode index."""
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    for f in sorted((Path(root) / "meta" / "episodes").glob("chunk-*/file-*.parquet")):
        table = pq.read_table(f)
        keep = [c for c in table.column_names if not c.startswith("stats/")]
        rows += table.select(keep).to_pylist()
    return sorted(rows, key=lambda r: r["episode_index"])


def dataset_cameras(root: str | os.PathLike[str]) -> list[str]:
    """Names of the camera streams a dataset holds (human data: usually `ego_view` only)."""
    prefix = "observation.images."
    feats = read_json(Path(root) / INFO_PATH)["features"]
    return [k[len(prefix):] for k, f in feats.items() if f["dtype"] == "video" and k.startswith(prefix)]


def read_episode(root: str | os.PathLike[str], episode_index: int) -> dict[str, NDArray[Any]]:
    """All non-video columns of one episode as numpy arrays (state (T, D), action (T, D), ...)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    root = Path(root)
    info = read_json(root / INFO_PATH)
    rows = [r for r in load_episodes_table(root) if r["episode_index"] == episode_index]
    if not rows:
        raise DatasetError(f"episode {episode_index} is not in {root} ({info['total_episodes']} episodes)")
    r = rows[0]
    path = root / info["data_path"].format(chunk_index=r["data/chunk_index"], file_index=r["data/file_index"])
    table = pq.read_table(path)
    table = table.filter(pc.equal(table.column("episode_index"), episode_index))
    return {name: column_to_numpy(table.column(name)) for name in table.column_names}


class ChunkDataset(_TorchDataset):  # type: ignore[misc,valid-type]
    """A torch Dataset of (observation, action chunk) windows over an egosim dataset.

    Args:
        root: The dataset folder (one embodiment).
        horizon: Actions per chunk (H).
        cameras: Camera names to decode (default: every video stream; () for none).
        relative_chunks: Express each chunk's wrist parts relative to its first frame (EgoScale's
            dW_t = W_0^-1 W_t, what policies predict; `egosim.actions`); False keeps per-step actions.

    Items (torch tensors): `observation.state` (D,) float32 (empty for human data), `has_state` (bool),
    `action` (H, D) float32, `action_is_pad` (H,) bool, `observation.images.<camera>` (3, h, w) uint8,
    `task` (str), `embodiment` (info.json's robot_type: "human" for human data), `action_embodiment`
    (the robot whose layout `action` follows), `episode_index`, `frame_index`, `index`; human data
    also `observation.human.*` (float32). `collate_batch` turns a list of items into the VLA's
    training batch. Each item decodes only its own frames (a seek to the
    nearest keyframe, at most 2 frames back in egosim's videos), so shuffled access stays cheap.
    """

    def __init__(self, root: str | os.PathLike[str], horizon: int = 16, cameras: tuple[str, ...] | None = None,
                 relative_chunks: bool = True) -> None:
        import pyarrow.parquet as pq

        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise DatasetError(f"horizon must be a positive integer, got {horizon!r}")
        self.root = Path(root)
        self.info = read_json(self.root / INFO_PATH)
        self.horizon = horizon
        self.relative_chunks = relative_chunks
        self.fps = float(self.info["fps"])
        feats = self.info["features"]
        streams = [k for k, f in feats.items() if f["dtype"] == "video"]
        if cameras is None:
            self.video_keys = streams
        else:
            self.video_keys = [f"observation.images.{c}" for c in cameras]
            bad = [k for k in self.video_keys if k not in streams]
            if bad:
                raise DatasetError(f"cameras {bad} not in {self.root}; it has {streams}")
        modality = read_json(self.root / MODALITY_PATH) if (self.root / MODALITY_PATH).is_file() else {}
        self.kind = dataset_kind(modality, self.info)
        self.embodiment = str(self.info["robot_type"])
        self.action_embodiment = (modality.get("egosim") or {}).get("action_embodiment") or (
            self.embodiment if self.kind == "robot" else None)
        if "action" not in feats:
            raise DatasetError(f"{self.root} has no actions (human data that was not retargeted); import or "
                               "collect it with retarget_to=<robot hand> to train on it")
        self.episodes = load_episodes_table(self.root)
        self.tasks = [str(t) for t in pq.read_table(self.root / "meta" / "tasks.parquet").column("task").to_pylist()]
        dim = feats["action"]["shape"][0]
        self.hand_dof = dim // 2 - WRIST_DIM
        state_dim = feats["observation.state"]["shape"][0] if "observation.state" in feats else 0
        self.human_keys = [k for k in HUMAN_KEYS if k in feats] if self.kind == "human" else []
        states, actions, ep_of_frame = [], [], []
        human: dict[str, list[NDArray[Any]]] = {k: [] for k in self.human_keys}
        for r in self.episodes:
            ep = read_episode(self.root, r["episode_index"])
            n = int(r["length"])
            states.append(ep["observation.state"].astype(np.float32) if state_dim else np.zeros((n, 0), np.float32))
            actions.append(ep["action"].astype(np.float64))
            for k in self.human_keys:
                human[k].append(ep[k].astype(np.float32))
            ep_of_frame.append(np.full(n, len(ep_of_frame), dtype=np.int64))
        self._states = np.concatenate(states) if states else np.zeros((0, state_dim), np.float32)
        self._actions = np.concatenate(actions) if actions else np.zeros((0, dim))
        self._human = {k: np.concatenate(v) for k, v in human.items() if v}
        self._ep = np.concatenate(ep_of_frame) if ep_of_frame else np.zeros(0, np.int64)
        self._starts = np.array([r["dataset_from_index"] for r in self.episodes], dtype=np.int64)
        self._hold = np.concatenate([np.zeros(3), matrix_to_rot6d(np.eye(3))])

    def __len__(self) -> int:
        return int(self._states.shape[0])

    def action_chunk(self, index: int) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """The (H, D) chunk starting at frame `index` and its padding mask (True = padded)."""
        e = int(self._ep[index])
        end = int(self.episodes[e]["dataset_to_index"])
        take = self._actions[index:min(index + self.horizon, end)]
        pad = self.horizon - len(take)
        mask = np.zeros(self.horizon, dtype=bool)
        if pad:
            hold = take[-1].copy()
            per = WRIST_DIM + self.hand_dof
            for off in (0, per):
                hold[off:off + WRIST_DIM] = self._hold
            take = np.concatenate([take, np.repeat(hold[None], pad, axis=0)])
            mask[-pad:] = True
        if self.relative_chunks:
            take = step_actions_to_chunk(take, self.hand_dof)
        return take, mask

    def _frame(self, e: int, key: str, frame: int) -> NDArray[np.uint8]:
        from egosim.data.video import read_frame

        r = self.episodes[e]
        path = self.root / self.info["video_path"].format(
            video_key=key, chunk_index=r[f"videos/{key}/chunk_index"], file_index=r[f"videos/{key}/file_index"])
        return read_frame(path, round(r[f"videos/{key}/from_timestamp"] * self.fps) + frame)

    def __getitem__(self, index: int) -> dict[str, Any]:
        import torch

        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} frames")
        e = int(self._ep[index])
        r = self.episodes[e]
        frame = index - int(self._starts[e])
        chunk, mask = self.action_chunk(index)
        item: dict[str, Any] = {
            "observation.state": torch.from_numpy(self._states[index].copy()),
            "has_state": self._states.shape[1] > 0,
            "action": torch.from_numpy(chunk.astype(np.float32)),
            "action_is_pad": torch.from_numpy(mask),
            "task": r["tasks"][0],
            "embodiment": self.embodiment,
            "action_embodiment": self.action_embodiment,
            "episode_index": int(r["episode_index"]),
            "frame_index": frame,
            "index": index,
        }
        for key, values in self._human.items():
            item[key] = torch.from_numpy(values[index].copy())
        for key in self.video_keys:
            item[key] = torch.from_numpy(np.ascontiguousarray(self._frame(e, key, frame).transpose(2, 0, 1)))
        return item

    def episode_meta(self, episode_index: int) -> dict[str, Any]:
        """The episode's metadata row, with the JSON columns (initial state, milestones) parsed."""
        r = dict(self.episodes[episode_index])
        for k in ("egosim/initial_state", "egosim/milestones"):
            if k in r and isinstance(r[k], str):
                r[k] = json.loads(r[k])
        return r


def collate_batch(items: Sequence[Mapping[str, Any]], max_state_dim: int, max_action_dim: int) -> dict[str, Any]:
    """Stacks `ChunkDataset` items into the VLA's batch contract (`egosim.policies.vla.train`).

    States and actions are zero-padded to the model's widest embodiment; `action_mask` is True on an
    item's own action dims at its unpadded time steps; `has_state` is False for items without
    proprioception (human data). Items may come from datasets of different hands and kinds: a camera
    goes in when any item has it, with zero images and `camera_mask` False for the items that do not
    (human clips have only the head camera).
    """
    import torch

    if not items:
        raise DatasetError("collate_batch needs at least one item")
    b, horizon = len(items), items[0]["action"].shape[0]
    state = torch.zeros(b, max_state_dim)
    action = torch.zeros(b, horizon, max_action_dim)
    mask = torch.zeros(b, horizon, max_action_dim, dtype=torch.bool)
    for i, it in enumerate(items):
        ds, (h, da) = it["observation.state"].shape[0], it["action"].shape
        if ds > max_state_dim or da > max_action_dim or h != horizon:
            raise DatasetError(f"item {i} has state {ds}, action {h}x{da}; the batch takes state <= "
                               f"{max_state_dim}, action {horizon}x<={max_action_dim}")
        state[i, :ds] = it["observation.state"]
        action[i, :, :da] = it["action"]
        mask[i, :, :da] = ~it["action_is_pad"][:, None]
    prefix = "observation.images."
    cams = list(dict.fromkeys(k[len(prefix):] for it in items for k in it if k.startswith(prefix)))
    images, camera_mask = {}, {}
    for c in cams:
        present = [prefix + c in it for it in items]
        like = next(it[prefix + c] for it in items if prefix + c in it)
        images[c] = torch.stack([it[prefix + c] if p else torch.zeros_like(like) for it, p in zip(items, present)])
        camera_mask[c] = torch.tensor(present, dtype=torch.bool)
    out = {
        "embodiment": [str(it["embodiment"]) for it in items],
        "instruction": [str(it["task"]) for it in items],
        "images": images,
        "state": state,
        "has_state": torch.tensor([bool(it.get("has_state", True)) for it in items], dtype=torch.bool),
        "action": action,
        "action_mask": mask,
    }
    if not all(bool(m.all()) for m in camera_mask.values()):
        out["camera_mask"] = camera_mask
    return out
