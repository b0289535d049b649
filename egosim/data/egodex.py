"""EgoDex import: Apple's egocentric hand recordings (`<task>/<k>.hdf5` + `<k>.mp4`) -> a human dataset.

EgoDex (egoscale_facts.md section 4) stores, per episode, N x 4 x 4 poses `transforms/<joint>` of 68
skeleton joints and the camera in a per-recording ARKit origin frame (y up, x right, -z the initial
view direction), optional confidences `confidences/<joint>` (N,), the camera intrinsics
`camera/intrinsic` (3 x 3), LLM-written descriptions as file attributes, and a 30 Hz video beside it
(frame i = row i).

Conversion into the human format (`egosim.data.format`):
- frame: world = `ARKIT_TO_WORLD` @ ARKit (x forward = ARKit -z, y left = ARKit -x, z up = ARKit y),
  the z-up, x-forward convention of egosim's rig frame;
- keypoints: the translations of the 25 hand joints less the 4 metacarpals (`egodex_joint`), in the
  order of `HUMAN_KEYPOINTS`; confidences 1.0 where the file has none;
- `wrist_pose`: the canonical wrist frame computed from those keypoints (`egosim.keypoints`), not
  ARKit's own joint orientation, so imported and simulated wrists mean the same frame;
- `camera_pose`: `transforms/camera` in world (ARKit's camera looks along its -z with +y up, as
  MuJoCo's cameras do);
- task text: `llm_description` or `llm_description2` as `which_llm_description` says (then the
  `task` attribute, then the folder name);
- video: every frame scaled (by the larger of the two size ratios) and centre-cropped to the
  dataset's image size; the intrinsics are scaled and shifted to match and stored per episode.

A bad file (unreadable or truncated HDF5, a missing key, rows that disagree, an unreadable or empty
video) is reported with its path and what is wrong, recorded as an attempt that was not kept, and
skipped; the rest import. Every imported episode is committed at once (`egosim.data.writer`), so a
killed import resumes: sources already imported are skipped, bad ones are tried again.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from egosim.embodiment import HUMAN_KEYPOINTS, SIDES
from egosim.errors import ConfigError, EgosimError, InvalidChoiceError, reject_unknown_keys

ARKIT_TO_WORLD = np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
EGODEX_FPS = 30
_FINGER_NAMES = {"thumb": "Thumb", "index": "IndexFinger", "middle": "MiddleFinger", "ring": "RingFinger",
                 "little": "LittleFinger"}
_PART_NAMES = {"knuckle": "Knuckle", "intermediate_base": "IntermediateBase", "intermediate_tip": "IntermediateTip",
               "tip": "Tip"}
Log = Callable[[str], None]


class EgoDexFileError(EgosimError, ValueError):
    """An EgoDex episode that cannot be imported; the message names the file and what is wrong."""


def egodex_joint(side: str, keypoint: str) -> str:
    """EgoDex's joint name for one of egosim's 21 keypoints (`left`, `index_knuckle` -> `leftIndexFingerKnuckle`)."""
    if side not in SIDES:
        raise InvalidChoiceError("side", side, SIDES)
    if keypoint == "wrist":
        return f"{side}Hand"
    if keypoint not in HUMAN_KEYPOINTS:
        raise InvalidChoiceError("human keypoint", keypoint, HUMAN_KEYPOINTS)
    finger, part = keypoint.split("_", 1)
    return f"{side}{_FINGER_NAMES[finger]}{_PART_NAMES[part]}"


def metacarpal_joint(side: str, finger: str) -> str:
    """EgoDex's metacarpal joint of a finger (present in the files, dropped by the import)."""
    return f"{side}{_FINGER_NAMES[finger]}Metacarpal"


@dataclass
class EgoDexEpisode:
    """One EgoDex file's arrays, converted to the human format's frame (world, z up)."""

    path: Path
    keypoints: NDArray[np.float64]  # (N, 2, 21, 3)
    confidence: NDArray[np.float64]  # (N, 2, 21)
    wrist_pose: NDArray[np.float64]  # (N, 2, 7)
    camera_pose: NDArray[np.float64]  # (N, 7)
    intrinsic: NDArray[np.float64]  # (3, 3), source pixels
    task: str
    attrs: dict[str, str] = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return int(self.keypoints.shape[0])


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return _text(value.item()) if value.size == 1 else " ".join(_text(v) for v in value.ravel())
    return str(value)


