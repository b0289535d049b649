"""Scripted expert for syringe_transfer, written once against semantic handles (any embodiment).

Right hand: rises over the syringe's thumb rest, turns palm-left (fingers forward) and comes down
beside the barrel, then moves in sideways and closes a side claw: the barrel's axis runs along the
hand's y axis between the opposed thumb and the fingers, at the claw's centre (measured on the hand
model by `GraspGeometry`) moved 3 cm toward the palm, since the claw pose was sized for an 80 mm
object and the barrel is 40 mm. It lifts the syringe out of the holder and carries it so that the
nozzle tip goes over tube A and down to 7 mm above A's bottom. Where the tip is in the wrist frame,
and the wrist rotation that stands the syringe upright, are measured from the syringe's real pose
after the lift and again before each insertion (the syringe turns a little in the grip while it is
carried). The hand holds still while the left hand works the plunger, moves the tip into tube B,
holds still again, then lowers the syringe into the trash can until its tip is just above the floor,
loosens the claw to its own (wider) pose and slides the hand off the barrel along the palm's normal
before opening (opening in place swings the thumb through the barrel and flings the syringe out).

Left hand (bimanual pull: the thumb of the holding hand is on the barrel, not on the plunger): waits
at home; with the nozzle in A it shapes a pre-pinch at home, rises to above the thumb rest's height,
comes over it, pinches the thumb rest's rim (top down) and pulls up `PULL`, opens and parks at
home; the plunger's friction holds it. With the nozzle in B, a closed pinch comes down on the thumb
rest's top and presses until the plunger bottoms out, then goes home.

Everything moves through physics: the wrists follow speed-limited targets, the fingers squeeze. The
same script drives both hands (Sharpa Wave and the three-fingered Dex3: the side claw holds the barrel
with the thumb and two fingers, the pinch pulls the thumb rest with the same three).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from egosim.embodiment import SIDES
from egosim.rig import HOME_WRIST_MAT
from egosim.tasks.scripted import GraspGeometry, HandScript, Pose, Stage, step_scripts, wrist_for_point
from egosim.tasks.syringe_transfer import BARREL_LEN, REST_HALF, REST_R, TRASH_H, TUBE_BASE, TUBE_H

if TYPE_CHECKING:
    from egosim.env import EgosimEnv

# Palm facing world +y (left), fingers forward, hand y down: a side grasp of a vertical cylinder.
SIDE_GRASP_MAT = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
GRIP_BELOW_TOP = 0.030  # the claw's centre this far below the barrel's top
APPROACH = 0.06  # the open hand starts this far to the right of its grasp pose
LIFT = 0.11  # out of the holder, the tip clear of the tube rims
TIP_OVER = 0.025  # tip above a tube's rim before going in
TIP_DEPTH = 0.007  # tip above a tube's inner bottom when in
TRASH_DROP = 0.09  # lower the tip this far below the trash can's rim (5 mm above its floor) before
# letting go: standing on its tip, the syringe is not flung out by the opening fingers
TRASH_OFFSET = 0.03  # let go this far from the can's centre toward its near and left walls
WITHDRAW = 0.08  # slide the loosened claw this far off the barrel before opening
PULL = 0.02  # plunger pull in A: 18 mL asked, about 12 mL (what lies above the tip) drawn; a slipping pinch still draws enough
GRIP_OFFSET = np.array([0.0, 0.0, -0.03])  # barrel axis from the claw centre, toward the palm: the
# claw was sized for an 80 mm object, the barrel is 40 mm
CLAW_SQUEEZE = 1.6  # claw target past the contact pose (the barrel is thinner than the claw's design object)


def _rotation_between(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """The smallest rotation taking unit vector `a` to unit vector `b`."""
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    v, c = np.cross(a, b), float(a @ b)
    if np.linalg.norm(v) < 1e-9:
        return np.eye(3)
    k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + k + k @ k / (1.0 + c)


class SyringeTransferExpert:
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
            opened, claw = self.emb.grasp_pose("open", s), self.emb.grasp_pose("claw", s)
            self.pose[s] = {
                "open": opened,
                "pinch": self.emb.grasp_pose("pinch", s),
                "pre_pinch": self.emb.grasp_pose("pre_pinch", s),
                "claw": np.clip(opened + CLAW_SQUEEZE * (claw - opened), lim[s][:, 0], lim[s][:, 1]),
                "claw_loose": claw,  # the claw's own pose: sized for a wider object, so it lets go of the barrel
            }
        self.reset()

    # ------------------------------------------------------------------ policy API
    def reset(self, seed: int | None = None) -> None:
        self.memo: dict[str, Any] = {}
        self.scripts = {"right": HandScript("right", self._syringe_stages()), "left": HandScript("left", self._plunger_stages())}

    def act(self, observation: dict[str, Any]) -> NDArray[np.float64]:
        env = self.env
        return step_scripts(env, self.scripts, {s: self.pose[s]["open"] for s in SIDES})

    # ------------------------------------------------------------------ helpers
    def _once(self, key: str, fn: Callable[[], Any]) -> Any:
        if key not in self.memo:
            self.memo[key] = fn()
        return self.memo[key]

    def _hand(self, side: str, name: str) -> Callable[[], NDArray[np.float64]]:
        return lambda: self.pose[side][name]

    def _home(self, side: str) -> Pose:
        return np.asarray(self.emb.home_wrist_pos[side], dtype=np.float64), HOME_WRIST_MAT

    # ------------------------------------------------------------------ right hand: the syringe
    def _syringe_stages(self) -> list[Stage]:
        side, geo = "right", self.geo["right"]
        task, data = self.task, self.env.data
        rot = SIDE_GRASP_MAT

        def grasp(dy: float = 0.0, dz: float = 0.0) -> Pose:
            base, r = task.syringe_pose(data)
            point = base + r[:, 2] * (BARREL_LEN - GRIP_BELOW_TOP) + np.array([0.0, dy, dz])
            return wrist_for_point(point, rot, geo.claw_center + GRIP_OFFSET)

        def held() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
            """The wrist rotation that stands the held syringe upright, and the nozzle tip in the wrist
            frame, from the syringe's real pose now (see `tip_at` for when)."""
            wp, wr = self.env.wrist_pose(side)
            _, srot = task.syringe_pose(data)
            axis = rot @ (wr.T @ srot[:, 2])  # the syringe's axis if the wrist were at `rot`
            upright = _rotation_between(axis, np.array([0.0, 0.0, 1.0])) @ rot
            return upright, wr.T @ (task.nozzle_tip(data) - wp)

        def tip_at(goal: Callable[[], NDArray[np.float64]], key: str) -> Callable[[], Pose]:
            """Puts the nozzle tip at `goal`, with the grip measured when stage group `key` began (the
            syringe can turn a little in the grip while it is carried, so each approach re-measures)."""

            def target() -> Pose:
                wrot, rel = self._once(key, held)
                return goal() - wrot @ rel, wrot

            return target

        def over(tube: str, dz: float) -> Callable[[], NDArray[np.float64]]:
            return lambda: task.tube_rim[tube] + np.array([0.0, 0.0, dz])

        def inside(tube: str) -> Callable[[], NDArray[np.float64]]:
            return lambda: task.tube_rim[tube] + np.array([0.0, 0.0, -TUBE_H + TUBE_BASE + TIP_DEPTH])

        def over_trash(dz: float) -> Callable[[], NDArray[np.float64]]:
            """Over the can, off its centre toward the near wall (the fingers reach past the barrel toward
            the far wall) and away from the hand (which slides off the barrel toward its own side)."""
            return lambda: task.trash_center + np.array([-TRASH_OFFSET, TRASH_OFFSET, TRASH_H + dz])

        def lifted() -> Pose:
            p, r = self._once("closed", lambda: grasp())
            return p + np.array([0.0, 0.0, LIFT]), r

        def withdraw() -> Pose:
            """Slide the loosened hand off the barrel, backward along the palm's normal: the loose claw's
            fingers and thumb pass either side of the barrel (opening fully would swing the thumb
            through the barrel and fling the syringe out of the can)."""
            p, r = self._once("released", lambda: self.env.commanded_wrist_pose(side))
            return p - r[:, 2] * WITHDRAW, r

        def released_up() -> Pose:
            p, r = withdraw()
            return p + np.array([0.0, 0.0, 0.06]), r

        left = lambda: self.scripts["left"]  # noqa: E731
        grip, loose, opened = self._hand(side, "claw"), self._hand(side, "claw_loose"), self._hand(side, "open")
        hold = lambda: self._once("closed", lambda: grasp())  # noqa: E731
        return [
            Stage("rise", lambda: (self._home(side)[0] + np.array([0.0, 0.0, 0.1]), HOME_WRIST_MAT), opened, tol_pos=0.02),
            Stage("turn", lambda: grasp(-APPROACH, 0.1), opened, max_s=4.0, tol_pos=0.02, tol_rot=0.1),
            Stage("approach", lambda: grasp(-APPROACH), opened, speed=0.6, max_s=3.0),
            Stage("in", lambda: grasp(), opened, speed=0.4, max_s=3.0),
            Stage("close", hold, grip, min_s=0.8, hand_blend_s=0.6),
            Stage("lift", lifted, grip, speed=0.4, max_s=3.0, hand_blend_s=0.01),
            Stage("over_a", tip_at(over("a", TIP_OVER), "held_lift"), grip, speed=0.35, max_s=4.0, hand_blend_s=0.01),
            Stage("settle_a", tip_at(over("a", TIP_OVER), "held_lift"), grip, min_s=0.3, hand_blend_s=0.01),
            Stage("insert_a", tip_at(inside("a"), "held_a"), grip, speed=0.25, max_s=3.0, tol_pos=0.003, hand_blend_s=0.01),
            Stage("hold_a", tip_at(inside("a"), "held_a"), grip, max_s=15.0, done=lambda: left().at("wait_b"), hand_blend_s=0.01),
            Stage("out_a", tip_at(over("a", TIP_OVER), "held_a"), grip, speed=0.3, max_s=3.0, hand_blend_s=0.01),
            Stage("over_b", tip_at(over("b", TIP_OVER), "held_a"), grip, speed=0.4, max_s=3.0, hand_blend_s=0.01),
            Stage("settle_b", tip_at(over("b", TIP_OVER), "held_a"), grip, min_s=0.3, hand_blend_s=0.01),
            Stage("insert_b", tip_at(inside("b"), "held_b"), grip, speed=0.25, max_s=3.0, tol_pos=0.003, hand_blend_s=0.01),
            Stage("hold_b", tip_at(inside("b"), "held_b"), grip, max_s=15.0, done=lambda: left().at("home"), hand_blend_s=0.01),
            Stage("out_b", tip_at(over("b", TIP_OVER), "held_b"), grip, speed=0.3, max_s=3.0, hand_blend_s=0.01),
            Stage("over_trash", tip_at(over_trash(0.03), "held_b"), grip, speed=0.5, max_s=4.0, tol_pos=0.01, hand_blend_s=0.01),
            Stage("into_trash", tip_at(over_trash(-TRASH_DROP), "held_b"), grip, speed=0.3, max_s=3.0, hand_blend_s=0.01),
            Stage("loosen", lambda: self._once("released", lambda: self.env.commanded_wrist_pose(side)), loose,
                  min_s=0.6, hand_blend_s=0.5),
            Stage("withdraw", withdraw, loose, speed=0.3, max_s=2.0),
            Stage("open", withdraw, opened, min_s=0.4),  # before rising: a syringe leaning on the fingers would be lifted out
            Stage("up", released_up, opened, speed=0.6),
            Stage("retreat", lambda: self._home(side), opened, speed=0.6, max_s=3.0, tol_pos=0.02),
            Stage("done", lambda: self._home(side), opened, max_s=1e9, done=lambda: False),
        ]

    # ------------------------------------------------------------------ left hand: the plunger
    def _plunger_stages(self) -> list[Stage]:
        side, geo = "left", self.geo["left"]
        task, data = self.task, self.env.data
        rot = HOME_WRIST_MAT
        right = lambda: self.scripts["right"]  # noqa: E731
        pinch_hand = np.array([*geo.pinch_point[:2], geo.reach_at_width(2 * REST_R)])
        press_hand = np.array([*geo.pinch_point[:2], geo.pinch_reach[-1]])

        def rest_pinch(dz: float) -> Pose:
            """The pinch closes on the thumb rest's rim, the fingertips' lowest point at its bottom face."""
            top = task.thumb_rest_top(data)
            return wrist_for_point(top + np.array([0.0, 0.0, -2 * REST_HALF + dz]), rot, pinch_hand)

        def level_with(pose: Pose) -> Pose:
            """Straight up from home to the height of `pose` (so the hand comes over the plunger from
            above its thumb rest, not through it)."""
            p = np.asarray(self.emb.home_wrist_pos[side], dtype=np.float64).copy()
            p[2] = max(p[2], pose[0][2])
            return p, rot

        def pulled() -> Pose:
            p, r = self._once("pinched", lambda: rest_pinch(0.0))
            return p + np.array([0.0, 0.0, PULL]), r

        def back_off() -> Pose:
            p, r = self._once("let_go", lambda: self.env.commanded_wrist_pose(side))
            return self.emb.workspace[side].clip(p + np.array([0.0, 0.0, 0.05])), r

        def press(dz: float) -> Callable[[], Pose]:
            """The closed pinch's lowest point `dz` above the thumb rest's top, or with `dz` = 0 pressing
            it down to where the plunger bottoms out (4 mm past, so the force holds at the end)."""

            def target() -> Pose:
                top = task.thumb_rest_top(data)
                depth = task.plunger_slide(data) + 0.004 if dz == 0.0 else -dz
                return wrist_for_point(top - np.array([0.0, 0.0, depth]), rot, press_hand)

            return target

        def pressed_up() -> Pose:
            p, r = self._once("pressed", lambda: self.env.commanded_wrist_pose(side))
            return self.emb.workspace[side].clip(p + np.array([0.0, 0.0, 0.06])), r

        pre, pinch, opened = self._hand(side, "pre_pinch"), self._hand(side, "pinch"), self._hand(side, "open")
        home = lambda: self._home(side)  # noqa: E731
        return [
            Stage("wait_a", home, opened, max_s=30.0, done=lambda: right().at("hold_a")),
            Stage("shape", home, pre, min_s=0.4),  # shape the hand before it comes near the plunger
            Stage("rise", lambda: level_with(rest_pinch(0.04)), pre, max_s=3.0, tol_pos=0.01),
            Stage("above_rest", lambda: rest_pinch(0.04), pre, max_s=4.0, tol_pos=0.01, tol_rot=0.1),
            Stage("descend", lambda: rest_pinch(0.0), pre, speed=0.3, max_s=3.0),
            Stage("pinch", lambda: self._once("pinched", lambda: rest_pinch(0.0)), pinch, min_s=0.7, hand_blend_s=0.5),
            Stage("pull", pulled, pinch, speed=0.1, max_s=3.0, hand_blend_s=0.01),
            Stage("let_go", lambda: self._once("let_go", lambda: self.env.commanded_wrist_pose(side)), pre,
                  min_s=0.5, hand_blend_s=0.4),
            Stage("back_off", back_off, pre, speed=0.4),
            Stage("park", home, opened, speed=0.6, max_s=3.0, tol_pos=0.02),
            Stage("wait_b", home, pinch, max_s=30.0, done=lambda: right().at("hold_b")),
            Stage("rise_b", lambda: level_with(press(0.03)()), pinch, max_s=3.0, tol_pos=0.01),
            Stage("above_press", press(0.03), pinch, max_s=4.0, tol_pos=0.01, tol_rot=0.1),
            Stage("press", press(0.0), pinch, speed=0.1, max_s=4.0, done=lambda: task.plunger_slide(data) < 0.001),
            Stage("lift_off", pressed_up, pinch, speed=0.4),
            Stage("home", home, opened, speed=0.6, max_s=3.0, tol_pos=0.02),
            Stage("done", home, opened, max_s=1e9, done=lambda: False),
        ]
