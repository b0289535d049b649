"""Rotation and pose helpers shared by the env, the policies and the data tools.

Conventions (one source of truth, also written to the dataset's modality file):
- Quaternions are (w, x, y, z), as in MuJoCo.
- rot6d is the first two *columns* of the rotation matrix, concatenated: (R[:, 0], R[:, 1]) (Zhou et al.
  2019). The identity is (1, 0, 0, 0, 1, 0). Decoding orthonormalises with Gram-Schmidt, so any 6-vector
  whose halves are non-zero and not parallel decodes to a proper rotation.
- A pose is (position (3,), rotation matrix (3, 3)).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

IDENTITY_ROT6D = np.array([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
_EPS = 1e-9


def rot6d_to_matrix(rot6d: ArrayLike) -> NDArray[np.float64]:
    """Decodes rot6d (..., 6) into rotation matrices (..., 3, 3) by Gram-Schmidt.

    Degenerate inputs (a zero first half, or halves that are parallel) have no rotation; they decode
    to the identity so that a policy's bad output cannot produce NaN in the simulator.
    """
    v = np.asarray(rot6d, dtype=np.float64)
    a1, a2 = v[..., 0:3], v[..., 3:6]
    n1 = np.linalg.norm(a1, axis=-1, keepdims=True)
    b1 = a1 / np.maximum(n1, _EPS)
    b2 = a2 - np.sum(b1 * a2, axis=-1, keepdims=True) * b1
    n2 = np.linalg.norm(b2, axis=-1, keepdims=True)
    b2 = b2 / np.maximum(n2, _EPS)
    b3 = np.cross(b1, b2)
    out = np.stack([b1, b2, b3], axis=-1)
    bad = (n1[..., 0] < 1e-6) | (n2[..., 0] < 1e-6)
    if np.any(bad):
        out[bad] = np.eye(3)
    return out


def matrix_to_rot6d(mat: ArrayLike) -> NDArray[np.float64]:
    """Encodes rotation matrices (..., 3, 3) as rot6d (..., 6): the first two columns."""
    m = np.asarray(mat, dtype=np.float64)
    return np.concatenate([m[..., :, 0], m[..., :, 1]], axis=-1)


def quat_to_matrix(quat: ArrayLike) -> NDArray[np.float64]:
    """Unit quaternions (..., 4) in (w, x, y, z) order to rotation matrices (..., 3, 3)."""
    q = np.asarray(quat, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def matrix_to_quat(mat: ArrayLike) -> NDArray[np.float64]:
    """Rotation matrices (..., 3, 3) to unit quaternions (..., 4), (w, x, y, z), with w >= 0."""
    m = np.asarray(mat, dtype=np.float64)
    flat = m.reshape(-1, 3, 3)
    out = np.empty((flat.shape[0], 4))
    for i, r in enumerate(flat):
        t = np.trace(r)
        if t > 0:
            s = 2.0 * np.sqrt(t + 1.0)
            q = [0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s]
        elif r[0, 0] > r[1, 1] and r[0, 0] > r[2, 2]:
            s = 2.0 * np.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2])
            q = [(r[2, 1] - r[1, 2]) / s, 0.25 * s, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s]
        elif r[1, 1] > r[2, 2]:
            s = 2.0 * np.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2])
            q = [(r[0, 2] - r[2, 0]) / s, (r[0, 1] + r[1, 0]) / s, 0.25 * s, (r[1, 2] + r[2, 1]) / s]
        else:
            s = 2.0 * np.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1])
            q = [(r[1, 0] - r[0, 1]) / s, (r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, 0.25 * s]
        q = np.asarray(q)
        out[i] = q / np.linalg.norm(q) * (1.0 if q[0] >= 0 else -1.0)
    return out.reshape(m.shape[:-2] + (4,))


def rotvec_matrix_rows(x: float, y: float, z: float) -> list[list[float]]:
    """The rotation of the axis-angle vector (x, y, z) (Rodrigues), as nested lists of floats.

    With `matrix_rows_to_quat`, the scalar path for code that turns one small rotation per control
    step, where numpy's per-call overhead on 3-vectors costs more than the arithmetic.
    """
    a = math.sqrt(x * x + y * y + z * z)
    if a < 1e-12:
        return [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    ux, uy, uz = x / a, y / a, z / a
    c, s, v = math.cos(a), math.sin(a), 1.0 - math.cos(a)
    return [[c + ux * ux * v, ux * uy * v - uz * s, ux * uz * v + uy * s],
            [uy * ux * v + uz * s, c + uy * uy * v, uy * uz * v - ux * s],
            [uz * ux * v - uy * s, uz * uy * v + ux * s, c + uz * uz * v]]


def matrix_rows_to_quat(m: Sequence[Sequence[float]]) -> NDArray[np.float64]:
    """One rotation matrix (nested lists or a 3x3 array) to a unit quaternion (w, x, y, z), w >= 0,
    in plain floats (Shepperd's method, as `matrix_to_quat`)."""
    r = m.tolist() if isinstance(m, np.ndarray) else m
    t = r[0][0] + r[1][1] + r[2][2]
    if t > 0:
        s = 2.0 * math.sqrt(t + 1.0)
        q = (0.25 * s, (r[2][1] - r[1][2]) / s, (r[0][2] - r[2][0]) / s, (r[1][0] - r[0][1]) / s)
    elif r[0][0] > r[1][1] and r[0][0] > r[2][2]:
        s = 2.0 * math.sqrt(1.0 + r[0][0] - r[1][1] - r[2][2])
        q = ((r[2][1] - r[1][2]) / s, 0.25 * s, (r[0][1] + r[1][0]) / s, (r[0][2] + r[2][0]) / s)
    elif r[1][1] > r[2][2]:
        s = 2.0 * math.sqrt(1.0 + r[1][1] - r[0][0] - r[2][2])
        q = ((r[0][2] - r[2][0]) / s, (r[0][1] + r[1][0]) / s, 0.25 * s, (r[1][2] + r[2][1]) / s)
    else:
        s = 2.0 * math.sqrt(1.0 + r[2][2] - r[0][0] - r[1][1])
        q = ((r[1][0] - r[0][1]) / s, (r[0][2] + r[2][0]) / s, (r[1][2] + r[2][1]) / s, 0.25 * s)
    n = math.sqrt(sum(v * v for v in q)) * (1.0 if q[0] >= 0 else -1.0)
    return np.array([v / n for v in q])


def axis_angle_to_matrix(axis: ArrayLike, angle: float) -> NDArray[np.float64]:
    """Rotation of `angle` radians about `axis` (need not be unit length)."""
    a = np.asarray(axis, dtype=np.float64)
    a = a / max(np.linalg.norm(a), _EPS)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def rotation_angle(mat: ArrayLike) -> float:
    """The angle (radians, in [0, pi]) of a rotation matrix."""
    m = np.asarray(mat)
    return float(np.arccos(np.clip((m[0, 0] + m[1, 1] + m[2, 2] - 1.0) * 0.5, -1.0, 1.0)))


def limit_rotation(mat: NDArray[np.float64], max_angle: float) -> NDArray[np.float64]:
    """Scales a rotation down to at most `max_angle` radians about the same axis."""
    angle = rotation_angle(mat)
    if angle <= max_angle:
        return mat
    axis = np.array([mat[2, 1] - mat[1, 2], mat[0, 2] - mat[2, 0], mat[1, 0] - mat[0, 1]])
    if np.linalg.norm(axis) < 1e-6:  # angle ~ pi: the axis is the eigenvector of eigenvalue 1
        w, v = np.linalg.eigh((mat + mat.T) * 0.5)
        axis = v[:, int(np.argmax(w))]
    return axis_angle_to_matrix(axis, max_angle)


def look_at_xyaxes(forward: ArrayLike, up: ArrayLike) -> NDArray[np.float64]:
    """MJCF camera `xyaxes` for a camera looking along `forward` with `up` as the image's up."""
    f = np.asarray(forward, dtype=np.float64)
    z = -f / np.linalg.norm(f)
    x = np.cross(np.asarray(up, dtype=np.float64), z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.concatenate([x, y])


# Index of rot6d's entries in a row-major flattened 3x3 matrix (MuJoCo's xmat): column 0 then column 1.
ROT6D_FROM_XMAT = np.array([0, 3, 6, 1, 4, 7])
