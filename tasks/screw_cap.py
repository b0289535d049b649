"""A screw cap on a bottle: the mechanism shared by bottle_uncap and water_bottle_uncap.

Physical model. The bottle is a free body (body cylinder, shoulder, neck). The cap is a second free
body that sits over the neck, so once it is off the thread a hand can carry it anywhere and put it
on the table through physics. The thread lives in a light, collision-free *thread carrier* body, a
child of the bottle at the top of the neck, with two joints along the bottle axis:

- `cap_thread_turn` (hinge): how far the cap has been unscrewed, radians. Range [0, 3.25 turns]: the
  lower limit is the seated cap (it cannot be screwed tighter), positive is counter-clockwise seen
  from above (unscrewing). Frictionloss 0.01 N m and damping 0.002 N m s/rad, so the cap does not
  spin freely and stops when the fingers let go (a 0.009 N m torque does not move it, 0.02 N m
  turns it at about 0.8 turns/s). Armature 1e-5 kg m^2, ten times a soda cap's own inertia (1e-3
  made the cap a flywheel: fingers letting go flicked it back by a tenth of a turn).
- `cap_thread_rise` (slide): the cap's height above its seat, armature 1 kg. A fixed tendon
  rise - PITCH / (2 pi) x turn, held at zero length by a tendon equality, couples it to the hinge
  like a thread (PITCH = 3.5 mm per turn, a PCO 1881 soda thread is about 3.2 mm). A 10 N pull
  stretches it by 0.01 mm. (A joint equality between the two joints, used before, is regularised
  by the sum of the joints' inverse inertias, not weighted by the 0.56 mm/rad coupling: it only
  held with a heavy hinge, and even then a 5 N pull stretched it by 1 mm.) The thread is not
  self-locking: pushing the cap down with more than about 18 N turns it back.

While the thread is engaged, a `weld` equality (`cap_thread_engaged`) holds the cap body to the
carrier, so every twist or push of the fingers on the cap goes through the thread joints. When the
carrier's hinge reaches 3 full turns (`TURNS_TO_RELEASE`) the thread runs out: `ScrewCap.update`
switches the weld off (`data.eq_active`) and the cap is a free body resting on the neck. The neck
keeps it there physically: ribs inside the skirt collide with the neck's side (1.5 mm clearance)
and a liner under the roof rests on the neck's top, so the cap comes free only when a hand lifts it
off. (A seated cap's liner sits 4 mm above the neck's top and its skirt 4 mm above the shoulder, so
fingers pressing on it do not push it onto the bottle, whose friction would then hold the thread;
a released cap drops by that gap plus the thread's rise onto the neck's top.) The weld gives way by
0.3-0.5 mm to a 2-10 N pull. Below 3 turns nothing can pull the cap off (the weld holds it however
hard the hand pulls).

The cap's outside collides as a knurled cap: 16 flat facets (boxes) around the skirt and a roof of
four squares (the cylinder `cap_shell` is its look and its mass). Against a cylinder, capsule
fingertips got one convex-solver contact whose normal, once a pad came in over the top edge, pointed
up out of the roof, and the pads slid through the skirt onto the neck; capsule-box contacts are
analytic. The facets are 8 mm thick, reaching inside the neck (which they do not collide with), so
a pad pressed into one cannot come out on its inner side. The facets and roof are hard (solimp
0.99-0.9999 with priority over the fingers' soft pads): with the pads' softness, fingers squeezing
with 3 N sank 3 mm into the skirt and onto the neck inside it; now under a millimetre. They have
rolling friction, so a cap laid on its side does not roll away.

The switch is part of the mechanism, not the expert: the task calls `ScrewCap.update` from its
`before_step` hook, once per control step before physics, so a thread that reached 3 turns during
one control step lets go at the start of the next (within 50 ms); the rubric's `milestones()` only
reads state. It latches (a cap never re-engages) and depends on simulator state only, so episodes
stay deterministic.

Collision classes (contype / conaffinity): hands, table and the bottle body use 1/1. The cap's outer
facets and roof are 4/1 (touch hands, table and bottle body, but not the neck they enclose); the
visual shell 0/0; the neck is 2/3
(touches hands and the cap's inner ribs and liner); the ribs and liner are 8/2 (touch only the neck).

Shapes vary per initial state: `BottleShape` records are applied to the compiled model in
`ScrewCap.apply_shape` (geom sizes and positions, bounding volumes, the bottle's inertia and the
carrier's height), so one compiled model serves every bottle of a task.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import mujoco
import numpy as np
from numpy.typing import NDArray

from egosim.errors import InvalidChoiceError
from egosim.rig import TABLE_HEIGHT
from egosim.task import InitialState, Task
from egosim.tasks.contacts import ContactQuery

if TYPE_CHECKING:
    from egosim.embodiment import Embodiment
    from egosim.env import EgosimEnv
    from egosim.policy import Policy
    from egosim.rig import RigHandles

PITCH = 0.0035  # thread rise per turn (m)
TURNS_TO_RELEASE = 3.0  # full turns until the thread disengages
TURN_RANGE = 3.25  # hinge range (turns); the weld is off before the cap reaches it
CAP_MASS = 0.006  # kg, a polypropylene soda cap weighs 2-3 g; a little more for stable contacts
CAP_ROOF = 0.003  # roof thickness (m)
CAP_SEAT_GAP = 0.004  # gap between the seated cap's liner and the top of the neck (m): fingers pressing on the cap do not close it
RIB_CLEARANCE = 0.0015  # radial gap between the cap's inner ribs and the neck (m)
SHOULDER_H = 0.012  # height of the shoulder between the bottle body and the neck (m)
KNURLS = 16  # flat facets of the cap's collision skirt (see shape_geoms)
KNURL_T = 0.004  # radial half-thickness of a facet (m): thick, see shape_geoms
ROOF_SQUARES = 4  # squares turned by 90 / ROOF_SQUARES degrees make the roof
CAP_SOLREF = [0.005, 1.0]  # the cap's hard contacts (see the module docstring)
CAP_SOLIMP = [0.99, 0.9999, 0.001, 0.5, 2.0]
RIBS = 6
# The thread is stiff: a cap pulled with 2 N below 3 turns gives way by 0.3 mm (the default solref
# of 0.02 s let a 0.5 N pull lift it 5 mm, as light bodies make soft constraints). The weld and the
# coupling use the stiffest time constant the 2 ms step allows.
EQ_SOLREF = [0.004, 1.0]
# A heavy slide (armature, kg) stiffens the weld along the axis (MuJoCo scales a soft constraint's
# stiffness with the effective mass); turning costs nothing (the hinge sees armature x (pitch/2pi)^2).
SLIDE_ARMATURE = 1.0
HINGE_ARMATURE = 1e-5  # kg m^2, see the module docstring
EQ_SOLIMP = [0.95, 0.99, 0.001, 0.5, 2.0]


@dataclass(frozen=True)
class BottleShape:
    """One bottle model (metres, kilograms).

    Attributes:
        name: Short label (reports, initial states).
        radius: Bottle body radius.
        height: Body height (the shoulder and neck sit on top).
        neck_radius: Radius of the threaded neck.
        cap_radius: Outer radius of the cap.
        cap_height: Cap height (roof plus skirt).
        mass: Bottle mass, contents included.
    """

    name: str
    radius: float
    height: float
    neck_radius: float
    cap_radius: float
    cap_height: float
    mass: float

    @property
    def shoulder_radius(self) -> float:
        return max(self.neck_radius + 0.006, 0.6 * self.radius)

    @property
    def neck_length(self) -> float:
        """The skirt of a seated cap ends 4 mm above the shoulder. (A 4 mm longer neck, which keeps a
        released cap resting on the neck clear of the shoulder, made the Dex3 fingers slip more on
        the cap: their tips found no stop below it.)"""
        return self.cap_height - CAP_ROOF - CAP_SEAT_GAP + 0.004

    @property
    def neck_top(self) -> float:
        """Height of the neck's top face above the bottle's bottom face."""
        return self.height + SHOULDER_H + self.neck_length


def _cyl(r: float, half: float) -> list[float]:
    return [r, half, 0.0]


def shape_geoms(shape: BottleShape) -> dict[str, tuple[list[float], list[float], list[float]]]:
    """Geom name -> (size, pos, quat) for one shape; bottle geoms in the bottle frame (origin at the
    bottom centre), cap geoms in the cap frame (origin at the top of the neck when seated)."""
    s = shape
    out: dict[str, tuple[list[float], list[float], list[float]]] = {}
    ident = [1.0, 0.0, 0.0, 0.0]
    out["bottle_body"] = (_cyl(s.radius, s.height / 2), [0, 0, s.height / 2], ident)
    out["bottle_shoulder"] = (_cyl(s.shoulder_radius, SHOULDER_H / 2), [0, 0, s.height + SHOULDER_H / 2], ident)
    out["bottle_neck"] = (_cyl(s.neck_radius, s.neck_length / 2), [0, 0, s.height + SHOULDER_H + s.neck_length / 2], ident)
    top = CAP_SEAT_GAP + CAP_ROOF  # cap top above its origin
    out["cap_shell"] = (_cyl(s.cap_radius, s.cap_height / 2), [0, 0, top - s.cap_height / 2], ident)
    # The shell collides as a knurled prism of boxes (outer faces on the cap's radius) and a roof of
    # squares; see the module docstring for why not the cylinder.
    half_w = s.cap_radius * math.tan(math.pi / KNURLS)
    for k in range(KNURLS):
        ang = 2 * math.pi * k / KNURLS
        rk = s.cap_radius - KNURL_T
        out[f"cap_knurl{k}"] = (
            [KNURL_T, half_w, s.cap_height / 2],
            [rk * math.cos(ang), rk * math.sin(ang), top - s.cap_height / 2],
            [math.cos(ang / 2), 0.0, 0.0, math.sin(ang / 2)],
        )
    # Squares turned by 22.5 degrees: their corners stay inside the skirt's outer faces and together
    # they cover the top out to 0.83 x the radius, inside the facets' inner faces.
    roof = 0.98 * s.cap_radius / math.sqrt(2)
    for k in range(ROOF_SQUARES):
        ang = k * math.pi / (2 * ROOF_SQUARES)
        out[f"cap_roof{k}"] = ([roof, roof, CAP_ROOF / 2], [0, 0, top - CAP_ROOF / 2],
                               [math.cos(ang / 2), 0.0, 0.0, math.sin(ang / 2)])
    out["cap_liner"] = (_cyl(s.neck_radius + 0.002, 0.001), [0, 0, CAP_SEAT_GAP + 0.001], ident)
    rib_w = 0.0015
    rib_r = s.neck_radius + RIB_CLEARANCE + rib_w / 2
    skirt_half = (s.cap_height - CAP_ROOF) / 2
    for k in range(RIBS):
        ang = 2 * math.pi * k / RIBS
        out[f"cap_rib{k}"] = (
            [rib_w / 2, 0.002, skirt_half],
            [rib_r * math.cos(ang), rib_r * math.sin(ang), CAP_SEAT_GAP - skirt_half],
            [math.cos(ang / 2), 0.0, 0.0, math.sin(ang / 2)],
        )
    # Knurl marks on the shell (visual only): show the cap turning.
    for k in range(4):
        ang = 2 * math.pi * k / 4
        out[f"cap_mark{k}"] = (
            [0.0008, 0.0012, s.cap_height / 2 * 0.8],
            [s.cap_radius * math.cos(ang), s.cap_radius * math.sin(ang), top - s.cap_height / 2],
            [math.cos(ang / 2), 0.0, 0.0, math.sin(ang / 2)],
        )
    return out


# (contype, conaffinity, visible) per geom group; see the module docstring.
_CLASSES = {
    "bottle_body": (1, 1), "bottle_shoulder": (1, 1), "bottle_neck": (2, 3), "cap_shell": (4, 1), "cap_liner": (8, 2),
}  # fmt: skip


def build_bottle(spec: mujoco.MjSpec, shape: BottleShape, bottle_rgba: list[float], cap_rgba: list[float]) -> None:
    """Adds the bottle, the thread carrier, the cap and both equalities to the spec, in `shape`'s
    sizes (other shapes are applied to the compiled model by `ScrewCap.apply_shape`)."""
    spec.add_material(name="bottle", rgba=bottle_rgba)
    spec.add_material(name="bottle_neck", rgba=[0.92, 0.92, 0.9, 1])
    spec.add_material(name="cap", rgba=cap_rgba)
    spec.add_material(name="cap_mark", rgba=[0.95, 0.95, 0.95, 1])
    geoms = shape_geoms(shape)
    friction = [1.0, 0.005, 0.0001]
    wb = spec.worldbody
    bottle = wb.add_body(name="bottle", pos=[0.5, 0.0, TABLE_HEIGHT])
    bottle.add_freejoint(name="bottle_free")
    bottle.explicitinertial = True  # a uniform cylinder of the body's size (set per shape in apply_shape)
    bottle.mass = shape.mass
    bottle.ipos = [0, 0, shape.height / 2]
    ixx = shape.mass * (3 * shape.radius**2 + shape.height**2) / 12
    bottle.inertia = [ixx, ixx, shape.mass * shape.radius**2 / 2]
    for name in ("bottle_body", "bottle_shoulder", "bottle_neck"):
        size, pos, quat = geoms[name]
        ct, ca = _CLASSES[name]
        bottle.add_geom(name=name, type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=size, pos=pos, quat=quat, mass=0,
                        contype=ct, conaffinity=ca, friction=friction,
                        material="bottle_neck" if name == "bottle_neck" else "bottle")
    carrier = bottle.add_body(name="cap_thread", pos=[0, 0, shape.neck_top])
    # Hinge ranges are in degrees (the rig spec compiles with the default compiler.degree).
    carrier.add_joint(name="cap_thread_turn", type=mujoco.mjtJoint.mjJNT_HINGE, axis=[0, 0, 1],
                      range=[0.0, 360.0 * TURN_RANGE], limited=mujoco.mjtLimited.mjLIMITED_TRUE,
                      frictionloss=0.01, damping=0.002, armature=HINGE_ARMATURE)
    carrier.add_joint(name="cap_thread_rise", type=mujoco.mjtJoint.mjJNT_SLIDE, axis=[0, 0, 1],
                      range=[0.0, PITCH * TURN_RANGE], limited=mujoco.mjtLimited.mjLIMITED_TRUE, armature=SLIDE_ARMATURE)
    carrier.add_geom(name="cap_thread_mass", type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[0.004, 0, 0], mass=0.005,
                     contype=0, conaffinity=0, rgba=[0, 0, 0, 0], group=5)

    cap = wb.add_body(name="cap", pos=[0.5, 0.0, TABLE_HEIGHT + shape.neck_top])
    cap.add_freejoint(name="cap_free")
    for name, (size, pos, quat) in geoms.items():
        if not name.startswith("cap_"):
            continue
        if name.startswith("cap_mark"):
            cap.add_geom(name=name, type=mujoco.mjtGeom.mjGEOM_BOX, size=size, pos=pos, quat=quat, mass=0,
                         contype=0, conaffinity=0, material="cap_mark")
            continue
        rib = name.startswith("cap_rib")
        outer = name.startswith(("cap_knurl", "cap_roof"))  # the shell's collision geoms
        shell = name == "cap_shell"  # visual, and the cap's mass
        ct, ca = (8, 2) if rib else (0, 0) if shell else _CLASSES["cap_shell"] if outer else _CLASSES[name]
        box = rib or outer
        # The outer geoms: rolling friction (a cap dropped on its side must not roll off the table;
        # condim 6 makes MuJoCo apply it), and hard contacts with priority over the fingers' pads.
        extra = dict(friction=[1.0, 0.005, 0.003], condim=6, priority=1, solref=CAP_SOLREF, solimp=CAP_SOLIMP)
        cap.add_geom(name=name, type=mujoco.mjtGeom.mjGEOM_BOX if box else mujoco.mjtGeom.mjGEOM_CYLINDER,
                     size=size, pos=pos, quat=quat, contype=ct, conaffinity=ca,
                     mass=CAP_MASS if shell else 0.0, material="cap", group=1 if shell else 3,
                     **(extra if outer else dict(friction=friction, condim=3)))
    # The thread: a fixed tendon rise - PITCH / (2 pi) x turn, held at zero length (see the module
    # docstring: a tendon's regularisation uses its own inverse inertia, a joint equality's does not).
    thread = spec.add_tendon(name="cap_thread")
    thread.wrap_joint("cap_thread_rise", 1.0)
    thread.wrap_joint("cap_thread_turn", -PITCH / (2 * math.pi))
    spec.add_equality(name="cap_thread_coupling", type=mujoco.mjtEq.mjEQ_TENDON, name1="cap_thread",
                      solref=EQ_SOLREF, solimp=EQ_SOLIMP)
    spec.add_equality(name="cap_thread_engaged", type=mujoco.mjtEq.mjEQ_WELD, objtype=mujoco.mjtObj.mjOBJ_BODY,
                      name1="cap_thread", name2="cap", data=[0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0],
                      solref=EQ_SOLREF, solimp=EQ_SOLIMP)


class ScrewCap:
    """Ids of the bottle-and-cap mechanism in a compiled model, and its run-time logic."""

    def __init__(self, model: mujoco.MjModel) -> None:
        def jnt(name: str) -> tuple[int, int]:
            j = model.joint(name).id
            return int(model.jnt_qposadr[j]), int(model.jnt_dofadr[j])

        self.bottle_q, self.bottle_v = jnt("bottle_free")
        self.cap_q, self.cap_v = jnt("cap_free")
        self.turn_q, self.turn_v = jnt("cap_thread_turn")
        self.rise_q, self.rise_v = jnt("cap_thread_rise")
        self.bottle_body = model.body("bottle").id
        self.cap_body = model.body("cap").id
        self.carrier_body = model.body("cap_thread").id
        self.weld = model.equality("cap_thread_engaged").id
        self.coupling = model.equality("cap_thread_coupling").id
        self.geoms = {name: model.geom(name).id for name in _geom_names(model)}
        self.cap_geoms = frozenset(g for g in range(model.ngeom) if int(model.geom_bodyid[g]) == self.cap_body)
        self.bottle_geoms = frozenset(g for g in range(model.ngeom) if int(model.geom_bodyid[g]) == self.bottle_body)
        self.shape: BottleShape | None = None

    def apply_shape(self, model: mujoco.MjModel, shape: BottleShape) -> None:
        """Resizes the bottle and cap of the compiled model to `shape`."""
        for name, (size, pos, quat) in shape_geoms(shape).items():
            g = self.geoms[name]
            model.geom_size[g] = size
            model.geom_pos[g] = pos
            model.geom_quat[g] = quat
            if int(model.geom_type[g]) == mujoco.mjtGeom.mjGEOM_CYLINDER:
                half = np.array([size[0], size[0], size[1]])
            else:
                half = np.array(size)
            model.geom_aabb[g] = [0, 0, 0, *half]
            model.geom_rbound[g] = float(np.linalg.norm(half if int(model.geom_type[g]) == mujoco.mjtGeom.mjGEOM_BOX
                                                        else [size[0], size[1]]))
        b = self.bottle_body
        model.body_mass[b] = shape.mass
        model.body_ipos[b] = [0, 0, shape.height / 2]
        ixx = shape.mass * (3 * shape.radius**2 + shape.height**2) / 12
        model.body_inertia[b] = [ixx, ixx, shape.mass * shape.radius**2 / 2]
        c = self.cap_body
        model.body_ipos[c] = [0, 0, CAP_SEAT_GAP + CAP_ROOF - shape.cap_height / 2]
        icap = CAP_MASS * shape.cap_radius**2
        model.body_inertia[c] = [icap * 0.6, icap * 0.6, icap]
        model.body_pos[self.carrier_body] = [0, 0, shape.neck_top]
        self.shape = shape

    def seat(self, data: mujoco.MjData, xy: tuple[float, float], yaw: float) -> None:
        """Stands the bottle at `xy` (rotated by `yaw`) with the cap screwed fully on, thread engaged."""
        assert self.shape is not None
        q = [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]
        data.qpos[self.bottle_q : self.bottle_q + 7] = [xy[0], xy[1], TABLE_HEIGHT, *q]
        data.qpos[self.cap_q : self.cap_q + 7] = [xy[0], xy[1], TABLE_HEIGHT + self.shape.neck_top, *q]
        data.qpos[self.turn_q] = 0.0
        data.qpos[self.rise_q] = 0.0
        data.eq_active[self.weld] = 1
        data.eq_active[self.coupling] = 1

    def set_turns(self, data: mujoco.MjData, turns: float) -> None:
        """Tests only: puts the thread (and a welded cap) at `turns` unscrewed, bottle where it is."""
        assert self.shape is not None
        ang = 2 * math.pi * turns
        data.qpos[self.turn_q] = ang
        data.qpos[self.rise_q] = PITCH * turns
        bq = data.qpos[self.bottle_q + 3 : self.bottle_q + 7].copy()
        rot = np.zeros(9)
        mujoco.mju_quat2Mat(rot, bq)
        local = np.array([0.0, 0.0, self.shape.neck_top + PITCH * turns])
        pos = data.qpos[self.bottle_q : self.bottle_q + 3] + rot.reshape(3, 3) @ local
        qturn = np.array([math.cos(ang / 2), 0.0, 0.0, math.sin(ang / 2)])
        qcap = np.zeros(4)
        mujoco.mju_mulQuat(qcap, bq, qturn)
        data.qpos[self.cap_q : self.cap_q + 7] = [*pos, *qcap]

    def turns(self, data: mujoco.MjData) -> float:
        """Full turns the cap has been unscrewed (counter-clockwise seen from above)."""
        return float(data.qpos[self.turn_q]) / (2 * math.pi)

    def engaged(self, data: mujoco.MjData) -> bool:
        return bool(data.eq_active[self.weld])

    def update(self, data: mujoco.MjData) -> None:
        """The thread runs out at `TURNS_TO_RELEASE` turns: the cap is let go (latched)."""
        if data.eq_active[self.weld] and float(data.qpos[self.turn_q]) >= 2 * math.pi * TURNS_TO_RELEASE:
            data.eq_active[self.weld] = 0

    def cap_in_bottle_frame(self, data: mujoco.MjData) -> NDArray[np.float64]:
        """The cap's origin relative to the top of the neck, in the bottle's frame."""
        assert self.shape is not None
        rot = data.xmat[self.bottle_body].reshape(3, 3)
        rel = rot.T @ (data.xpos[self.cap_body] - data.xpos[self.bottle_body])
        rel[2] -= self.shape.neck_top
        return rel

    def cap_off_neck(self, data: mujoco.MjData) -> bool:
        """The cap's skirt has cleared the neck (above its top or beside it)."""
        assert self.shape is not None
        s = self.shape
        x, y, z = self.cap_in_bottle_frame(data).tolist()
        return z > s.cap_height - CAP_ROOF + 0.002 or math.hypot(x, y) > s.cap_radius + s.neck_radius


