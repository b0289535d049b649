"""Scripted expert for pen_in_bin, written once against semantic handles (any embodiment).

Right hand: a top-down claw around the canister (palm just above the rim, the fingertips down the
far wall and the opposed thumb down the near wall; the claw's centre, measured on the hand model, on
the canister's axis), lift, carry over the green square, set down, open, lift the fingers off the
rim and go back to the home pose, out of the left hand's way. A grasp that does not oppose the thumb
(fingers hooked over one wall) tips the canister on lift.

Left hand, meanwhile: a top-down pinch of the marker at its middle, the hand yawed so the pinch
closes across the marker and as low as the fingertips can go without touching the table, so the
fingertips meet the marker at its equator, with the marker's middle at the embodiment's
`pinch_hold` point: the pinch point (where the pads meet closing on nothing; Sharpa Wave, Dex3) or
where the closing pads meet an object of the marker's thickness from both sides at once (the human
hand, whose pads meet a marker 3 cm from its pinch point: placed there, the pinch dragged the marker
along the table). Turning a marker upright in the air slides it out of a
fingertip pinch, so the hand tips it up about its far end, which stays on the table (closed loop,
15 degrees a step, from where the marker really is), lifts it leaning at 30 degrees, waits for the
canister to stand on the square and the right hand to be home (a large hand on its way out can knock
the marker out of the pinch), lowers the marker's lower end into the canister near the far wall,
tips it steeper about that end, then opens slowly and backs the fingers off it. Everything moves
through physics: the wrists follow speed-limited targets, the fingers squeeze.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from egosim.embodiment import SIDES
from egosim.geometry import axis_angle_to_matrix
from egosim.rig import HOME_WRIST_MAT, TABLE_HEIGHT
from egosim.tasks.pen_in_bin import CAN_H, MARKER_HALF, MARKER_R
from egosim.tasks.scripted import GraspGeometry, HandScript, Pose, Stage, step_scripts, wrist_for_point

if TYPE_CHECKING:
    from egosim.env import EgosimEnv

CARRY_LIFT = 0.12
TIP_CLEARANCE = 0.0  # fingertips' lowest point above the table while pinching the marker (m)
PIVOT_STEP_DEG = 15.0  # one closed-loop step of tipping the marker about its lower end
TILT_DEG = 30.0  # tip the marker this far up about its far end (on the table) before lifting it
STEEPEN_STEPS = 2  # then, with its lower end inside the canister, this many more pivot steps
INSERT_OFFSET = 0.02  # lower the marker's end this far from the canister axis, away from its lean



def _horizontal_unit(v: NDArray[np.float64]) -> NDArray[np.float64]:
    """`v` projected on the table plane and normalised; zeros when `v` is (nearly) vertical."""
    h = np.array([v[0], v[1], 0.0])
    n = np.linalg.norm(h)
    return h / n if n > 1e-6 else np.zeros(3)


class PenInBinExpert:
    """Privileged-state expert; `act` returns a one-step chunk (1, action_dim)."""

    embodiments: tuple[str, ...] = ()

    def __init__(self, env: EgosimEnv) -> None:
        self.env = env
        self.task = env.task
        self.emb = env.embodiment
        self.geo = {s: GraspGeometry.measure(self.emb, s) for s in SIDES}
        lim = {s: self.emb.joint_limits(s) for s in SIDES}
        self.pose = {}
        for s in SIDES:
            opened, pinch, claw = (self.emb.grasp_pose(n, s) for n in ("open", "pinch", "claw"))
            # The claw target lies past the contact pose so the fingers squeeze (clipped to the
            # joint limits); the embodiment's pinch pose already closes past contact.
            self.pose[s] = {
                "open": opened,
                "pinch": pinch,
                "claw": np.clip(opened + 1.25 * (claw - opened), lim[s][:, 0], lim[s][:, 1]),
                "pre_pinch": self.emb.grasp_pose("pre_pinch", s),
            }
        self.reset()

    # ------------------------------------------------------------------ policy API
    def reset(self, seed: int | None = None) -> None:
        self.memo: dict[str, Any] = {}
        self.scripts = {"right": HandScript("right", self._canister_stages()), "left": HandScript("left", self._marker_stages())}

    def act(self, observation: dict[str, Any]) -> NDArray[np.float64]:
        env = self.env
        return step_scripts(env, self.scripts, {s: self.pose[s]["open"] for s in SIDES})

    # ------------------------------------------------------------------ helpers
    def _once(self, key: str, fn: Callable[[], Any]) -> Any:
        """Computes a stage's target the first time it is asked for (then it stays fixed)."""
        if key not in self.memo:
            self.memo[key] = fn()
        return self.memo[key]

    def _hand(self, side: str, name: str) -> Callable[[], NDArray[np.float64]]:
        return lambda: self.pose[side][name]

    def _object_in_wrist(self, side: str, obj: Pose) -> Pose:
        """The object's pose in the measured wrist frame (to carry it to a goal pose)."""
        wp, wr = self.env.wrist_pose(side)
        return wr.T @ (obj[0] - wp), wr.T @ obj[1]

    @staticmethod
    def _wrist_for_object(goal_obj_pos: NDArray[np.float64], rot: NDArray[np.float64], rel: Pose) -> Pose:
        return goal_obj_pos - rot @ rel[0], rot

    # ------------------------------------------------------------------ right hand: canister
    def _canister_stages(self) -> list[Stage]:
        side, geo = "right", self.geo["right"]
        task, data = self.task, self.env.data
        rot = HOME_WRIST_MAT  # palm down, fingers forward: a top-down grasp across the canister
        # The rim sits just below the palm; the claw's centre lies on the canister's axis.
        rim_gap = geo.palm_center[2] + 0.012

        def over(clearance: float) -> Pose:
            base, _ = task.canister_pose(data)
            point = base + np.array([0, 0, CAN_H + clearance])
            hand_point = np.array([geo.claw_center[0], geo.claw_center[1], rim_gap])
            return wrist_for_point(point, rot, hand_point)

        def carry(height: float) -> Callable[[], Pose]:
            def target() -> Pose:
                rel = self._once("can_rel", lambda: self._object_in_wrist(side, task.canister_pose(data)))
                goal = np.array([*task.square_xy, TABLE_HEIGHT + height])
                return self._wrist_for_object(goal, rot, rel)

            return target

        def up() -> Pose:
            """Straight up until the opened fingers clear the rim."""
            p, r = self._once("can_release", lambda: self.env.commanded_wrist_pose(side))
            return p + np.array([0, 0, 0.06]), r

        def home() -> Pose:
            """Back to the home pose: out of the way of the hand that brings the marker."""
            return np.asarray(self.emb.home_wrist_pos[side], dtype=np.float64), HOME_WRIST_MAT

        grip = self._hand(side, "claw")
        hold = lambda: self._once("can_closed", lambda: over(0.0))  # noqa: E731
        return [
            Stage("above", lambda: over(0.06), self._hand(side, "open"), max_s=4.0, tol_pos=0.01, tol_rot=0.1),
            Stage("descend", lambda: over(0.0), self._hand(side, "open"), speed=0.4, max_s=3.0),
            Stage("close", hold, grip, min_s=0.8, hand_blend_s=0.6),
            Stage("lift", carry(CARRY_LIFT), grip, speed=0.5, max_s=3.0, hand_blend_s=0.01),
            Stage("lower", carry(0.006), grip, speed=0.3, max_s=3.0, tol_pos=0.004, hand_blend_s=0.01),
            Stage("release", lambda: self._once("can_release", lambda: self.env.commanded_wrist_pose(side)), self._hand(side, "open"), min_s=0.6, hand_blend_s=0.4),
            Stage("lift_off", up, self._hand(side, "open"), speed=0.6),
            Stage("retreat", home, self._hand(side, "open"), speed=0.6, max_s=3.0, tol_pos=0.02),
            Stage("done", home, self._hand(side, "open"), max_s=1e9, done=lambda: False),
        ]

    # ------------------------------------------------------------------ left hand: marker
    def _pinch_rotation(self) -> NDArray[np.float64]:
        """Palm down, yawed so that the pinch closes across the marker's axis."""
        _, mrot = self.task.marker_pose(self.env.data)
        axis = mrot[:, 2]
        a_world = HOME_WRIST_MAT @ self.geo["left"].pinch_axis
        phi0 = np.arctan2(a_world[1], a_world[0])
        want = np.arctan2(axis[1], axis[0]) + np.pi / 2
        yaw = (want - phi0 + np.pi / 2) % np.pi - np.pi / 2  # the smallest turn (pinching is symmetric)
        c, s = np.cos(yaw), np.sin(yaw)
        return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]]) @ HOME_WRIST_MAT

    def _marker_stages(self) -> list[Stage]:
        side, geo = "left", self.geo["left"]
        task, data = self.task, self.env.data

        def near_dir() -> NDArray[np.float64]:
            """Unit vector along the marker toward the end that rises: the one nearer the robot,
            so the hand ends up leaning back toward it."""
            _, mrot = task.marker_pose(data)
            u = _horizontal_unit(mrot[:, 2])
            return -u if u[0] > 0 else u

        def pinch_at(height: float) -> Callable[[], Pose]:
            def target() -> Pose:
                rot = self._once("mk_rot", self._pinch_rotation)
                centre, _ = task.marker_pose(data)
                # The fingertips' lowest point (while closing) stays TIP_CLEARANCE above the table.
                point = np.array([centre[0], centre[1], TABLE_HEIGHT + TIP_CLEARANCE + height])
                k = self.emb.pinch_hold  # per hand: from the pinch point to where the pads meet the marker
                held = (1.0 - k) * geo.pinch_point + k * geo.center_at_width(2 * MARKER_R)
                return wrist_for_point(point, rot, np.array([*held[:2], geo.reach_at_width(2 * MARKER_R)]))

            return target

        def pivot(key: str, step: float) -> Callable[[], Pose]:
            """Tip the marker up by `step` about its lower end (resting on the table or in the
            canister), from where the marker and the wrist are now: closed loop, so a marker that
            lags the hand is not dragged along its support."""

            def compute() -> Pose:
                a, b = task.marker_ends(data)
                centre, _ = task.marker_pose(data)
                # The far end stays down; the near end rises.
                low, high = (a, b) if (a - centre) @ self._once("mk_u", near_dir) < 0 else (b, a)
                axis = (high - low) / np.linalg.norm(high - low)
                elev = np.arcsin(np.clip(axis[2], -1.0, 1.0))
                turn = axis_angle_to_matrix(np.cross(_horizontal_unit(axis), [0.0, 0.0, 1.0]), min(step, np.pi / 2 - elev))
                p, r = self.env.commanded_wrist_pose(side)
                return low + turn @ (p - low), turn @ r

            return lambda: self._once(key, compute)

        def up(height: float) -> Callable[[], Pose]:
            def target() -> Pose:
                p, r = self._once("mk_tipped", lambda: self.env.commanded_wrist_pose(side))
                return p + np.array([0, 0, height]), r

            return target

        def over_canister(depth: float) -> Callable[[], Pose]:
            def target() -> Pose:
                rel, away_dir = self._once("mk_rel", lambda: self._marker_low_in_wrist())
                base, _ = task.canister_pose(data)
                # A leaning marker enters beside the far wall, so its body clears the near rim.
                goal = base + np.array([0, 0, CAN_H - depth]) + INSERT_OFFSET * away_dir
                rot = up(0.0)()[1]
                return goal - rot @ rel, rot

            return target

        def back_off() -> Pose:
            """Straight out of the palm's way: the open fingers slide off the marker, not up it."""
            p, r = self._once("mk_release", lambda: self.env.commanded_wrist_pose(side))
            return p - 0.08 * r[:, 2], r

        def away() -> Pose:
            p, r = back_off()
            return p + np.array([0, 0, 0.1]), r

        def canister_ready() -> bool:
            """The canister stands on the square and the right hand is out of the way."""
            return self.scripts["right"].at("done")

        grip = self._hand(side, "pinch")
        tilt = [
            Stage(f"tilt{k}", pivot(f"mk_tilt{k}", np.radians(PIVOT_STEP_DEG)), grip, speed=0.3, hand_blend_s=0.01, tol_pos=0.003)
            for k in range(1, int(round(TILT_DEG / PIVOT_STEP_DEG)) + 1)
        ]
        return [
            Stage("above", pinch_at(0.08), self._hand(side, "pre_pinch"), max_s=4.0, tol_pos=0.01, tol_rot=0.1),
            Stage("descend", pinch_at(0.0), self._hand(side, "pre_pinch"), speed=0.4, max_s=3.0),
            Stage("pinch", pinch_at(0.0), grip, min_s=0.7, hand_blend_s=0.5),
            *tilt,
            Stage("lift", up(0.12), grip, speed=0.4, hand_blend_s=0.01),
            Stage("wait", up(0.12), grip, max_s=20.0, done=canister_ready, hand_blend_s=0.01),
            Stage("over", over_canister(-0.03), grip, speed=0.5, max_s=4.0, hand_blend_s=0.01),
            Stage("insert", over_canister(0.035), grip, speed=0.3, max_s=3.0, hand_blend_s=0.01),
            *[
                Stage(f"steepen{k}", pivot(f"mk_steepen{k}", np.radians(PIVOT_STEP_DEG)), grip, speed=0.3, hand_blend_s=0.01, tol_pos=0.003, max_s=2.0)
                for k in range(1, STEEPEN_STEPS + 1)
            ],
            Stage("release", lambda: self._once("mk_release", lambda: self.env.commanded_wrist_pose(side)), self._hand(side, "pre_pinch"), min_s=1.0, hand_blend_s=0.8),
            Stage("back_off", back_off, self._hand(side, "pre_pinch"), speed=0.3),
            Stage("retreat", away, self._hand(side, "open"), speed=0.5),
            Stage("done", away, self._hand(side, "open"), max_s=1e9, done=lambda: False),
        ]

    def _marker_low_in_wrist(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The marker's lower end in the wrist frame, and the horizontal direction it leans away from."""
        low, high = self.task.marker_ends(self.env.data)
        wp, wr = self.env.wrist_pose("left")
        return wr.T @ (low - wp), _horizontal_unit(low - high)
