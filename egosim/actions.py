"""Action chunks: the one utility that turns a policy's chunk into the env's per-step actions.

Per-step wrist actions (what `env.step` takes) are relative to the *current commanded* wrist pose, in
that wrist's frame. Policies predict chunks whose wrist part is relative to the chunk's *first frame*:
entry k holds dW_k = W_ref^-1 W_k, where W_ref is the commanded pose when the chunk was predicted
(EgoScale's dW_t = W_0^-1 W_t). The step that reaches W_k from W_{k-1} is dW_{k-1}^-1 dW_k, with
dW_{-1} = identity. Hand joints are absolute in both forms and pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from egosim.errors import InvalidActionError
from egosim.geometry import matrix_to_rot6d, rot6d_to_matrix

WRIST_DIM = 9  # xyz (metres) + rot6d


def side_slices(hand_dof: int) -> dict[str, slice]:
    """Slice names of a bimanual action/state vector: left wrist, left hand, right wrist, right hand."""
    per_side = WRIST_DIM + hand_dof
    return {
        "left_wrist_eef": slice(0, WRIST_DIM),
        "left_hand_joints": slice(WRIST_DIM, per_side),
        "right_wrist_eef": slice(per_side, per_side + WRIST_DIM),
        "right_hand_joints": slice(per_side + WRIST_DIM, 2 * per_side),
    }


def _wrist_offsets(hand_dof: int) -> Sequence[int]:
    return (0, WRIST_DIM + hand_dof)


def _as_actions(arr: NDArray, hand_dof: int, what: str) -> NDArray[np.float64]:
    out = np.asarray(arr, dtype=np.float64)
    if out.ndim != 2 or out.shape[1] != 2 * (WRIST_DIM + hand_dof):
        raise InvalidActionError(f"{what} has shape {out.shape}; expected (H, {2 * (WRIST_DIM + hand_dof)})")
    return out


def chunk_to_step_actions(chunk: NDArray, hand_dof: int) -> NDArray[np.float64]:
    """Converts a chunk (H, D) with chunk-relative wrist poses into H per-step env actions."""
    chunk = _as_actions(chunk, hand_dof, "action chunk")
    out = chunk.copy()
    for off in _wrist_offsets(hand_dof):
        pos = chunk[:, off : off + 3]
        rot = rot6d_to_matrix(chunk[:, off + 3 : off + 9])
        prev_pos, prev_rot = np.zeros(3), np.eye(3)
        for k in range(chunk.shape[0]):
            # step_k = prev^-1 * cur, expressed in the previous commanded frame
            out[k, off : off + 3] = prev_rot.T @ (pos[k] - prev_pos)
            out[k, off + 3 : off + 9] = matrix_to_rot6d(prev_rot.T @ rot[k])
            prev_pos, prev_rot = pos[k], rot[k]
    return out


def step_actions_to_chunk(steps: NDArray, hand_dof: int) -> NDArray[np.float64]:
    """Inverse of `chunk_to_step_actions`: accumulates per-step actions into a chunk."""
    steps = _as_actions(steps, hand_dof, "step actions")
    out = steps.copy()
    for off in _wrist_offsets(hand_dof):
        pos, rot = np.zeros(3), np.eye(3)
        for k in range(steps.shape[0]):
            pos = pos + rot @ steps[k, off : off + 3]
            rot = rot @ rot6d_to_matrix(steps[k, off + 3 : off + 9])
            out[k, off : off + 3] = pos
            out[k, off + 3 : off + 9] = matrix_to_rot6d(rot)
    return out