def _geom_names(model: mujoco.MjModel) -> list[str]:
    names = []
    for g in range(model.ngeom):
        n = model.geom(g).name
        if n.startswith(("bottle_", "cap_")) and n != "cap_thread_mass":
            names.append(n)
    return names


class ScrewCapTask(Task):
    """Common scene, predicates and expert hook of the cap-unscrewing tasks.

    Subclasses set the bottle shapes, colours, rubric and instruction; the milestone values come
    from `cap_state` (names: `bottle_grasped`, `rotated_once`, `rotated_three_times`, `cap_removed`,
    `cap_on_table`; a rubric uses the ones it lists).
    """

    shapes: ClassVar[tuple[BottleShape, ...]]
    bottle_rgba: ClassVar[list[float]] = [0.3, 0.65, 0.4, 0.55]
    cap_rgba: ClassVar[list[float]] = [0.85, 0.15, 0.12, 1.0]
    horizon_s: ClassVar[float] = 60.0
    privileged_dim: ClassVar[int] = 20
    eval_seed: ClassVar[int]
    # Bottle placement (rig frame): in front of the robot, between the hands.
    xy_low: ClassVar[tuple[float, float]] = (0.46, -0.04)
    xy_high: ClassVar[tuple[float, float]] = (0.54, 0.04)

    # ------------------------------------------------------------------ scene
    def build(self, spec: mujoco.MjSpec, embodiment: Embodiment) -> None:
        build_bottle(spec, self.shapes[0], self.bottle_rgba, self.cap_rgba)

    def bind(self, model: mujoco.MjModel, rig: RigHandles, embodiment: Embodiment) -> None:
        self.cap = ScrewCap(model)
        self._table_geom = rig.table_geom
        hand_bodies = set().union(*(h.bodies for h in rig.hands.values()))
        self.contacts = ContactQuery(model, hand_bodies)
        self._geom_body = model.geom_bodyid.copy()
        self.last: dict[str, bool] = {}

    # ------------------------------------------------------------------ initial states
    def sample_initial_state(self, rng: np.random.Generator) -> InitialState:
        """A bottle shape, the bottle's position and yaw (the yaw turns the cap's marks)."""
        return {
            "shape": int(rng.integers(len(self.shapes))),
            "bottle_xy": [round(float(rng.uniform(self.xy_low[0], self.xy_high[0])), 4),
                          round(float(rng.uniform(self.xy_low[1], self.xy_high[1])), 4)],
            "bottle_yaw": round(float(rng.uniform(-np.pi, np.pi)), 4),
        }

    def apply_initial_state(self, model: mujoco.MjModel, data: mujoco.MjData, state: InitialState) -> None:
        k = int(state["shape"])
        if not 0 <= k < len(self.shapes):
            raise InvalidChoiceError("bottle shape", k, range(len(self.shapes)))
        self.cap.apply_shape(model, self.shapes[k])
        self.cap.seat(data, tuple(state["bottle_xy"]), float(state["bottle_yaw"]))
        self.last = {}

    # ------------------------------------------------------------------ predicates
    def cap_state(self, model: mujoco.MjModel, data: mujoco.MjData) -> dict[str, bool]:
        """Every predicate of the family (see the task docstrings for their exact meaning)."""
        cap = self.cap
        touched = self.contacts.touched_by_hand(data)
        turns = cap.turns(data)
        engaged = cap.engaged(data)
        removed = (not engaged) and cap.cap_off_neck(data)
        on_table = False
        if removed and cap.cap_body not in touched:
            speed = math.sqrt(sum(v * v for v in data.qvel[cap.cap_v : cap.cap_v + 3].tolist()))
            if speed < 0.05:
                on_table, on_bottle = self._cap_support(data)
                on_table = on_table and not on_bottle
        return {
            "bottle_grasped": cap.bottle_body in touched,
            "rotated_once": turns >= 1.0,
            "rotated_three_times": turns >= TURNS_TO_RELEASE,
            "cap_removed": removed,
            "cap_on_table": on_table,
        }

    def _cap_support(self, data: mujoco.MjData) -> tuple[bool, bool]:
        """(cap touches the table, cap touches the bottle)."""
        n = data.ncon
        if n == 0:
            return False, False
        cap_geoms, bottle_geoms, table = self.cap.cap_geoms, self.cap.bottle_geoms, self._table_geom
        table_hit = bottle_hit = False
        for a, b in data.contact.geom[:n].tolist():
            if a in cap_geoms or b in cap_geoms:
                other = b if a in cap_geoms else a
                table_hit = table_hit or other == table
                bottle_hit = bottle_hit or other in bottle_geoms
        return table_hit, bottle_hit

    def before_step(self, model: mujoco.MjModel, data: mujoco.MjData) -> None:
        """The thread mechanism, once per control step: the cap is let go at 3 full turns."""
        self.cap.update(data)

    def milestones(self, model: mujoco.MjModel, data: mujoco.MjData) -> dict[str, bool]:
        state = self.cap_state(model, data)
        self.last = {name: state[name] for name in self.rubric.names}
        return self.last

    def is_success(self, model: mujoco.MjModel, data: mujoco.MjData, reached: Mapping[str, bool]) -> bool:
        return all(reached.values()) and self.last.get("cap_on_table", False)

    def privileged(self, model: mujoco.MjModel, data: mujoco.MjData) -> NDArray[np.float64]:
        cap, s = self.cap, self.cap.shape
        assert s is not None
        return np.concatenate([
            data.qpos[cap.bottle_q : cap.bottle_q + 7], data.qpos[cap.cap_q : cap.cap_q + 7],
            [cap.turns(data), float(cap.engaged(data)), s.radius, s.neck_top, s.cap_radius, s.cap_height],
        ])

    def make_expert(self, env: EgosimEnv) -> Policy:
        from egosim.tasks.bottle_uncap_expert import BottleUncapExpert

        return BottleUncapExpert(env)
