"""A noise model of real human-tracking pipelines, for simulated human demos.

Egocentric human data gets its world-frame hand poses by composing two estimates: the camera's pose
from SLAM / visual-inertial odometry, and the hands' poses in the camera from a hand tracker
(EgoScale: W_t = T_world<-camera,t . H_camera,wrist,t). Both are noisy, in different ways, and the
simulator's exact poses are what neither delivers. `HumanNoise` corrupts a clean episode the way
such a pipeline would; all of it is off by default (clean data) and seeded.

Per frame t (dt = 1 / fps), per hand:

- SLAM drift: the estimated world frame wanders from the true one by a random walk in position
  (`slam_drift_pos`, m per sqrt(s), each axis) and in yaw about the vertical (`slam_drift_yaw`, rad
  per sqrt(s)); roll and pitch do not drift (gravity makes them observable to an IMU). The yaw turns
  about where the camera was at the first frame (the SLAM origin). It moves the camera pose and,
  through it, every world-frame hand pose: the hands stay right relative to the camera. The error's
  variance grows linearly: sigma^2 t.
- Camera jitter: white noise on the camera pose each frame, in the camera frame (`camera_jitter_pos`
  m and `camera_jitter_rot` rad per axis); it too carries over to the hands.
- Wrist-pose noise: the tracker's error in the whole hand's pose, white, in the camera frame
  (`wrist_pos` m per axis, `wrist_rot` rad per axis, about the wrist): the hand's keypoints move
  rigidly with its wrist pose.
- Keypoint jitter: white noise per finger keypoint (`keypoint_jitter` m per axis, camera frame); the
  wrist keypoint stays the wrist pose's origin.
- Dropouts: a hand is lost for runs of frames (a two-state Markov chain per hand: a run starts
  with the probability that makes `dropout_rate` of the frames lost, and lasts a geometric number of
  frames with mean `dropout_mean_frames`). Lost frames keep the hand's last estimate (trackers hold
  it) with every keypoint's confidence set to `dropout_confidence`.

The model is causal (`HumanNoiseModel.apply` one frame at a time), so collection streams episodes
through it; `apply_episode` does a whole episode. Pure numpy.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from egosim.errors import ConfigError, InvalidChoiceError, reject_unknown_keys
from egosim.geometry import matrix_rows_to_quat, rotvec_matrix_rows

Frame = dict[str, NDArray[Any]]  # keypoints (2,21,3), keypoint_confidence (2,21), wrist_pose (2,7), camera_pose (7,)
FRAME_KEYS = ("keypoints", "keypoint_confidence", "wrist_pose", "camera_pose")


@dataclass(frozen=True)
class HumanNoise:
    """Noise settings (see the module docstring); lengths in metres, angles in radians, per axis.

    Attributes:
        slam_drift_pos: Random-walk std of the camera position error per sqrt(second).
        slam_drift_yaw: Random-walk std of the yaw error per sqrt(second).
        camera_jitter_pos, camera_jitter_rot: Per-frame std of the camera pose error (camera frame).
        wrist_pos, wrist_rot: Per-frame std of each hand's pose error (camera frame, about the wrist).
        keypoint_jitter: Per-frame std of each finger keypoint's error (camera frame).
        dropout_rate: Expected fraction of frames in which a hand is lost, in [0, 1).
        dropout_mean_frames: Mean length of a dropout run (frames, >= 1).
        dropout_confidence: Keypoint confidence of a lost hand, in [0, 1].
    """

    slam_drift_pos: float = 0.0
    slam_drift_yaw: float = 0.0
    camera_jitter_pos: float = 0.0
    camera_jitter_rot: float = 0.0
    wrist_pos: float = 0.0
    wrist_rot: float = 0.0
    keypoint_jitter: float = 0.0
    dropout_rate: float = 0.0
    dropout_mean_frames: float = 8.0
    dropout_confidence: float = 0.05

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"noise {f.name} must be a finite number, got {v!r}")
        for key in ("slam_drift_pos", "slam_drift_yaw", "camera_jitter_pos", "camera_jitter_rot", "wrist_pos",
                    "wrist_rot", "keypoint_jitter"):
            if getattr(self, key) < 0:
                raise ConfigError(f"noise {key} must be >= 0, got {getattr(self, key)}")
        if not 0.0 <= self.dropout_rate < 1.0:
            raise ConfigError(f"noise dropout_rate must be in [0, 1), got {self.dropout_rate}")
        if self.dropout_mean_frames < 1.0:
            raise ConfigError(f"noise dropout_mean_frames must be >= 1, got {self.dropout_mean_frames}")
        if not 0.0 <= self.dropout_confidence <= 1.0:
            raise ConfigError(f"noise dropout_confidence must be in [0, 1], got {self.dropout_confidence}")
        if self.dropout_start_probability > 1.0:
            raise ConfigError(
                f"noise dropout_rate {self.dropout_rate} with runs of {self.dropout_mean_frames} frames needs a run "
                "to start more than once per frame; lower dropout_rate or raise dropout_mean_frames")

    @property
    def dropout_start_probability(self) -> float:
        """Per-frame probability that a tracked hand is lost, so that the stationary lost fraction is
        `dropout_rate`: p / (p + 1/L) = rate."""
        if self.dropout_rate == 0.0:
            return 0.0
        return self.dropout_rate / ((1.0 - self.dropout_rate) * self.dropout_mean_frames)

    @property
    def is_clean(self) -> bool:
        return self == HumanNoise()

    @classmethod
    def from_config(cls, value: str | Mapping[str, Any] | HumanNoise | None) -> HumanNoise:
        """A preset name (`clean`, `realistic`), or a mapping of fields, optionally with `preset` as the base.

        Raises `InvalidChoiceError` for an unknown preset and `ConfigError` for unknown keys.
        """
        if value is None:
            return cls()
        if isinstance(value, HumanNoise):
            return value
        if isinstance(value, str):
            if value not in PRESETS:
                raise InvalidChoiceError("noise preset", value, PRESETS)
            return PRESETS[value]
        kw = dict(value)
        base = kw.pop("preset", "clean")
        reject_unknown_keys(kw, (f.name for f in dataclasses.fields(cls)), "noise")
        return dataclasses.replace(cls.from_config(str(base)), **kw)


PRESETS: dict[str, HumanNoise] = {
    "clean": HumanNoise(),
    # Of the order of published tracking errors: head-mounted VIO drifts about a centimetre and a
    # fraction of a degree over a 30 s tabletop episode; hand trackers are off by 5-10 mm per joint
    # (a few mm per axis) and a few degrees per hand, and lose a hand for a fraction of a second
    # every few seconds (occlusion, hands leaving the view).
    "realistic": HumanNoise(
        slam_drift_pos=0.002, slam_drift_yaw=0.002, camera_jitter_pos=0.001, camera_jitter_rot=0.002,
        wrist_pos=0.004, wrist_rot=0.035, keypoint_jitter=0.004, dropout_rate=0.04, dropout_mean_frames=8.0,
        dropout_confidence=0.05,
    ),
}


# Scalar rotation helpers: this runs once per frame and hand, where numpy's per-call overhead on
# 3-vectors dominates (egosim.geometry's batched versions cost 4x more here).
def _q2m(q: NDArray[np.float64]) -> NDArray[np.float64]:
    w, x, y, z = (float(v) for v in q)
    n = math.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w / n, x / n, y / n, z / n
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


_EYE = np.eye(3)


def _rotvec(rng: np.random.Generator, std: float) -> NDArray[np.float64]:
    """A small random rotation: axis-angle vector with each component N(0, std^2)."""
    if std == 0.0:
        return _EYE
    return np.array(rotvec_matrix_rows(*rng.normal(0.0, std, 3).tolist()))


def _rz(a: float) -> NDArray[np.float64]:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


class HumanNoiseModel:
    """The noise of one episode, applied causally frame by frame (see the module docstring)."""

    def __init__(self, noise: HumanNoise, fps: float, rng: np.random.Generator) -> None:
        if not fps > 0:
            raise ConfigError(f"fps must be > 0, got {fps}")
        self.noise, self.dt, self.rng = noise, 1.0 / float(fps), rng
        self.clean = noise.is_clean
        self.frames = 0
        self.drift_pos = np.zeros(3)
        self.drift_yaw = 0.0
        self.origin = np.zeros(3)
        self.lost = np.zeros(2, dtype=bool)
        self.last: Frame | None = None

    def apply(self, frame: Mapping[str, NDArray[Any]]) -> Frame:
        """The noisy estimate of one clean frame (arrays as in `info["human"]`)."""
        n, rng = self.noise, self.rng
        kp = np.asarray(frame["keypoints"], dtype=np.float64)
        conf = np.asarray(frame["keypoint_confidence"], dtype=np.float64)
        wrist = np.asarray(frame["wrist_pose"], dtype=np.float64)
        cam = np.asarray(frame["camera_pose"], dtype=np.float64)
        if self.clean:
            self.frames += 1
            return {"keypoints": kp.astype(np.float32), "keypoint_confidence": conf.astype(np.float32),
                    "wrist_pose": wrist.copy(), "camera_pose": cam.copy()}
        pc, rc = cam[:3], _q2m(cam[3:])
        if self.frames == 0:
            self.origin = pc.copy()
        else:  # the random walks step between frames, so frame 0 has no drift
            self.drift_pos = self.drift_pos + rng.normal(0.0, n.slam_drift_pos * math.sqrt(self.dt), 3)
            self.drift_yaw += float(rng.normal(0.0, n.slam_drift_yaw * math.sqrt(self.dt)))
        # Hands in the true camera frame, corrupted by the tracker.
        out_kp = np.empty_like(kp)
        out_wrist = np.empty_like(wrist)
        hands = []
        for h in range(2):
            pw, rw = wrist[h, :3], _q2m(wrist[h, 3:])
            k_c = (kp[h] - pc) @ rc  # rows: R_c^T (k - p_c)
            w_c, r_wc = rc.T @ (pw - pc), rc.T @ rw
            d_rot = _rotvec(rng, n.wrist_rot)
            d_pos = rng.normal(0.0, n.wrist_pos, 3) if n.wrist_pos else np.zeros(3)
            k_c = w_c + d_pos + (k_c - w_c) @ d_rot.T
            if n.keypoint_jitter:
                k_c[1:] += rng.normal(0.0, n.keypoint_jitter, k_c[1:].shape)
            hands.append((k_c, w_c + d_pos, d_rot @ r_wc))
        # The camera as SLAM reports it: true pose, jittered in its own frame, in the drifted world.
        j_rot = _rotvec(rng, n.camera_jitter_rot)
        j_pos = rng.normal(0.0, n.camera_jitter_pos, 3) if n.camera_jitter_pos else np.zeros(3)
        yaw = _rz(self.drift_yaw)
        pc_hat = self.origin + yaw @ (pc + rc @ j_pos - self.origin) + self.drift_pos
        rc_hat = yaw @ rc @ j_rot
        for h, (k_c, w_c, r_wc) in enumerate(hands):
            out_kp[h] = pc_hat + k_c @ rc_hat.T
            out_wrist[h, :3] = pc_hat + rc_hat @ w_c
            out_wrist[h, 3:] = matrix_rows_to_quat(rc_hat @ r_wc)
        out_conf = conf.copy()
        # Dropouts: a lost hand keeps its last estimate, with low confidence.
        p_start, p_end = n.dropout_start_probability, 1.0 / n.dropout_mean_frames
        for h in range(2):
            u = rng.random()
            if n.dropout_rate > 0.0:
                self.lost[h] = (u >= p_end) if self.lost[h] else (u < p_start)
            if self.lost[h]:
                if self.last is not None:
                    out_kp[h] = self.last["keypoints"][h]
                    out_wrist[h] = self.last["wrist_pose"][h]
                out_conf[h] = n.dropout_confidence
        out_cam = np.concatenate([pc_hat, matrix_rows_to_quat(rc_hat)])
        result = {"keypoints": out_kp.astype(np.float32), "keypoint_confidence": out_conf.astype(np.float32),
                  "wrist_pose": out_wrist, "camera_pose": out_cam}
        self.last = {"keypoints": out_kp.copy(), "wrist_pose": out_wrist.copy()}
        self.frames += 1
        return result


def apply_episode(frames: Mapping[str, NDArray[Any]], noise: HumanNoise, fps: float,
                  rng: np.random.Generator) -> Frame:
    """A whole episode through the model: arrays with a leading frame axis (T, ...) in, the same out."""
    missing = [k for k in FRAME_KEYS if k not in frames]
    if missing:
        raise ConfigError(f"human frames lack {missing}; expected keys {list(FRAME_KEYS)}")
    model = HumanNoiseModel(noise, fps, rng)
    n = len(frames["keypoints"])
    outs = [model.apply({k: frames[k][t] for k in FRAME_KEYS}) for t in range(n)]
    return {k: np.stack([o[k] for o in outs]) for k in FRAME_KEYS}


__all__ = ["FRAME_KEYS", "PRESETS", "HumanNoise", "HumanNoiseModel", "apply_episode"]
