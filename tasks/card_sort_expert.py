"""Scripted expert for card_sort, written once against semantic handles (any embodiment).

One hand does the task: the one on the stand's side (the stand's y sign); the other stays home.
The hand comes down over the standing card palm down, yawed so that its pinch closes across the
card's face (the pinch axis, measured on the hand model, along the card's normal), with the pinch
point on the card's mid-plane 2.5 cm below its top edge, and pinches: the pre_pinch -> pinch closing
line continued until the thumb would close 4 mm past contact with the 2 mm card (how far is read
off the closing profile measured on the hand model; Dex3's pinch pose, made for an 18 mm marker,
would leave a 16 mm gap, and closing 8 mm past contact slid the card up into Dex3's thumb). It lifts the card straight out
of the stand, carries it upright over the holder of the card's colour (the card turned to the
holder's yaw, about the card's vertical axis, through the wrist), lowers the card's bottom edge into
the slot, opens, lifts away and goes home. Card targets are computed from the card's pose in the
measured wrist frame, taken once the card is lifted, so a card held slightly tilted in the pinch is
still set down upright. Everything moves through physics: the wrist follows speed-limited targets,
the fingers squeeze.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from egosim.embodiment import SIDES
from egosim.rig import HOME_WRIST_MAT, TABLE_HEIGHT
from egosim.tasks.card_sort import CARD_H, CARD_T, CardSort
from egosim.tasks.scripted import GraspGeometry, HandScript, Pose, Stage, step_scripts, wrist_for_point

if TYPE_CHECKING:
    from egosim.env import EgosimEnv

GRIP_DEPTH = 0.025  # the pinch point this far below the card's top edge (m)
CARRY_CLEARANCE = 0.10  # card bottom above the table while carried
OVER_CLEARANCE = 0.025  # card bottom above the slot floor before the final descent
INSERT_DEPTH = 0.003  # card bottom above the slot floor when released
SQUEEZE = 0.004  # the pinch target closes this far past contact with the card (m); 8 mm slid the card up into Dex3's thumb


def _yaw_matrix(yaw: float) -> NDArray[np.float64]:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


class CardSortExpert:
    """Privileged-state expert; `act` returns a one-step chunk (1, action_dim)."""

    embodiments: tuple[str, ...] = ()

    def __init__(self, env: EgosimEnv) -> None:
        self.env = env
        self.task: CardSort = env.task  # type: ignore[assignment]
        self.emb = env.embodiment
        self.geo = {s: GraspGeometry.measure(self.emb, s) for s in SIDES}
        self.pose = {
            s: {n: self.emb.grasp_pose(n, s) for n in ("open", "pre_pinch", "pinch")} for s in SIDES
        }
        for s in SIDES:
            self.pose[s]["squeeze"] = self._squeeze_pose(s)
        self.reset()

    def _squeeze_pose(self, side: str) -> NDArray[np.float64]:
        """The pre_pinch -> pinch closing line continued until the thumb would pass SQUEEZE beyond its
        partners on a card: a pinch pose made for thicker objects (Dex3's leaves a 16 mm gap) still
        squeezes a 2 mm card. How far to continue is read off the closing profile measured on the
        hand model (its last slope), clipped to the joint limits."""
        geo = self.geo[side]
        pre, pinch = self.pose[side]["pre_pinch"], self.pose[side]["pinch"]
        n = len(geo.pinch_gap) - 1
        slope = max((geo.pinch_gap[-2] - geo.pinch_gap[-1]) * n, 1e-3)  # gap closed per unit of the line
        k = 1.0 + max(0.0, geo.pinch_gap[-1] - (2 * CARD_T - SQUEEZE)) / slope
        lim = self.emb.joint_limits(side)
        return np.clip(pre + k * (pinch - pre), lim[:, 0], lim[:, 1])

    # ------------------------------------------------------------------ policy API
    def reset(self, seed: int | None = None) -> None:
        self.memo: dict[str, Any] = {}
        self.scripts: dict[str, HandScript] | None = None

    def act(self, observation: dict[str, Any]) -> NDArray[np.float64]:
        env = self.env
        if self.scripts is None:
            # The hand on the card's side sorts it; decided from where the card stands now.
            card, _ = self.task.card_pose(env.data)
            active = "left" if card[1] > 0 else "right"
            self.scripts = {s: HandScript(s, self._sort_stages(s) if s == active else self._idle_stages(s)) for s in SIDES}
        return step_scripts(env, self.scripts, {s: self.pose[s]["open"] for s in SIDES})

    # ------------------------------------------------------------------ helpers
    def _once(self, key: str, fn: Callable[[], Any]) -> Any:
        """Computes a stage's target the first time it is asked for (then it stays fixed)."""
        if key not in self.memo:
            self.memo[key] = fn()
        return self.memo[key]

    def _hand(self, side: str, name: str) -> Callable[[], NDArray[np.float64]]:
        return lambda: self.pose[side][name]

    def _home(self, side: str) -> Pose:
        return np.asarray(self.emb.home_wrist_pos[side], dtype=np.float64), HOME_WRIST_MAT

    def _idle_stages(self, side: str) -> list[Stage]:
        return [Stage("done", lambda: self._home(side), self._hand(side, "open"), max_s=1e9, done=lambda: False)]

    def _pinch_rotation(self, side: str) -> NDArray[np.float64]:
        """Palm down, yawed so that the pinch closes along the card's face normal."""
        _, crot = self.task.card_pose(self.env.data)
        normal = crot[:, 0]
        a_world = HOME_WRIST_MAT @ self.geo[side].pinch_axis
        phi0 = np.arctan2(a_world[1], a_world[0])
        want = np.arctan2(normal[1], normal[0])
        yaw = (want - phi0 + np.pi / 2) % np.pi - np.pi / 2  # the smallest turn (pinching is symmetric)
        return _yaw_matrix(yaw) @ HOME_WRIST_MAT

    def _card_in_wrist(self, side: str) -> Pose:
        wp, wr = self.env.wrist_pose(side)
        cp, cr = self.task.card_pose(self.env.data)
        return wr.T @ (cp - wp), wr.T @ cr

    # ------------------------------------------------------------------ the sorting hand
    def _sort_stages(self, side: str) -> list[Stage]:
        geo, task, data = self.geo[side], self.task, self.env.data

        def pinch_at(height: float) -> Callable[[], Pose]:
            def target() -> Pose:
                rot = self._once("rot", lambda: self._pinch_rotation(side))
                # Followed live on the way over it (a card settles in its slot), then fixed.
                centre, crot = self._once("card0", lambda: task.card_pose(data)) if height == 0.0 else task.card_pose(data)
                top = centre + crot[:, 2] * CARD_H
                point = top + np.array([0.0, 0.0, height - GRIP_DEPTH])
                return wrist_for_point(point, rot, geo.pinch_point)

            return target

        def lift() -> Pose:
            p, r = self._once("pinched", lambda: self.env.commanded_wrist_pose(side))
            centre, _ = self._once("card0", lambda: task.card_pose(data))
            bottom = centre[2] - CARD_H
            return p + np.array([0.0, 0.0, TABLE_HEIGHT + CARRY_CLEARANCE - bottom]), r

        def card_goal(clearance: float, carry: bool) -> Callable[[], Pose]:
            """Wrist pose that puts the card upright over the correct holder's slot."""

            def target() -> Pose:
                rel_p, rel_r = self._once("rel", lambda: self._card_in_wrist(side))
                hp, hr = task.holder_pose(data, task.correct_holder)
                _, crot = task.card_pose(data)
                flip = np.pi if crot[:, 0] @ hr[:, 0] < 0 else 0.0
                goal_r = _yaw_matrix(np.arctan2(hr[1, 0], hr[0, 0]) + flip)
                bottom = hp + hr @ np.array([0.0, 0.0, task.slot_floor_height() + clearance])
                goal_c = bottom + np.array([0.0, 0.0, CARD_H])
                if carry:
                    goal_c[2] = TABLE_HEIGHT + CARRY_CLEARANCE + CARD_H
                wrist_r = goal_r @ rel_r.T
                return goal_c - wrist_r @ rel_p, wrist_r

            return target

        def up() -> Pose:
            p, r = self._once("released", lambda: self.env.commanded_wrist_pose(side))
            return p + np.array([0.0, 0.0, 0.08]), r

        grip = self._hand(side, "squeeze")
        pre = self._hand(side, "pre_pinch")
        opened = self._hand(side, "open")
        return [
            Stage("above", pinch_at(0.06), pre, max_s=4.0, tol_pos=0.01, tol_rot=0.1),
            Stage("descend", pinch_at(0.0), pre, speed=0.4, max_s=3.0, tol_pos=0.003),
            Stage("pinch", lambda: self._once("pinched", lambda: self.env.commanded_wrist_pose(side)), grip, min_s=0.7, hand_blend_s=0.5),
            Stage("lift", lift, grip, speed=0.4, max_s=3.0, hand_blend_s=0.01),
            Stage("carry", card_goal(0.0, carry=True), grip, speed=0.6, max_s=4.0, hand_blend_s=0.01, tol_pos=0.005),
            Stage("over", card_goal(OVER_CLEARANCE, carry=False), grip, speed=0.4, max_s=3.0, hand_blend_s=0.01, tol_pos=0.002),
            Stage("insert", card_goal(INSERT_DEPTH, carry=False), grip, speed=0.2, max_s=2.0, hand_blend_s=0.01, tol_pos=0.002),
            Stage("release", lambda: self._once("released", lambda: self.env.commanded_wrist_pose(side)), pre, min_s=0.6, hand_blend_s=0.4),
            Stage("lift_off", up, pre, speed=0.5, max_s=2.0),
            Stage("retreat", lambda: self._home(side), opened, speed=0.6, max_s=3.0, tol_pos=0.02),
            Stage("done", lambda: self._home(side), opened, max_s=1e9, done=lambda: False),
        ]