def _task_text(attrs: Mapping[str, str], folder: str) -> str:
    which = attrs.get("which_llm_description", "1").strip()
    keys = ["llm_description2", "llm_description"] if which == "2" else ["llm_description", "llm_description2"]
    for key in keys + ["task"]:
        text = attrs.get(key, "").strip()
        if text:
            return text
    return folder.replace("_", " ")


def read_egodex(path: str | os.PathLike[str]) -> EgoDexEpisode:
    """Reads and converts one EgoDex HDF5 file (no video).

    Raises:
        EgoDexFileError: naming the file and the missing key, or what else is wrong with it.
    """
    import h5py

    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise EgoDexFileError(f"{path}: unreadable HDF5 file ({exc})") from None
    with f:
        def array(key: str) -> NDArray[np.float64]:
            if key not in f:
                raise EgoDexFileError(f"{path}: missing key {key!r}")
            try:
                return np.asarray(f[key][()], dtype=np.float64)
            except (OSError, ValueError, TypeError) as exc:
                raise EgoDexFileError(f"{path}: cannot read {key!r} ({exc})") from None

        cam = array("transforms/camera")
        n = cam.shape[0] if cam.ndim == 3 else 0
        if cam.shape != (n, 4, 4) or n == 0:
            raise EgoDexFileError(f"{path}: 'transforms/camera' has shape {cam.shape}, expected (N, 4, 4) with N >= 1")
        pos = np.zeros((n, 2, len(HUMAN_KEYPOINTS), 3))
        conf = np.ones((n, 2, len(HUMAN_KEYPOINTS)))
        for s, side in enumerate(SIDES):
            for k, kp in enumerate(HUMAN_KEYPOINTS):
                name = egodex_joint(side, kp)
                tf = array(f"transforms/{name}")
                if tf.shape != (n, 4, 4):
                    raise EgoDexFileError(f"{path}: 'transforms/{name}' has shape {tf.shape}, 'transforms/camera' "
                                          f"has {n} rows")
                pos[:, s, k] = tf[:, :3, 3]
                ckey = f"confidences/{name}"
                if ckey in f:
                    c = array(ckey).reshape(-1)
                    if c.shape != (n,):
                        raise EgoDexFileError(f"{path}: {ckey!r} has {c.shape[0]} values for {n} frames")
                    conf[:, s, k] = np.clip(np.nan_to_num(c, nan=0.0), 0.0, 1.0)
        intrinsic = array("camera/intrinsic")
        if intrinsic.shape != (3, 3):
            raise EgoDexFileError(f"{path}: 'camera/intrinsic' has shape {intrinsic.shape}, expected (3, 3)")
        attrs = {str(k): _text(v) for k, v in f.attrs.items()}
    if not (np.all(np.isfinite(pos)) and np.all(np.isfinite(cam))):
        raise EgoDexFileError(f"{path}: transforms hold non-finite values")
    from egosim.keypoints import canonical_wrist_pose, pose_to_vec

    world = pos @ ARKIT_TO_WORLD.T
    wrist = np.stack([canonical_wrist_pose(world[:, s], side) for s, side in enumerate(SIDES)], axis=1)
    cam_pose = pose_to_vec(cam[:, :3, 3] @ ARKIT_TO_WORLD.T, ARKIT_TO_WORLD @ cam[:, :3, :3])
    return EgoDexEpisode(path=path, keypoints=world, confidence=conf, wrist_pose=wrist, camera_pose=cam_pose,
                         intrinsic=intrinsic, task=_task_text(attrs, path.parent.name), attrs=attrs)


