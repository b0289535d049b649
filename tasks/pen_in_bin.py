"""Pen in bin (EgoScale's G1 task "marker canister").

Scene: an open-top canister and a marker lie on the table, with a green square marking where the
canister goes. Instruction: pick up the canister, stand it on the green square, pick up the marker
and put it into the canister.

Rubric (additive, 0.25 each, EgoScale G1-a): `canister_picked` (lifted 3 cm off the table in a
hand), `canister_placed` (standing upright, at rest, on the green square, released), `marker_picked`
(lifted 3 cm in a hand), `marker_in_canister` (released, moving slower than 0.2 m/s, with its lower end inside
the canister).
Success: all four reached and, at the same instant, the canister stands on the square with the marker
inside it. Horizon: 30 s.

Privileged state (16): canister pos (3) + quat wxyz (4), marker pos (3) + quat (4), square centre xy (2).

Objects: the canister is 8 cm across and 10 cm tall, 0.2 kg with a weighted base, like a ceramic pen
cup (an 80 g cup tipped over when the marker dropped in and leaned on its rim); the marker is 1.8 cm
thick, 12.8 cm long, 15 g.

Version history:
- v0: first version.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import mujoco
import numpy as np
from numpy.typing import NDArray

from egosim.rig import TABLE_HEIGHT
from egosim.task import InitialState, Milestone, Rubric, Task
from egosim.tasks.contacts import ContactQuery

if TYPE_CHECKING:
    from egosim.embodiment import Embodiment
    from egosim.env import EgosimEnv
    from egosim.policy import Policy
    from egosim.rig import RigHandles

CAN_R_OUT = 0.040  # canister outer radius (m)
CAN_WALL = 0.007
CAN_R_IN = CAN_R_OUT - CAN_WALL
CAN_H = 0.10  # rim height above the canister's bottom face
CAN_BASE = 0.008  # bottom plate thickness
CAN_SEGMENTS = 12
MARKER_R = 0.009
MARKER_HALF = 0.055  # half length of the marker's cylindrical part
SQUARE_HALF = 0.05  # the green square's half side
LIFT = 0.03  # lift that counts as picked (m)
_COS15, _COS30 = math.cos(math.radians(15.0)), math.cos(math.radians(30.0))  # upright tolerances


class PenInBin(Task):
    name: ClassVar[str] = "pen_in_bin"
    env_name: ClassVar[str] = "PenInBin"
    version: ClassVar[int] = 0
    tags: ClassVar[frozenset[str]] = frozenset({"g1"})
    instruction: ClassVar[str] = (
        "Pick up the canister, stand it on the green square, then put the marker into the canister."
    )
    rubric: ClassVar[Rubric] = Rubric(
        mode="additive",
        milestones=(
            Milestone("canister_picked", 0.25, "canister lifted 3 cm off the table in a hand"),
            Milestone("canister_placed", 0.25, "canister upright and at rest on the green square, released"),
            Milestone("marker_picked", 0.25, "marker lifted 3 cm off the table in a hand"),
            Milestone("marker_in_canister", 0.25, "marker released with its lower end inside the canister"),
        ),
    )
    horizon_s: ClassVar[float] = 30.0
    privileged_dim: ClassVar[int] = 16
    initial_states_file: ClassVar[Path] = Path(__file__).parent / "initial_states" / "pen_in_bin-v0.json"
    eval_seed: ClassVar[int] = 20261125

    # ------------------------------------------------------------------ scene
    def build(self, spec: mujoco.MjSpec, embodiment: Embodiment) -> None:
        spec.add_material(name="canister", rgba=[0.16, 0.36, 0.75, 1])
        spec.add_material(name="marker", rgba=[0.95, 0.95, 0.92, 1])
        spec.add_material(name="marker_cap", rgba=[0.85, 0.12, 0.12, 1])
        spec.add_material(name="square", rgba=[0.2, 0.7, 0.3, 1])
        wb = spec.worldbody
        wb.add_geom(name="place_square", type=mujoco.mjtGeom.mjGEOM_BOX, size=[SQUARE_HALF, SQUARE_HALF, 0.0005],
                    pos=[0.5, 0.0, TABLE_HEIGHT + 0.0005], material="square", contype=0, conaffinity=0)

        can = wb.add_body(name="canister", pos=[0.5, -0.2, TABLE_HEIGHT])
        can.add_freejoint(name="canister_free")
        friction = [1.0, 0.005, 0.0001]
        can.add_geom(name="canister_base", type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[CAN_R_OUT, CAN_BASE / 2, 0],
                     pos=[0, 0, CAN_BASE / 2], mass=0.12, material="canister", friction=friction)
        half_chord = CAN_R_OUT * np.tan(np.pi / CAN_SEGMENTS) + 0.001
        wall_h = (CAN_H - CAN_BASE) / 2
        for k in range(CAN_SEGMENTS):
            ang = 2 * np.pi * k / CAN_SEGMENTS
            r_mid = CAN_R_OUT - CAN_WALL / 2
            can.add_geom(name=f"canister_wall{k}", type=mujoco.mjtGeom.mjGEOM_BOX,
                         size=[CAN_WALL / 2, half_chord, wall_h],
                         pos=[r_mid * np.cos(ang), r_mid * np.sin(ang), CAN_BASE + wall_h],
                         quat=[np.cos(ang / 2), 0, 0, np.sin(ang / 2)], mass=0.08 / CAN_SEGMENTS,
                         material="canister", friction=friction)
        marker = wb.add_body(name="marker", pos=[0.5, 0.2, TABLE_HEIGHT + MARKER_R])
        marker.add_freejoint(name="marker_free")
        marker.add_geom(name="marker_body", type=mujoco.mjtGeom.mjGEOM_CAPSULE, size=[MARKER_R, MARKER_HALF, 0],
                        mass=0.015, material="marker", friction=friction)
        marker.add_geom(name="marker_cap", type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[MARKER_R + 0.0005, 0.015, 0],
                        pos=[0, 0, MARKER_HALF - 0.012], material="marker_cap", contype=0, conaffinity=0, mass=0)

    def bind(self, model: mujoco.MjModel, rig: RigHandles, embodiment: Embodiment) -> None:
        def jnt(name: str) -> tuple[int, int]:
            j = model.joint(name).id
            return int(model.jnt_qposadr[j]), int(model.jnt_dofadr[j])

        self._can_q, self._can_v = jnt("canister_free")
        self._mk_q, self._mk_v = jnt("marker_free")
        self._can_body = model.body("canister").id
        self._mk_body = model.body("marker").id
        self._square_geom = model.geom("place_square").id
        hand_bodies = set().union(*(h.bodies for h in rig.hands.values()))
        self.contacts = ContactQuery(model, hand_bodies)

    # ------------------------------------------------------------------ initial states
    def sample_initial_state(self, rng: np.random.Generator) -> InitialState:
        """Canister on the right half, marker on the left half, square near the middle."""
        return {
            "canister_xy": [round(float(rng.uniform(0.45, 0.58)), 4), round(float(rng.uniform(-0.27, -0.15)), 4)],
            "marker_xy": [round(float(rng.uniform(0.43, 0.56)), 4), round(float(rng.uniform(0.14, 0.26)), 4)],
            "marker_yaw": round(float(rng.uniform(-np.pi / 2, np.pi / 2)), 4),
            "square_xy": [round(float(rng.uniform(0.48, 0.56)), 4), round(float(rng.uniform(-0.04, 0.04)), 4)],
        }

    def apply_initial_state(self, model: mujoco.MjModel, data: mujoco.MjData, state: InitialState) -> None:
        cx, cy = state["canister_xy"]
        data.qpos[self._can_q : self._can_q + 7] = [cx, cy, TABLE_HEIGHT, 1, 0, 0, 0]
        mx, my = state["marker_xy"]
        yaw = state["marker_yaw"]
        # The capsule's axis is its local z; lay it on the table (rotate about y), then turn it by yaw.
        q_lay = np.array([np.cos(np.pi / 4), 0, np.sin(np.pi / 4), 0])
        q_yaw = np.array([np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)])
        q = np.zeros(4)
        mujoco.mju_mulQuat(q, q_yaw, q_lay)
        data.qpos[self._mk_q : self._mk_q + 7] = [mx, my, TABLE_HEIGHT + MARKER_R, *q]
        sx, sy = state["square_xy"]
        model.geom_pos[self._square_geom][:2] = [sx, sy]
        self.square_xy = np.array([sx, sy])

    # ------------------------------------------------------------------ state queries
    def canister_pose(self, data: mujoco.MjData) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(bottom-centre position, rotation matrix) of the canister."""
        return data.xpos[self._can_body].copy(), data.xmat[self._can_body].reshape(3, 3).copy()

    def marker_pose(self, data: mujoco.MjData) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(centre, rotation matrix) of the marker; its axis is the matrix's third column."""
        return data.xpos[self._mk_body].copy(), data.xmat[self._mk_body].reshape(3, 3).copy()

    def marker_ends(self, data: mujoco.MjData) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(lower, upper) ends of the marker's axis, in world coordinates."""
        c, r = self.marker_pose(data)
        a = r[:, 2] * (MARKER_HALF + MARKER_R)
        e1, e2 = c - a, c + a
        return (e1, e2) if e1[2] <= e2[2] else (e2, e1)

    def milestones(self, model: mujoco.MjModel, data: mujoco.MjData) -> dict[str, bool]:
        # Plain floats: this runs every control step (see benchmarks/env_step.py).
        touched = self.contacts.touched_by_hand(data)
        can_held, mk_held = self._can_body in touched, self._mk_body in touched
        cx, cy, cz = data.xpos[self._can_body].tolist()
        can_mat = data.xmat[self._can_body]
        can_speed = math.sqrt(sum(v * v for v in data.qvel[self._can_v : self._can_v + 3].tolist()))
        sx, sy = self.square_xy.tolist()
        on_square = abs(cx - sx) <= SQUARE_HALF and abs(cy - sy) <= SQUARE_HALF
        can_up = float(can_mat[8])
        placed = on_square and can_up >= _COS15 and abs(cz - TABLE_HEIGHT) < 0.01 and can_speed < 0.05 and not can_held
        in_can = False
        mk_speed = math.sqrt(sum(v * v for v in data.qvel[self._mk_v : self._mk_v + 3].tolist()))
        # Settling, not passing through: a marker bouncing out of the canister must not count.
        if not mk_held and mk_speed < 0.2 and can_up >= _COS30:
            low, _ = self.marker_ends(data)
            rel = can_mat.reshape(3, 3).T @ (low - data.xpos[self._can_body])
            in_can = bool(math.hypot(rel[0], rel[1]) < CAN_R_IN and -0.005 < rel[2] < CAN_H)
        self.last = {
            "canister_picked": can_held and cz > TABLE_HEIGHT + LIFT,
            "canister_placed": placed,
            "marker_picked": mk_held and float(data.xpos[self._mk_body][2]) > TABLE_HEIGHT + MARKER_R + LIFT,
            "marker_in_canister": in_can,
        }
        return self.last

    def is_success(self, model: mujoco.MjModel, data: mujoco.MjData, reached: Mapping[str, bool]) -> bool:
        return all(reached.values()) and self.last["canister_placed"] and self.last["marker_in_canister"]

    def privileged(self, model: mujoco.MjModel, data: mujoco.MjData) -> NDArray[np.float64]:
        return np.concatenate(
            [data.qpos[self._can_q : self._can_q + 7], data.qpos[self._mk_q : self._mk_q + 7], self.square_xy]
        )

    def make_expert(self, env: EgosimEnv) -> Policy:
        from egosim.tasks.pen_in_bin_expert import PenInBinExpert

        return PenInBinExpert(env)
