"""Scripted expert for bottle_uncap and water_bottle_uncap, written once against semantic handles.

Left hand: holds the bottle from the side with the `power` grasp turned on its side (palm toward
the bottle from the left, fingers forward, the hand's width vertical, thumb up), as high as the
thumb stays clear of the cap. The bottle's axis goes where a cylinder sits in the power grasp,
measured on the hand model (`power_axis_point`). It holds the bottle for the rest of the episode, so
the twisting hand cannot turn or tip it.

Right hand: turns the cap from above in cycles, as a person does with fingertips. Palm down (along
the cap's axis), tilted about the palm-plane axis across the pinch so that the thumb's and its
partners' lowest links are level (`pinch_level_profile`), the hand is placed so that the centre of
the gap between the thumb's and its partner's fingertip links, at the closing step where that gap
equals the cap's width (measured by forward kinematics, `GraspGeometry.pinch_center`), lies on the cap's
axis, as low as the fingers' lowest link, closed to the grip, stays at the skirt's lower edge (so
no finger presses on the bottle below the cap). It opens the pinch to 10 closing steps short of the
cap, descends, closes the pinch, twists the wrist counter-clockwise by `TWIST_DEG` about the cap's
axis (the wrist orbits the axis where the cap was when the twist began, one control step's rotation
at a time, rising with the thread), lets go quickly while the wrist turns on by `RELEASE_DEG`, lifts
2 cm, turns back open and grips again (closed loop: where the cap is now). The twist in which the
thread lets go stops there (read from privileged state: the thread's engaged flag and turns; a
loose cap twisted on was pushed off the neck's top and lay tilted on it) and the hand lifts the
cap 6 cm with the same pinch; if the cap stayed on the neck it lets go and grips it afresh where
it sits (up to twice). It carries the cap sideways at that height to a spot on the table to the
right of the bottle, lowers it until its lowest point reaches the table, opens and lifts the hand
away.

Everything moves through physics: the wrists follow speed-limited targets, the fingers squeeze;
the expert never touches the thread's equality (the mechanism switches it, see tasks/screw_cap.py).

Both hands can do it with three fingers or fewer (the Dex3 pinch is a thumb-index-middle tripod,
the Sharpa pinch thumb and index); see tests/test_task_bottle_uncap.py and the task docstrings for
the measured success rates.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import mujoco
import numpy as np
from numpy.typing import NDArray

from egosim.embodiment import SIDES, Embodiment
from egosim.geometry import axis_angle_to_matrix
from egosim.rig import HOME_WRIST_MAT, TABLE_HEIGHT
from egosim.tasks.screw_cap import CAP_ROOF, CAP_SEAT_GAP, PITCH, TURNS_TO_RELEASE
from egosim.tasks.scripted import (
    GraspGeometry,
    HandScript,
    Pose,
    Stage,
    geom_extent,
    power_axis_point,
    step_scripts,
    wrist_for_point,
)

if TYPE_CHECKING:
    from egosim.env import EgosimEnv
    from egosim.tasks.screw_cap import ScrewCapTask

TWIST_DEG = 150.0  # one twist of the cap hand; the hand turns back the same way with the fingers open
RELEASE_DEG = 20.0  # the wrist turns on this far while the fingers open: their recoil dragged the cap back
BACK_LIFT = 0.02  # the open hand turns back this far above the cap, so it does not drag it back
OPEN_S = 0.1  # let go of the cap quickly: opening slowly dragged it back
GRIP_STEPS = 40  # the cap pinch closes this many of its 40 steps past touching (40: the full pinch)
OPEN_STEPS = 10  # the open cap hand is this many of the pinch's 40 closing steps short of touching
RISE_GAIN = 1.0  # the twisting hand rises this many thread pitches per turn of the wrist
TWIST_SPEED = 0.9  # twisting speed, fraction of the wrist's rotation limit
GRIP_BELOW_TOP = 0.075  # hold the bottle this far below its shoulder: as high as the thumb, which
# wraps up over the index finger, stays clear of the cap (a high grip keeps the bottle from tipping)
PRESS = 0.0  # once closed, the holding hand pushes this far down, keeping the bottle on the table
MIN_GRIP_H = 0.065  # ... but at least this high, so the hand's lower edge clears the table
POWER_SQUEEZE = 1.35  # the holding hand closes this far along open -> power (past contact: it squeezes)
PALM_GAP = 0.0  # palm to bottle surface in the side power grasp (m)
CAP_LIFT = 0.06  # the loose cap is lifted this far off the neck before it is carried (m)
MAX_REGRIPS = 2  # fresh grips on a loose cap that stayed on the neck before carrying on regardless
PLACE_OFFSET = np.array([0.0, -0.11, 0.0])  # where the cap goes, relative to the bottle (rig frame)
SIDE_CLAW_MAT = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # palm -y, fingers +x, width up


def pinch_level_profile(
    emb: Embodiment, side: str, centres: NDArray[np.float64], partners_tol: float = 0.035
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """How to hold the pinch level over a cap, measured by forward kinematics at the closing steps
    of `GraspGeometry.pinch_gap` (n = 41): (tilts (n, 3, 3), lows (n, n), axis (3,)).

    `tilts[k]` is the wrist-frame rotation about the palm-plane axis across the pinch line that
    brings the thumb's and its partners' lowest link points at step k to the same depth below the
    palm (the Sharpa thumb tip reaches 10 mm deeper than the index tip: over a cap it pressed on the
    bottle's shoulder while the index pad slid over the cap's top; the Dex3 tripod is level
    already, within 1 degree). `lows[k, j]` is how far the fingers' lowest link point at step j
    lies below the pinch centre of step k (`centres`, `GraspGeometry.pinch_center`), along the palm
    normal tilted by `tilts[k]`.
    """
    model = mujoco.MjModel.from_xml_path(emb.hand_xml(side))
    data = mujoco.MjData(model)
    qadr = [model.jnt_qposadr[model.joint(j).id] for j in emb.joint_names]
    wrist = model.site(emb.wrist_site).id
    pre, pinch = emb.grasp_pose("pre_pinch", side), emb.grasp_pose("pinch", side)
    thumb, fingers = emb.fingertip_sites[0], emb.fingertip_sites[1:]
    palm = int(model.site_bodyid[model.site(emb.palm_site).id])

    def pose(q: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Poses the hand; returns the wrist site's (rotation, position)."""
        data.qpos[:] = 0
        data.qpos[qadr] = q
        mujoco.mj_kinematics(model, data)
        return data.site_xmat[wrist].reshape(3, 3).copy(), data.site_xpos[wrist].copy()

    def site(s: str) -> NDArray[np.float64]:
        return data.site_xpos[model.site(s).id].copy()

    def chain(s: str) -> list[int]:
        """Colliding geoms of the finger that carries site `s`, from its tip body up to the palm."""
        b, out = int(model.site_bodyid[model.site(s).id]), []
        while b > 0 and b != palm:
            out += [g for g in range(model.ngeom) if int(model.geom_bodyid[g]) == b and model.geom_contype[g]]
            b = int(model.body_parentid[b])
        return out

    pose(pinch)  # the partners are the fingers that close onto the thumb (as in PinchProfile)
    partners = [f for f in fingers if np.linalg.norm(site(f) - site(thumb)) < partners_tol] or [fingers[0]]
    thumb_geoms, partner_geoms = chain(thumb), [g for f in partners for g in chain(f)]
    r, p = pose(emb.grasp_pose("open", side))
    line = np.mean([r.T @ (site(f) - p) for f in partners], axis=0) - r.T @ (site(thumb) - p)
    z = np.array([0.0, 0.0, 1.0])
    line -= (line @ z) * z
    axis = np.cross(z, line / np.linalg.norm(line))

    Frame = tuple[NDArray[np.float64], NDArray[np.float64]]

    def depth(geoms: list[int], down: NDArray[np.float64], frame: Frame) -> float:
        """How far `geoms` reach below the wrist (`frame`: its rotation, position) along `down` (wrist
        frame), in the current pose."""
        u = frame[0] @ down
        return max(geom_extent(model, data, g, u) for g in geoms) - float(u @ frame[1])

    tilts = []
    steps = np.linspace(0.0, 1.0, len(centres))
    for a in steps:
        frame = pose(pre + a * (pinch - pre))

        def imbalance(angle: float) -> float:
            down = axis_angle_to_matrix(axis, angle).T @ z
            return depth(thumb_geoms, down, frame) - depth(partner_geoms, down, frame)

        lo, hi = -0.6, 0.6
        if imbalance(lo) * imbalance(hi) > 0:  # cannot be levelled within 35 degrees: leave it
            angle = 0.0
        else:
            for _ in range(30):
                mid = 0.5 * (lo + hi)
                lo, hi = (mid, hi) if imbalance(lo) * imbalance(mid) > 0 else (lo, mid)
            angle = 0.5 * (lo + hi)
        tilts.append(axis_angle_to_matrix(axis, angle))
    lows = np.zeros((len(steps), len(steps)))
    for j, a in enumerate(steps):
        frame = pose(pre + a * (pinch - pre))
        for k, tilt in enumerate(tilts):
            down = tilt.T @ z
            lows[k, j] = depth(thumb_geoms + partner_geoms, down, frame) - float(centres[k] @ down)
    return np.array(tilts), lows, axis


