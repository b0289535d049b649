"""Tong fruit transfer (EgoScale's task III "Tong Fruit Transfer").

Scene: a pair of spring kitchen tongs lies on the right of the table (tips pointing left), a fruit
(a lemon or a plum, chosen per initial state) in the middle and an open basket on the left.
Instruction: "Use the tong to pick up the fruit and place it into the basket."

The tongs are two bodies: the hinge block and arm A (the root, on a free joint) and arm B, joined by
a hinge joint about the tongs' vertical axis at the hinge end. A preloaded joint spring holds arm B
against its open limit (like the leaf spring of real tongs); squeezing the arms together (thumb on
one arm, fingers on the other) closes the tips. Each arm ends in a tall pad bent inward (the tongs'
head); the pads are parallel when they close on a 5.25 cm fruit. The tongs rest on the arms' edges,
so they open and close in the table plane. The hand-to-tongs contact is friction only.

Rubric (additive, EgoScale task III):
- `tongs_grasped` (+0.4): a hand touches the tongs and the hinge is 3 cm above the table.
- `fruit_picked` (+0.2): the fruit's centre is 3 cm above its resting height, it touches the pads of
  both arms and no hand touches it (held by the tongs, not by the hand).
- `fruit_in_basket` (+0.2): the fruit's centre lies inside the basket's inner box (footprint and
  below the rim), moving slower than 0.05 m/s, touching neither a hand nor the tongs.
- `tongs_on_table` (+0.2): the tongs are back: they have been grasped and lifted (`tongs_grasped`)
  earlier in the episode, and now touch the table, touch neither a hand nor the basket, move
  slower than 0.05 m/s, and their centre (midway between hinge and pads) lies outside the basket's
  footprint. (Without the "back", the tongs lying there at the start would score.)
Success: all four reached and, at the same instant, the fruit rests in the basket and the tongs
rest on the table. Horizon: 25 s.

Privileged state (19): tongs root pos (3) + quat wxyz (4), hinge angle (1), fruit pos (3) + quat
(4), basket centre xy (2), fruit kind (1: 0 lemon, 1 plum), fruit half height (1).

Objects and why:
- Tongs: 22 cm long, 104 g (a 9-inch steel kitchen tong is 100-150 g). The arms are 3.5 cm tall
  strips, 5 mm thick, as tall as the pads (5 cm long), so the pads meet a fruit at its equator and
  a hand clawing the arms from above has a tall face to press. Open, the arms are 5 cm apart (outer
  faces) 7.5 cm from the hinge, where the hand holds them: narrow enough that Sharpa's curling
  fingers come down outside the far arm (the arms diverge at 17 degrees, and the four fingers spread
  along them), and the pads are then 6.9 cm apart, so a lemon turned across them (5.5 cm) and a
  plum (5 cm) fit with margin. The pads touch a lemon after the grip closes 6 mm, a plum after 8 mm
  (lever ratio 2.6). The hinge spring (0.35 N m/rad, preloaded 0.2 rad, 0.9 N at the grip) opens
  the tongs when the squeeze relaxes and presses the arms into the thumb and fingers; the arms
  have silicone-coated handles (friction 1.5), like many kitchen tongs, so a light grip carries
  them (with friction 1.0 and a 0.5 N spring, Dex3's three-point grip let the tongs pitch in it).
- Lemon: ellipsoid 7 x 5.5 x 5.5 cm, 100 g. Plum: sphere 5 cm, 70 g. One fruit body carries both
  geoms; the initial state enables one (collision and colour) and sets the body's mass and inertia.
  Evaluation states alternate lemon (even ids) and plum (odd ids), as EgoScale's 5 + 5.
- Basket: open box, 15 cm inner side, 6 cm tall walls, fixed to the table (a heavy basket).

Both hands squeeze the tongs with the thumb against the fingers (Dex3: thumb against index +
middle); the scripted expert solves the task on both (see tong_transfer_expert.py).

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

from egosim.errors import InvalidChoiceError
from egosim.rig import TABLE_HEIGHT
from egosim.task import InitialState, Milestone, Rubric, Task

if TYPE_CHECKING:
    from egosim.embodiment import Embodiment
    from egosim.env import EgosimEnv
    from egosim.policy import Policy
    from egosim.rig import RigHandles

# Tongs (tongs frame: origin at the hinge on the table-side edge, +x toward the tips, +z up).
GRIP_D = 0.075  # where the hand holds the tongs, from the hinge along the tongs' axis (m)
GRIP_OPEN = 0.05  # outer width across both arms at GRIP_D when open
ARM_LEN = 0.165  # arm strip length from the hinge
ARM_T = 0.005  # arm thickness
ARM_H = 0.035  # arm height
PAD_D = 0.195  # pad centre from the hinge along the tongs' axis (when closed on the fruit)
PAD_L, PAD_T, PAD_H = 0.05, 0.006, 0.035  # pad length, thickness, height
PAD_CLOSED_GAP = 0.0525  # free gap between the pads when they are parallel
PAD_SET_CLOSE = 0.008  # ... which they are when the grip has closed this much
THETA_OPEN = math.atan((GRIP_OPEN - ARM_T) / (2 * GRIP_D))  # half opening angle of each arm
SPRING_K = 0.35  # hinge spring stiffness (N m/rad)
SPRING_PRELOAD = 0.2  # spring rest angle beyond the open limit (rad)
TONGS_LEN = PAD_D + PAD_L / 2

# Fruit.
LEMON_RADII = (0.035, 0.0275, 0.0275)
LEMON_MASS = 0.10
PLUM_R = 0.025
PLUM_MASS = 0.07
FRUITS = ("lemon", "plum")

# Basket.
BASKET_IN = 0.075  # inner half side
BASKET_WALL = 0.006
BASKET_H = 0.06  # wall height above the table
BASKET_FLOOR = 0.005

LIFT = 0.03  # lift that counts as picked (m)
REST_SPEED = 0.05  # at rest below this speed (m/s)


def _pad_geometry() -> tuple[float, float, float]:
    """(pad centre x, pad centre y, pad yaw) in an arm's own frame (arm A; arm B mirrors y and yaw).

    The pads are parallel to the tongs' axis, PAD_CLOSED_GAP apart, when the arms close to the angle
    at which the grip has closed by PAD_SET_CLOSE.
    """
    theta_c = math.atan((GRIP_OPEN - PAD_SET_CLOSE - ARM_T) / (2 * GRIP_D))
    cx, cy = PAD_D, PAD_CLOSED_GAP / 2 + PAD_T / 2  # tongs frame, arm A's pad, closed on the fruit
    c, s = math.cos(theta_c), math.sin(theta_c)
    return c * cx + s * cy, -s * cx + c * cy, -theta_c


def hinge_close_limit() -> float:
    """Hinge angle (arm B toward arm A) at which the pads meet: the joint's upper limit."""
    px, py, _ = _pad_geometry()
    # Arm A's pad centre y in the tongs frame at half angle t: px sin t + py cos t = PAD_T / 2.
    lo, hi = 0.0, THETA_OPEN
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if px * math.sin(mid) + py * math.cos(mid) > PAD_T / 2:
            hi = mid
        else:
            lo = mid
    return 2 * (THETA_OPEN - hi)


