"""Scripted expert for shirt_roll (not written yet): holds both hands open at home.

A placeholder so the task satisfies the Task contract (`make_expert`); it scores 0. The plan (issue
#11): semantic handles only (fingertip sites, GraspGeometry, grasp poses), acting only through the
action; the cloth's pinch model anchors what the fingertips pinch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from egosim.embodiment import SIDES
from egosim.geometry import matrix_to_rot6d

if TYPE_CHECKING:
    from egosim.env import EgosimEnv


class ShirtRollExpert:
    """Privileged-state expert; `act` returns a one-step chunk (1, action_dim)."""

    def __init__(self, env: EgosimEnv) -> None:
        self.env = env
        self.emb = env.embodiment

    def reset(self, seed: int | None = None) -> None:
        """Nothing to reset yet."""

    def act(self, observation: dict[str, Any]) -> NDArray[np.float64]:
        still = np.concatenate([np.zeros(3), matrix_to_rot6d(np.eye(3))])
        parts = [np.concatenate([still, self.emb.grasp_pose("open", s)]) for s in SIDES]
        return np.concatenate(parts)[None, :]
