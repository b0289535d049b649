"""Tabletop play: a procedural scene for diverse human pretraining data (not a benchmark task).

Tag `procedural`: it is left out of `tasks=all` and of the task table (`task_names()` lists benchmark
tasks; `task_names("procedural")` lists this one). `egosim collect source=procedural hours=H` plays it.

Scene. Each episode draws 1-4 objects of the kinds in `egosim.tasks.play_objects` (box, cube, thin
tile, plate, cylinder, sphere, lying capsule, long bar, mug, cup, bowl) with random dimensions,
masses, friction and colours, and a few props: a tray and a bin (each present or not), and beads
that sit in the cup or mug the program pours from. Everything is placed on the table without
overlap (footprint circles 2 cm apart), inside a region both hands of every embodiment reach.

A MuJoCo model is compiled once per env, so the scene has a fixed set of slots whose contents change
per episode through model fields set at reset:
- 4 object slots, each a free body with `SLOT_GEOMS` geoms. The drawn shape's primitives take the
  first geoms (`geom_type`, `geom_size`, `geom_pos`, `geom_quat`, `geom_rgba`, `geom_friction`); the
  rest get `contype = conaffinity = 0`, zero size and alpha 0. The body's mass and inertia
  (`body_mass`, `body_inertia`, `body_ipos`, `body_iquat`) and the derived bounds that collision
  detection uses (`geom_rbound`, `geom_aabb`, the body's bounding-volume tree `bvh_aabb`,
  `body_sameframe`, `geom_sameframe`) are copied from a one-body model of the same shape compiled at
  reset (about 2 ms), so they are exactly what MuJoCo's compiler makes; then `mj_setConst` refreshes
  what depends on masses (`body_subtreemass`, `dof_invweight0`, ...). Changing a primitive's type at
  run time is safe: collision and rendering dispatch on `geom_type` every step.
- Unused slots and absent props float far above and behind the table (`body_gravcomp = 1`,
  collisions off, invisible): no contacts, no cost in the scene, nothing in any camera.

Each episode also carries an activity program drawn by the motion grammar
(`egosim.tasks.play_grammar`): 1-3 steps such as "put the red block in the bin" or "pour the beads
from the green mug into the bowl", the instruction text made from it, and a horizon fitted to it.

Rubric (additive, drawn per episode): `step1` ... `stepN`, 1/N points each; a step's milestone is a
predicate on simulator state for what that step should achieve (the object released and at rest
where it was put, turned by at least half the asked angle, pushed at least half the asked distance,
half the beads in the target, on the other hand's side after a hand-over), with what it needs to have
happened first (lifted, touched by both hands) remembered by the task; steps are judged in order.
Success: every step's milestone reached and, now, no hand touches an object, every object is at rest
and both wrists are lifted clear of the scene (15 cm above the table), so an episode ends when the
activity does. Human play has no success in the benchmark sense (`egosim collect source=procedural`
keeps every episode); the score tells how much of the program the demonstrator carried out. Objects
get torsional friction (condim 4; without it a two-finger pinch is a hinge and a bar held off its
centre swings down), balls, sticks and cylinders also rolling friction (condim 6), so one that is let
go comes to rest.

Rates: 30 Hz control, the frame rate of human data (EgoScale and EgoDex record at 30 fps), on a
1/600 s physics step (20 substeps per frame; 2 ms, the other tasks' step, does not divide 1/30 s).

Privileged state (61): per slot pos (3) + quat wxyz (4) (28), per slot in-use flag (4), tray pose
(7), bin pose (7), bead positions (5 x 3).

Version history:
- v0: first version.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import mujoco
import numpy as np
from numpy.typing import NDArray

from egosim.rig import TABLE_HEIGHT
from egosim.task import InitialState, Milestone, Rubric, Task
from egosim.tasks import play_grammar
from egosim.tasks.contacts import ContactQuery
from egosim.tasks.play_objects import COLOURS, SLOT_GEOMS, GeomSpec, shape_geoms

if TYPE_CHECKING:
    from egosim.embodiment import Embodiment
    from egosim.env import EgosimEnv
    from egosim.policy import Policy
    from egosim.rig import RigHandles

N_SLOTS = 4
N_BEADS = 5
BEAD_R = 0.008
BEAD_MASS = 0.004
MAX_STEPS = play_grammar.MAX_STEPS
TRAY_HALF = (0.085, 0.065)  # inner half size of the tray (m)
TRAY_RIM = 0.016  # rim height
BIN_HALF = (0.07, 0.07)  # inner half size of the bin
BIN_WALL_H = 0.07
PROP_WALL = 0.006
ROLLING = 0.001  # rolling friction (m) of round objects and beads
TORSIONAL = 0.01  # torsional friction (m) of objects
REST_SPEED = 0.03  # m/s: slower than this counts as at rest
CLEAR_Z = 0.15  # wrists this high above the table: the hands are out of the scene
LIFT = 0.03  # lifted this far above where it rests, in a hand, counts as picked
_GEOM_TYPES = {"box": mujoco.mjtGeom.mjGEOM_BOX, "sphere": mujoco.mjtGeom.mjGEOM_SPHERE,
               "capsule": mujoco.mjtGeom.mjGEOM_CAPSULE, "cylinder": mujoco.mjtGeom.mjGEOM_CYLINDER}


def park_position(index: int) -> list[float]:
    """Where unused body `index` floats: behind the rig, 2 m up, out of every camera's view."""
    return [-1.2 - 0.3 * (index % 6), -0.9 + 0.3 * (index // 6), 2.2]


class TabletopPlay(Task):
    name: ClassVar[str] = "tabletop_play"
    env_name: ClassVar[str] = "TabletopPlay"
    version: ClassVar[int] = 0
    tags: ClassVar[frozenset[str]] = frozenset({"procedural"})
    instruction: ClassVar[str] = "Play with the objects on the table."  # replaced per episode by the program's text
    rubric: ClassVar[Rubric] = Rubric(
        mode="additive",
        milestones=tuple(Milestone(f"step{k}", 1.0 / MAX_STEPS, f"step {k} of the activity program achieved")
                         for k in range(1, MAX_STEPS + 1)),
    )  # the longest program's; each episode's rubric has one milestone per program step
    horizon_s: ClassVar[float] = 60.0  # replaced per episode by the program's estimated duration
    control_hz: ClassVar[float] = 30.0
    physics_timestep: ClassVar[float] = 1.0 / 600.0
    privileged_dim: ClassVar[int] = 7 * N_SLOTS + N_SLOTS + 14 + 3 * N_BEADS
    initial_states_file: ClassVar[Path] = Path(__file__).parent / "initial_states" / "tabletop_play-v0.json"
    eval_seed: ClassVar[int] = 20261127

    # ------------------------------------------------------------------ scene
    def build(self, spec: mujoco.MjSpec, embodiment: Embodiment) -> None:
        spec.add_material(name="tray", rgba=[0.55, 0.42, 0.3, 1])
        spec.add_material(name="bin", rgba=[0.3, 0.32, 0.36, 1])
        spec.add_material(name="bead", rgba=[0.95, 0.75, 0.2, 1])
        wb = spec.worldbody
        k = 0
        for i in range(N_SLOTS):
            body = wb.add_body(name=f"obj{i}", pos=park_position(k))
            body.add_freejoint(name=f"obj{i}_free")
            for g in range(SLOT_GEOMS):
                # Placeholder primitives (reset replaces them); every geom collides by default, so
                # the body-level collision masks the compiler derives from them stay permissive.
                body.add_geom(name=f"obj{i}_g{g}", type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.01, 0.01, 0.01],
                              pos=[0, 0, 0.01], mass=0.01, rgba=[0.5, 0.5, 0.5, 1])
            k += 1
        self._prop_geoms: dict[str, list[str]] = {}
        for name, (hx, hy), wall_h, mass in (("tray", TRAY_HALF, TRAY_RIM, 0.3), ("bin", BIN_HALF, BIN_WALL_H, 0.6)):
            body = wb.add_body(name=name, pos=park_position(k))
            body.add_freejoint(name=f"{name}_free")
            t = PROP_WALL
            parts = [("base", [hx + t, hy + t, t / 2], [0, 0, t / 2])]
            parts += [(f"wall_x{s}", [t / 2, hy + t, wall_h / 2], [s * (hx + t / 2), 0, wall_h / 2]) for s in (1, -1)]
            parts += [(f"wall_y{s}", [hx, t / 2, wall_h / 2], [0, s * (hy + t / 2), wall_h / 2]) for s in (1, -1)]
            for part, size, pos in parts:
                body.add_geom(name=f"{name}_{part.replace('-', 'm')}", type=mujoco.mjtGeom.mjGEOM_BOX, size=size,
                              pos=pos, material=name, mass=mass / len(parts), friction=[0.9, 0.005, 0.0001])
            k += 1
        for j in range(N_BEADS):
            body = wb.add_body(name=f"bead{j}", pos=park_position(k))
            body.add_freejoint(name=f"bead{j}_free")
            body.add_geom(name=f"bead{j}", type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[BEAD_R, 0, 0], mass=BEAD_MASS,
                          material="bead", friction=[0.6, 0.005, ROLLING], condim=6)
            k += 1

    def bind(self, model: mujoco.MjModel, rig: RigHandles, embodiment: Embodiment) -> None:
        def free(name: str) -> tuple[int, int]:
            j = model.joint(name).id
            return int(model.jnt_qposadr[j]), int(model.jnt_dofadr[j])

        self._slot_body = [model.body(f"obj{i}").id for i in range(N_SLOTS)]
        self._slot_free = [free(f"obj{i}_free") for i in range(N_SLOTS)]
        self._slot_geoms = [[model.geom(f"obj{i}_g{g}").id for g in range(SLOT_GEOMS)] for i in range(N_SLOTS)]
        self._prop_body = {p: model.body(p).id for p in ("tray", "bin")}
        self._prop_free = {p: free(f"{p}_free") for p in ("tray", "bin")}
        self._prop_geom_ids = {p: [g for g in range(model.ngeom) if model.geom_bodyid[g] == self._prop_body[p]]
                               for p in ("tray", "bin")}
        self._bead_body = [model.body(f"bead{j}").id for j in range(N_BEADS)]
        self._bead_free = [free(f"bead{j}_free") for j in range(N_BEADS)]
        self._prop_geom_base = {g: (int(model.geom_contype[g]), int(model.geom_conaffinity[g]))
                                for p in ("tray", "bin") for g in self._prop_geom_ids[p]}
        self._prop_geom_base.update({model.geom(f"bead{j}").id: (1, 1) for j in range(N_BEADS)})
        self._side_contacts = {s: ContactQuery(model, h.bodies) for s, h in rig.hands.items()}
        self._wrist_sites = [h.wrist_site for h in rig.hands.values()]
        self._scratch = mujoco.MjData(model)
        self.embodiment = embodiment
        self.program: list[dict[str, Any]] = []
        self.scene: dict[str, Any] = {}

    # ------------------------------------------------------------------ initial states
    def sample_initial_state(self, rng: np.random.Generator) -> InitialState:
        """A scene and an activity program for it (`play_grammar.sample_episode`)."""
        return play_grammar.sample_episode(rng, N_SLOTS)

    def apply_initial_state(self, model: mujoco.MjModel, data: mujoco.MjData, state: InitialState) -> None:
        objects = {int(o["slot"]): o for o in state["objects"]}
        for i in range(N_SLOTS):
            if i in objects:
                self._fill_slot(model, data, i, objects[i])
            else:
                self._park_slot(model, data, i)
        k = N_SLOTS
        for p in ("tray", "bin"):
            rec = state["props"].get(p)
            q, _ = self._prop_free[p]
            if rec is None:
                self._park(model, data, self._prop_body[p], q, park_position(k), self._prop_geom_ids[p])
            else:
                self._unpark(model, self._prop_body[p], self._prop_geom_ids[p])
                data.qpos[q : q + 7] = [*rec["xy"], TABLE_HEIGHT, *_yaw_quat(rec["yaw"])]
            k += 1
        source = state.get("beads_in")
        for j in range(N_BEADS):
            q, _ = self._bead_free[j]
            gid = model.body_geomadr[self._bead_body[j]]
            if source is None:
                self._park(model, data, self._bead_body[j], q, park_position(k + j), [gid])
            else:
                self._unpark(model, self._bead_body[j], [gid])
                data.qpos[q : q + 7] = [*self._bead_start(objects[int(source)], j), 1, 0, 0, 0]
        # Masses and inertias changed: refresh the constants that depend on them (on a scratch copy
        # of the state, so the caller's data keeps its hand configuration).
        mujoco.mj_setConst(model, self._scratch)
        self.scene = {"objects": objects, "props": state["props"], "beads_in": source}
        self.program = list(state["program"])
        self.instruction = state["instruction"]
        self.rubric = Rubric(mode="additive", milestones=tuple(
            Milestone(f"step{k + 1}", 1.0 / len(self.program), play_grammar.step_text(s))
            for k, s in enumerate(self.program)))
        self.horizon_s = float(state["horizon_s"])
        # Where each object starts (from the record: data.xpos is not computed yet). Steps are judged
        # in order: step k's reference is its object's pose when step k-1 was achieved.
        self._start = {i: (np.array([*o["xy"], TABLE_HEIGHT]), float(o["yaw"])) for i, o in objects.items()}
        self._active = 0
        self._ref: tuple[NDArray[np.float64], float] | None = None
        self._lifted = False
        self._touched: set[str] = set()
        self._touched_now: set[int] = set()

    def _bead_start(self, vessel: Mapping[str, Any], j: int) -> list[float]:
        """Bead j's place in the vessel: a ring on its base (and a second layer for the last ones)."""
        d = vessel["dims"]
        inner = d["r"] - d["wall"]
        ring = max(0.0, min(0.6 * inner, inner - BEAD_R - 0.002))
        ang = 2 * math.pi * j / 4 + vessel["yaw"]
        x, y = vessel["xy"]
        layer = j // 4
        rr = ring if layer == 0 else 0.0
        return [x + rr * math.cos(ang), y + rr * math.sin(ang), TABLE_HEIGHT + 0.008 + BEAD_R + layer * 2.1 * BEAD_R]

    def _fill_slot(self, model: mujoco.MjModel, data: mujoco.MjData, i: int, obj: Mapping[str, Any]) -> None:
        geoms = shape_geoms(obj["kind"], obj["dims"])
        ref = _compile_shape(geoms, float(obj["mass"]))
        rgba = [*COLOURS[obj["colour"]], 1.0]
        b = self._slot_body[i]
        for k, gid in enumerate(self._slot_geoms[i]):
            if k < len(geoms):
                model.geom_type[gid] = _GEOM_TYPES[geoms[k].type]
                for f in ("geom_size", "geom_pos", "geom_quat", "geom_rbound", "geom_aabb", "geom_sameframe"):
                    getattr(model, f)[gid] = getattr(ref, f)[k]
                model.geom_rgba[gid] = rgba
                model.geom_friction[gid] = [float(obj["friction"]), TORSIONAL, ROLLING]
                # Torsional friction (condim 4) everywhere: without it a two-finger pinch is a hinge
                # and a bar held off its centre swings down in it. Round shapes also get rolling
                # friction (condim 6), so a ball or a stick let go comes to rest.
                model.geom_condim[gid] = 6 if geoms[k].type in ("sphere", "capsule", "cylinder") else 4
                model.geom_contype[gid] = model.geom_conaffinity[gid] = 1
            else:
                _hide_geom(model, gid)
        for f in ("body_mass", "body_inertia", "body_ipos", "body_iquat", "body_sameframe", "body_simple"):
            getattr(model, f)[b] = getattr(ref, f)[1]
        # The body's bounding-volume tree (inertial frame): every node gets the shape's overall box,
        # which holds all its colliding geoms (exact at the root, conservative below it).
        adr, num = int(model.body_bvhadr[b]), int(model.body_bvhnum[b])
        model.bvh_aabb[adr : adr + num] = ref.bvh_aabb[int(ref.body_bvhadr[1])]
        model.body_gravcomp[b] = 0.0
        q, _ = self._slot_free[i]
        data.qpos[q : q + 7] = [*obj["xy"], TABLE_HEIGHT, *_yaw_quat(obj["yaw"])]

    def _park_slot(self, model: mujoco.MjModel, data: mujoco.MjData, i: int) -> None:
        b = self._slot_body[i]
        for gid in self._slot_geoms[i]:
            _hide_geom(model, gid)
        model.body_mass[b] = 0.01
        model.body_inertia[b] = 1e-6
        q, _ = self._slot_free[i]
        self._park(model, data, b, q, park_position(i), [])

    def _park(self, model: mujoco.MjModel, data: mujoco.MjData, body: int, qadr: int, pos: list[float],
              geoms: list[int]) -> None:
        for g in geoms:
            model.geom_contype[g] = model.geom_conaffinity[g] = 0
            model.geom_rgba[g][3] = 0.0
        model.body_gravcomp[body] = 1.0
        data.qpos[qadr : qadr + 7] = [*pos, 1, 0, 0, 0]

    def _unpark(self, model: mujoco.MjModel, body: int, geoms: list[int]) -> None:
        for g in geoms:
            model.geom_contype[g], model.geom_conaffinity[g] = self._prop_geom_base[g]
            model.geom_rgba[g][3] = 1.0
        model.body_gravcomp[body] = 0.0

    # ------------------------------------------------------------------ state queries
    def _slot_pose(self, data: mujoco.MjData, i: int) -> tuple[NDArray[np.float64], float]:
        b = self._slot_body[i]
        r = data.xmat[b].reshape(3, 3)
        return data.xpos[b].copy(), math.atan2(r[1, 0], r[0, 0])

    def object_pose(self, data: mujoco.MjData, slot: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(footprint-centre position, rotation matrix) of the object in `slot`."""
        b = self._slot_body[slot]
        return data.xpos[b].copy(), data.xmat[b].reshape(3, 3).copy()

    def prop_pose(self, data: mujoco.MjData, prop: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(base-centre position, rotation matrix) of the tray or the bin."""
        b = self._prop_body[prop]
        return data.xpos[b].copy(), data.xmat[b].reshape(3, 3).copy()

    def bead_positions(self, data: mujoco.MjData) -> NDArray[np.float64]:
        return np.array([data.xpos[b] for b in self._bead_body])

    def _speed(self, data: mujoco.MjData, dof: int) -> float:
        return math.sqrt(sum(v * v for v in data.qvel[dof : dof + 3].tolist()))

    def _released_at_rest(self, data: mujoco.MjData, i: int, touched: set[int]) -> bool:
        return self._slot_body[i] not in touched and self._speed(data, self._slot_free[i][1]) < REST_SPEED

    def _inside(self, data: mujoco.MjData, point: NDArray[np.float64], dest: Mapping[str, Any]) -> bool:
        """Whether a point (an object's footprint centre, or a bead) lies in a destination."""
        kind = dest["kind"]
        if kind == "table":
            return math.hypot(point[0] - dest["xy"][0], point[1] - dest["xy"][1]) < 0.05 and (
                point[2] < TABLE_HEIGHT + 0.01)
        if kind in ("tray", "bin"):
            c, r = self.prop_pose(data, kind)
            rel = r.T @ (point - c)
            hx, hy = TRAY_HALF if kind == "tray" else BIN_HALF
            top = TRAY_RIM if kind == "tray" else BIN_WALL_H
            return abs(rel[0]) < hx and abs(rel[1]) < hy and -0.005 < rel[2] < top
        if kind in ("on", "in"):  # on a tile or plate, in a bowl (or mug)
            slot = int(dest["slot"])
            obj = self.scene["objects"][slot]
            c, r = self.object_pose(data, slot)
            rel = r.T @ (point - c)
            hx, hy, h = play_grammar.top_area(obj)
            return abs(rel[0]) < hx and abs(rel[1]) < hy and -0.005 < rel[2] < h + 0.03
        raise KeyError(kind)

    def milestones(self, model: mujoco.MjModel, data: mujoco.MjData) -> dict[str, bool]:
        """Step k is judged once steps 1..k-1 are achieved, from where its object was then; what the
        step needs to have happened on the way (a lift in a hand, touches by both hands) is
        remembered from that moment on."""
        by_side = {s: q.touched_by_hand(data) for s, q in self._side_contacts.items()}
        touched = set().union(*by_side.values())
        self._touched_now = touched
        while self._active < len(self.program):
            step = self.program[self._active]
            i = int(step["obj"])
            if self._ref is None:
                self._ref = self._slot_pose(data, i)
            b = self._slot_body[i]
            self._touched |= {s for s, bodies in by_side.items() if b in bodies}
            if b in touched and data.xpos[b][2] > self._ref[0][2] + LIFT:
                self._lifted = True
            if not self._step_done(data, step, touched):
                break
            self._active += 1
            self._ref, self._lifted, self._touched = None, False, set()
        return {f"step{k + 1}": k < self._active for k in range(len(self.program))}

    def _step_done(self, data: mujoco.MjData, step: Mapping[str, Any], touched: set[int]) -> bool:
        verb, i = step["verb"], int(step["obj"])
        assert self._ref is not None
        pos, yaw = self._slot_pose(data, i)
        ref_pos, ref_yaw = self._ref
        if verb == "pour":
            beads = [p for p in self.bead_positions(data) if self._inside(data, p, step["dest"])]
            return len(beads) * 2 >= N_BEADS
        if not self._released_at_rest(data, i, touched):
            return False
        if verb == "push":
            d = np.asarray(step["dir"], dtype=np.float64)
            moved = float((pos[:2] - ref_pos[:2]) @ d)
            return bool(self._touched) and moved >= 0.5 * float(step["dist"])
        if not self._lifted:
            return False
        if verb == "rotate":
            turn = abs(_wrap(yaw - ref_yaw))
            want = abs(float(step["angle"]))
            return turn >= 0.5 * min(want, math.pi / 2) and math.hypot(*(pos[:2] - ref_pos[:2])) < 0.08
        if verb == "hand_over" and len(self._touched) < 2:
            return False
        return self._inside(data, pos, step["dest"])

    def is_success(self, model: mujoco.MjModel, data: mujoco.MjData, reached: Mapping[str, bool]) -> bool:
        if not all(reached.values()) or self._touched_now:
            return False
        if any(data.site_xpos[w][2] < TABLE_HEIGHT + CLEAR_Z for w in self._wrist_sites):
            return False  # a hand still down among the objects: the activity is not over
        slots = [self._slot_free[i][1] for i in self.scene["objects"]]
        beads = [f[1] for f in self._bead_free] if self.scene.get("beads_in") is not None else []
        return all(self._speed(data, v) < REST_SPEED for v in slots + beads)

    def privileged(self, model: mujoco.MjModel, data: mujoco.MjData) -> NDArray[np.float64]:
        parts = [data.qpos[q : q + 7] for q, _ in self._slot_free]
        parts.append(np.array([float(i in self.scene.get("objects", {})) for i in range(N_SLOTS)]))
        parts += [data.qpos[self._prop_free[p][0] : self._prop_free[p][0] + 7] for p in ("tray", "bin")]
        parts.append(self.bead_positions(data).ravel())
        return np.concatenate(parts)

    def make_expert(self, env: EgosimEnv) -> Policy:
        from egosim.tasks.tabletop_play_expert import TabletopPlayExpert

        return TabletopPlayExpert(env)


def _hide_geom(model: mujoco.MjModel, gid: int) -> None:
    model.geom_contype[gid] = model.geom_conaffinity[gid] = 0
    model.geom_size[gid] = [1e-4, 1e-4, 1e-4]
    model.geom_pos[gid] = 0.0
    model.geom_quat[gid] = [1, 0, 0, 0]
    model.geom_rbound[gid] = 1e-4
    model.geom_aabb[gid] = [0, 0, 0, 1e-4, 1e-4, 1e-4]
    model.geom_rgba[gid][3] = 0.0


def _yaw_quat(yaw: float) -> list[float]:
    return [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]


def _wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


def _compile_shape(geoms: list[GeomSpec], mass: float) -> mujoco.MjModel:
    """A model of one free body made of `geoms` (masses split by share), compiled by MuJoCo: the
    source of the inertia and collision bounds a slot copies."""
    spec = mujoco.MjSpec()
    body = spec.worldbody.add_body(name="shape")
    body.add_freejoint()
    for g in geoms:
        body.add_geom(type=_GEOM_TYPES[g.type], size=list(g.size), pos=list(g.pos), quat=list(g.quat),
                      mass=mass * g.mass_share)
    return spec.compile()