def _yaw_quat(yaw: float) -> list[float]:
    return [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]


class TongTransfer(Task):
    name: ClassVar[str] = "tong_transfer"
    env_name: ClassVar[str] = "TongTransfer"
    version: ClassVar[int] = 0
    tags: ClassVar[frozenset[str]] = frozenset({"main"})
    instruction: ClassVar[str] = "Use the tong to pick up the fruit and place it into the basket."
    rubric: ClassVar[Rubric] = Rubric(
        mode="additive",
        milestones=(
            Milestone("tongs_grasped", 0.4, "tongs held by a hand and lifted 3 cm off the table"),
            Milestone("fruit_picked", 0.2, "fruit lifted 3 cm between both tong pads, not touching a hand"),
            Milestone("fruit_in_basket", 0.2, "fruit at rest inside the basket, not held"),
            Milestone("tongs_on_table", 0.2, "tongs released, at rest on the table, outside the basket"),
        ),
    )
    horizon_s: ClassVar[float] = 25.0
    privileged_dim: ClassVar[int] = 19
    initial_states_file: ClassVar[Path] = Path(__file__).parent / "initial_states" / "tong_transfer-v0.json"
    eval_seed: ClassVar[int] = 20261126

    # ------------------------------------------------------------------ scene
    def build(self, spec: mujoco.MjSpec, embodiment: Embodiment) -> None:
        spec.add_material(name="tongs", rgba=[0.75, 0.76, 0.78, 1])
        spec.add_material(name="tong_pad", rgba=[0.2, 0.2, 0.22, 1])
        spec.add_material(name="lemon", rgba=[0.98, 0.86, 0.15, 1])
        spec.add_material(name="plum", rgba=[0.42, 0.1, 0.35, 1])
        spec.add_material(name="basket", rgba=[0.62, 0.45, 0.25, 1])
        wb = spec.worldbody
        box, cap = mujoco.mjtGeom.mjGEOM_BOX, mujoco.mjtGeom.mjGEOM_CAPSULE
        metal = [0.8, 0.005, 0.0001]
        grip = [1.0, 0.005, 0.0001]
        handle = [1.5, 0.005, 0.0001]  # silicone-coated handles

        tongs = wb.add_body(name="tongs", pos=[0.45, -0.4, TABLE_HEIGHT], quat=_yaw_quat(math.pi / 2))
        tongs.add_freejoint(name="tongs_free")
        tongs.add_geom(name="tongs_hinge_block", type=box, size=[0.0125, 0.008, ARM_H / 2], pos=[-0.0075, 0, ARM_H / 2],
                       mass=0.03, material="tongs", friction=metal)
        px, py, pyaw = _pad_geometry()
        arm_b = tongs.add_body(name="tongs_arm_b")
        arm_b.add_joint(name="tongs_hinge", type=mujoco.mjtJoint.mjJNT_HINGE, axis=[0, 0, 1], pos=[0, 0, 0],
                        range=[0.0, hinge_close_limit()], limited=True, stiffness=SPRING_K,
                        springref=-SPRING_PRELOAD, damping=0.02, armature=1e-4)
        for arm, body, sign in (("a", tongs, 1.0), ("b", arm_b, -1.0)):
            th = sign * THETA_OPEN
            c, s = math.cos(th), math.sin(th)
            rot = _yaw_quat(th)

            def local(x: float, y: float, c: float = c, s: float = s, sign: float = sign) -> list[float]:
                """Arm-frame (x, y) -> tongs frame at the open angle (arm B mirrored in y)."""
                y = sign * y
                return [c * x - s * y, s * x + c * y]

            ax, ay = local(ARM_LEN / 2 + 0.005, 0.0)
            body.add_geom(name=f"tongs_arm_{arm}", type=box, size=[ARM_LEN / 2 - 0.005, ARM_T / 2, ARM_H / 2],
                          pos=[ax, ay, ARM_H / 2], quat=rot, mass=0.025, material="tongs", friction=handle)
            qx, qy = local(px, py)
            body.add_geom(name=f"tongs_pad_{arm}", type=box, size=[PAD_L / 2, PAD_T / 2, PAD_H / 2],
                          pos=[qx, qy, PAD_H / 2], quat=_yaw_quat(th + sign * pyaw), mass=0.01,
                          material="tong_pad", friction=grip)
            rx, ry = local(px - PAD_L / 2 * math.cos(pyaw), py - PAD_L / 2 * math.sin(pyaw))
            ex, ey = local(ARM_LEN, 0.0)
            body.add_geom(name=f"tongs_neck_{arm}", type=cap, size=[ARM_T / 2, 0, 0],
                          fromto=[ex, ey, ARM_H / 2, rx, ry, ARM_H / 2], mass=0.002, material="tongs", friction=grip)

        fruit = wb.add_body(name="fruit", pos=[0.47, -0.08, TABLE_HEIGHT + LEMON_RADII[2]])
        # A little armature: a 5 cm fruit's rotational inertia (2e-5 kg m^2) crushed between a hand
        # and the table made the solver blow up under random actions.
        fruit.add_freejoint(name="fruit_free").armature = 1e-4
        fruit.explicitinertial = True
        fruit.mass = LEMON_MASS
        fruit.ipos = [0.0, 0.0, 0.0]
        fruit.iquat = [1.0, 0.0, 0.0, 0.0]
        fruit.inertia = self._fruit_inertia("lemon")
        fruit_friction = [1.0, 0.01, 0.0002]
        fruit.add_geom(name="fruit_lemon", type=mujoco.mjtGeom.mjGEOM_ELLIPSOID, size=list(LEMON_RADII),
                       material="lemon", friction=fruit_friction)
        fruit.add_geom(name="fruit_plum", type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[PLUM_R, 0, 0],
                       material="plum", friction=fruit_friction)

        basket = wb.add_body(name="basket", pos=[0.48, 0.13, TABLE_HEIGHT])
        basket.add_geom(name="basket_floor", type=box, size=[BASKET_IN + BASKET_WALL, BASKET_IN + BASKET_WALL, BASKET_FLOOR / 2],
                        pos=[0, 0, BASKET_FLOOR / 2], material="basket")
        half_h = BASKET_H / 2
        off = BASKET_IN + BASKET_WALL / 2
        for k, (dx, dy, sx, sy) in enumerate(
            ((off, 0, BASKET_WALL / 2, BASKET_IN + BASKET_WALL), (-off, 0, BASKET_WALL / 2, BASKET_IN + BASKET_WALL),
             (0, off, BASKET_IN, BASKET_WALL / 2), (0, -off, BASKET_IN, BASKET_WALL / 2))
        ):
            basket.add_geom(name=f"basket_wall{k}", type=box, size=[sx, sy, half_h], pos=[dx, dy, half_h], material="basket")

    @staticmethod
    def _fruit_inertia(kind: str) -> list[float]:
        if kind == "lemon":
            a, b, c = LEMON_RADII
            m = LEMON_MASS
            return [m / 5 * (b * b + c * c), m / 5 * (a * a + c * c), m / 5 * (a * a + b * b)]
        i = 2 / 5 * PLUM_MASS * PLUM_R**2
        return [i, i, i]

    def bind(self, model: mujoco.MjModel, rig: RigHandles, embodiment: Embodiment) -> None:
        def jnt(name: str) -> tuple[int, int]:
            j = model.joint(name).id
            return int(model.jnt_qposadr[j]), int(model.jnt_dofadr[j])

        self._tg_q, self._tg_v = jnt("tongs_free")
        self._hinge_q, self._hinge_v = jnt("tongs_hinge")
        self._fr_q, self._fr_v = jnt("fruit_free")
        self._tongs_body = model.body("tongs").id
        self._arm_b_body = model.body("tongs_arm_b").id
        self._fruit_body = model.body("fruit").id
        self._basket_body = model.body("basket").id
        self._fruit_geoms = {k: model.geom(f"fruit_{k}").id for k in FRUITS}
        self._fruit_rgba = {k: model.geom_rgba[g].copy() for k, g in self._fruit_geoms.items()}
        self._pad_geoms = (model.geom("tongs_pad_a").id, model.geom("tongs_pad_b").id)
        # Geom categories for one pass over the contact list in `milestones`.
        hand_bodies = set().union(*(h.bodies for h in rig.hands.values()))
        cat = []
        for g in range(model.ngeom):
            b = int(model.geom_bodyid[g])
            if b in hand_bodies:
                cat.append("hand")
            elif g == rig.table_geom:
                cat.append("table")
            elif g == self._pad_geoms[0]:
                cat.append("pad_a")
            elif g == self._pad_geoms[1]:
                cat.append("pad_b")
            elif b in (self._tongs_body, self._arm_b_body):
                cat.append("tongs")
            elif b == self._fruit_body:
                cat.append("fruit")
            elif b == self._basket_body:
                cat.append("basket")
            else:
                cat.append("")
        self._geom_cat = cat
        self.fruit = "lemon"
        self.fruit_half_h = LEMON_RADII[2]
        self.tongs_were_lifted = False  # has `tongs_grasped` held in this episode (reset per state)
        self.basket_xy = np.array([0.48, 0.13])

    # ------------------------------------------------------------------ initial states
    def sample_initial_state(self, rng: np.random.Generator) -> InitialState:
        """Tongs on the right (tips pointing left), fruit in the middle, basket on the left."""
        return {
            "fruit": FRUITS[int(rng.integers(0, 2))],
            "tongs_xy": [round(float(rng.uniform(0.40, 0.48)), 4), round(float(rng.uniform(-0.43, -0.37)), 4)],
            "tongs_yaw": round(float(rng.uniform(math.pi / 2 - 0.2, math.pi / 2 + 0.2)), 4),
            "fruit_xy": [round(float(rng.uniform(0.42, 0.52)), 4), round(float(rng.uniform(-0.12, -0.05)), 4)],
            "fruit_yaw": round(float(rng.uniform(math.pi / 2 - 0.45, math.pi / 2 + 0.45)), 4),
            "basket_xy": [round(float(rng.uniform(0.44, 0.52)), 4), round(float(rng.uniform(0.10, 0.14)), 4)],
        }

    def generate_eval_states(self, n: int, seed: int) -> list[InitialState]:
        """As the base class, but the fruit alternates lemon (even ids) and plum (odd ids), as
        EgoScale evaluates 5 lemons and 5 plums."""
        states = super().generate_eval_states(n, seed)
        return [{**s, "fruit": FRUITS[i % 2]} for i, s in enumerate(states)]

    def apply_initial_state(self, model: mujoco.MjModel, data: mujoco.MjData, state: InitialState) -> None:
        kind = state["fruit"]
        if kind not in FRUITS:
            raise InvalidChoiceError("fruit", kind, FRUITS)
        self.fruit = kind
        for k, g in self._fruit_geoms.items():
            on = k == kind
            model.geom_contype[g] = 1 if on else 0
            model.geom_conaffinity[g] = 1 if on else 0
            model.geom_rgba[g] = self._fruit_rgba[k] if on else [0, 0, 0, 0]
        model.body_mass[self._fruit_body] = LEMON_MASS if kind == "lemon" else PLUM_MASS
        model.body_inertia[self._fruit_body] = self._fruit_inertia(kind)
        self.fruit_half_h = LEMON_RADII[2] if kind == "lemon" else PLUM_R
        self.tongs_were_lifted = False

        tx, ty = state["tongs_xy"]
        data.qpos[self._tg_q : self._tg_q + 7] = [tx, ty, TABLE_HEIGHT, *_yaw_quat(state["tongs_yaw"])]
        data.qpos[self._hinge_q] = 0.0
        fx, fy = state["fruit_xy"]
        data.qpos[self._fr_q : self._fr_q + 7] = [fx, fy, TABLE_HEIGHT + self.fruit_half_h, *_yaw_quat(state["fruit_yaw"])]
        bx, by = state["basket_xy"]
        model.body_pos[self._basket_body][:2] = [bx, by]
        self.basket_xy = np.array([bx, by])

    # ------------------------------------------------------------------ state queries
    def tongs_pose(self, data: mujoco.MjData) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(hinge position on the arms' lower edge, rotation matrix) of the tongs' root (arm A)."""
        return data.xpos[self._tongs_body].copy(), data.xmat[self._tongs_body].reshape(3, 3).copy()

    def hinge_angle(self, data: mujoco.MjData) -> float:
        """How far arm B has closed toward arm A (rad; 0 = open)."""
        return float(data.qpos[self._hinge_q])

    def fruit_pose(self, data: mujoco.MjData) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(centre, rotation matrix) of the fruit; a lemon's long axis is the matrix's first column."""
        return data.xpos[self._fruit_body].copy(), data.xmat[self._fruit_body].reshape(3, 3).copy()

    def pads_center(self, data: mujoco.MjData) -> NDArray[np.float64]:
        """Midpoint of the two pads' centres (where the tongs hold a fruit)."""
        a, b = self._pad_geoms
        return 0.5 * (data.geom_xpos[a] + data.geom_xpos[b])

    def milestones(self, model: mujoco.MjModel, data: mujoco.MjData) -> dict[str, bool]:
        # Plain floats and one pass over the contacts: this runs every control step.
        cat = self._geom_cat
        hand_tongs = hand_fruit = fruit_pad_a = fruit_pad_b = fruit_tongs = False
        tongs_table = tongs_basket = False
        n = data.ncon
        if n:
            for g1, g2 in data.contact.geom[:n].tolist():
                pair = {cat[g1], cat[g2]}
                tong_side = pair & {"tongs", "pad_a", "pad_b"}
                if "hand" in pair:
                    hand_tongs = hand_tongs or bool(tong_side)
                    hand_fruit = hand_fruit or "fruit" in pair
                elif "fruit" in pair and tong_side:
                    fruit_tongs = True
                    fruit_pad_a = fruit_pad_a or "pad_a" in pair
                    fruit_pad_b = fruit_pad_b or "pad_b" in pair
                elif tong_side and "table" in pair:
                    tongs_table = True
                elif tong_side and "basket" in pair:
                    tongs_basket = True
        tx, ty, tz = data.xpos[self._tongs_body].tolist()
        fx, fy, fz = data.xpos[self._fruit_body].tolist()
        bx, by = self.basket_xy.tolist()
        fv = data.qvel[self._fr_v : self._fr_v + 3].tolist()
        tv = data.qvel[self._tg_v : self._tg_v + 3].tolist()
        fruit_speed = math.sqrt(sum(v * v for v in fv))
        tongs_speed = math.sqrt(sum(v * v for v in tv))
        in_basket = (
            abs(fx - bx) < BASKET_IN and abs(fy - by) < BASKET_IN and fz < TABLE_HEIGHT + BASKET_H
            and fruit_speed < REST_SPEED and not hand_fruit and not fruit_tongs
        )
        # The tongs' centre: midway between the hinge and the pads, along arm A's axis direction.
        mat = data.xmat[self._tongs_body].tolist()
        half = TONGS_LEN / 2
        cx, cy = tx + mat[0] * half, ty + mat[3] * half
        outside = abs(cx - bx) > BASKET_IN + BASKET_WALL or abs(cy - by) > BASKET_IN + BASKET_WALL
        grasped = hand_tongs and tz > TABLE_HEIGHT + LIFT
        self.tongs_were_lifted = self.tongs_were_lifted or grasped
        on_table = (
            self.tongs_were_lifted and tongs_table and not hand_tongs and not tongs_basket
            and tongs_speed < REST_SPEED and outside
        )
        self.last = {
            "tongs_grasped": grasped,
            "fruit_picked": fruit_pad_a and fruit_pad_b and not hand_fruit and fz > TABLE_HEIGHT + self.fruit_half_h + LIFT,
            "fruit_in_basket": in_basket,
            "tongs_on_table": on_table,
        }
        return self.last

    def is_success(self, model: mujoco.MjModel, data: mujoco.MjData, reached: Mapping[str, bool]) -> bool:
        return all(reached.values()) and self.last["fruit_in_basket"] and self.last["tongs_on_table"]

    def privileged(self, model: mujoco.MjModel, data: mujoco.MjData) -> NDArray[np.float64]:
        return np.concatenate(
            [
                data.qpos[self._tg_q : self._tg_q + 7],
                [data.qpos[self._hinge_q]],
                data.qpos[self._fr_q : self._fr_q + 7],
                self.basket_xy,
                [float(FRUITS.index(self.fruit)), self.fruit_half_h],
            ]
        )

    def make_expert(self, env: EgosimEnv) -> Policy:
        from egosim.tasks.tong_transfer_expert import TongTransferExpert

        return TongTransferExpert(env)
