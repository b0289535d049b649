"""Human hand keypoints: index lookup, the canonical wrist frame, and a kinematic hand for synthetic poses.

The 21 keypoints per hand are `egosim.embodiment.HUMAN_KEYPOINTS` (wrist, then thumb, index, middle,
ring and little finger, each knuckle, intermediate base, intermediate tip, tip). Every human dataset
stores `wrist_pose` in the *canonical wrist frame* defined here from the keypoints themselves, so a
pose from any source (EgoDex's ARKit skeleton, the simulated human hand) means the same thing, and
retargeting needs one fixed offset per robot hand (`Embodiment.human_wrist_offset`):

- origin: the wrist keypoint;
- x: toward the middle finger's knuckle;
- z: out of the palm (the palm normal, from the index and little knuckles), on both hands;
- y = z x x (toward the thumb on the left hand, away from it on the right).

`KinematicHand` is a small forward-kinematics model of an adult human hand (segment lengths near
the population means, hand length 0.19 m) in that frame. Its open pose is the reference human hand
against which robot hands are scaled and aligned; its random pose trajectories feed tests and
`benchmarks/retarget.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from egosim.embodiment import HUMAN_KEYPOINTS, SIDES
from egosim.errors import InvalidChoiceError

KP = {name: i for i, name in enumerate(HUMAN_KEYPOINTS)}
FINGERS = ("thumb", "index", "middle", "ring", "little")
PARTS = ("knuckle", "intermediate_base", "intermediate_tip", "tip")
TIPS = tuple(KP[f"{f}_tip"] for f in FINGERS)


def _side_sign(side: str) -> float:
    if side not in SIDES:
        raise InvalidChoiceError("side", side, SIDES)
    return 1.0 if side == "right" else -1.0


def wrist_frame(keypoints: ArrayLike, side: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The canonical wrist frame (module docstring) of one hand's keypoints.

    Args:
        keypoints: (..., 21, 3) keypoints of one hand, any frame.
        side: "left" or "right" (the palm normal's sign depends on it).

    Returns:
        (position (..., 3), rotation (..., 3, 3)) in the keypoints' frame; columns are the x, y, z axes.
    """
    k = np.asarray(keypoints, dtype=np.float64)
    wrist = k[..., KP["wrist"], :]
    x = k[..., KP["middle_knuckle"], :] - wrist
    x = x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)
    # index x little points out of the palm on a right hand (thumb side at -y), into it on a left hand
    n = np.cross(k[..., KP["index_knuckle"], :] - wrist, k[..., KP["little_knuckle"], :] - wrist) * _side_sign(side)
    z = n - np.sum(n * x, axis=-1, keepdims=True) * x
    z = z / np.maximum(np.linalg.norm(z, axis=-1, keepdims=True), 1e-9)
    y = np.cross(z, x)
    return wrist, np.stack([x, y, z], axis=-1)


def pose_to_vec(pos: ArrayLike, rot: ArrayLike) -> NDArray[np.float64]:
    """(..., 3) positions and (..., 3, 3) rotations -> (..., 7) xyz + quaternion (w, x, y, z)."""
    from egosim.geometry import matrix_to_quat

    return np.concatenate([np.asarray(pos, dtype=np.float64), matrix_to_quat(rot)], axis=-1)


