"""Scripted expert for dish_rack, written once against semantic handles (any embodiment).

One rim grasp serves both hands: a three-finger pinch (the embodiment's `pre_tripod` -> `tripod`
poses: thumb against index, middle beside the index; Dex3's pinch already is one) whose palm
faces the plate's eating face, yawed (by the pinch axis measured on the hand model,
`GraspGeometry`) so that the thumb -> fingers direction points from the edge toward the plate's
centre, and pitched so that direction rises steeply out of the plate's plane: the thumb closes
under the edge, the fingers on the rim's inner slope. Two opposed fingertip pads on a 3 mm rim
are a hinge about the line through their contacts (rolling friction alone resists it); with
Sharpa Wave's thumb-index pinch the plate turned up to 45 degrees about that line while being
tipped up, and the third pad stops it. The steepness is measured, not named: as steep as the
wrist's workspace lets the hand reach a rim on the table, less 5 degrees, at most 80 (about 71
degrees on Dex3, 52 on Sharpa Wave, whose thick fingertips need a flatter hand). The grip target
lies past the pinch pose (the rim is thinner than what the pinch pose was made for).

Per plate (in order 0, 1, 2) the left hand pinches the plate's near rim from above and stands it up
by pivoting it about its far edge, which stays on the table (closed loop, 15 degrees a step, from
where the plate really is), so the grip never carries the plate at a lever arm. It lifts the
upright plate 4.5 cm (face toward +x, as the rack's slots want it), carries it slowly to the
handover point and stands it on its edge there: the table holds the plate still for the other
hand. The right hand comes round the plate (through a waypoint above and right of its grasp,
clear of the rack) and pinches the plate's rim 70 degrees from its top the same way; the left
opens and backs away. The right hand lifts the plate 12 cm, lets it settle in the grip, turns it
upright (face toward +x), carries it beside slot i (nearest slot first: the hand works on the
plate's far side) in the slot's plane, then along the slot over it (a straight path swept the
plate through the tops of the plates already in the nearer slots and pushed them out), turns it
upright again, lowers it, closed loop on the plate's lowest point, into the slot, opens, slides
off the rim, rises above the rack and goes back. Meanwhile the left hand fetches the next plate
and waits with it until the right hand is free; after the last plate it waits beside the
handover point until the right hand has carried the plate off (on its way home it crossed the
plate). A plate the left hand drops before the handover is picked again (twice at most).

Status (measured on the 50 evaluation states, `egosim eval tasks=[dish_rack]
embodiments=[sharpa_wave,unitree_dex3] policy=expert episodes=50 workers=1`, in
`docs/results/expert50-dish_rack.json`): Sharpa Wave 49/50 (mean score 0.98), Dex3 50/50. Sharpa's
miss, state 32: the plate slips out of the left hand's pinch as it is set on its edge at the
handover point, and the retries do not recover it (score 0.44).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from egosim.embodiment import SIDES
from egosim.geometry import axis_angle_to_matrix
from egosim.rig import TABLE_HEIGHT
from egosim.tasks.dish_rack import N_PLATES, PEG_H, PLATE_R, RIM_Z, DishRack
from egosim.tasks.scripted import GraspGeometry, HandScript, Pose, Stage, step_scripts, wrist_for_point

if TYPE_CHECKING:
    from egosim.env import EgosimEnv

RIM_INSET = 0.012  # the pinch point lies this far inside the edge (m)
RIM_BELOW = 0.016  # and this far below the edge's mid-surface (along the face normal): thumb under the rim
PIVOT_STEP_DEG = 15.0
GRIP_ELEV_DEG = 80.0  # at most this steep: the thumb -> fingers direction out of the plate's plane
ELEV_MARGIN_DEG = 5.0  # below the steepest pinch the wrist's workspace allows at the table
STAND_DEG = 88.0  # tip the plate up this far about its far edge
HANDOVER_XY = (0.44, 0.12)  # where the left hand stands the plate for the handover (rig frame)
CARRY_LIFT = 0.045  # the left hand carries the upright plate this high (its lowest point, m)
RAISE = 0.12  # the right hand lifts the plate this far first (it swings to hang below the grip)
RIGHT_GRIP_DEG = 70.0  # the right hand's grip point, degrees from the plate's top toward its right
SIDE_WAYPOINT = 0.05  # the right hand's approach waypoint, this far right of its grip pose (m)
SLOT_CLEARANCE = 0.006  # the plate's lowest point above the rack base when released
SLOT_EDGE_DX = 0.005  # the edge goes this far past the slot's centre (the rim slopes back from it)
SLIDE_IN = 2 * PLATE_R + 0.01  # the plate comes over its slot from this far beside it along the slot (+y)
CLEAR_ABOVE = 0.2  # the right wrist rises this far above a standing plate's top before leaving the rack
MAX_RETRIES = 2  # a plate the left hand drops before the handover is picked again this often
_Z = np.array([0.0, 0.0, 1.0])
_X = np.array([1.0, 0.0, 0.0])


def _unit(v: NDArray[np.float64]) -> NDArray[np.float64]:
    return v / max(float(np.linalg.norm(v)), 1e-9)


class DishRackExpert:
    """Privileged-state expert; `act` returns a one-step chunk (1, action_dim)."""

    embodiments: tuple[str, ...] = ()

    def __init__(self, env: EgosimEnv) -> None:
        self.env = env
        self.task: DishRack = env.task
        self.emb = env.embodiment
        self.pose = {}
        for s in SIDES:
            lim = self.emb.joint_limits(s)
            # A three-finger pinch: two opposed fingertip pads on a thin rim are a hinge about the
            # line through them; a third pad beside them stops that turn.
            pre, pinch = self.emb.grasp_pose("pre_tripod", s), self.emb.grasp_pose("tripod", s)
            # The rim is thinner than what the pinch pose was made for: aim past it so the fingers squeeze.
            self.pose[s] = {
                "open": self.emb.grasp_pose("open", s),
                "pre_tripod": pre,
                "grip": np.clip(pinch + 0.5 * (pinch - pre), lim[:, 0], lim[:, 1]),
            }
        self.geo = {s: GraspGeometry.measure(self.emb, s) for s in SIDES}
        self.reset()

    # ------------------------------------------------------------------ policy API
    def reset(self, seed: int | None = None) -> None:
        self.memo: dict[str, Any] = {}
        self.retries = [0] * N_PLATES
        left = [st for i in range(N_PLATES) for st in self._left_stages(i)]
        right = [st for i in range(N_PLATES) for st in self._right_stages(i)]
        done = lambda s: Stage("done", lambda: self._home(s), self._hand(s, "open"), max_s=1e9, done=lambda: False)  # noqa: E731
        self.scripts = {"left": HandScript("left", left + [done("left")]), "right": HandScript("right", right + [done("right")])}

    def act(self, observation: dict[str, Any]) -> NDArray[np.float64]:
        env = self.env
        self._retry_dropped_pick()
        return step_scripts(env, self.scripts, {s: self.pose[s]["open"] for s in SIDES})

    def _retry_dropped_pick(self) -> None:
        """If the left hand has lost the plate it is carrying (back on the table, no contact), it
        starts that plate's pick over (when the plate lies flat again) (at most MAX_RETRIES times per plate)."""
        script = self.scripts["left"]
        st = script.stage
        if st is None or not st.name.startswith("L") or "_" not in st.name:
            return
        i = int(st.name[1 : st.name.index("_")])
        phase = st.name.split("_", 1)[1]
        if phase not in ("lift", "wait", "carry", "set", "hold") or self.retries[i] >= MAX_RETRIES:
            return
        left, right = self.task.hand_contacts(self.env.data)
        _, rot = self.task.plate_pose(self.env.data, i)
        if i in left or i in right or abs(rot[2, 2]) < 0.7:
            return
        self.retries[i] += 1
        for k in [k for k in self.memo if k.startswith(f"L{i}_")]:
            del self.memo[k]
        script.index = [s.name for s in script.stages].index(f"L{i}_above")
        script.elapsed, script.hand_from = 0.0, None

    # ------------------------------------------------------------------ helpers
    def _once(self, key: str, fn: Callable[[], Any]) -> Any:
        if key not in self.memo:
            self.memo[key] = fn()
        return self.memo[key]

    def _hand(self, side: str, name: str) -> Callable[[], NDArray[np.float64]]:
        return lambda: self.pose[side][name]

    def _home(self, side: str) -> Pose:
        """A resting pose a little outside the home position (clear of the handover point)."""
        _, r = self.env.commanded_wrist_pose(side)
        out = 0.06 if side == SIDES[0] else -0.06
        return self.emb.workspace[side].clip(np.asarray(self.emb.home_wrist_pos[side]) + np.array([0, out, 0.03])), r

    def _grip_rotation(self, side: str, u: NDArray[np.float64], n: NDArray[np.float64]) -> NDArray[np.float64]:
        """Wrist rotation for a rim pinch: palm toward face normal `n`'s side (palm normal -n), the
        pinch axis's in-palm part along `u` (edge -> centre)."""
        z = -n
        x = _unit(u - (u @ z) * z)
        r0 = np.column_stack([x, np.cross(z, x), z])
        a = self.geo[side].pinch_axis
        phi = np.arctan2(a[1], a[0])
        c, s = np.cos(-phi), np.sin(-phi)
        return r0 @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])

    def _rim_grip(self, side: str, i: int, u: NDArray[np.float64], lift: float = 0.0, elev: float = GRIP_ELEV_DEG) -> Pose:
        """Wrist pose pinching plate i's rim at the edge point opposite `u` (in-plane, edge -> centre),
        offset by `lift` along the face normal (an approach from the face's side), the pinch axis
        rising `elev` degrees out of the plate's plane."""
        o, rot = self.task.plate_pose(self.env.data, i)
        n = rot[:, 2]
        e = o + RIM_Z * n
        u = _unit(u - (u @ n) * n)
        point = e - (PLATE_R - RIM_INSET) * u - RIM_BELOW * n + lift * n
        a = self.geo[side].pinch_axis
        pitch = np.radians(elev) - np.arctan2(-a[2], np.hypot(a[0], a[1]))  # the palm faces -n
        r = axis_angle_to_matrix(np.cross(u, n), pitch) @ self._grip_rotation(side, u, n)
        return wrist_for_point(point, r, self.geo[side].pinch_point)

    def _grip_elevation(self) -> float:
        """The pinch elevation for this hand: as steep as the wrist can go while pinching a plate's
        rim on the table (the workspace's floor), less ELEV_MARGIN_DEG, and at most GRIP_ELEV_DEG.

        Steeper puts the thumb further under the rim; a wrist clipped above its target would leave
        the fingertips above the rim. Measured once on the hand model and workspace (plates lie flat
        at reset), the same for both hands and all plates.
        """

        def z(elev: float) -> float:
            return float(self._rim_grip("left", 0, _X, 0.0, elev)[0][2])

        low, lo, hi = self.emb.workspace["left"].low[2], 0.0, 90.0
        if z(hi) >= low:
            return min(GRIP_ELEV_DEG, hi - ELEV_MARGIN_DEG)
        for _ in range(30):  # the wrist's height falls as the pinch steepens
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if z(mid) >= low else (lo, mid)
        return min(GRIP_ELEV_DEG, lo - ELEV_MARGIN_DEG)

    def _lowest(self, i: int) -> NDArray[np.float64]:
        b = self.task._body[i]
        low, _ = self.task._lowest_and_upright(self.env.data.xpos[b].tolist(), self.env.data.xmat[b].tolist())
        return np.array(low)

    def _upright_fix(self, side: str, i: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(plate i's edge-circle centre in the wrist frame, the commanded wrist rotation turned so
        the plate stands upright with its face toward +x, as the slots want it), from where the
        plate really is."""
        _, rot = self.task.plate_pose(self.env.data, i)
        n = rot[:, 2]
        axis = np.cross(n, _X)
        angle = float(np.arctan2(np.linalg.norm(axis), n @ _X))
        fix = axis_angle_to_matrix(_unit(axis), angle) if angle > 1e-6 else np.eye(3)
        _, r = self.env.commanded_wrist_pose(side)
        return self._in_wrist(side, self.task.plate_center(self.env.data, i)), fix @ r

    def _in_wrist(self, side: str, point: NDArray[np.float64]) -> NDArray[np.float64]:
        wp, wr = self.env.wrist_pose(side)
        return wr.T @ (point - wp)

    # ------------------------------------------------------------------ left hand: pick, stand up, hand over
    def _left_stages(self, i: int) -> list[Stage]:
        side, task, data = "left", self.task, self.env.data
        key = f"L{i}"
        u_near = np.array([1.0, 0.0, 0.0])  # from the near edge toward the centre

        def grip(lift: float) -> Callable[[], Pose]:
            return lambda: self._rim_grip(side, i, u_near, lift, self._once("elev", self._grip_elevation))

        def pivot(k: int) -> Callable[[], Pose]:
            def compute() -> Pose:
                _, rot = task.plate_pose(data, i)
                n = rot[:, 2]
                elev = np.degrees(np.arccos(np.clip(n[2], -1.0, 1.0)))
                step = np.radians(max(0.0, min(PIVOT_STEP_DEG, STAND_DEG - elev)))
                low = self._lowest(i)
                turn = axis_angle_to_matrix(np.cross(_Z, u_near), step)
                p, r = self.env.commanded_wrist_pose(side)
                return low + turn @ (p - low), turn @ r

            return lambda: self._once(f"{key}_pivot{k}", compute)

        def up(h: float) -> Callable[[], Pose]:
            def target() -> Pose:
                p, r = self._once(f"{key}_stood", lambda: self.env.commanded_wrist_pose(side))
                return p + np.array([0, 0, h]), r

            return target

        def handover(h: float) -> Callable[[], Pose]:
            """The plate, upright and held at its top, carried to stand on its edge at the handover
            point (`h` above the table): the table holds it still for the right hand's grasp."""

            def target() -> Pose:
                rel = self._once(f"{key}_rel", lambda: self._in_wrist(side, task.plate_center(data, i)))
                _, r = up(0.0)()
                return np.array([*HANDOVER_XY, TABLE_HEIGHT + PLATE_R + h]) - r @ rel, r

            return target

        def away() -> Pose:
            p, r = self._once(f"{key}_release", lambda: self.env.commanded_wrist_pose(side))
            return self.emb.workspace[side].clip(p + np.array([0.0, 0.12, 0.08]) - 0.05 * r[:, 2]), r

        def right_holds() -> bool:
            return self.scripts["right"].at(f"R{i}_hold")

        def right_free() -> bool:
            return i == 0 or self.scripts["right"].at(f"R{i - 1}_release")

        def plate_gone() -> bool:
            return self.scripts["right"].at(f"R{i}_lower")

        g = self._hand(side, "grip")
        n_piv = int(np.ceil(STAND_DEG / PIVOT_STEP_DEG)) + 3  # extra steps catch up with a plate that lags the hand
        return [
            Stage(f"{key}_above", grip(0.06), self._hand(side, "pre_tripod"), max_s=5.0, tol_pos=0.01, tol_rot=0.1),
            Stage(f"{key}_descend", grip(0.0), self._hand(side, "pre_tripod"), speed=0.4, max_s=3.0),
            Stage(f"{key}_pinch", lambda: self._once(f"{key}_at", grip(0.0)), g, min_s=0.7, hand_blend_s=0.5),
            *[Stage(f"{key}_tilt{k}", pivot(k), g, speed=0.3, hand_blend_s=0.01, tol_pos=0.003, max_s=2.5) for k in range(n_piv)],
            Stage(f"{key}_lift", up(CARRY_LIFT), g, speed=0.15, hand_blend_s=0.01),
            Stage(f"{key}_wait", up(CARRY_LIFT), g, hand_blend_s=0.01, max_s=30.0, done=right_free),
            Stage(f"{key}_carry", handover(CARRY_LIFT), g, speed=0.3, max_s=5.0, hand_blend_s=0.01),
            Stage(f"{key}_set", handover(0.004), g, speed=0.15, max_s=2.0, hand_blend_s=0.01),
            Stage(f"{key}_hold", handover(0.004), g, hand_blend_s=0.01, max_s=15.0, done=right_holds),
            Stage(f"{key}_release", lambda: self._once(f"{key}_release", lambda: self.env.commanded_wrist_pose(side)),
                  self._hand(side, "pre_tripod"), min_s=0.5, hand_blend_s=0.4),
            Stage(f"{key}_away", away, self._hand(side, "open"), speed=0.6, max_s=3.0, tol_pos=0.01),
            # After the last plate the left hand goes home, across the handover point: only once the
            # right hand has carried the plate off (the next plates lie on the far side, clear of it).
            *([Stage(f"{key}_clear", away, self._hand(side, "open"), max_s=20.0, done=plate_gone)]
              if i == N_PLATES - 1 else []),
        ]

    # ------------------------------------------------------------------ right hand: take over, place in the rack
    def _right_stages(self, i: int) -> list[Stage]:
        side, task, data = "right", self.task, self.env.data
        key = f"R{i}"

        def u_right() -> NDArray[np.float64]:
            """Grip point direction: from the plate's right rim toward its centre, RIGHT_GRIP_DEG from the top."""
            _, rot = task.plate_pose(data, i)
            n = rot[:, 2]
            up = _unit(_Z - (_Z @ n) * n)
            right = np.cross(n, up)  # in-plane, horizontal; pointing to -y when n = +x
            a = np.radians(RIGHT_GRIP_DEG)
            return -(np.cos(a) * up + np.sin(a) * right)

        def grip(lift: float) -> Callable[[], Pose]:
            return lambda: self._rim_grip(side, i, u_right(), lift, self._once("elev", self._grip_elevation))

        def side_of(target: Callable[[], Pose]) -> Callable[[], Pose]:
            """A waypoint right of and above `target`, higher than the plates standing in the rack:
            the hand comes round the handed-over plate and over the rack, not through either."""

            def waypoint() -> Pose:
                p, r = target()
                return np.array([p[0], p[1] - SIDE_WAYPOINT, max(p[2], TABLE_HEIGHT + 2 * PLATE_R + 0.12)]), r

            return waypoint

        def left_at_handover() -> bool:
            return self.scripts["left"].at(f"L{i}_hold")

        def left_away() -> bool:
            return self.scripts["left"].at(f"L{i}_away")

        def raise_(h: float) -> Callable[[], Pose]:
            def target() -> Pose:
                p, r = self._once(f"{key}_held", lambda: self.env.commanded_wrist_pose(side))
                return p + np.array([0, 0, h]), r

            return target

        def over_slot(h: float, fix: str = "fix", dy: float = 0.0) -> Callable[[], Pose]:
            """Closed loop on the plate's lowest point (it may turn in the pinch): the wrist moves by
            the remaining error of that point (`dy` beside the slot along it), in the upright orientation."""

            def target() -> Pose:
                _, r = self._once(f"{key}_{fix}", lambda: self._upright_fix(side, i))
                goal = task.slot_center(i) + np.array([SLOT_EDGE_DX, dy, h])
                p, _ = self.env.commanded_wrist_pose(side)
                return p + (goal - self._lowest(i)), r

            return target

        def back_off() -> Pose:
            """Open fingers slide off the rim outward (along the edge -> hand direction)."""
            p, r = self._once(f"{key}_release", lambda: self.env.commanded_wrist_pose(side))
            out = self._once(f"{key}_out", lambda: -_unit(np.array([*u_right()[:2], 0.0])))
            return self.emb.workspace[side].clip(p + 0.08 * out + np.array([0, 0, 0.01])), r

        def rise() -> Pose:
            """Up, clear of the plates' tops, before moving back over the rack."""
            p, r = back_off()
            top = self.emb.workspace[side].high[2]
            return np.array([p[0], p[1], min(top, TABLE_HEIGHT + 2 * PLATE_R + CLEAR_ABOVE)]), r

        def clear() -> Pose:
            """Straight back toward the robot, high above the rack, then home."""
            p, r = rise()
            return np.array([self.emb.home_wrist_pos[side][0], p[1], p[2]]), r

        g = self._hand(side, "grip")
        pre = self._hand(side, "pre_tripod")
        return [
            Stage(f"{key}_wait", lambda: self._home(side), pre, max_s=40.0, done=left_at_handover, tol_pos=0.05, tol_rot=1.0),
            Stage(f"{key}_settle", lambda: self._home(side), pre, min_s=0.5, max_s=1.0, tol_pos=0.05, tol_rot=1.0),
            Stage(f"{key}_side", side_of(grip(0.06)), pre, max_s=4.0, tol_pos=0.02, tol_rot=0.2),
            Stage(f"{key}_above", grip(0.06), pre, max_s=4.0, tol_pos=0.01, tol_rot=0.1),
            Stage(f"{key}_approach", grip(0.0), pre, speed=0.4, max_s=3.0),
            Stage(f"{key}_pinch", lambda: self._once(f"{key}_at", grip(0.0)), g, min_s=0.7, hand_blend_s=0.5),
            Stage(f"{key}_hold", lambda: self._once(f"{key}_at", grip(0.0)), g, max_s=6.0, done=left_away, hand_blend_s=0.01),
            Stage(f"{key}_raise", raise_(RAISE), g, speed=0.2, hand_blend_s=0.01),
            Stage(f"{key}_settle_swing", raise_(RAISE), g, min_s=1.2, hand_blend_s=0.01),
            # Beside the rack first, in the slot's plane, then along the slot: the plate never sweeps
            # through the tops of the plates already standing in the nearer slots.
            Stage(f"{key}_beside", over_slot(PEG_H + 0.025, dy=SLIDE_IN), g, speed=0.35, max_s=4.0, tol_pos=0.01,
                  hand_blend_s=0.01),
            Stage(f"{key}_over", over_slot(PEG_H + 0.025), g, speed=0.35, max_s=3.0, hand_blend_s=0.01),
            Stage(f"{key}_align", over_slot(PEG_H + 0.025, "fix2"), g, min_s=0.8, speed=0.3, max_s=3.0, hand_blend_s=0.01),
            Stage(f"{key}_lower", over_slot(SLOT_CLEARANCE, "fix2"), g, speed=0.25, max_s=3.0, tol_pos=0.004, hand_blend_s=0.01),
            Stage(f"{key}_release", lambda: self._once(f"{key}_release", lambda: self.env.commanded_wrist_pose(side)), pre,
                  min_s=0.8, hand_blend_s=0.7),
            Stage(f"{key}_back", back_off, self._hand(side, "open"), speed=0.5, max_s=2.0),
            Stage(f"{key}_rise", rise, self._hand(side, "open"), speed=0.6, max_s=2.0, tol_pos=0.02),
            Stage(f"{key}_clear", clear, self._hand(side, "open"), speed=0.6, max_s=3.0, tol_pos=0.02),
        ]
