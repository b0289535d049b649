"""A head that moves like a person's: where the human embodiment's ego camera looks.

Egocentric human video is filmed from a moving head. People look at the hand that is working, shift
their gaze in quick jumps (a new fixation when the hand has moved on, or after a while), turn the
head toward it smoothly, lean a little toward what they look at, and never hold perfectly still. The
`HeadController` reproduces that from the hands' positions alone (no task knowledge), seeded, once
per control step:

- attention: each hand's palm speed, smoothed over `attention_tau_s`; the faster hand is the
  working hand (the other must be 1.5x faster to take over); with both hands still, the midpoint;
- fixation: a point between the working palm and the table under it (`look_down`); it jumps to the
  current point when that is `fixation_jump` m away or after an exponential dwell (`dwell_mean_s`);
- gaze: follows the fixation as a critically damped second-order system (`gaze_tau_s`), so head
  turns are smooth, 0.3-0.5 s long;
- head position: the rest eye point plus a lean toward the gaze (`lean`, at most `max_lean`), plus
  Ornstein-Uhlenbeck sway in position (`sway_pos_std`) and orientation (`sway_rot_std`).

The camera frame is MuJoCo's (and ARKit's): +x right, +y up, looking along -z.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from egosim.errors import ConfigError
from egosim.geometry import look_at_xyaxes, matrix_rows_to_quat, rotvec_matrix_rows

HEAD_MODES = ("auto", "natural", "fixed")


@dataclass(frozen=True)
class HeadMotion:
    """Parameters of the head model (see the module docstring); lengths in metres, times in seconds."""

    eye: tuple[float, float, float] = (0.12, 0.0, 1.36)
    look_down: float = 0.4
    attention_tau_s: float = 0.3
    fixation_jump: float = 0.06
    dwell_mean_s: float = 1.5
    gaze_tau_s: float = 0.12
    lean: float = 0.1
    max_lean: float = 0.04
    sway_pos_std: float = 0.006
    sway_rot_std: float = 0.012
    sway_tau_s: float = 1.2
    idle_speed: float = 0.03

    def __post_init__(self) -> None:
        if len(self.eye) != 3:
            raise ConfigError(f"head eye must be (x, y, z), got {self.eye}")
        for key in ("attention_tau_s", "dwell_mean_s", "gaze_tau_s", "sway_tau_s"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"head {key} must be > 0, got {getattr(self, key)}")
        for key in ("fixation_jump", "lean", "max_lean", "sway_pos_std", "sway_rot_std", "idle_speed"):
            if getattr(self, key) < 0:
                raise ConfigError(f"head {key} must be >= 0, got {getattr(self, key)}")
        if not 0.0 <= self.look_down <= 1.0:
            raise ConfigError(f"head look_down must be in [0, 1], got {self.look_down}")


def look_at_matrix(eye: NDArray[np.float64], target: NDArray[np.float64]) -> NDArray[np.float64]:
    """Rotation of a camera at `eye` looking at `target` with world +z up (columns: the camera axes)."""
    xy = look_at_xyaxes(target - eye, [0.0, 0.0, 1.0])
    x, y = xy[:3], xy[3:]
    return np.column_stack([x, y, np.cross(x, y)])


def _look_at_sway_quat(eye: NDArray[np.float64], target: NDArray[np.float64], sway: NDArray[np.float64]) -> NDArray[np.float64]:
    """Quaternion (w, x, y, z) of `look_at_matrix(eye, target)` turned by the axis-angle `sway` in the
    camera frame. Plain floats: this runs every control step, where numpy's per-call overhead on
    3-vectors cost more than the arithmetic (it is checked against `look_at_matrix` in the tests)."""
    fx, fy, fz = (float(v) for v in (target - eye))
    n = math.sqrt(fx * fx + fy * fy + fz * fz)
    zx, zy, zz = -fx / n, -fy / n, -fz / n  # camera +z points away from the target
    # x = up (world z) cross z, y = z cross x
    xx, xy_, xz = -zy, zx, 0.0
    n = math.sqrt(xx * xx + xy_ * xy_)
    xx, xy_ = xx / n, xy_ / n
    yx, yy, yz = zy * xz - zz * xy_, zz * xx - zx * xz, zx * xy_ - zy * xx
    m = [[xx, yx, zx], [xy_, yy, zy], [xz, yz, zz]]
    if any(sway):  # m @ R(sway)
        r = rotvec_matrix_rows(*(float(v) for v in sway))
        m = [[sum(m[i][k] * r[k][j] for k in range(3)) for j in range(3)] for i in range(3)]
    return matrix_rows_to_quat(m)


class HeadController:
    """The head's pose each control step, from the palms' positions (see the module docstring)."""

    def __init__(self, motion: HeadMotion, table_height: float, dt: float) -> None:
        self.m, self.table_height, self.dt = motion, float(table_height), float(dt)
        self.rng = np.random.default_rng(0)
        self.working = 0
        self.speed = np.zeros(2)
        self.prev = np.zeros((2, 3))
        self.fixation = np.zeros(3)
        self.gaze = np.zeros(3)
        self.gaze_vel = np.zeros(3)
        self.dwell = 0.0
        self.sway_pos = np.zeros(3)
        self.sway_rot = np.zeros(3)

    def reset(self, palms: NDArray[np.float64], rng: np.random.Generator) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Starts looking at the hands' midpoint; returns the first (position, quaternion wxyz)."""
        self.rng = rng
        self.prev = np.array(palms, dtype=np.float64)
        self.speed[:] = 0.0
        self.working = 0
        self.fixation = self._look_point(self.prev.mean(axis=0))
        self.gaze, self.gaze_vel = self.fixation.copy(), np.zeros(3)
        self.dwell = self._draw_dwell()
        self.sway_pos = self.rng.normal(0.0, self.m.sway_pos_std, 3)
        self.sway_rot = self.rng.normal(0.0, self.m.sway_rot_std, 3)
        return self.pose()

    def step(self, palms: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Advances one control step with the palms' current positions; returns (position, quat)."""
        m, dt = self.m, self.dt
        palms = np.asarray(palms, dtype=np.float64)
        d = palms - self.prev
        inst = np.sqrt((d * d).sum(axis=1)) / dt
        self.prev = palms.copy()
        a = 1.0 - math.exp(-dt / m.attention_tau_s)
        self.speed += a * (inst - self.speed)
        other = 1 - self.working
        if self.speed[other] > 1.5 * self.speed[self.working]:
            self.working = other
        if self.speed.max() < m.idle_speed:
            point = self._look_point(palms.mean(axis=0))
        else:
            point = self._look_point(palms[self.working])
        self.dwell -= dt
        if np.linalg.norm(point - self.fixation) > m.fixation_jump or self.dwell <= 0.0:
            self.fixation = point
            self.dwell = self._draw_dwell()
        # Critically damped second order toward the fixation, integrated exactly enough at 20 Hz.
        w = 1.0 / m.gaze_tau_s
        for _ in range(4):
            h = dt / 4
            acc = w * w * (self.fixation - self.gaze) - 2.0 * w * self.gaze_vel
            self.gaze_vel = self.gaze_vel + h * acc
            self.gaze = self.gaze + h * self.gaze_vel
        # Ornstein-Uhlenbeck sway with the configured stationary std.
        decay = math.exp(-dt / m.sway_tau_s)
        kick = math.sqrt(1.0 - decay * decay)
        self.sway_pos = decay * self.sway_pos + kick * self.rng.normal(0.0, m.sway_pos_std, 3)
        self.sway_rot = decay * self.sway_rot + kick * self.rng.normal(0.0, m.sway_rot_std, 3)
        return self.pose()

    def pose(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The head (camera) pose now: position and quaternion (w, x, y, z), rig frame."""
        eye = np.asarray(self.m.eye, dtype=np.float64)
        offset = (self.gaze - eye)[:2]
        lean = self.m.lean * offset
        n = float(np.linalg.norm(lean))
        if n > self.m.max_lean:
            lean *= self.m.max_lean / n
        pos = eye + np.array([lean[0], lean[1], 0.0]) + self.sway_pos
        return pos, _look_at_sway_quat(pos, self.gaze, self.sway_rot)

    def _look_point(self, palm: NDArray[np.float64]) -> NDArray[np.float64]:
        p = np.array(palm, dtype=np.float64)
        p[2] += self.m.look_down * (self.table_height - p[2])
        return p

    def _draw_dwell(self) -> float:
        return float(self.rng.exponential(self.m.dwell_mean_s))
