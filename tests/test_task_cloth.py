"""The cloth tasks (shirt_fold, shirt_roll): the pinch model and the rubric predicates on built cloth states.

Predicate tests set the cloth's vertex positions directly (`ClothTask.set_vertices`, tests only) and
run `mj_forward`. Pinch tests drive a hand through the env's action only (wrist deltas and grasp
poses), as any policy would.
"""

from __future__ import annotations

import math

import egosim.tasks
import mujoco
import numpy as np
import pytest

from egosim.embodiment import SIDES, embodiment_names
from egosim.errors import EgosimError, InvalidChoiceError
from egosim.geometry import axis_angle_to_matrix
from egosim.rig import HOME_WRIST_MAT, TABLE_HEIGHT
from egosim.task import Milestone, Rubric
from egosim.tasks.cloth import BODY_L, BODY_W, CLOTH_RADIUS, LAYER, Z_FLAT, shirt_mesh
from egosim.tasks.scripted import _wrist_action

EMBODIMENTS = list(embodiment_names())
FLAT = {"id": None, "shirt_xy": [0.62, 0.0], "shirt_yaw": 0.0}


def _env(task: str, embodiment: str = "sharpa_wave", **options):
    return egosim.tasks.make_env(task, embodiment, obs_mode="state", privileged=True, task_options=options or None)


class _Hand:
    """Drives one hand's pads (thumb and its first partner) to a point through the env's action."""

    def __init__(self, env, side: str) -> None:
        self.env, self.side, self.emb = env, side, env.embodiment
        h = env.rig.hands[side]
        self.sites = [h.fingertip_sites[n] for n in self.emb.fingertip_sites[:2]]
        self.pads = [env.task.pinch._pad[s][0] for s in self.sites]
        self.rot = HOME_WRIST_MAT
        self.point = np.zeros(3)  # pads' midpoint in the pinch pose, wrist frame

    def measure(self) -> None:
        """Closes in the air and levels the pads: the wrist turns so the closed pads sit side by side."""
        self.step_to(None, "pinch", 15)
        d = self.env.data
        p, r = self.env.wrist_pose(self.side)
        a, b = (r.T @ (d.geom_xpos[g] - p) for g in self.pads)
        v = self.rot @ (b - a)
        axis = np.cross(v, [0.0, 0.0, 1.0])
        angle = math.asin(v[2] / np.linalg.norm(v))
        self.rot = axis_angle_to_matrix(axis / np.linalg.norm(axis), -angle) @ self.rot
        self.point = 0.5 * (a + b)
        self.pad_r = self.env.task.pinch._pad[self.sites[0]][1]

    def step_to(self, point, hand: str, steps: int):
        env = self.env
        info = {}
        for _ in range(steps):
            parts = []
            for s in SIDES:
                cmd = env.commanded_wrist_pose(s)
                goal = cmd if (s != self.side or point is None) else (point - self.rot @ self.point, self.rot)
                pose = hand if s == self.side else "open"
                parts.append(np.concatenate([_wrist_action(cmd, goal, env._max_step, env._max_rot),
                                             self.emb.grasp_pose(pose, s)]))
            _, _, term, _, info = env.step(np.concatenate(parts))
            assert not info["sim_unstable"] and info["mujoco_warnings"] == 0, info
        return info


def _pinch_corner(env, side: str = "right", close: bool = True):
    """Pinches the shirt near its hem corner on `side`; returns the hand and the corner's vertex."""
    task = env.task
    kp = task.mesh.keypoints[f"hem_{side}"]
    sign = 1.0 if side == "left" else -1.0
    hand = _Hand(env, side)
    hand.measure()
    corner = task.vertices(env.data)[kp].copy()
    target = corner + np.array([0.03, -0.03 * sign, 0.0])
    above = target + [0.0, 0.0, 0.08]
    hand.step_to(above, "pre_pinch", 25)
    low = target + [0.0, 0.0, hand.pad_r + CLOTH_RADIUS - 0.002]
    hand.step_to(low, "pre_pinch", 15)
    if close:
        hand.step_to(low, "pinch", 15)
    return hand, kp


@pytest.mark.parametrize("embodiment", EMBODIMENTS)
def test_pinch_lifts_the_corner_and_opening_releases_it(embodiment: str) -> None:
    env = _env("shirt_fold", embodiment)
    env.reset(seed=0, options={"initial_state": FLAT})
    hand, kp = _pinch_corner(env)
    assert env.task.pinch.held("right"), "a pinch on the cloth anchored nothing"
    top = env.task.vertices(env.data)[kp] + [0, 0, 0.12]
    hand.step_to(top, "pinch", 25)
    held = list(env.task.pinch.held("right"))
    lifted = float(env.task.vertices(env.data)[held, 2].min() - TABLE_HEIGHT)
    corner = float(env.task.vertices(env.data)[kp][2] - TABLE_HEIGHT)
    assert lifted > 0.07 and corner > 0.04, f"pinched cloth {lifted:.3f} m, corner {corner:.3f} m above the table"
    hand.step_to(None, "open", 10)
    assert not env.task.pinch.held("right")
    hand.step_to(None, "open", 30)
    assert float(env.task.vertices(env.data)[kp][2] - TABLE_HEIGHT) < 0.03, "the corner did not fall back"


def test_no_anchor_in_the_air_with_one_finger_or_by_friction() -> None:
    env = _env("shirt_fold")
    env.reset(seed=0, options={"initial_state": FLAT})
    hand = _Hand(env, "right")
    hand.step_to(None, "pinch", 15)  # closing in the air
    assert env.task.pinch.anchored == 0
    # One fingertip on the cloth: the hand stays in pre_pinch (thumb and partner apart) resting on it.
    env.reset(seed=0, options={"initial_state": FLAT})
    _pinch_corner(env, close=False)
    assert env.task.pinch.anchored == 0
    # The friction option never anchors.
    env = _env("shirt_fold", pinch="friction")
    env.reset(seed=0, options={"initial_state": FLAT})
    _pinch_corner(env)
    assert env.task.pinch.anchored == 0