def fit_image(src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int], float]:
    """How a source frame becomes a dataset frame: (scaled (h, w), crop offset (y, x), scale).

    The frame is scaled by the larger of the two size ratios (so it covers the target), then
    centre-cropped; pixel coordinates map as u' = scale * u - x0, v' = scale * v - y0.
    """
    (sh, sw), (dh, dw) = src_hw, dst_hw
    scale = max(dh / sh, dw / sw)
    h, w = max(dh, int(round(sh * scale))), max(dw, int(round(sw * scale)))
    return (h, w), ((h - dh) // 2, (w - dw) // 2), scale


def scaled_intrinsic(k: NDArray[np.float64], src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> NDArray[np.float64]:
    """The intrinsics of the scaled and cropped frames (`fit_image`)."""
    (h, w), (y0, x0), _ = fit_image(src_hw, dst_hw)
    sx, sy = w / src_hw[1], h / src_hw[0]
    out = np.array(k, dtype=np.float64)
    out[0] *= sx
    out[1] *= sy
    out[0, 2] -= x0
    out[1, 2] -= y0
    return out


def video_frames(path: Path, size: tuple[int, int]) -> tuple[tuple[int, int], Iterator[NDArray[np.uint8]]]:
    """(source (h, w), iterator of frames fitted to `size`); raises `EgoDexFileError` if unreadable."""
    import av

    try:
        container = av.open(str(path))
        stream = container.streams.video[0]
        src = (int(stream.codec_context.height), int(stream.codec_context.width))
    except (OSError, IndexError, av.error.FFmpegError) as exc:  # type: ignore[attr-defined]
        raise EgoDexFileError(f"{path}: unreadable video ({exc})") from None
    if min(src) <= 0:
        container.close()
        raise EgoDexFileError(f"{path}: video has no frame size")
    (h, w), (y0, x0), _ = fit_image(src, size)

    def gen() -> Iterator[NDArray[np.uint8]]:
        try:
            for frame in container.decode(stream):
                img = frame.reformat(width=w, height=h, format="rgb24").to_ndarray()
                yield np.ascontiguousarray(img[y0:y0 + size[0], x0:x0 + size[1]])
        except (OSError, av.error.FFmpegError) as exc:  # type: ignore[attr-defined]
            raise EgoDexFileError(f"{path}: unreadable video ({exc})") from None
        finally:
            container.close()

    return src, gen()


@dataclass
class ImportConfig:
    """What `egosim import egodex` does (mirrors `egosim/conf/import_egodex.yaml`).

    Attributes:
        output_dir: The dataset folder.
        retarget_to: "none", or the robot hand whose actions the episodes get (`sharpa_wave`, `unitree_dex3`).
        image_size: (height, width) of the `ego_view` stream (even numbers).
        video: Import the videos (false: poses only; the mp4 files are not needed).
        max_episodes: Import at most this many files (None: all).
        retarget: Retargeting settings (`egosim.retarget.RetargetConfig`), e.g. {smoothing: 0.3}.
    """

    output_dir: str = "outputs/egodex"
    retarget_to: str = "none"
    image_size: tuple[int, int] = (240, 320)
    video: bool = True
    max_episodes: int | None = None
    retarget: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any]) -> ImportConfig:
        reject_unknown_keys(cfg, (f.name for f in dataclasses.fields(cls)), "import config")
        kw = dict(cfg)
        if "image_size" in kw:
            kw["image_size"] = tuple(kw["image_size"])
        if kw.get("retarget") is None:
            kw["retarget"] = {}
        out = cls(**kw)
        out.validate()
        return out

    def validate(self) -> None:
        from egosim.embodiment import ROBOT_TAG, embodiment_names
        from egosim.retarget import RetargetConfig

        robots = ["none", *embodiment_names(ROBOT_TAG)]
        if self.retarget_to not in robots:
            raise InvalidChoiceError("retarget_to", self.retarget_to, robots)
        size = self.image_size
        if (len(size) != 2 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in size)
                or any(s < 16 or s > 2048 or s % 2 for s in size)):
            raise ConfigError(f"image_size must be [height, width], even, 16..2048 each; got {list(size)}")
        if not isinstance(self.video, bool):
            raise ConfigError(f"video must be true or false, got {self.video!r}")
        m = self.max_episodes
        if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 1):
            raise ConfigError(f"max_episodes must be a positive integer or null, got {m!r}")
        RetargetConfig.from_mapping(self.retarget)


def find_episodes(src: str | os.PathLike[str]) -> list[Path]:
    """The HDF5 files under `src` (a split folder, a task folder or one file), sorted."""
    root = Path(src)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise ConfigError(f"EgoDex source {str(root)!r} is neither a folder nor an .hdf5 file")
    return sorted(root.rglob("*.hdf5"))


class _Progress:
    """A redrawn bar on a terminal, one line per file otherwise."""

    def __init__(self, total: int, log: Log | None) -> None:
        self.total, self.log, self.done, self.ok, self.bad = total, log, 0, 0, 0
        self.tty = log is print and sys.stdout.isatty()
        self.t0 = time.perf_counter()

    def update(self, source: str, message: str, ok: bool) -> None:
        self.done += 1
        self.ok += ok
        self.bad += not ok
        if self.log is None:
            return
        per = (time.perf_counter() - self.t0) / self.done
        head = f"{self.done}/{self.total} files, {self.ok} imported, {self.bad} skipped, {per:.1f} s/file"
        if self.tty:
            fill = int(24 * self.done / max(self.total, 1))
            sys.stdout.write(f"\r[{'#' * fill}{'.' * (24 - fill)}] {head}   ")
            if not ok:
                sys.stdout.write(f"\n{message}\n")
            sys.stdout.flush()
        else:
            self.log(f"[{head}] {source}: {message}")

    def close(self) -> None:
        if self.tty and self.done:
            sys.stdout.write("\n")


