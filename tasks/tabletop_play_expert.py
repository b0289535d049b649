"""Scripted demonstrator of tabletop_play: expands the episode's program through the motion grammar.

Each program step (`egosim.tasks.play_grammar.GRAMMAR`) becomes wrist stages (`HandScript`) for the
hand or hands that act in it; the other hand waits at home. Steps run one after another: a hand
starts step k once every hand of step k-1 is done and the scene has come to rest (at most 1.5 s). The primitives, written once against semantic
handles (grasp geometry measured on the hand model, the embodiment's grasp poses), so any hand,
the simulated human hand included, runs them:

- reach / grasp: top-down `pinch` (the hand yawed so the pinch closes across the object's narrow
  axis, the object where the closing fingers meet it from both sides at once, the fingertips' lowest
  point at the table for low objects, 3 cm below the top of tall ones; opened 2.5 cm wider than the
  object on the way down and closed 16 mm past contact, along the embodiment's own pinch line for what
  fits its pre_pinch gap and from the open hand for wider objects, `PinchProfile`),
  top-down `claw` (the claw's centre on the object's axis, the palm just above the top, the closing
  direction across the narrow axis or, for a mug, across its handle), or a side `power` grasp for
  tall cylinders (the palm against the side from outside, the cylinder's axis where it sits in the
  closed hand, `power_axis_point`). The rotation of a top-down grasp is the one nearest the home
  yaw among those that close across the object (a quarter or half turn is started from the side
  that ends nearest home).
- lift, move, place: the object's pose in the wrist frame is measured once it is lifted, and the
  wrist goes where that puts the object (its footprint centre over the destination, then down to
  the surface), so a grasp that slipped still places where asked.
- rotate: the wrist orbits the vertical axis through the object in quarter turns.
- push: the closed fist behind the object, fingers along the push direction (towards you: the hand
  turned round, outward), slid along the table.
- pour: the vessel is held from the side (`power`; a hand over its mouth would hold the beads in),
  carried beside the target, its bottom clear of the target's rim and its lip over the target's
  centre, then tipped away from the palm 120 degrees about the lip in 30-degree steps (closed loop,
  from where the wrist is), held, tipped back and set down where it stood. A mug is gripped with its
  handle where no finger lands (measured on the hand model).
- hand-over: the giver pinches the bar at its own end, lifts it and presents it along the y axis at
  the middle of the table; the taker pinches the free end from above; the giver lets go and leaves;
  the taker carries the bar to its side and puts it down.
- release, retreat: open to the pre-shape, lift (or back off a side grasp) and, unless the same hand
  acts next, go home.

After a lift the demonstrator checks that the object came up in its hand and, if not, tries the
grasp once more from where the object is now (human play is messy; a second miss goes on with the
program). Everything acts through the action: wrist targets under the speed limits and hand joint
targets; objects move only by physics.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from egosim.embodiment import SIDES, Embodiment
from egosim.geometry import axis_angle_to_matrix
from egosim.rig import HOME_WRIST_MAT, TABLE_HEIGHT
from egosim.tasks.play_objects import extent, grip_width
from egosim.tasks.tabletop_play import BIN_WALL_H, PROP_WALL, TabletopPlay
from egosim.tasks.scripted import (
    GraspGeometry,
    HandScript,
    PinchProfile,
    Pose,
    PosedHand,
    Stage,
    geom_extent,
    power_axis_point,
    step_scripts,
    wrist_for_point,
)

if TYPE_CHECKING:
    from egosim.env import EgosimEnv

CARRY_Z = 0.15  # carried objects' lowest point this high above the table (clears a 10 cm mug)
LIFT_Z = 0.10  # a lift raises the wrist this far
APPROACH = 0.08  # top-down grasps come down from this far above
TILT_STEP_DEG = 30.0
POUR_CLEAR = 0.015  # a vessel held over a target to pour has its bottom this far above the target's rim
TILT_STEPS = 4
PRESENT_AT = np.array([0.47, 0.0, TABLE_HEIGHT + 0.16])  # where a hand-over bar's centre is presented
HANDOVER_GRIP = 0.55  # hands pinch a hand-over bar this far from its centre (fraction of the half length)
PUSH_GAP = 0.02  # the fist starts this far behind the object
POWER_SQUEEZE = 1.35
POWER_AHEAD = 0.015  # a side grasp starts with the cylinder this far toward the fingertips: they curl it back
CLAW_SQUEEZE = 1.25
PINCH_SQUEEZE = 0.016  # a pinch closes this far past contact (the embodiments' pinch poses: about an 18 mm marker's)


def _rz(angle: float) -> NDArray[np.float64]:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _wrap_pi(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


def _hand_frame_axis(emb: Embodiment, side: str, pose: str) -> NDArray[np.float64]:
    """Thumb -> other fingertips direction (unit, wrist frame, projected on the palm plane) in a grasp pose."""
    hand = PosedHand.at(emb, side, pose)
    tips = [hand.site(s) for s in emb.fingertip_sites]
    v = np.mean(tips[1:], axis=0) - tips[0]
    v[2] = 0.0
    return v / np.linalg.norm(v)


def _free_handle_angles(emb: Embodiment, side: str, geo: GraspGeometry) -> list[float]:
    """Directions (wrist-frame angles about the palm normal, from the claw's centre) farthest from
    every fingertip in the `claw` pose: where a mug's handle goes so that no finger lands on it.
    The best two, best first."""
    hand = PosedHand.at(emb, side, "claw")
    tips = [hand.site(s) - geo.claw_center for s in emb.fingertip_sites]
    phis = [math.atan2(t[1], t[0]) for t in tips]
    grid = np.linspace(-math.pi, math.pi, 72, endpoint=False)
    clear = np.array([min(abs(_wrap_pi(g - f)) for f in phis) for g in grid])
    best = [float(grid[int(np.argmax(clear))])]
    far = np.array([abs(_wrap_pi(g - best[0])) for g in grid]) > math.radians(60)
    best.append(float(grid[far][int(np.argmax(clear[far]))]))
    return best


def _side_obstacles(emb: Embodiment, side: str, axis_point: NDArray[np.float64]) -> list[float]:
    """Angles (in the wrist frame's x-z plane, about the held cylinder's axis, which runs along the
    wrist's y in a side `power` grasp) of the fingertips, the palm and the finger links around the
    cylinder: where a mug's handle must not be."""
    hand = PosedHand.at(emb, side, "power")
    pts = [hand.site(s) for s in (*emb.fingertip_sites, emb.palm_site)]
    pts += [hand.local(hand.data.geom_xpos[g]) for g in hand.colliding_geoms()]
    near = [q for q in pts if math.hypot(q[0] - axis_point[0], q[2] - axis_point[2]) < 0.075]
    return [math.atan2(q[2] - axis_point[2], q[0] - axis_point[0]) for q in near]


def _hand_extent(emb: Embodiment, side: str, pose: str) -> dict[str, float]:
    """How far the hand's collision geoms reach along the wrist frame's +x (front) and +z (below a
    palm-down hand) in a grasp pose, by forward kinematics."""
    hand = PosedHand.at(emb, side, pose)
    out = {}
    for key, axis in (("front", 0), ("below", 2)):
        u = hand.wrist_rot[:, axis]
        out[key] = max(geom_extent(hand.model, hand.data, g, u) for g in hand.colliding_geoms()) - float(u @ hand.wrist_pos)
    return out


class TabletopPlayExpert:
    """Privileged-state demonstrator; `act` returns a one-step chunk (1, action_dim)."""

    embodiments: tuple[str, ...] = ()

    def __init__(self, env: EgosimEnv) -> None:
        self.env = env
        self.task: TabletopPlay = env.task  # type: ignore[assignment]
        self.emb = emb = env.embodiment
        self.geo = {s: GraspGeometry.measure(emb, s) for s in SIDES}
        # Two closing lines of the pinch: the embodiment's own (pre_pinch -> pinch, tuned for thin
        # objects) for what fits in the pre_pinch gap, and from the open hand for anything wider, up to
        # about the open hand's gap.
        self.pinch_thin = {s: PinchProfile.measure(emb, s, "pre_pinch", "pinch") for s in SIDES}
        self.pinch_wide = {s: PinchProfile.measure(emb, s, "open", "pinch") for s in SIDES}
        self.power_axis = {s: power_axis_point(emb, s) for s in SIDES}
        self.claw_axis = {s: _hand_frame_axis(emb, s, "claw") for s in SIDES}
        self.fist = {s: _hand_extent(emb, s, "power") for s in SIDES}
        self.handle_angles = {s: _free_handle_angles(emb, s, self.geo[s]) for s in SIDES}
        self.side_obstacles = {s: _side_obstacles(emb, s, self.power_axis[s]) for s in SIDES}
        self.pose: dict[str, dict[str, NDArray[np.float64]]] = {}
        for s in SIDES:
            lim = emb.joint_limits(s)
            opened = emb.grasp_pose("open", s)
            squeeze = lambda name, k: np.clip(opened + k * (emb.grasp_pose(name, s) - opened), lim[:, 0], lim[:, 1])  # noqa: E731
            self.pose[s] = {"open": opened, "pre_pinch": emb.grasp_pose("pre_pinch", s),
                            "pinch": emb.grasp_pose("pinch", s), "claw": squeeze("claw", CLAW_SQUEEZE),
                            "power": squeeze("power", POWER_SQUEEZE), "fist": emb.grasp_pose("power", s),
                            "claw_open": emb.grasp_pose("claw", s),
                            # Half-way to the claw before coming down: a thumb that sweeps sideways as
                            # the claw closes (Sharpa's) has done most of it before it reaches the object.
                            "pre_claw": squeeze("claw", 0.5)}
        # Side power grasp: fingers forward, palm facing the object from outside (left hand: palm -y).
        # For mirrored hands this puts the thumb up (the left thumb lies on the hand's +y side).
        x = np.array([1.0, 0.0, 0.0])
        self.side_rot = {}
        for s in SIDES:
            palm = np.array([0.0, -1.0 if s == "left" else 1.0, 0.0])
            self.side_rot[s] = np.column_stack([x, np.cross(palm, x), palm])
        self.reset()

    # ------------------------------------------------------------------ policy API
    def reset(self, seed: int | None = None) -> None:
        self.memo: dict[str, Any] = {}
        self.flags: set[str] = set()
        self.retried: set[str] = set()
        self.program = list(self.task.program)
        self._aliases: dict[str, str] = {}
        self._grasp_of: dict[str, tuple[str, int]] = {}
        self._end_checks: dict[int, Callable[[], bool]] = {}
        self._last_hand = {s: self._hand(s, "open") for s in SIDES}
        stages: dict[str, list[Stage]] = {s: [] for s in SIDES}
        self._stages = stages
        for k, step in enumerate(self.program):
            nxt = self.program[k + 1] if k + 1 < len(self.program) else None
            self._compile(k, step, nxt)
        for s in SIDES:
            stages[s].append(Stage("home", self._home(s), self._hand(s, "open"), speed=0.7, max_s=3.0, tol_pos=0.02))
            stages[s].append(Stage("idle", self._home(s), self._hand(s, "open"), max_s=1e9, done=lambda: False))
        self.scripts = {s: HandScript(s, stages[s]) for s in SIDES}

    def act(self, observation: dict[str, Any]) -> NDArray[np.float64]:
        return step_scripts(self.env, self.scripts, {s: self.pose[s]["open"] for s in SIDES})

    # ------------------------------------------------------------------ small helpers
    def _once(self, key: str, fn: Callable[[], Any]) -> Any:
        if key not in self.memo:
            self.memo[key] = fn()
        return self.memo[key]

    def _hand(self, side: str, name: str) -> Callable[[], NDArray[np.float64]]:
        return lambda: self.pose[side][name]

    def _home(self, side: str) -> Callable[[], Pose]:
        return lambda: (np.asarray(self.emb.home_wrist_pos[side], dtype=np.float64), HOME_WRIST_MAT)

    def _here(self, side: str, key: str) -> Callable[[], Pose]:
        """The commanded wrist pose when the stage starts, held."""
        return lambda: self._once(key, lambda: self.env.commanded_wrist_pose(side))

    def _scene_at_rest(self) -> bool:
        task, data = self.task, self.env.data
        return all(task._speed(data, task._slot_free[i][1]) < 0.02 for i in task.scene["objects"])

    def _set(self, flag: str) -> bool:
        self.flags.add(flag)
        return True

    def _add(self, side: str, name: str, target: Callable[[], Pose], hand: Callable[[], NDArray[np.float64]] | None = None,
             **kw: Any) -> Stage:
        hand = hand or self._last_hand[side]
        self._last_hand[side] = hand
        st = Stage(name, target, hand, **kw)
        self._stages[side].append(st)
        return st

    def _wait(self, side: str, key: str, until: Callable[[], bool]) -> None:
        self._add(side, f"wait_{key}", self._here(side, f"{key}:wait:{side}"), max_s=1e9, done=until,
                  hand_blend_s=0.01)

    def _mark(self, side: str, key: str, flag: str) -> None:
        self._add(side, f"mark_{flag}", self._here(side, f"{key}:mark:{side}:{flag}"), done=lambda: self._set(flag),
                  hand_blend_s=0.01)

    def _obj(self, i: int) -> Mapping[str, Any]:
        return self.task.scene["objects"][i]

    def _pose(self, i: int) -> Pose:
        return self.task.object_pose(self.env.data, i)

    def _narrow_angle(self, i: int) -> float | None:
        """World yaw of the object's narrow horizontal axis (None: round, any will do)."""
        o = self._obj(i)
        _, r = self._pose(i)
        kind, d = o["kind"], o["dims"]
        if kind in ("box", "tile", "bar"):
            axis = r[:, 0] if d["hx"] <= d["hy"] else r[:, 1]
        elif kind == "capsule":
            axis = r[:, 1]
        elif kind == "mug":
            axis = r[:, 0]  # across the handle, which sticks out along the body's y
        else:
            return None
        return math.atan2(axis[1], axis[0])

    def _down_rot(self, side: str, close_axis: NDArray[np.float64], angle: float | None, prefer: float = 0.0) -> NDArray[np.float64]:
        """Palm down, yawed so the hand-frame `close_axis` lies along world yaw `angle` (mod pi), the
        yaw nearest `prefer` (relative to home)."""
        if angle is None:
            return _rz(prefer) @ HOME_WRIST_MAT
        a = HOME_WRIST_MAT @ close_axis
        base = angle - math.atan2(a[1], a[0])
        yaw = prefer + ((base - prefer + math.pi / 2) % math.pi - math.pi / 2)
        return _rz(yaw) @ HOME_WRIST_MAT

    def _in_wrist(self, side: str, i: int) -> Pose:
        """The object's pose in the measured wrist frame."""
        wp, wr = self.env.wrist_pose(side)
        p, r = self._pose(i)
        return wr.T @ (p - wp), wr.T @ r

    def _place_wrist(self, side: str, key: str, goal: NDArray[np.float64], rot: NDArray[np.float64]) -> Pose:
        """The wrist pose (rotation `rot`) that puts the held object's footprint centre at `goal`."""
        rel = self.memo[key]
        return goal - rot @ rel[0], rot

    # ------------------------------------------------------------------ grasps
    def _grasp_pose(self, side: str, i: int, grasp: str, key: str, prefer: float = 0.0,
                    offset: float | Callable[[], float] = 0.0) -> Pose:
        """Wrist pose of a grasp on object i, `offset` along its x axis, fixed when first asked for (key)."""

        def compute() -> Pose:
            o = self._obj(i)
            p, r = self._pose(i)
            height = extent(o["kind"], o["dims"])[2]
            off = float(offset() if callable(offset) else offset)
            self.memo[key + ":off"] = off
            self.memo[key + ":p0"] = p.copy()  # where the object was when the grasp began
            centre = p + r[:, 0] * off
            geo = self.geo[side]
            if grasp == "pinch":
                prof = self._pinch_profile(side, grip_width(o["kind"], o["dims"]))
                c = prof.step_at_width(grip_width(o["kind"], o["dims"]))
                rot = self._down_rot(side, prof.axes[c], self._narrow_angle(i), prefer)
                # The object's axis where the closing fingers meet it from both sides at once; the
                # fingertips' lowest point at the table under low objects, 3 cm below the top of tall
                # ones, and for a ball so that the fingers meet it at its equator.
                if o["kind"] == "sphere":
                    tip_z = p[2] + max(0.002, 0.5 * height - (prof.reaches[c] - prof.centres[c][2]))
                else:
                    tip_z = p[2] + max(0.0, height - 0.03)
                hand_point = np.array([*prof.centres[c][:2], prof.reaches[c]])
                return wrist_for_point(np.array([centre[0], centre[1], tip_z]), rot, hand_point)
            if grasp == "claw":
                if o["kind"] == "mug":  # the handle (body +y) toward where no finger lands
                    handle = math.atan2(r[1, 1], r[0, 1])
                    yaws = [_wrap_pi(handle + a) for a in self.handle_angles[side]]
                    rot = _rz(min(yaws, key=lambda y: abs(_wrap_pi(y - prefer)))) @ HOME_WRIST_MAT
                else:
                    rot = self._down_rot(side, self.claw_axis[side], self._narrow_angle(i), prefer)
                hand_point = np.array([*geo.claw_center[:2], geo.palm_center[2] + 0.012])
                pos, rot = wrist_for_point(np.array([centre[0], centre[1], p[2] + height]), rot, hand_point)
                pos[2] = max(pos[2], p[2] + geo.claw_center[2] + 0.004)  # fingertips stay above the table
                return pos, rot
            # power: from the side, the fingers round the middle (the hand's lower edge clears the table)
            rot = self._side_rot(side, i)
            radius = float(o["dims"]["r"])
            axis = self.power_axis[side]
            hand_point = np.array([axis[0] + POWER_AHEAD, axis[1], geo.palm_center[2] + radius])
            grip_h = max(0.05, 0.5 * height)  # the finger stack centred on the cylinder
            return wrist_for_point(np.array([centre[0], centre[1], p[2] + grip_h]), rot, hand_point)

        return self._once(key, compute)

    def _side_rot(self, side: str, i: int) -> NDArray[np.float64]:
        """The side power grasp's rotation, turned about the vertical (within 75 degrees) so that a
        mug's handle lies as far as it can from the fingertips and the palm."""
        o = self._obj(i)
        if o["kind"] != "mug":
            return self.side_rot[side]
        _, r = self._pose(i)
        handle = r[:, 1]
        best, best_score = self.side_rot[side], -1.0
        for yaw in np.radians(np.arange(-75, 76, 5)):
            rot = _rz(float(yaw)) @ self.side_rot[side]
            v = rot.T @ handle
            theta = math.atan2(v[2], v[0])
            score = min(abs(_wrap_pi(theta - a)) for a in self.side_obstacles[side]) - 0.2 * abs(float(yaw))
            if score > best_score:
                best, best_score = rot, score
        return best

    @staticmethod
    def _release_shape(grasp: str) -> str:
        return "pre_pinch" if grasp == "pinch" else "open"

    def _pinch_profile(self, side: str, width: float) -> PinchProfile:
        """The embodiment's own pinch line for objects that fit its pre_pinch gap (1 cm to spare),
        else the line from the open hand."""
        thin = self.pinch_thin[side]
        return thin if thin.gaps[0] >= width + 0.01 else self.pinch_wide[side]

    def _grip_pose(self, side: str, i: int, grasp: str) -> Callable[[], NDArray[np.float64]]:
        """The closed hand: a pinch closes `PINCH_SQUEEZE` past contact along its line (the full pinch
        pose would crush a wide light object out of the fingers), a claw or power grasp to its pose."""
        if grasp == "pinch":
            o = self._obj(i)
            width = grip_width(o["kind"], o["dims"])
            prof = self._pinch_profile(side, width)
            k = prof.step_at_width(max(0.0, width - PINCH_SQUEEZE))
            return lambda: prof.poses[k]
        return self._hand(side, grasp)

    def _pre_shape_pose(self, side: str, i: int, grasp: str) -> Callable[[], NDArray[np.float64]]:
        """The hand's shape on the way down: a pinch opened 2.5 cm wider than the object, half a claw,
        or the open hand for a side grasp."""
        if grasp == "pinch":
            o = self._obj(i)
            width = grip_width(o["kind"], o["dims"])
            prof = self._pinch_profile(side, width)
            wide = np.flatnonzero(prof.gaps >= width + 0.025)
            k = int(wide[-1]) if wide.size else 0
            return lambda: prof.poses[k]
        return self._hand(side, {"claw": "pre_claw", "power": "open"}[grasp])

    def _grasp_stages(self, side: str, i: int, grasp: str, key: str, prefer: float = 0.0,
                      offset: float | Callable[[], float] = 0.0, lift: float = LIFT_Z, check: bool = True) -> None:
        """reach, grasp, lift (and check: one more try if the object did not come up)."""
        self._grasp_of[key] = (side, i)
        g = lambda: self._grasp_pose(side, i, grasp, key + ":g", prefer, offset)  # noqa: E731
        grip = self._grip_pose(side, i, grasp)
        pre = self._pre_shape_pose(side, i, grasp)

        def shifted(dz: float, out: float = 0.0) -> Callable[[], Pose]:
            def target() -> Pose:
                p, r = g()
                return p + np.array([0.0, 0.0, dz]) - out * r[:, 2], r

            return target

        if grasp == "power":  # from the side: beside and above, beside, in
            self._add(side, "reach", shifted(APPROACH, 0.07), pre, max_s=4.0, tol_pos=0.01, tol_rot=0.1)
            self._add(side, "beside", shifted(0.0, 0.07), speed=0.5, max_s=2.5)
            self._add(side, "in", g, speed=0.3, max_s=2.5)
        else:
            self._add(side, "reach", shifted(APPROACH), pre, max_s=4.0, tol_pos=0.01, tol_rot=0.1)
            self._add(side, "descend", g, speed=0.4, max_s=3.0)
        self._add(side, "close", g, grip, min_s=0.7, hand_blend_s=0.5)
        self._add(side, "lift", shifted(lift), speed=0.5, max_s=3.0, hand_blend_s=0.01)
        self._add(side, "hold_check", shifted(lift), min_s=0.2, hand_blend_s=0.01,
                  done=lambda: self._measure(side, i, key) and (not check or self._check(side, i, grasp, key, prefer, offset, lift)))

    def _measure(self, side: str, i: int, key: str) -> bool:
        self.memo[key + ":rel"] = self._in_wrist(side, i)
        return True

    def _held(self, side: str, i: int, key: str) -> bool:
        start = self.memo[key + ":g:p0"]
        p, _ = self._pose(i)
        touched = self.task._side_contacts[side].touched_by_hand(self.env.data)
        return bool(p[2] > start[2] + 0.015 and self.task._slot_body[i] in touched)

    def _check(self, side: str, i: int, grasp: str, key: str, prefer: float, offset: float | Callable[[], float],
               lift: float) -> bool:
        """After a lift: if the object is not in the hand, insert one more grasp attempt."""
        if self._held(side, i, key) or key in self.retried:
            return True
        self.retried.add(key)
        script = self.scripts[side]
        saved, self._stages[side] = self._stages[side], []
        last = self._last_hand[side]
        self._add(side, "regrip_open", self._here(side, key + ":miss"), self._hand(side, "open"), min_s=0.4)
        self._grasp_stages(side, i, grasp, key + "r", prefer, offset, lift, check=False)
        self.memo[key + ":rel"] = None  # re-measured by the retry's hold_check
        new, self._stages[side] = self._stages[side], saved
        self._last_hand[side] = last
        script.stages[script.index + 1 : script.index + 1] = new
        self._aliases[key] = key + "r"
        return True

    def _rel(self, key: str) -> Pose:
        """The held object's pose in the wrist frame, measured after the lift (now, if that stage
        timed out before measuring)."""
        key = self._alias(key)
        if self.memo.get(key + ":rel") is None:
            side, i = self._grasp_of[key]
            self._measure(side, i, key)
        return self.memo[key + ":rel"]

    # ------------------------------------------------------------------ places
    def _dest_point(self, dest: Mapping[str, Any]) -> NDArray[np.float64]:
        """Where a placed object's footprint centre goes (xy) and the surface it stands on (z)."""
        kind = dest["kind"]
        data = self.env.data
        if kind == "table":
            return np.array([*dest["xy"], TABLE_HEIGHT])
        if kind in ("tray", "bin"):
            c, _ = self.task.prop_pose(data, kind)
            return np.array([c[0], c[1], c[2] + PROP_WALL])
        slot = int(dest["slot"])
        c, _ = self.task.object_pose(data, slot)
        o = self._obj(slot)
        surface = extent(o["kind"], o["dims"])[2] if o["kind"] in ("tile", "plate") else 0.006
        return np.array([c[0], c[1], c[2] + surface])

    def _carry_place(self, side: str, key: str, goal: Callable[[], NDArray[np.float64]],
                     rot: Callable[[], NDArray[np.float64]], release: str, side_grasp: bool,
                     carry: bool = True) -> None:
        """move (at carry height; not when `carry` is false: straight down), place, release, retreat."""
        def at(dz: float) -> Callable[[], Pose]:
            def target() -> Pose:
                rel = self._rel(key)
                r = rot()
                return goal() + np.array([0.0, 0.0, dz]) - r @ rel[0], r

            return target

        if carry:
            self._add(side, "move", at(CARRY_Z), speed=0.6, max_s=4.0, tol_pos=0.01, hand_blend_s=0.01)
        self._add(side, "place", at(0.004), speed=0.3, max_s=3.0, tol_pos=0.004, hand_blend_s=0.01)
        self._add(side, "release", self._here(side, key + ":rel_pose"), self._hand(side, release), min_s=0.6,
                  hand_blend_s=0.5)
        self._retreat(side, key, side_grasp)

    def _retreat(self, side: str, key: str, side_grasp: bool) -> None:
        def up() -> Pose:
            p, r = self._once(key + ":rel_pose", lambda: self.env.commanded_wrist_pose(side))
            back = -0.06 * r[:, 2] if side_grasp else np.zeros(3)
            return p + back + np.array([0.0, 0.0, 0.0 if side_grasp else 0.08]), r

        def up2() -> Pose:
            p, r = up()
            return p + np.array([0.0, 0.0, 0.08 if side_grasp else 0.0]), r

        self._add(side, "retreat", up, speed=0.5, max_s=2.0, tol_pos=0.01)
        if side_grasp:
            self._add(side, "retreat_up", up2, self._hand(side, "open"), speed=0.5, max_s=2.0, tol_pos=0.01)

    def _held_rot(self, side: str, key: str) -> Callable[[], NDArray[np.float64]]:
        return lambda: self._once(key + ":held_rot", lambda: self.env.commanded_wrist_pose(side)[1])

    # ------------------------------------------------------------------ program steps
    def _compile(self, k: int, step: Mapping[str, Any], nxt: Mapping[str, Any] | None) -> None:
        """Appends step k's stages to the hands that act in it (they first wait for step k-1)."""
        verb = step["verb"]
        sides = _actors(step)
        for s in sides:
            if k:
                self._wait(s, f"{k}", self._end_checks[k - 1])
            # Let the scene come to rest first (as people pause between actions), at most 1.5 s.
            self._add(s, f"settle{k}", self._here(s, f"{k}:settle:{s}"), max_s=1.5, hand_blend_s=0.01,
                      done=self._scene_at_rest)
        getattr(self, f"_step_{verb}")(k, step)
        following = _actors(nxt) if nxt is not None else []
        for s in sides:
            if s not in following:
                self._add(s, "go_home", self._home(s), self._hand(s, "open"), speed=0.7, max_s=3.0, tol_pos=0.03)
            self._mark(s, f"{k}", f"end{k}:{s}")
        flags = [f"end{k}:{s}" for s in sides]
        self._end_checks[k] = lambda: all(f in self.flags for f in flags)

    def _step_pick_place(self, k: int, step: Mapping[str, Any]) -> None:
        side, i, grasp = step["hand"], int(step["obj"]), step["grasp"]
        key = f"{k}:{side}"
        self._grasp_stages(side, i, grasp, key)
        dest = step["dest"]
        self._carry_place(side, key, lambda: self._dest_point(dest), self._held_rot(side, key),
                          self._release_shape(grasp), grasp == "power")

    def _step_rotate(self, k: int, step: Mapping[str, Any]) -> None:
        side, i, grasp = step["hand"], int(step["obj"]), step["grasp"]
        angle = float(step["angle"])
        key = f"{k}:{side}"
        self._grasp_stages(side, i, grasp, key, prefer=-angle / 2 if grasp != "power" else 0.0)
        parts = max(1, int(math.ceil(abs(angle) / (math.pi / 2) - 1e-3)))
        start = lambda: self._once(key + ":turn0", lambda: self._pose(i)[0].copy())  # noqa: E731
        for n in range(1, parts + 1):
            a = angle * n / parts

            def turned(a: float = a) -> Pose:
                p0, r0 = self._once(key + ":held", lambda: self.env.commanded_wrist_pose(side))
                c = start()
                rz = _rz(a)
                return c + rz @ (p0 - c), rz @ r0

            self._add(side, f"turn{n}", turned, speed=0.5, max_s=3.0, tol_rot=0.04, hand_blend_s=0.01)
        final_rot = lambda: _rz(angle) @ self._once(key + ":held", lambda: self.env.commanded_wrist_pose(side))[1]  # noqa: E731
        goal = lambda: np.array([*self._start_xy(key), TABLE_HEIGHT])  # noqa: E731
        self._add(side, "measure", self._here(side, key + ":turned"), min_s=0.1,
                  done=lambda: self._measure(side, i, self._alias(key)))
        self._carry_place(side, key, goal, final_rot, self._release_shape(grasp), grasp == "power", carry=False)

    def _start_xy(self, key: str) -> NDArray[np.float64]:
        """Where the object of the grasp `key` stood when the (first) grasp began."""
        return self.memo[key + ":g:p0"][:2]

    def _alias(self, key: str) -> str:
        while key in self._aliases:
            key = self._aliases[key]
        return key

    def _step_push(self, k: int, step: Mapping[str, Any]) -> None:
        side, i = step["hand"], int(step["obj"])
        d = np.array([*step["dir"], 0.0])
        dist = float(step["dist"])
        key = f"{k}:{side}"

        def start_pose() -> Pose:
            """The fist behind the object, fingers along the push, its lowest point just above the
            table (towards you: turned round, the fingers pointing back, the turn made outward)."""
            o = self._obj(i)
            p, r = self._pose(i)
            hx, hy, _ = extent(o["kind"], o["dims"])
            reach = abs(d @ r[:, 0]) * hx + abs(d @ r[:, 1]) * hy  # half extent along d
            yaw = math.atan2(d[1], d[0])
            if abs(abs(yaw) - math.pi) < 1e-3:
                yaw = (math.pi - 0.01) * (1.0 if side == "left" else -1.0)
            rot = _rz(yaw) @ HOME_WRIST_MAT
            ext = self.fist[side]
            back = p - d * (reach + PUSH_GAP)
            hand_point = np.array([ext["front"], 0.0, ext["below"]])
            return wrist_for_point(np.array([back[0], back[1], TABLE_HEIGHT + 0.006]), rot, hand_point)

        s0 = lambda: self._once(key + ":push0", start_pose)  # noqa: E731

        def at(dz: float, along: float = 0.0) -> Callable[[], Pose]:
            def target() -> Pose:
                p, r = s0()
                return p + np.array([0.0, 0.0, dz]) + d * along, r

            return target

        self._add(side, "reach", at(APPROACH), self._hand(side, "fist"), max_s=4.0, tol_pos=0.01, tol_rot=0.1)
        self._add(side, "lower", at(0.0), speed=0.4, max_s=2.5)
        self._add(side, "push", at(0.0, dist + PUSH_GAP), speed=0.25, max_s=4.0, hand_blend_s=0.01)
        self._add(side, "retreat", at(APPROACH, dist + PUSH_GAP - 0.02), self._hand(side, "open"), speed=0.5,
                  max_s=2.0, tol_pos=0.01)

    def _step_pour(self, k: int, step: Mapping[str, Any]) -> None:
        side, i = step["hand"], int(step["obj"])
        key = f"{k}:{side}"
        self._grasp_stages(side, i, "power", key)  # from the side: a hand over the mouth would hold the beads in
        o = self._obj(i)
        r_mug, h_mug = float(o["dims"]["r"]), float(o["dims"]["h"])
        home_xy = lambda: self._start_xy(key)  # noqa: E731

        def u_dir() -> NDArray[np.float64]:
            """The way the mouth tips: away from the palm (over the fingers that hold the vessel)."""
            def compute() -> NDArray[np.float64]:
                _, r = self._held_pose(side, key)
                u = r[:, 2].copy()  # the palm faces the vessel: beyond it, over the fingers
                u[2] = 0.0
                return u / np.linalg.norm(u)

            return self._once(key + ":u", compute)

        def beside_goal() -> NDArray[np.float64]:
            t = self._dest_point(step["dest"])
            rim = BIN_WALL_H if step["dest"]["kind"] == "bin" else float(self._obj(int(step["dest"]["slot"]))["dims"]["h"])
            g = t - u_dir() * r_mug  # the lip (the pivot of the tipping) over the target's centre
            g[2] = TABLE_HEIGHT + rim + POUR_CLEAR  # the vessel's bottom clear of the target's rim
            return g

        rot = self._held_rot(side, key)

        def at_goal() -> Pose:
            rel = self._rel(key)
            r = rot()
            return beside_goal() - r @ rel[0], r

        self._add(side, "move", lambda: self._carry_via(side, key, beside_goal, rot), speed=0.6, max_s=4.0,
                  tol_pos=0.01, hand_blend_s=0.01)
        self._add(side, "over", at_goal, speed=0.4, max_s=3.0, tol_pos=0.006, hand_blend_s=0.01)

        def pivot() -> NDArray[np.float64]:
            def compute() -> NDArray[np.float64]:
                p, r = self._pose(i)
                return p + u_dir() * r_mug + r[:, 2] * h_mug

            return self._once(key + ":pivot", compute)

        def tilt_step(n: int, sign: float) -> Callable[[], Pose]:
            def compute() -> Pose:
                axis = np.cross([0.0, 0.0, 1.0], u_dir())
                turn = axis_angle_to_matrix(axis, sign * math.radians(TILT_STEP_DEG))
                p, r = self.env.commanded_wrist_pose(side)
                c = pivot()
                return c + turn @ (p - c), turn @ r

            return lambda: self._once(f"{key}:tilt{n}:{sign}", compute)

        for n in range(TILT_STEPS):
            self._add(side, f"tilt{n}", tilt_step(n, 1.0), speed=0.4, max_s=2.0, tol_rot=0.04, hand_blend_s=0.01)
        self._add(side, "pouring", self._here(side, key + ":pouring"), min_s=1.2, hand_blend_s=0.01)
        for n in range(TILT_STEPS):
            self._add(side, f"untilt{n}", tilt_step(n, -1.0), speed=0.4, max_s=2.0, tol_rot=0.04, hand_blend_s=0.01)
        goal = lambda: np.array([*home_xy(), TABLE_HEIGHT])  # noqa: E731
        self._carry_place(side, key, goal, rot, "open", True)

    def _held_pose(self, side: str, key: str) -> Pose:
        return self._once(key + ":held_pose", lambda: self.env.commanded_wrist_pose(side))

    def _carry_via(self, side: str, key: str, goal: Callable[[], NDArray[np.float64]],
                   rot: Callable[[], NDArray[np.float64]]) -> Pose:
        """At carry height above `goal`."""
        rel = self._rel(key)
        r = rot()
        g = goal().copy()
        g[2] = TABLE_HEIGHT + CARRY_Z
        return g - r @ rel[0], r

    def _step_hand_over(self, k: int, step: Mapping[str, Any]) -> None:
        giver, taker, i = step["hand"], step["taker"], int(step["obj"])
        kg, kt = f"{k}:{giver}", f"{k}:{taker}"
        o = self._obj(i)
        hx = float(o["dims"]["hx"])
        toward_giver = 1.0 if giver == "left" else -1.0

        def end_offset(toward: float) -> float:
            """Offset along the bar's x axis of its end on the side `toward` (+1: +y), for a grasp."""
            _, r = self._pose(i)
            return math.copysign(HANDOVER_GRIP * hx, r[1, 0] * toward)

        # Giver: its own end, lift, present the bar along y at the middle, hold until taken, let go.
        self._grasp_stages(giver, i, "pinch", kg, offset=lambda: end_offset(toward_giver))
        self._present(giver, i, kg, toward_giver, k)
        self._wait(giver, f"{k}taken", lambda: f"taken{k}" in self.flags)
        self._add(giver, "let_go", self._here(giver, kg + ":letgo"), self._hand(giver, "pre_pinch"), min_s=0.6,
                  hand_blend_s=0.5)
        self._mark(giver, kg, f"released{k}")
        self._retreat_from(giver, kg + ":letgo")
        # Taker: once presented, pinch the free end from above; once let go, carry it to its side.
        self._wait(taker, f"{k}presented", lambda: f"presented{k}" in self.flags)

        def free_end_grasp() -> Pose:
            """A pinch across the bar at its free end, where the bar hangs now (a bar pinched at one
            end hangs from the pinch like from a hinge)."""
            p, r = self._pose(i)
            point = p + r[:, 0] * end_offset(-toward_giver)  # on the bar's lower face, along its axis
            prof = self._pinch_profile(taker, grip_width(o["kind"], o["dims"]))
            c = prof.step_at_width(grip_width(o["kind"], o["dims"]))
            rot = self._down_rot(taker, prof.axes[c], self._narrow_angle(i))
            return wrist_for_point(point, rot, np.array([*prof.centres[c][:2], prof.reaches[c]]))

        def taker_at(tag: str, dz: float) -> Callable[[], Pose]:
            def target() -> Pose:
                pos, rot = self._once(f"{kt}:{tag}", free_end_grasp)
                return pos + np.array([0.0, 0.0, dz]), rot

            return target

        self._grasp_of[kt] = (taker, i)
        pre = self._pre_shape_pose(taker, i, "pinch")
        for n in range(2):  # a second try if the first pinch misses the hanging bar
            self._add(taker, "reach" if n == 0 else "reach_again", taker_at(f"a{n}", APPROACH), pre, max_s=4.0,
                      tol_pos=0.01, tol_rot=0.1)
            self._add(taker, "descend", taker_at(f"d{n}", 0.0), speed=0.3, max_s=3.0)
            self._add(taker, "close", taker_at(f"d{n}", 0.0), self._grip_pose(taker, i, "pinch"), min_s=0.8,
                      hand_blend_s=0.5)
            if n == 0:
                self._add(taker, "check_taken", taker_at("d0", 0.0), min_s=0.1, hand_blend_s=0.01,
                          done=lambda: self._skip_retry(taker, i, "reach_again"))
        self._mark(taker, kt, f"taken{k}")
        self._wait(taker, f"{k}released", lambda: f"released{k}" in self.flags)
        self._grasp_of[kt] = (taker, i)
        self._add(taker, "take", taker_at("take", 0.03), speed=0.4, max_s=2.0, hand_blend_s=0.01,
                  done=lambda: self._measure(taker, i, kt))
        dest = step["dest"]
        self._carry_place(taker, kt, lambda: self._dest_point(dest), self._held_rot(taker, kt), "pre_pinch", False)

    def _skip_retry(self, side: str, i: int, retry: str) -> bool:
        """If `side` holds object i, skips the retry stages that follow (up to the one after `retry`'s
        close)."""
        if self._touching(side, i):
            script = self.scripts[side]
            names = [st.name for st in script.stages]
            start = script.index + 1
            if start < len(names) and names[start] == retry:
                del script.stages[start : start + 3]
        return True

    def _touching(self, side: str, i: int) -> bool:
        return self.task._slot_body[i] in self.task._side_contacts[side].touched_by_hand(self.env.data)

    def _present(self, side: str, i: int, key: str, toward: float, k: int) -> None:
        """Turns the held bar along y, the held end toward the giver's side (`toward`: +1 = +y), and
        brings its footprint centre to PRESENT_AT."""

        def target() -> Pose:
            def compute() -> NDArray[np.float64]:
                _, r = self._pose(i)
                held = math.copysign(1.0, self.memo.get(self._alias(key) + ":g:off", 1.0))
                a = held * r[:, 0]  # from the bar's centre to the held end
                return _rz(_wrap_pi(math.atan2(toward, 0.0) - math.atan2(a[1], a[0])))

            turn = self._once(key + ":present", compute)
            rot = turn @ self._held_rot(side, key)()
            rel = self._rel(key)
            return PRESENT_AT - rot @ rel[0], rot

        self._add(side, "present", target, speed=0.5, max_s=4.0, tol_pos=0.008, hand_blend_s=0.01)
        self._mark(side, key, f"presented{k}")

    def _retreat_from(self, side: str, pose_key: str) -> None:
        """Straight up 8 cm from the pose held under `pose_key`."""
        def up() -> Pose:
            p, r = self._once(pose_key, lambda: self.env.commanded_wrist_pose(side))
            return p + np.array([0.0, 0.0, 0.08]), r

        self._add(side, "retreat", up, speed=0.5, max_s=2.0, tol_pos=0.01)


def _actors(step: Mapping[str, Any]) -> list[str]:
    """The hands that act in a program step."""
    return [step["hand"], step["taker"]] if step["verb"] == "hand_over" else [step["hand"]]
