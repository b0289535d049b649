"""Syringe transfer (EgoScale task V, "Syringe Liquid Transfer").

Scene: a syringe stands tip-down in a holder block on the right of the table (its cannula hangs in the
block's hole, its barrel rests on the block); a rack in the middle holds two open test tubes, A (with
liquid, red band, on the left) and B (empty, yellow band); an open trash can stands at the far right.
Instruction: pick up the syringe, draw liquid from tube A, inject it into tube B, and throw the
syringe into the trash can.

The syringe is a free body `syringe` (the barrel, with a finger flange at its top and a blunt
cannula, the "nozzle", at its bottom; site `syringe_tip` at the cannula's end) and a body
`syringe_plunger` (rod and thumb rest) on a slide joint `syringe_plunger_slide` along the barrel's
axis: 0 = pushed fully in, up to `PLUNGER_TRAVEL` drawn out. The slide has friction (0.4 N) and
damping, so the plunger holds its position when nobody pushes it.

Liquid: the volumes of tube A, tube B and the syringe are TASK STATE, not simulator state: they are
not in qpos or anywhere in mjData (MuJoCo has no fluids). `milestones()`, which the env calls after
every control step, integrates them from the plunger's change since the previous call;
`apply_initial_state` resets them (A full, B and the syringe empty). The model:
- The nozzle tip is *in* a tube when it lies between the tube's inner bottom and rim and within its
  outer radius (the wall is solid: a tip pressed into the wall by soft contact is still inside); it
  is *submerged* when it is also at or below that tube's liquid surface.
- Pulling the plunger (slide grows by dq) opens dq x bore area: with the tip submerged in a tube,
  liquid comes from that tube (at most the liquid above the tip; the rest is air); otherwise air.
- Pushing expels dq x bore area: liquid first (the syringe is held tip-down, so its liquid sits at
  the nozzle), then air. Expelled liquid goes into the tube the tip is in; with the tip outside both
  tubes it is spilled (counted in `spilled`, in no tube). So moving the plunger with the tip outside
  a tube never changes either tube's volume.
- The slide is read clipped to its range (a plunger resting on its stop sinks a fraction of a
  millimetre into the soft joint limit; that jitter moves no liquid).
Thin visual cylinders show the liquid in A, B and the barrel (resized when a volume changes by 0.1 mL).

Rubric (additive, EgoScale V): `syringe_picked` +0.1 (a hand touches the syringe and its barrel is
3 cm above where it started), `aimed_at_a` +0.1 (the nozzle tip is in tube A), `plunger_pulled` +0.2
(at least `DRAW_MIN_ML` = 5 mL drawn out of A), `aimed_at_b` +0.1 (the tip is in tube B while the
syringe holds at least `HOLD_MIN_ML` = 2 mL), `plunger_pushed` +0.2 (tube B holds at least 5 mL),
`handover_or_release` +0.2 (after the pick, no hand touches the syringe, or, lifted, only the other
hand than the one that picked it does), `in_trash` +0.1 (no hand touches the syringe, it moves slower
than 0.1 m/s, its nozzle tip is inside the can below the rim and its centre of mass is over the can's
floor at most 5 cm above the rim: a 20 cm syringe leaning in a 10 cm can sticks out of it).
Success: every milestone reached and, at the same instant, B holds at least 5 mL and the syringe is
at rest in the trash can. Horizon: 40 s (the expert needs about 18 s on Sharpa, 21 s on Dex3).

Privileged state (26): barrel pos (3, bottom centre) + quat wxyz (4), plunger slide (1, m), nozzle
tip pos (3), tube A and B rim centres (3 + 3), trash can floor centre (3), holder top centre (3), the
liquid in A, the syringe and B (3, in mL so they are of order 1-10 like the rest).

Objects: a 60 mL-class syringe (barrel 40 mm across, 80 mm long, bore 34 mm; 7 cm blunt cannula,
4 mm across; plunger travel 4.5 cm), 58 g: thick enough that both hands' claws close around it from
the side, its cannula long enough to reach near the bottom of a tube with the barrel just above the
rim. Tubes: 24 mm bore, 3 mm walls (thinner walls let a pressed cannula tunnel through the soft
contact), 8 cm tall, fixed in the rack (a rack holds its tubes; EgoScale's are in one); tube A starts
with 15 mL (3.3 cm of liquid). Holder block 4.4 cm square, 7.4 cm tall. Trash can: 16 x 16 cm
inside, 10 cm tall, fixed. The layout keeps the holder's syringe clear of the right hand's home pose
and the trash can clear of the path the right hand takes to the holder.

Both hands can do every step physically: the Dex3's side claw holds the barrel between its thumb and
two fingers, and its three-finger pinch pulls the thumb rest (the pull is bimanual on both hands).

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
from egosim.tasks.contacts import ContactQuery

if TYPE_CHECKING:
    from egosim.embodiment import Embodiment
    from egosim.env import EgosimEnv
    from egosim.policy import Policy
    from egosim.rig import RigHandles

# Syringe (barrel frame: origin at the barrel's bottom face centre, +z toward the plunger).
BARREL_R = 0.020
BARREL_LEN = 0.080
BORE_R = 0.017
BORE_AREA = math.pi * BORE_R**2  # m^2
NOZZLE_R = 0.002
NOZZLE_LEN = 0.070
FLANGE_HALF = (0.036, 0.012, 0.002)
ROD_R = 0.004
ROD_GAP = 0.030  # rod visible between the flange and the thumb rest with the plunger pushed in
REST_R = 0.016  # thumb rest (the plunger's handle) radius and half thickness
REST_HALF = 0.006
PLUNGER_TRAVEL = 0.045
# Tubes (fixed bodies; frame origin at the tube's foot on the table).
TUBE_R_IN = 0.012
TUBE_WALL = 0.003
TUBE_H = 0.080
TUBE_BASE = 0.005
TUBE_AREA = math.pi * TUBE_R_IN**2
TUBE_SEGMENTS = 10
TUBE_SPACING = 0.09  # wide enough that the hand holding a syringe in one tube clears the other
# Holder block (the syringe stands in it at the start) and trash can.
HOLDER_HALF = 0.022
HOLDER_HOLE = 0.007  # half width of the square hole the cannula hangs in
HOLDER_H = NOZZLE_LEN + 0.004
TRASH_HALF_IN = 0.08
TRASH_WALL = 0.006
TRASH_H = 0.10
# Liquid.
ML = 1e-6  # m^3 per millilitre
VOLUME_A0_ML = 15.0
DRAW_MIN_ML = 5.0  # drawn out of A (and, later, held by B) that counts
HOLD_MIN_ML = 2.0  # what the syringe must hold for the re-aim at B to count
LIFT = 0.03
_EPS = 1e-12


class SyringeTransfer(Task):
    name: ClassVar[str] = "syringe_transfer"
    env_name: ClassVar[str] = "SyringeTransfer"
    version: ClassVar[int] = 0
    tags: ClassVar[frozenset[str]] = frozenset({"main"})
    instruction: ClassVar[str] = (
        "Pick up the syringe, draw liquid from tube A, inject it into tube B, and throw the syringe into the trash can."
    )
    rubric: ClassVar[Rubric] = Rubric(
        mode="additive",
        milestones=(
            Milestone("syringe_picked", 0.1, "syringe lifted 3 cm in a hand"),
            Milestone("aimed_at_a", 0.1, "nozzle tip inside tube A"),
            Milestone("plunger_pulled", 0.2, f"at least {DRAW_MIN_ML:g} mL drawn from tube A"),
            Milestone("aimed_at_b", 0.1, f"nozzle tip inside tube B with at least {HOLD_MIN_ML:g} mL in the syringe"),
            Milestone("plunger_pushed", 0.2, f"at least {DRAW_MIN_ML:g} mL injected into tube B"),
            Milestone("handover_or_release", 0.2, "syringe released, or passed to the other hand"),
            Milestone("in_trash", 0.1, "syringe released and at rest inside the trash can"),
        ),
    )
    horizon_s: ClassVar[float] = 40.0
    privileged_dim: ClassVar[int] = 26
    initial_states_file: ClassVar[Path] = Path(__file__).parent / "initial_states" / "syringe_transfer-v0.json"
    eval_seed: ClassVar[int] = 20261126

    # ------------------------------------------------------------------ scene
    def build(self, spec: mujoco.MjSpec, embodiment: Embodiment) -> None:
        spec.add_material(name="syringe_barrel", rgba=[0.85, 0.9, 0.95, 0.55])
        spec.add_material(name="syringe_plunger", rgba=[0.95, 0.95, 0.95, 1])
        spec.add_material(name="syringe_rubber", rgba=[0.15, 0.15, 0.15, 1])
        spec.add_material(name="syringe_nozzle", rgba=[0.7, 0.7, 0.75, 1])
        spec.add_material(name="tube_glass", rgba=[0.8, 0.9, 0.95, 0.45])
        spec.add_material(name="liquid", rgba=[0.15, 0.45, 0.9, 0.9])
        spec.add_material(name="rack", rgba=[0.55, 0.35, 0.2, 1])
        spec.add_material(name="trash", rgba=[0.3, 0.3, 0.32, 1])
        spec.add_material(name="holder", rgba=[0.35, 0.55, 0.35, 1])
        spec.add_material(name="label_a", rgba=[0.9, 0.2, 0.2, 1])
        spec.add_material(name="label_b", rgba=[0.95, 0.8, 0.1, 1])
        wb = spec.worldbody
        box, cyl = mujoco.mjtGeom.mjGEOM_BOX, mujoco.mjtGeom.mjGEOM_CYLINDER
        friction = [1.0, 0.005, 0.0001]

        # Syringe: barrel (free body) and plunger (slide joint along the barrel's +z).
        syr = wb.add_body(name="syringe", pos=[0.42, -0.22, TABLE_HEIGHT + HOLDER_H])
        syr.add_freejoint(name="syringe_free")
        syr.add_geom(name="syringe_barrel", type=cyl, size=[BARREL_R, BARREL_LEN / 2, 0],
                     pos=[0, 0, BARREL_LEN / 2], mass=0.040, material="syringe_barrel", friction=friction)
        syr.add_geom(name="syringe_flange", type=box, size=list(FLANGE_HALF),
                     pos=[0, 0, BARREL_LEN + FLANGE_HALF[2]], mass=0.005, material="syringe_plunger", friction=friction)
        syr.add_geom(name="syringe_nozzle", type=cyl, size=[NOZZLE_R, NOZZLE_LEN / 2, 0],
                     pos=[0, 0, -NOZZLE_LEN / 2], mass=0.002, material="syringe_nozzle", friction=[0.3, 0.005, 0.0001])
        syr.add_geom(name="syringe_liquid", type=cyl, size=[BORE_R - 0.001, 0.0005, 0], pos=[0, 0, 0.0006],
                     material="liquid", contype=0, conaffinity=0, mass=0, group=1)
        syr.add_site(name="syringe_tip", pos=[0, 0, -NOZZLE_LEN], size=[0.002, 0, 0], rgba=[1, 0, 0, 0])
        plunger = syr.add_body(name="syringe_plunger", pos=[0, 0, 0])
        plunger.add_joint(name="syringe_plunger_slide", type=mujoco.mjtJoint.mjJNT_SLIDE, axis=[0, 0, 1],
                          range=[0.0, PLUNGER_TRAVEL], limited=mujoco.mjtLimited.mjLIMITED_TRUE,
                          frictionloss=0.4, damping=3.0, armature=0.01)
        plunger.add_geom(name="syringe_stopper", type=cyl, size=[BORE_R, 0.004, 0], pos=[0, 0, 0.004],
                         material="syringe_rubber", mass=0.003, contype=0, conaffinity=0)
        rod_top = BARREL_LEN + 2 * FLANGE_HALF[2] + ROD_GAP
        plunger.add_geom(name="syringe_rod", type=cyl, size=[ROD_R, rod_top / 2, 0], pos=[0, 0, rod_top / 2],
                         material="syringe_plunger", mass=0.004, contype=0, conaffinity=0)
        plunger.add_geom(name="syringe_thumb_rest", type=cyl, size=[REST_R, REST_HALF, 0],
                         pos=[0, 0, rod_top + REST_HALF], material="syringe_plunger", mass=0.004, friction=friction)

        # Tubes A and B (fixed) in a rack; a liquid cylinder in each (visual only).
        rack = wb.add_body(name="tube_rack", pos=[0.5, 0.0, TABLE_HEIGHT])
        rack.add_geom(name="tube_rack_base", type=box, size=[0.03, TUBE_SPACING / 2 + 0.03, 0.006],
                      pos=[0, 0, 0.006], material="rack")
        rack.add_geom(name="tube_rack_top", type=box, size=[0.03, TUBE_SPACING / 2 + 0.03, 0.004],
                      pos=[0, 0, 0.045], material="rack", contype=0, conaffinity=0)
        for label in ("a", "b"):
            tube = wb.add_body(name=f"tube_{label}", pos=[0.5, 0.0, TABLE_HEIGHT])
            self._add_tube(tube, label)

        # Holder: a block with a square hole the cannula hangs in; the barrel rests on its top.
        holder = wb.add_body(name="holder", pos=[0.42, -0.22, TABLE_HEIGHT])
        w = (HOLDER_HALF - HOLDER_HOLE) / 2
        for k, (dx, dy, hx, hy) in enumerate((
            (HOLDER_HOLE + w, 0, w, HOLDER_HALF), (-HOLDER_HOLE - w, 0, w, HOLDER_HALF),
            (0, HOLDER_HOLE + w, HOLDER_HOLE, w), (0, -HOLDER_HOLE - w, HOLDER_HOLE, w),
        )):  # fmt: skip
            holder.add_geom(name=f"holder_wall{k}", type=box, size=[hx, hy, HOLDER_H / 2],
                            pos=[dx, dy, HOLDER_H / 2], material="holder", friction=friction)

        # Trash can: an open box.
        trash = wb.add_body(name="trash", pos=[0.6, -0.3, TABLE_HEIGHT])
        trash.add_geom(name="trash_floor", type=box, size=[TRASH_HALF_IN + TRASH_WALL, TRASH_HALF_IN + TRASH_WALL, 0.003],
                       pos=[0, 0, 0.003], material="trash")
        outer = TRASH_HALF_IN + TRASH_WALL / 2
        for k, (dx, dy, hx, hy) in enumerate((
            (outer, 0, TRASH_WALL / 2, TRASH_HALF_IN + TRASH_WALL), (-outer, 0, TRASH_WALL / 2, TRASH_HALF_IN + TRASH_WALL),
            (0, outer, TRASH_HALF_IN, TRASH_WALL / 2), (0, -outer, TRASH_HALF_IN, TRASH_WALL / 2),
        )):  # fmt: skip
            trash.add_geom(name=f"trash_wall{k}", type=box, size=[hx, hy, TRASH_H / 2], pos=[dx, dy, TRASH_H / 2],
                           material="trash")

    @staticmethod
    def _add_tube(tube: mujoco.MjsBody, label: str) -> None:
        """An open-top test tube: a base disc and a ring of wall segments, plus a visual liquid column."""
        box, cyl = mujoco.mjtGeom.mjGEOM_BOX, mujoco.mjtGeom.mjGEOM_CYLINDER
        r_out = TUBE_R_IN + TUBE_WALL
        tube.add_geom(name=f"tube_{label}_base", type=cyl, size=[r_out, TUBE_BASE / 2, 0], pos=[0, 0, TUBE_BASE / 2],
                      material="tube_glass")
        half_chord = r_out * np.tan(np.pi / TUBE_SEGMENTS) + 0.0005
        wall_h = (TUBE_H - TUBE_BASE) / 2
        for k in range(TUBE_SEGMENTS):
            ang = 2 * np.pi * k / TUBE_SEGMENTS
            r_mid = TUBE_R_IN + TUBE_WALL / 2
            tube.add_geom(name=f"tube_{label}_wall{k}", type=box, size=[TUBE_WALL / 2, half_chord, wall_h],
                          pos=[r_mid * np.cos(ang), r_mid * np.sin(ang), TUBE_BASE + wall_h],
                          quat=[np.cos(ang / 2), 0, 0, np.sin(ang / 2)], material="tube_glass")
        tube.add_geom(name=f"tube_{label}_label", type=cyl, size=[r_out + 0.0008, 0.004, 0], pos=[0, 0, TUBE_H - 0.012],
                      material=f"label_{label}", contype=0, conaffinity=0, group=1)
        tube.add_geom(name=f"tube_{label}_liquid", type=cyl, size=[TUBE_R_IN - 0.0005, 0.0005, 0],
                      pos=[0, 0, TUBE_BASE + 0.0005], material="liquid", contype=0, conaffinity=0, group=1)

    def bind(self, model: mujoco.MjModel, rig: RigHandles, embodiment: Embodiment) -> None:
        j = model.joint("syringe_free").id
        self._syr_q, self._syr_v = int(model.jnt_qposadr[j]), int(model.jnt_dofadr[j])
        j = model.joint("syringe_plunger_slide").id
        self._pl_q, self._pl_v = int(model.jnt_qposadr[j]), int(model.jnt_dofadr[j])
        self._syr_body = model.body("syringe").id
        self._pl_body = model.body("syringe_plunger").id
        self._tip_site = model.site("syringe_tip").id
        self._tube_body = {k: model.body(f"tube_{k}").id for k in ("a", "b")}
        self._liquid_geom = {k: model.geom(f"tube_{k}_liquid").id for k in ("a", "b")}
        self._liquid_geom["syringe"] = model.geom("syringe_liquid").id
        self._rack_body = model.body("tube_rack").id
        self._holder_body = model.body("holder").id
        self._trash_body = model.body("trash").id
        self._side_contacts = {s: ContactQuery(model, rig.hands[s].bodies) for s in SIDES}
        self._mass = float(model.body_subtreemass[self._syr_body])
        self._reset_liquid()

    # ------------------------------------------------------------------ initial states
    def sample_initial_state(self, rng: np.random.Generator) -> InitialState:
        """Holder at the right (its syringe clear of the right hand's home pose), the tube rack in the
        middle, the trash can at the far right (out of the way of the hand that reaches the holder
        from the right)."""
        return {
            "holder_xy": [round(float(rng.uniform(0.38, 0.45)), 4), round(float(rng.uniform(-0.32, -0.28)), 4)],
            "rack_xy": [round(float(rng.uniform(0.46, 0.54)), 4), round(float(rng.uniform(-0.02, 0.04)), 4)],
            "trash_xy": [round(float(rng.uniform(0.66, 0.70)), 4), round(float(rng.uniform(-0.36, -0.32)), 4)],
            "syringe_yaw": round(float(rng.uniform(-np.pi / 6, np.pi / 6)), 4),
        }

    def apply_initial_state(self, model: mujoco.MjModel, data: mujoco.MjData, state: InitialState) -> None:
        hx, hy = state["holder_xy"]
        rx, ry = state["rack_xy"]
        tx, ty = state["trash_xy"]
        model.body_pos[self._holder_body] = [hx, hy, TABLE_HEIGHT]
        model.body_pos[self._rack_body] = [rx, ry, TABLE_HEIGHT]
        # Tube A on the rack's left (+y), B on its right: B lies between A and the holder.
        model.body_pos[self._tube_body["a"]] = [rx, ry + TUBE_SPACING / 2, TABLE_HEIGHT]
        model.body_pos[self._tube_body["b"]] = [rx, ry - TUBE_SPACING / 2, TABLE_HEIGHT]
        model.body_pos[self._trash_body] = [tx, ty, TABLE_HEIGHT]
        yaw = state["syringe_yaw"]
        data.qpos[self._syr_q : self._syr_q + 7] = [hx, hy, TABLE_HEIGHT + HOLDER_H, np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)]
        data.qpos[self._pl_q] = 0.0
        self.tube_rim = {k: np.array([*model.body_pos[self._tube_body[k]][:2], TABLE_HEIGHT + TUBE_H]) for k in ("a", "b")}
        self.trash_center = np.array([tx, ty, TABLE_HEIGHT])
        self.holder_top = np.array([hx, hy, TABLE_HEIGHT + HOLDER_H])
        self._start_z = TABLE_HEIGHT + HOLDER_H
        self._reset_liquid()
        self._update_liquid_geoms(model)

    # ------------------------------------------------------------------ liquid state
    def _reset_liquid(self) -> None:
        self.volume = {"a": VOLUME_A0_ML * ML, "b": 0.0, "syringe": 0.0}
        self.spilled = 0.0
        self._slide_last = 0.0
        self._picked_by: str | None = None
        self._shown = None

    def set_volumes(self, model: mujoco.MjModel, data: mujoco.MjData, a_ml: float, syringe_ml: float, b_ml: float) -> None:
        """Sets the liquid state (mL) and takes the plunger's current position as the reference.

        For tests that build states by hand: the plunger must be drawn far enough to hold `syringe_ml`.
        """
        self.volume = {"a": a_ml * ML, "b": b_ml * ML, "syringe": syringe_ml * ML}
        self._slide_last = min(max(float(data.qpos[self._pl_q]), 0.0), PLUNGER_TRAVEL)
        self._update_liquid_geoms(model)

    def volumes_ml(self) -> dict[str, float]:
        """Liquid in tube A, the syringe and tube B (mL)."""
        return {k: v / ML for k, v in self.volume.items()}

    def nozzle_tip(self, data: mujoco.MjData) -> NDArray[np.float64]:
        return data.site_xpos[self._tip_site].copy()

    def tip_tube(self, data: mujoco.MjData) -> tuple[str | None, bool]:
        """(tube the nozzle tip is in, or None; whether the tip is at or below its liquid surface)."""
        tx, ty, tz = data.site_xpos[self._tip_site].tolist()
        for k in ("a", "b"):
            rx, ry, rz = self.tube_rim[k].tolist()
            bottom = rz - TUBE_H + TUBE_BASE
            # Within the outer radius: the wall is solid, so a tip pressed into it is still inside.
            if (tx - rx) ** 2 + (ty - ry) ** 2 < (TUBE_R_IN + TUBE_WALL) ** 2 and bottom - 1e-3 <= tz <= rz:
                return k, tz <= bottom + self.volume[k] / TUBE_AREA
        return None, False

    def _integrate_liquid(self, model: mujoco.MjModel, data: mujoco.MjData) -> None:
        q = min(max(float(data.qpos[self._pl_q]), 0.0), PLUNGER_TRAVEL)
        dq = q - self._slide_last
        self._slide_last = q
        if abs(dq) < _EPS:
            return
        tube, submerged = self.tip_tube(data)
        vol = self.volume
        if dq > 0:  # pulling: liquid from a tube the tip is submerged in, else air
            if tube is not None and submerged:
                # Only the liquid above the tip can be drawn.
                bottom = float(self.tube_rim[tube][2]) - TUBE_H + TUBE_BASE
                below = max(float(data.site_xpos[self._tip_site][2]) - bottom, 0.0) * TUBE_AREA
                drawn = min(dq * BORE_AREA, max(vol[tube] - below, 0.0))
                vol[tube] -= drawn
                vol["syringe"] += drawn
        else:  # pushing: liquid first (tip down), into the tube the tip is in, else spilled
            out = min(-dq * BORE_AREA, vol["syringe"])
            vol["syringe"] -= out
            if tube is not None:
                vol[tube] += out
            else:
                self.spilled += out
        self._update_liquid_geoms(model)

    def _update_liquid_geoms(self, model: mujoco.MjModel) -> None:
        """Resizes the visual liquid columns (skipped when the rounded levels have not changed)."""
        shown = tuple(round(v / ML, 1) for v in self.volume.values())
        if shown == self._shown:
            return
        self._shown = shown
        for k, area, base in (("a", TUBE_AREA, TUBE_BASE), ("b", TUBE_AREA, TUBE_BASE), ("syringe", BORE_AREA, 0.0)):
            g = self._liquid_geom[k]
            half = max(self.volume[k] / area, 0.001) / 2
            model.geom_size[g][1] = half
            model.geom_pos[g][2] = base + half
            model.geom_rgba[g][3] = 0.9 if self.volume[k] > 0.05 * ML else 0.0

    # ------------------------------------------------------------------ state queries
    def syringe_pose(self, data: mujoco.MjData) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(barrel bottom-centre position, rotation matrix); the barrel's axis is the third column."""
        return data.xpos[self._syr_body].copy(), data.xmat[self._syr_body].reshape(3, 3).copy()

    def plunger_slide(self, data: mujoco.MjData) -> float:
        return float(data.qpos[self._pl_q])

    def thumb_rest_top(self, data: mujoco.MjData) -> NDArray[np.float64]:
        """Centre of the thumb rest's top face (world)."""
        p, r = data.xpos[self._pl_body], data.xmat[self._pl_body].reshape(3, 3)
        return p + r[:, 2] * (BARREL_LEN + 2 * FLANGE_HALF[2] + ROD_GAP + 2 * REST_HALF)

    def touching_sides(self, data: mujoco.MjData) -> set[str]:
        """Hands that touch the syringe (barrel or plunger) now."""
        out = set()
        for s, cq in self._side_contacts.items():
            t = cq.touched_by_hand(data)
            if self._syr_body in t or self._pl_body in t:
                out.add(s)
        return out

    def milestones(self, model: mujoco.MjModel, data: mujoco.MjData) -> dict[str, bool]:
        # Plain floats: this runs every control step. It also integrates the liquid state.
        self._integrate_liquid(model, data)
        sides = self.touching_sides(data)
        bx, by, bz = data.xpos[self._syr_body].tolist()
        lifted = bz > self._start_z + LIFT
        picked = bool(sides) and lifted
        if picked and self._picked_by is None:
            self._picked_by = sorted(sides)[0] if len(sides) == 1 else "right"
        released = self._picked_by is not None and (
            not sides or (lifted and sides == {s for s in SIDES if s != self._picked_by})
        )
        tube, _ = self.tip_tube(data)
        vol = self.volume
        cx, cy, cz = data.xipos[self._syr_body].tolist()
        tx, ty, tz = self.trash_center.tolist()
        speed = math.sqrt(sum(v * v for v in data.qvel[self._syr_v : self._syr_v + 3].tolist()))
        px, py, pz = data.site_xpos[self._tip_site].tolist()
        # A syringe leaning in the can may stick out of it (it is longer than the can is tall): its
        # tip must be inside the can and its centre of mass over the can's floor, at most 5 cm above the rim.
        in_trash = (
            not sides and speed < 0.1
            and abs(cx - tx) < TRASH_HALF_IN and abs(cy - ty) < TRASH_HALF_IN and cz < tz + TRASH_H + 0.05
            and abs(px - tx) < TRASH_HALF_IN and abs(py - ty) < TRASH_HALF_IN and pz < tz + TRASH_H
        )
        self.last = {
            "syringe_picked": picked,
            "aimed_at_a": tube == "a",
            "plunger_pulled": VOLUME_A0_ML * ML - vol["a"] >= DRAW_MIN_ML * ML - _EPS,
            "aimed_at_b": tube == "b" and vol["syringe"] >= HOLD_MIN_ML * ML - _EPS,
            "plunger_pushed": vol["b"] >= DRAW_MIN_ML * ML - _EPS,
            "handover_or_release": released,
            "in_trash": in_trash,
        }
        return self.last

    def is_success(self, model: mujoco.MjModel, data: mujoco.MjData, reached: Mapping[str, bool]) -> bool:
        return all(reached.values()) and self.last["plunger_pushed"] and self.last["in_trash"]

    def privileged(self, model: mujoco.MjModel, data: mujoco.MjData) -> NDArray[np.float64]:
        return np.concatenate([
            data.qpos[self._syr_q : self._syr_q + 7], [data.qpos[self._pl_q]], data.site_xpos[self._tip_site],
            self.tube_rim["a"], self.tube_rim["b"], self.trash_center, self.holder_top,
            [self.volume["a"] / ML, self.volume["syringe"] / ML, self.volume["b"] / ML],
        ])  # fmt: skip

    def make_expert(self, env: EgosimEnv) -> Policy:
        from egosim.tasks.syringe_transfer_expert import SyringeTransferExpert

        return SyringeTransferExpert(env)