def vec_to_pose(vec: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(..., 7) xyz + quaternion (w, x, y, z) -> (positions (..., 3), rotations (..., 3, 3))."""
    from egosim.geometry import quat_to_matrix

    v = np.asarray(vec, dtype=np.float64)
    return v[..., :3].copy(), quat_to_matrix(v[..., 3:7])


def canonical_wrist_pose(keypoints: ArrayLike, side: str) -> NDArray[np.float64]:
    """`wrist_pose` (..., 7) of one hand as human datasets store it: the canonical frame as xyz + wxyz."""
    return pose_to_vec(*wrist_frame(keypoints, side))


def _rz(a: float | NDArray[np.float64]) -> NDArray[np.float64]:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _ry(a: float) -> NDArray[np.float64]:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rx(a: float) -> NDArray[np.float64]:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


@dataclass(frozen=True)
class KinematicHand:
    """Forward kinematics of a human right hand in the canonical wrist frame (left: mirrored in y).

    Per finger (index..little): knuckle position, splay angle in the palm plane and three segment
    lengths; joints MCP flexion and abduction, PIP and DIP flexion (flexion bends toward +z, the palm
    side). The thumb starts at its knuckle (the CMC joint) with CMC flexion (across the palm) and
    abduction (out of the palm plane), then MCP and IP flexion about an axis rolled by `thumb_roll`
    (the thumb's pronation), so the thumb curls toward the fingers. Angles in radians.
    """

    knuckles: tuple[tuple[float, float, float], ...] = (
        (0.026, -0.022, 0.012),  # thumb CMC
        (0.091, -0.023, 0.0), (0.094, 0.0, 0.0), (0.088, 0.019, 0.0), (0.080, 0.036, 0.0),
    )
    splay: tuple[float, ...] = (-0.95, -0.10, 0.0, 0.10, 0.22)  # rest direction in the palm plane (about z)
    lengths: tuple[tuple[float, float, float], ...] = (
        (0.046, 0.032, 0.028),
        (0.040, 0.024, 0.022), (0.045, 0.028, 0.023), (0.042, 0.027, 0.023), (0.033, 0.019, 0.021),
    )
    thumb_lift: float = 0.45  # rest elevation of the thumb metacarpal toward the palm side
    thumb_roll: float = -1.0

    def keypoints(self, angles: ArrayLike, side: str = "right") -> NDArray[np.float64]:
        """(21, 3) keypoints of one pose; `angles` is (5, 4): per finger (flex/CMC-flex, abduction, mid, distal).

        Thumb row: CMC flexion, CMC abduction, MCP flexion, IP flexion. Finger rows: MCP flexion, MCP
        abduction, PIP flexion, DIP flexion.
        """
        a = np.asarray(angles, dtype=np.float64).reshape(5, 4)
        out = np.zeros((21, 3))
        for f, name in enumerate(FINGERS):
            base = np.asarray(self.knuckles[f])
            l1, l2, l3 = self.lengths[f]
            if name == "thumb":
                frame = _rz(self.splay[0] + a[f, 0]) @ _ry(-(self.thumb_lift + a[f, 1])) @ _rx(self.thumb_roll)
                r1 = frame
                r2 = frame @ _ry(-a[f, 2])
                r3 = r2 @ _ry(-a[f, 3])
            else:
                frame = _rz(self.splay[f] + a[f, 1])
                r1 = frame @ _ry(-a[f, 0])
                r2 = r1 @ _ry(-a[f, 2])
                r3 = r2 @ _ry(-a[f, 3])
            p1 = base + r1[:, 0] * l1
            p2 = p1 + r2[:, 0] * l2
            p3 = p2 + r3[:, 0] * l3
            i = KP[f"{name}_knuckle"]
            out[i:i + 4] = np.stack([base, p1, p2, p3])
        if _side_sign(side) < 0:
            out[:, 1] *= -1.0
        return out

    def metacarpals(self, side: str = "right") -> NDArray[np.float64]:
        """(4, 3) positions of the index..little metacarpal joints (EgoDex's 4 extra hand joints):
        40 % of the way from the wrist to each knuckle."""
        out = 0.4 * np.asarray(self.knuckles[1:])
        if _side_sign(side) < 0:
            out[:, 1] *= -1.0
        return out

    @property
    def length(self) -> float:
        """Hand length (wrist to middle fingertip, open hand), metres."""
        return float(np.linalg.norm(self.keypoints(np.zeros((5, 4)))[KP["middle_tip"]]))


# Ranges of the random poses (radians), per finger row of `KinematicHand.keypoints`' angles.
POSE_LOW = np.array([[-0.3, -0.2, 0.0, 0.0]] + [[-0.2, -0.25, 0.0, 0.0]] * 4)
POSE_HIGH = np.array([[1.1, 0.6, 0.9, 1.2]] + [[1.5, 0.25, 1.7, 1.2]] * 4)


def random_hand_trajectory(rng: np.random.Generator, frames: int, *, fps: float = 30.0, keyframe_s: float = 0.7,
                           hand: KinematicHand = KinematicHand()) -> NDArray[np.float64]:
    """(frames, 5, 4) joint angles moving smoothly between random key poses (cosine blends).

    Key poses are uniform within POSE_LOW..POSE_HIGH, with DIP coupled to PIP (2/3, as in human
    fingers) and one in three key poses a pinch-like thumb flexion, so thumb-finger distances span
    open hands to near contact.
    """
    n_keys = max(2, int(np.ceil(frames / (keyframe_s * fps))) + 1)
    keys = rng.uniform(POSE_LOW, POSE_HIGH, size=(n_keys, 5, 4))
    keys[:, 1:, 3] = np.clip(keys[:, 1:, 2] * 2.0 / 3.0 + rng.normal(0, 0.1, (n_keys, 4)), 0.0, 1.2)
    pinch = rng.random(n_keys) < 1.0 / 3.0
    keys[pinch, 0] = np.array([0.8, 0.0, 0.3, 0.0]) + rng.normal(0, 0.05, (int(pinch.sum()), 4))
    keys[pinch, 1] = np.array([0.75, 0.0, 0.55, 0.35]) + rng.normal(0, 0.05, (int(pinch.sum()), 4))
    t = np.arange(frames) / (keyframe_s * fps)
    k = np.minimum(t.astype(int), n_keys - 2)
    u = (1.0 - np.cos(np.pi * np.clip(t - k, 0.0, 1.0))) / 2.0
    return keys[k] * (1.0 - u)[:, None, None] + keys[k + 1] * u[:, None, None]


def synthetic_hands(rng: np.random.Generator, frames: int, *, fps: float = 30.0,
                    center: ArrayLike = (0.35, 0.0, 0.95), hand: KinematicHand = KinematicHand()) -> NDArray[np.float64]:
    """(frames, 2, 21, 3) world keypoints of two hands doing tabletop-like motion (z up, x forward).

    Each hand's fingers follow `random_hand_trajectory`; its wrist starts palm down, fingers forward,
    beside `center` (0.2 m to the side), and wanders smoothly: up to ~8 cm of translation and
    ~0.5 rad of yaw, pitch and roll (sums of slow sines with random phases).
    """
    t = np.arange(frames) / fps
    out = np.zeros((frames, 2, 21, 3))
    palm_down = np.diag([1.0, -1.0, -1.0])  # canonical z (out of the palm) points down
    for s, side in enumerate(SIDES):
        ang = random_hand_trajectory(rng, frames, fps=fps, hand=hand)
        freq = rng.uniform(0.15, 0.5, size=6)
        phase = rng.uniform(0, 2 * np.pi, size=6)
        amp = np.array([0.08, 0.06, 0.05, 0.5, 0.3, 0.4])
        wave = amp * np.sin(2 * np.pi * freq * t[:, None] + phase)
        base = np.asarray(center, dtype=np.float64) + [0.0, 0.2 if side == "left" else -0.2, 0.0]
        for k in range(frames):
            rot = _rz(wave[k, 3]) @ _ry(wave[k, 4]) @ _rx(wave[k, 5]) @ palm_down
            out[k, s] = hand.keypoints(ang[k], side) @ rot.T + base + wave[k, :3]
    return out


__all__ = ["FINGERS", "KP", "KinematicHand", "PARTS", "TIPS", "canonical_wrist_pose", "pose_to_vec",
           "random_hand_trajectory", "synthetic_hands", "vec_to_pose", "wrist_frame"]