def _rz(angle: float) -> NDArray[np.float64]:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _yaw_of(rot: NDArray[np.float64]) -> float:
    """Yaw of a palm-down wrist rotation relative to the home pose."""
    m = rot @ HOME_WRIST_MAT.T
    return math.atan2(m[1, 0], m[0, 0])


class BottleUncapExpert:
    """Privileged-state expert; `act` returns a one-step chunk (1, action_dim)."""

    embodiments: tuple[str, ...] = ()

    def __init__(self, env: EgosimEnv) -> None:
        self.env = env
        self.task: ScrewCapTask = env.task  # type: ignore[assignment]
        self.emb = env.embodiment
        self.geo = {s: GraspGeometry.measure(self.emb, s) for s in SIDES}
        self.power_axis = {s: power_axis_point(self.emb, s) for s in SIDES}
        self.pinch_centre = self.geo["right"].pinch_center
        self.pinch_level, self.pinch_low, _ = pinch_level_profile(self.emb, "right", self.pinch_centre)
        self.lim = lim = {s: self.emb.joint_limits(s) for s in SIDES}
        self.pose = {}
        for s in SIDES:
            opened, claw = self.emb.grasp_pose("open", s), self.emb.grasp_pose("claw", s)
            self.pose[s] = {
                "open": opened,
                "pinch": self.emb.grasp_pose("pinch", s),
                "pre_pinch": self.emb.grasp_pose("pre_pinch", s),
                "power": np.clip(opened + POWER_SQUEEZE * (self.emb.grasp_pose("power", s) - opened), lim[s][:, 0], lim[s][:, 1]),
                # Past contact so the fingers squeeze (clipped to the joint limits).
                "claw": np.clip(opened + 1.25 * (claw - opened), lim[s][:, 0], lim[s][:, 1]),
            }
        self.reset()

    # ------------------------------------------------------------------ policy API
    def reset(self, seed: int | None = None) -> None:
        self.memo: dict[str, Any] = {}
        self.cycle = 0
        self.phase = "twist"  # twist -> lift (and regrip while the cap stays on the neck) -> carry
        self.lifts = 0
        self.scripts = {"left": HandScript("left", self._bottle_stages()), "right": HandScript("right", self._approach_stages())}

    def act(self, observation: dict[str, Any]) -> NDArray[np.float64]:
        env = self.env
        right = self.scripts["right"]
        if right.finished and self.phase == "twist":
            if not self._released():
                right.stages += self._cycle_stages(self.cycle)
                self.cycle += 1
            else:  # lift the cap straight off with the pinch that turned it
                right.stages += self._lift_stages(regrip=False)
                self.phase = "lift"
        elif right.finished and self.phase == "lift":
            if self.task.cap.cap_off_neck(env.data) or self.lifts > MAX_REGRIPS:
                right.stages += self._carry_stages()
                self.phase = "carry"
            else:  # the cap stayed on the neck: let go and grip it afresh, where it sits now
                right.stages += self._lift_stages(regrip=True)
        return step_scripts(env, self.scripts, {s: self.pose[s]["open"] for s in SIDES})

    # ------------------------------------------------------------------ helpers
    def _released(self) -> bool:
        """The thread has let go of the cap (it does so at the control step after the 3rd turn)."""
        cap, d = self.task.cap, self.env.data
        return not cap.engaged(d) or cap.turns(d) >= TURNS_TO_RELEASE

    def _once(self, key: str, fn: Callable[[], Any]) -> Any:
        """Computes a stage's target the first time it is asked for (then it stays fixed)."""
        if key not in self.memo:
            self.memo[key] = fn()
        return self.memo[key]

    def _hand(self, side: str, name: str) -> Callable[[], NDArray[np.float64]]:
        return lambda: self.pose[side][name]

    def _bottle(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(bottom centre, rotation) of the bottle."""
        d, b = self.env.data, self.task.cap.bottle_body
        return d.xpos[b].copy(), d.xmat[b].reshape(3, 3).copy()

    def _cap_axis_point(self) -> NDArray[np.float64]:
        """The cap's origin (on its axis, at the neck top when seated), world frame."""
        return self.env.data.xpos[self.task.cap.cap_body].copy()

    # ------------------------------------------------------------------ left hand: hold the bottle
    def _bottle_stages(self) -> list[Stage]:
        side, geo = "left", self.geo["left"]
        rot = SIDE_CLAW_MAT

        def at(offset: float, press: float = 0.0) -> Callable[[], Pose]:
            def target() -> Pose:
                shape = self.task.cap.shape
                assert shape is not None
                grip_h = max(MIN_GRIP_H, shape.height - GRIP_BELOW_TOP)
                axis = self.power_axis[side]
                hand_point = np.array([axis[0], axis[1], geo.palm_center[2] + shape.radius + PALM_GAP])
                base, _ = self._once("bottle0", self._bottle)
                point = base + np.array([0.0, offset, grip_h - press])
                return wrist_for_point(point, rot, hand_point)

            return target

        hold = at(0.0)
        return [
            Stage("beside", at(0.08), self._hand(side, "open"), max_s=4.0, tol_pos=0.01, tol_rot=0.1),
            Stage("in", hold, self._hand(side, "open"), speed=0.4, max_s=2.0),
            Stage("close", hold, self._hand(side, "power"), min_s=0.8, hand_blend_s=0.6),
            Stage("hold", at(0.0, press=PRESS), self._hand(side, "power"), max_s=1e9, done=lambda: False),
        ]

    # ------------------------------------------------------------------ right hand: the cap
    def _cap_axis(self) -> NDArray[np.float64]:
        """The bottle's axis (unit, world frame), which the thread turns about: the bottle may lean a
        little in the holding hand. (The cap's own axis wobbles on the soft weld under the fingers;
        following it made the twist slip more.)"""
        return self.env.data.xmat[self.task.cap.bottle_body].reshape(3, 3)[:, 2].copy()

    def _loose_cap_axis(self) -> NDArray[np.float64]:
        """The cap's own axis (unit, world frame): a loose cap may sit tilted on the neck's top."""
        return self.env.data.xmat[self.task.cap.cap_body].reshape(3, 3)[:, 2].copy()

    def _cap_grasp_pose(self, yaw: float, axis: NDArray[np.float64] | None = None) -> Pose:
        """Wrist pose that puts the pinch's contact centre (for the cap's width) on the cap's axis,
        the palm facing down the axis (levelled, see `pinch_level_profile`), yawed by `yaw`, as low as
        the fingers stay on the cap: their lowest link, closed to the grip, at the skirt's lower edge.
        (Lower, the Sharpa thumb pressed on the bottle's shoulder with 13 N while twisting, which
        held the fingers back and shoved the bottle out of the other hand.) `axis`: the axis to
        grip along, the bottle's by default."""
        shape = self.task.cap.shape
        assert shape is not None
        axis = self._cap_axis() if axis is None else axis
        lean = np.cross([0.0, 0.0, 1.0], axis)  # tilt the palm-down hand onto the bottle's axis
        sin_lean = float(np.linalg.norm(lean))
        tilt = axis_angle_to_matrix(lean, math.asin(min(1.0, sin_lean))) if sin_lean > 1e-6 else np.eye(3)
        k = self._contact_step()
        rot = tilt @ _rz(yaw) @ HOME_WRIST_MAT @ self.pinch_level[k]
        # Fingers that sweep down as the pinch closes past contact (Sharpa) slide down the cap by
        # as much: the deepest of the contact and the grip pose counts.
        low = self.pinch_low[k]
        deepest = max(float(low[k]), float(low[self._grip_step()]))
        offset = CAP_SEAT_GAP - (shape.cap_height - CAP_ROOF) + deepest
        point = self._cap_axis_point() + offset * axis
        return wrist_for_point(point, rot, self.pinch_centre[k])

    def _yaw(self, rot: NDArray[np.float64]) -> float:
        """Yaw of a cap-hand wrist rotation about the vertical, the pinch's levelling tilt taken out."""
        return _yaw_of(rot @ self.pinch_level[self._contact_step()].T)

    def _contact_step(self) -> int:
        """The pinch's closing step at which the gap between thumb and partner equals the cap's width."""
        shape = self.task.cap.shape
        assert shape is not None
        return self.geo["right"].step_at_width(2 * shape.cap_radius)

    def _cap_grip(self) -> NDArray[np.float64]:
        """The pinch `GRIP_STEPS` closing steps past touching the cap: a firm but limited squeeze.
        A full pinch on a 3 cm cap pressed the Sharpa index finger on it with 40 N against the
        thumb's 8 N and shoved the bottle out of the other hand."""
        pre, pinch = self.pose["right"]["pre_pinch"], self.pose["right"]["pinch"]
        return pre + self._grip_step() / 40 * (pinch - pre)

    def _grip_step(self) -> int:
        """The closing step (of 40) the cap pinch is driven to: `GRIP_STEPS` past touching."""
        return min(40, self._contact_step() + GRIP_STEPS)

    def _cap_open(self) -> NDArray[np.float64]:
        """The pinch `OPEN_STEPS` closing steps short of touching the cap. Not pre_pinch: on a hand
        whose fingertips swing down as the pinch closes (Sharpa), closing from pre_pinch brought the
        inner finger links down on the cap's top edge before the fingertips reached its sides."""
        pre, pinch = self.pose["right"]["pre_pinch"], self.pose["right"]["pinch"]
        return pre + max(0.0, (self._contact_step() - OPEN_STEPS) / 40) * (pinch - pre)

    def _orbit(self, key: str, yaw_goal: float, rise: bool, speed: float) -> Callable[[], Pose]:
        """Turns the commanded wrist about the cap's axis toward yaw `yaw_goal`, one control
        step's worth of rotation at a time at `speed` (a fraction of the wrist's rotation limit), so
        the position and the rotation stay in step (a straight line between the end poses would cut
        through the cap); `rise` lifts it with the thread while the pinch holds the cap. The axis is
        where the cap was when the turn began: chasing a cap that the fingers push aside a little
        pushed it further (and the slipping fingers lost a third of each twist)."""
        step = speed * 0.9 * self.emb.max_wrist_rot_speed * self.env.control_dt

        def target() -> Pose:
            p, r = self.env.commanded_wrist_pose("right")
            if rise and self._released():
                return p, r  # the thread let go: stop twisting (a loose cap twisted on was pushed off the neck)
            pivot = self._once(key, self._cap_axis_point)
            axis = self._once(key + "_axis", self._cap_axis)
            d = float(np.clip(yaw_goal - self._yaw(r), -step, step))
            rz = axis_angle_to_matrix(axis, d)
            goal = pivot + rz @ (p - pivot)
            goal[2] = p[2] + (RISE_GAIN * PITCH * d / (2 * math.pi) if rise else 0.0)
            return goal, rz @ r

        return target

    def _approach_stages(self) -> list[Stage]:
        side = "right"
        start = -math.radians(TWIST_DEG) / 2

        def above() -> Pose:
            p, r = self._cap_grasp_pose(start)
            return p + np.array([0.0, 0.0, 0.06]), r

        return [
            Stage("above", above, self._cap_open, max_s=4.0, tol_pos=0.01, tol_rot=0.1),
            Stage("descend", lambda: self._cap_grasp_pose(start), self._cap_open, speed=0.4, max_s=3.0),
        ]

    def _cycle_stages(self, k: int) -> list[Stage]:
        """One turn of the cap: (after the first) open and turn back, then re-centre, grip and twist.
        `act` appends a cycle while the thread is engaged, so a twist in which it lets go is
        followed by placing, with the pinch still closed."""
        side = "right"
        half = math.radians(TWIST_DEG) / 2
        grip = self._cap_grip
        opened = self._cap_open
        align = lambda: self._once(f"align{k}", lambda: self._cap_grasp_pose(-half))  # noqa: E731
        back: list[Stage] = []
        if k > 0:
            hold = lambda: self._once(f"released{k}", lambda: self.env.commanded_wrist_pose(side))  # noqa: E731

            def up() -> Pose:
                p, r = hold()
                return p + np.array([0.0, 0.0, BACK_LIFT]), r

            back = [
                # Opening the pinch wide while the fingers touch the cap drags it back: first ease
                # the squeeze to just touching, slide the fingers up off the cap, then open.
                Stage(f"open{k}", self._orbit(f"open_axis{k}", half + math.radians(RELEASE_DEG), rise=True,
                                              speed=TWIST_SPEED), self._cap_open, min_s=OPEN_S, hand_blend_s=OPEN_S,
                      max_s=1.0),
                Stage(f"up{k}", up, self._cap_open, min_s=0.2, max_s=1.0),
                Stage(f"back{k}", self._orbit(f"back_axis{k}", -half, rise=False, speed=1.0), opened, max_s=3.0),
            ]
        return [
            *back,
            Stage(f"align{k}", align, opened, speed=0.4, max_s=1.5, tol_pos=0.002),
            Stage(f"grip{k}", align, grip, min_s=0.35, hand_blend_s=0.25, max_s=1.0),
            Stage(f"twist{k}", self._orbit(f"twist_axis{k}", half, rise=True, speed=TWIST_SPEED), grip,
                  max_s=3.0, hand_blend_s=0.01),
        ]

    def _lift_from(self) -> Pose:
        """Where the latest lift began (the carry keeps its height and orientation)."""
        return self.memo[f"lift_from{self.lifts - 1}"]

    def _lift_stages(self, regrip: bool) -> list[Stage]:
        """Lift the loose cap `CAP_LIFT` straight up; with `regrip`, first let go of it and grip it afresh
        where it sits now (a cap the fingers let slip stays on the neck)."""
        side = "right"
        n = self.lifts
        self.lifts += 1
        grip = self._cap_grip

        def lift() -> Pose:
            p, r = self._once(f"lift_from{n}", lambda: self.env.commanded_wrist_pose(side))
            return p + np.array([0.0, 0.0, CAP_LIFT]), r

        stages = [Stage(f"lift{n}", lift, grip, speed=0.4, max_s=2.0, hand_blend_s=0.01)]
        if not regrip:
            return stages
        hold = lambda: self._once(f"regrip_from{n}", lambda: self.env.commanded_wrist_pose(side))  # noqa: E731

        def up() -> Pose:
            p, r = hold()
            return p + np.array([0.0, 0.0, BACK_LIFT]), r

        # Along the cap's own axis: a cap that the letting-go thread left tilted on the neck's top
        # slipped out of a pinch set up along the bottle's axis.
        def regrip_pose() -> Pose:
            yaw = self._once(f"regrip_yaw{n}", lambda: self._yaw(hold()[1]))
            return self._once(f"regrip{n}", lambda: self._cap_grasp_pose(yaw, self._loose_cap_axis()))
        return [
            Stage(f"open_cap{n}", hold, self._cap_open, min_s=OPEN_S, hand_blend_s=OPEN_S),
            Stage(f"up_cap{n}", up, self._cap_open, min_s=0.2, max_s=1.0),
            Stage(f"regrip_align{n}", regrip_pose, self._cap_open, speed=0.4, max_s=1.5, tol_pos=0.002),
            Stage(f"regrip{n}", regrip_pose, grip, min_s=0.35, hand_blend_s=0.25, max_s=1.0),
            *stages,
        ]

    def _carry_stages(self) -> list[Stage]:
        """Carry the lifted cap to the table beside the bottle, set it down and let go."""
        side = "right"
        shape = self.task.cap.shape
        assert shape is not None  # placing starts mid-episode
        grip = self._cap_grip
        skirt = shape.cap_height - CAP_ROOF - CAP_SEAT_GAP  # cap origin above the skirt's lower edge

        def rel() -> Pose:
            wp, wr = self.env.wrist_pose(side)
            return wr.T @ (self._cap_axis_point() - wp), wr

        def over(height: float | None) -> Callable[[], Pose]:
            """The wrist pose that puts the cap's skirt `height` above the table at the placing spot
            (None: at the height it was lifted to)."""

            def target() -> Pose:
                cap_in_wrist, _ = self._once("cap_rel", rel)
                p, r = self._lift_from()
                base, _ = self._once("bottle_place", self._bottle)
                goal = np.array([base[0], base[1], TABLE_HEIGHT + skirt + (height or 0.0)]) + PLACE_OFFSET
                wrist = goal - r @ cap_in_wrist
                if height is None:
                    wrist[2] = p[2] + CAP_LIFT
                return wrist, r

            return target

        def touching() -> bool:
            """The cap's lowest point has reached the table (it may hang tilted in the fingers)."""
            d, c = self.env.data, self.task.cap.cap_body
            rot = d.xmat[c].reshape(3, 3)
            axis_len = shape.cap_height / 2
            centre = d.xpos[c] + rot @ np.array([0.0, 0.0, CAP_SEAT_GAP + CAP_ROOF - axis_len])
            low = centre[2] - abs(rot[2, 2]) * axis_len - shape.cap_radius * math.sqrt(max(0.0, 1 - rot[2, 2] ** 2))
            return bool(low < TABLE_HEIGHT + 0.002)

        placed = lambda: self._once("placed", lambda: self.env.commanded_wrist_pose(side))  # noqa: E731

        def away() -> Pose:
            p, r = placed()
            return p + np.array([0.0, 0.0, 0.08]), r

        return [
            # Sideways at the lifted height first: a diagonal path down swept the trailing fingers
            # into the bottle's neck and knocked the cap out of them.
            Stage("carry", over(None), grip, speed=0.5, max_s=3.0, hand_blend_s=0.01),
            Stage("descend_cap", over(0.03), grip, speed=0.5, max_s=3.0, hand_blend_s=0.01),
            Stage("lower", over(-0.01), grip, speed=0.2, max_s=2.0, hand_blend_s=0.01, done=touching, tol_pos=1.0),
            Stage("release", placed, self._hand(side, "open"), min_s=0.5, hand_blend_s=0.4),
            Stage("retreat", away, self._hand(side, "open"), speed=0.5),
            Stage("done", away, self._hand(side, "open"), max_s=1e9, done=lambda: False),
        ]