def import_egodex(src: str | os.PathLike[str], cfg: ImportConfig, log: Log | None = print) -> dict[str, Any]:
    """Imports (or resumes importing) every EgoDex episode under `src` into `cfg.output_dir`.

    Returns a summary: files found, imported (now and before), skipped (bad) with their messages.
    """
    from egosim.data.writer import DatasetWriter
    from egosim.retarget import RetargetConfig, Retargeter, retarget_recorder

    cfg.validate()
    emit = log or (lambda _m: None)
    src = Path(src)
    files = find_episodes(src)
    base = src if src.is_dir() else src.parent
    robot = None if cfg.retarget_to == "none" else cfg.retarget_to
    writer = DatasetWriter(cfg.output_dir, kind="human", fps=EGODEX_FPS, image_size=cfg.image_size if cfg.video else None,
                           action_embodiment=robot)
    done = {a["source"] for a in writer.attempts if a.get("kept")}
    todo = [f for f in files if f.relative_to(base).as_posix() not in done]
    if cfg.max_episodes is not None:
        todo = todo[:max(0, cfg.max_episodes - len(done))]
    retargeter = Retargeter(robot, RetargetConfig.from_mapping(cfg.retarget)) if robot else None
    emit(f"{cfg.output_dir}: {len(writer.episodes)} episodes already there; importing {len(todo)} of {len(files)} "
         f"EgoDex files from {src}{f', retargeted to {robot}' if robot else ''}")
    progress = _Progress(len(todo), log)
    skipped: list[str] = []
    for path in todo:
        rel = path.relative_to(base).as_posix()
        rec = None
        try:
            ep = read_egodex(path)
            rec = writer.start_episode(f"import-{len(writer.attempts)}")
            n, note = ep.frames, ""
            intrinsic = ep.intrinsic
            if cfg.video:
                mp4 = path.with_suffix(".mp4")
                if not mp4.is_file():
                    raise EgoDexFileError(f"{path}: missing video {mp4.name}")
                src_hw, frames = video_frames(mp4, cfg.image_size)
                intrinsic = scaled_intrinsic(ep.intrinsic, src_hw, cfg.image_size)
                for k, img in enumerate(frames):
                    if k >= n:
                        note = f"; video has more frames than the {n} pose rows (extra frames dropped)"
                        break
                    rec.add(ep.keypoints[k], ep.confidence[k], ep.wrist_pose[k], ep.camera_pose[k],
                            {"ego_view": img})
                frames.close()
                if len(rec) == 0:
                    raise EgoDexFileError(f"{path}: unreadable video {mp4.name} (no frames decoded)")
                if len(rec) < n:
                    note = f"; video has {len(rec)} frames for {n} pose rows (the rest dropped)"
            else:
                for k in range(n):
                    rec.add(ep.keypoints[k], ep.confidence[k], ep.wrist_pose[k], ep.camera_pose[k])
            summary: dict[str, Any] = {}
            if retargeter is not None:
                summary = retarget_recorder(rec, retargeter).summary()
            attempt = {
                "source": rel, "egodex_task": path.parent.name, "session_name": ep.attrs.get("session_name", ""),
                "environment": ep.attrs.get("environment", ""), "source_frames": n, "frames": len(rec),
                "camera_intrinsic": np.round(intrinsic, 6).tolist(), "retarget": summary,
            }
            writer.commit(attempt, rec, ep.task)
            progress.update(rel, f"{len(rec)} frames, task {ep.task!r}" + (
                f", fingertip error {summary['tip_error_mm']:.1f} mm" if summary else "") + note, True)
        except EgoDexFileError as exc:
            if rec is not None:
                rec.discard()
            skipped.append(str(exc))
            writer.commit({"source": rel, "error": str(exc)}, None, "")
            progress.update(rel, f"skipped: {exc}", False)
    progress.close()
    writer.close()
    out = {"dataset": str(cfg.output_dir), "files": len(files), "imported": len(todo) - len(skipped),
           "episodes": len(writer.episodes), "frames": writer.total_frames, "skipped": skipped}
    emit(f"{cfg.output_dir}: {out['episodes']} episodes, {out['frames']} frames; {len(skipped)} file(s) skipped")
    for msg in skipped:
        emit(f"  skipped {msg}")
    return out


