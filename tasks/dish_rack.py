"""Dish rack (EgoScale's G1 task "Dish Handover in Rack").

Scene: three side plates lie face up on the left half of the table; a dish rack (a fixed base with
three slots, each slot two rows of vertical pegs) stands on the right half. Instruction: "Put the
plates on the dish rack." A plate is picked up by the left hand, handed over to the right hand and
stood upright in a rack slot by the right hand.

Rubric (additive, EgoScale G1-b: per plate 0.11 each, total 0.99), for plate i in 0, 1, 2:
- `plate{i}_picked`: a hand touches the plate and the plate's lowest point is 3 cm or more above
  the table.
- `plate{i}_transferred`: the right hand touches the plate, the left hand does not, its lowest point
  is 3 cm or more above the table, and the left hand touched the plate earlier in the episode (the
  task remembers, per plate, whether the left hand has touched it since reset).
- `plate{i}_in_rack`: no hand touches the plate, its centre moves slower than 0.05 m/s, its face
  normal is within 25 degrees of horizontal (the plate stands within 25 degrees of upright), and
  its lowest point lies inside a rack slot: between the slot's two peg rows, within the pegs' span
  along the rack and below the pegs' tops.
Success: every milestone reached and, at the same instant, all three plates in the rack.
Horizon: 60 s (three pick-handover-place cycles of about 15 s; the left hand fetches the next plate
while the right hand places the last).

Privileged state (23): per plate (0, 1, 2) its origin (the centre of the foot's underside) pos (3) +
quat wxyz (4); then the rack's centre xy (2). Slot k's centre lies at the rack centre +
`SLOT_DX[k]` along x.

Objects: the plates are 16 cm side plates (a dinner plate of 18-20 cm would not fit between the
hands at handover and would need the G1's short arms to reach further), 0.2 kg, built from
primitives: a foot (a 3.5 cm radius, 6 mm high cylinder), a 3 mm base disc of 5.5 cm radius and a
rim of 16 box segments, 3 mm thick, rising 26 degrees from the base to the edge, which lies 2 cm
above the table: a thumb gets under it. The rack is fixed to the table (a dish rack full of
plates does not slide); its slots are 3 cm wide between peg surfaces (a plate's rim profile is
2.1 cm deep), 8 cm apart, and its 10 cm pegs hold a plate within about 15 degrees of upright.
Plate contacts have torsional (1 cm) and rolling (3 mm) friction (condim 6): a finger pad has area,
a capsule fingertip does not, and with point contacts two fingertips on a thin rim are a hinge
about which the plate turns freely (no real pinch on a plate does; the handover then failed).

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

from egosim.embodiment import SIDES
from egosim.rig import TABLE_HEIGHT
from egosim.task import InitialState, Milestone, Rubric, Task

if TYPE_CHECKING:
    from egosim.embodiment import Embodiment
    from egosim.env import EgosimEnv
    from egosim.policy import Policy
    from egosim.rig import RigHandles

N_PLATES = 3
PLATE_R = 0.08  # radius of the plate's edge (m)
FOOT_R = 0.035
FOOT_H = 0.006
BASE_R = 0.055  # the flat base disc; the rim rises from its edge
BASE_T = 0.003
RIM_T = 0.003
RIM_Z = 0.02  # height of the edge's mid-surface above the plate's underside (the table)
RIM_SEGMENTS = 16
PLATE_MASS = (0.03, 0.08, 0.09)  # foot, base, rim (kg): 0.2 kg in all
RACK_BASE_HALF = (0.12, 0.075, 0.004)  # the rack's base plate (half sizes, m)
SLOT_DX = (-0.08, 0.0, 0.08)  # slot centres along x from the rack centre
SLOT_HALF_GAP = 0.018  # peg-row axes at +-this along x from a slot's centre
PEG_R = 0.003
PEG_H = 0.10  # above the base plate's top
PEG_DY = (-0.045, 0.045)  # pegs of a row along y from the rack centre
PAD_TORSION = 0.01  # torsional friction of plate contacts (m)
PAD_ROLLING = 0.003  # rolling friction of plate contacts (m)
LIFT = 0.03  # lift of the plate's lowest point that counts as picked (m)
UPRIGHT_DEG = 25.0  # a plate in the rack stands within this of upright
REST_SPEED = 0.05
PLATE_SPOTS = ((0.42, 0.09), (0.42, 0.265), (0.42, 0.44))  # nominal plate centres (x, y), pick order
SPOT_JITTER = (0.015, 0.005)  # x, y
_SIN_UPRIGHT = math.sin(math.radians(UPRIGHT_DEG))
_RIM_Z0 = FOOT_H + BASE_T / 2  # the rim's inner end (mid-surface), plate frame


class DishRack(Task):
    name: ClassVar[str] = "dish_rack"
    env_name: ClassVar[str] = "DishRack"
    version: ClassVar[int] = 0
    tags: ClassVar[frozenset[str]] = frozenset({"g1"})
    instruction: ClassVar[str] = "Put the plates on the dish rack."
    rubric: ClassVar[Rubric] = Rubric(
        mode="additive",
        milestones=tuple(
            m
            for i in range(N_PLATES)
            for m in (
                Milestone(f"plate{i}_picked", 0.11, f"plate {i} lifted 3 cm off the table in a hand"),
                Milestone(f"plate{i}_transferred", 0.11, f"plate {i} held up by the right hand alone after the left"),
                Milestone(f"plate{i}_in_rack", 0.11, f"plate {i} released, at rest, upright in a rack slot"),
            )
        ),
    )
    horizon_s: ClassVar[float] = 60.0
    privileged_dim: ClassVar[int] = 7 * N_PLATES + 2
    initial_states_file: ClassVar[Path] = Path(__file__).parent / "initial_states" / "dish_rack-v0.json"
    eval_seed: ClassVar[int] = 20261126

    # ------------------------------------------------------------------ scene
    def build(self, spec: mujoco.MjSpec, embodiment: Embodiment) -> None:
        spec.add_material(name="plate", rgba=[0.93, 0.93, 0.88, 1])
        spec.add_material(name="plate_rim", rgba=[0.35, 0.55, 0.8, 1])
        spec.add_material(name="rack", rgba=[0.6, 0.62, 0.66, 1])
        wb = spec.worldbody
        friction = [1.0, 0.005, 0.0001]
        # Plates: soft contacts with torsional and rolling friction (condim 6), standing in for the
        # area of a finger pad on a rim; with point contacts a thin rim pinched by two fingertips
        # turns freely about the pinch, which no real grip on a plate does.
        plate_friction = [1.0, PAD_TORSION, PAD_ROLLING]
        box, cyl = mujoco.mjtGeom.mjGEOM_BOX, mujoco.mjtGeom.mjGEOM_CYLINDER

        rack = wb.add_body(name="dish_rack", pos=[0.5, -0.22, TABLE_HEIGHT])
        rack.add_geom(name="rack_base", type=box, size=list(RACK_BASE_HALF), pos=[0, 0, RACK_BASE_HALF[2]],
                      material="rack", friction=friction)
        z0 = 2 * RACK_BASE_HALF[2]
        for k, dx in enumerate(SLOT_DX):
            for r, sx in enumerate((-1, 1)):
                for p, dy in enumerate(PEG_DY):
                    rack.add_geom(name=f"rack_peg{k}_{r}_{p}", type=mujoco.mjtGeom.mjGEOM_CAPSULE,
                                  size=[PEG_R, 0, 0], fromto=[dx + sx * SLOT_HALF_GAP, dy, z0, dx + sx * SLOT_HALF_GAP, dy, z0 + PEG_H],
                                  material="rack", friction=friction)

        slope = math.atan2(RIM_Z - _RIM_Z0, PLATE_R - BASE_R)
        slant = math.hypot(RIM_Z - _RIM_Z0, PLATE_R - BASE_R)
        r_mid, z_mid = (PLATE_R + BASE_R) / 2, (RIM_Z + _RIM_Z0) / 2
        half_chord = r_mid * math.tan(math.pi / RIM_SEGMENTS) + 0.003
        for i in range(N_PLATES):
            plate = wb.add_body(name=f"plate{i}", pos=[0.4, 0.1 + 0.2 * i, TABLE_HEIGHT])
            plate.add_freejoint(name=f"plate{i}_free")
            plate.add_geom(name=f"plate{i}_foot", type=cyl, size=[FOOT_R, FOOT_H / 2, 0], pos=[0, 0, FOOT_H / 2],
                           mass=PLATE_MASS[0], material="plate", friction=plate_friction, condim=6)
            plate.add_geom(name=f"plate{i}_base", type=cyl, size=[BASE_R, BASE_T / 2, 0], pos=[0, 0, _RIM_Z0],
                           mass=PLATE_MASS[1], material="plate", friction=plate_friction, condim=6)
            for k in range(RIM_SEGMENTS):
                a = 2 * math.pi * k / RIM_SEGMENTS
                q_yaw = np.array([math.cos(a / 2), 0, 0, math.sin(a / 2)])
                q_tilt = np.array([math.cos(-slope / 2), 0, math.sin(-slope / 2), 0])  # local x rises outward
                q = np.zeros(4)
                mujoco.mju_mulQuat(q, q_yaw, q_tilt)
                plate.add_geom(name=f"plate{i}_rim{k}", type=box, size=[slant / 2, half_chord, RIM_T / 2],
                               pos=[r_mid * math.cos(a), r_mid * math.sin(a), z_mid], quat=q.tolist(),
                               mass=PLATE_MASS[2] / RIM_SEGMENTS, material="plate_rim", friction=plate_friction, condim=6)

    def bind(self, model: mujoco.MjModel, rig: RigHandles, embodiment: Embodiment) -> None:
        self._q, self._v, self._body = [], [], []
        for i in range(N_PLATES):
            j = model.joint(f"plate{i}_free").id
            self._q.append(int(model.jnt_qposadr[j]))
            self._v.append(int(model.jnt_dofadr[j]))
            self._body.append(int(model.body(f"plate{i}").id))
        self._rack_body = int(model.body("dish_rack").id)
        self._geom_body = model.geom_bodyid.tolist()
        side_of = [-1] * model.nbody
        for s, side in enumerate(SIDES):
            for b in rig.hands[side].bodies:
                side_of[b] = s
        self._side_of = side_of
        self._plate_index = {b: i for i, b in enumerate(self._body)}
        self.left_had = [False] * N_PLATES
        self.rack_xy = np.array([0.5, -0.22])

    # ------------------------------------------------------------------ initial states
    def sample_initial_state(self, rng: np.random.Generator) -> InitialState:
        """Plates in a row along y on the left half (jittered, random yaw), the rack on the right."""
        plates = []
        for sx, sy in PLATE_SPOTS:
            plates.append({
                "xy": [round(sx + float(rng.uniform(-SPOT_JITTER[0], SPOT_JITTER[0])), 4),
                       round(sy + float(rng.uniform(-SPOT_JITTER[1], SPOT_JITTER[1])), 4)],
                "yaw": round(float(rng.uniform(-np.pi, np.pi)), 4),
            })
        rack_xy = [round(float(rng.uniform(0.45, 0.48)), 4), round(float(rng.uniform(-0.25, -0.21)), 4)]
        return {"plates": plates, "rack_xy": rack_xy}

    def apply_initial_state(self, model: mujoco.MjModel, data: mujoco.MjData, state: InitialState) -> None:
        for i, p in enumerate(state["plates"]):
            x, y = p["xy"]
            yaw = p["yaw"]
            data.qpos[self._q[i] : self._q[i] + 7] = [x, y, TABLE_HEIGHT, math.cos(yaw / 2), 0, 0, math.sin(yaw / 2)]
        rx, ry = state["rack_xy"]
        model.body_pos[self._rack_body] = [rx, ry, TABLE_HEIGHT]
        self.rack_xy = np.array([rx, ry])
        self.left_had = [False] * N_PLATES

    # ------------------------------------------------------------------ state queries
    def plate_pose(self, data: mujoco.MjData, i: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(origin: the centre of the foot's underside, rotation matrix) of plate `i`; the face
        normal is the matrix's third column."""
        b = self._body[i]
        return data.xpos[b].copy(), data.xmat[b].reshape(3, 3).copy()

    def plate_center(self, data: mujoco.MjData, i: int) -> NDArray[np.float64]:
        """The centre of plate `i`'s edge circle (world)."""
        o, r = self.plate_pose(data, i)
        return o + RIM_Z * r[:, 2]

    def slot_center(self, k: int) -> NDArray[np.float64]:
        """Slot `k`'s centre on the rack base's top face (world)."""
        return np.array([self.rack_xy[0] + SLOT_DX[k], self.rack_xy[1], TABLE_HEIGHT + 2 * RACK_BASE_HALF[2]])

    def hand_contacts(self, data: mujoco.MjData) -> tuple[set[int], set[int]]:
        """Indices of the plates the (left, right) hand touches now."""
        touched: tuple[set[int], set[int]] = (set(), set())
        n = data.ncon
        if n == 0:
            return touched
        gb, side_of, plate_of = self._geom_body, self._side_of, self._plate_index
        for g1, g2 in data.contact.geom[:n].tolist():
            b1, b2 = gb[g1], gb[g2]
            s1, s2 = side_of[b1], side_of[b2]
            if s1 >= 0 and b2 in plate_of:
                touched[s1].add(plate_of[b2])
            elif s2 >= 0 and b1 in plate_of:
                touched[s2].add(plate_of[b1])
        return touched

    @staticmethod
    def _lowest_and_upright(xpos: list[float], xmat: list[float]) -> tuple[list[float], float]:
        """The plate's lowest point (on the edge circle or the foot's rim) and |normal_z|."""
        nx, ny, nz = xmat[2], xmat[5], xmat[8]
        s = math.sqrt(max(0.0, 1.0 - nz * nz))
        if s < 1e-9:
            low = [xpos[0], xpos[1], xpos[2] + (RIM_Z if nz < 0 else 0.0)]
            return low, abs(nz)
        # Unit direction in the plate's plane pointing most downward: -z projected on the plane.
        dx, dy, dz = nz * nx / s, nz * ny / s, (nz * nz - 1.0) / s
        edge = [xpos[k] + RIM_Z * n + PLATE_R * d for k, (n, d) in enumerate(((nx, dx), (ny, dy), (nz, dz)))]
        foot = [xpos[k] + FOOT_R * d for k, d in enumerate((dx, dy, dz))]
        return (edge if edge[2] < foot[2] else foot), abs(nz)

    def _in_slot(self, low: list[float]) -> bool:
        rx, ry = self.rack_xy.tolist()
        rel_y = low[1] - ry
        if abs(rel_y) > PEG_DY[1] + 0.02 or low[2] > TABLE_HEIGHT + 2 * RACK_BASE_HALF[2] + PEG_H:
            return False
        rel_x = low[0] - rx
        return any(abs(rel_x - dx) < SLOT_HALF_GAP - PEG_R for dx in SLOT_DX)

    def milestones(self, model: mujoco.MjModel, data: mujoco.MjData) -> dict[str, bool]:
        # Plain floats: this runs every control step (see benchmarks/env_step.py).
        left, right = self.hand_contacts(data)
        out: dict[str, bool] = {}
        self.in_rack = [False] * N_PLATES
        for i in range(N_PLATES):
            b = self._body[i]
            low, up = self._lowest_and_upright(data.xpos[b].tolist(), data.xmat[b].tolist())
            lifted = low[2] > TABLE_HEIGHT + LIFT
            held_l, held_r = i in left, i in right
            if held_l:
                self.left_had[i] = True
            v = self._v[i]
            speed = math.sqrt(sum(x * x for x in data.qvel[v : v + 3].tolist()))
            in_rack = (not held_l and not held_r and speed < REST_SPEED and up < _SIN_UPRIGHT and self._in_slot(low))
            self.in_rack[i] = in_rack
            out[f"plate{i}_picked"] = (held_l or held_r) and lifted
            out[f"plate{i}_transferred"] = held_r and not held_l and lifted and self.left_had[i]
            out[f"plate{i}_in_rack"] = in_rack
        self.last = out
        return out

    def is_success(self, model: mujoco.MjModel, data: mujoco.MjData, reached: Mapping[str, bool]) -> bool:
        return all(reached.values()) and all(self.in_rack)

    def privileged(self, model: mujoco.MjModel, data: mujoco.MjData) -> NDArray[np.float64]:
        return np.concatenate([*(data.qpos[q : q + 7] for q in self._q), self.rack_xy])

    def make_expert(self, env: EgosimEnv) -> Policy:
        from egosim.tasks.dish_rack_expert import DishRackExpert

        return DishRackExpert(env)