BODY_JOINTS = ("hip", *(f"spine{i}" for i in range(1, 8)), *(f"neck{i}" for i in range(1, 5)))
ARM_JOINTS = ("Shoulder", "Arm", "Forearm")


def write_egodex(path: str | os.PathLike[str], keypoints: NDArray[Any], camera_pose: NDArray[Any], *,
                 intrinsic: NDArray[Any] | None = None, confidence: NDArray[Any] | None = None,
                 attrs: Mapping[str, str] | None = None, video: NDArray[np.uint8] | None = None) -> Path:
    """Writes an episode in EgoDex's layout (for tests and benchmarks: synthetic episodes, known poses).

    The inverse of `read_egodex` for the data it reads: world-frame keypoints (N, 2, 21, 3) and camera
    poses (N, 7) go back to ARKit's y-up frame; the four metacarpals per hand sit 40 % of the way from
    the wrist to each knuckle; body and arm joints are filled in (static, beside the hands) so the file
    holds all 68 joints + camera. Joint orientations: the canonical wrist frame for `<side>Hand`,
    identity for the rest. `video` (N, H, W, 3) uint8 is written beside it as `<k>.mp4` (H.264).
    """
    import h5py

    from egosim.keypoints import KP, canonical_wrist_pose, vec_to_pose

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    kp = np.asarray(keypoints, dtype=np.float64)
    n = kp.shape[0]
    inv = ARKIT_TO_WORLD.T

    def tf(pos: NDArray[np.float64], rot: NDArray[np.float64] | None = None) -> NDArray[np.float32]:
        out = np.tile(np.eye(4), (n, 1, 1))
        out[:, :3, 3] = pos @ inv.T
        if rot is not None:
            out[:, :3, :3] = inv @ rot
        return out.astype(np.float32)

    cam_pos, cam_rot = vec_to_pose(np.asarray(camera_pose, dtype=np.float64))
    with h5py.File(path, "w") as f:
        f["transforms/camera"] = tf(cam_pos, cam_rot)
        f["camera/intrinsic"] = np.asarray(intrinsic if intrinsic is not None else
                                           [[736.6339, 0, 960], [0, 736.6339, 540], [0, 0, 1]], dtype=np.float32)
        for s, side in enumerate(SIDES):
            wpos, wrot = vec_to_pose(canonical_wrist_pose(kp[:, s], side))
            for k, name in enumerate(HUMAN_KEYPOINTS):
                joint = egodex_joint(side, name)
                f[f"transforms/{joint}"] = tf(kp[:, s, k], wrot if name == "wrist" else None)
                if confidence is not None:
                    f[f"confidences/{joint}"] = np.asarray(confidence, dtype=np.float32)[:, s, k]
            for finger in ("index", "middle", "ring", "little"):
                meta = 0.6 * kp[:, s, KP["wrist"]] + 0.4 * kp[:, s, KP[f"{finger}_knuckle"]]
                f[f"transforms/{metacarpal_joint(side, finger)}"] = tf(meta)
            for j, arm in enumerate(ARM_JOINTS):  # shoulder -> forearm, toward the wrist
                w = (j + 1) / (len(ARM_JOINTS) + 1)
                shoulder = cam_pos + [0.0, 0.18 if side == "left" else -0.18, -0.25]
                f[f"transforms/{side}{arm}"] = tf((1 - w) * shoulder + w * kp[:, s, KP["wrist"]])
        for j, name in enumerate(BODY_JOINTS):
            f[f"transforms/{name}"] = tf(cam_pos + [0.0, 0.0, -0.2 - 0.05 * j])
        for key, value in (attrs or {}).items():
            f.attrs[key] = value
    if video is not None:
        from egosim.data.video import VideoWriter

        frames = np.asarray(video, dtype=np.uint8)
        writer = VideoWriter(path.with_suffix(".mp4"), EGODEX_FPS, frames.shape[1], frames.shape[2])
        for frame in frames:
            writer.append(frame)
        writer.close()
    return path


__all__ = ["ARKIT_TO_WORLD", "BODY_JOINTS", "EgoDexEpisode", "EgoDexFileError", "ImportConfig", "egodex_joint", "find_episodes",
           "fit_image", "import_egodex", "metacarpal_joint", "read_egodex", "scaled_intrinsic", "video_frames",
           "write_egodex"]
