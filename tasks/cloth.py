"""The T-shirt shared by the cloth tasks: a flex cloth, the pinch model, and cloth-state queries.

Shirt: a T-shirt-shaped triangle mesh made in code on a square grid of `SPACING` (body 0.54 x 0.63 m,
two 0.18 x 0.18 m sleeves, a neck cut; 232 vertices), loaded as a MuJoCo flex (dim 2, edge
equality, no bending: MuJoCo 4.0 refuses flex bending under the implicit integrators, and edge
equality alone gives a limp cloth that folds and drapes, see ../shared/reference/cloth.md). Mass
0.15 kg (a child's cotton T-shirt), collision radius 5 mm, friction 1, self-collision on (a folded
layer must rest on the one below). The rig's table-top box stops colliding in cloth scenes and a
plane at the table-top height takes its place: a flex on a box makes about five contacts per vertex,
on a plane one (cloth.md: 1.7x vs 9.3x real time).

Physics settings of the cloth scenes (and what each bought; `benchmarks/cloth.py --variants` repeats
a sleeve fold with each one changed; figures are from a 2-core machine shared with other jobs, so
compare rows of one run):
- table plane instead of the box for the cloth: one contact per vertex instead of ~5 (cloth.md: 5.5x);
  with the box, the sleeve fold went unstable.
- `noslip_iterations` 0 (the rig uses 4 for rigid pinches): 1.8x at rest with the shirt (5.7x vs 3.1x
  real time, both hands, quiet machine); nothing in these tasks is held by friction.
- self-collision `auto`: needed (with `none` the sleeve fold does not count: the sleeve falls
  through the body); about 1.3x slower than `none` at rest.
- flex contact `solimp` (0.99, 0.999, 1 mm) with `priority` 1: a pinching hand pressed cloth
  vertices 12 mm into the table under MuJoCo's default impedance (a vertex weighs 0.65 g and soft
  contacts scale with the effective mass); 2.4 mm with this. It also stopped a random-action
  rollout from pushing the cloth through the table (flagged `sim_unstable`).
- Newton solver (the rig's): CG ran 1.7x faster at rest but diverged under a pinching hand with
  the stiff contacts above (a 12,000-contact explosion); kept Newton.
- elliptic friction cone (the rig's), kept: pyramidal ran the sleeve fold at 1.73x instead of 1.29x
  real time (CPU time) with 1.5 mm instead of 2.4 mm cloth-table penetration, but a random-action
  rollout went unstable (step 343) and the fold expert left the shirt messy on state 0.
- time step 2 ms (the rig's; the env needs a whole number of steps per 50 ms control period).

Shirt frame (material coordinates): x from the hem (x = -L/2) to the neck (x = +L/2), y to the
shirt's left (+) and right (-), origin at the body's centre. A shirt's pose on the table is (x, y,
yaw) of that frame.

Pinch model (`ClothPinch`, option `pinch`): two fingertips cannot hold a flat shirt by friction in
MuJoCo at a usable time step (cloth.md: every variant slipped). With `pinch="anchor"` (the default),
once per control step and per hand: when the thumb tip and an opposing fingertip are both within
`PINCH_TOUCH` of the cloth surface (or touch it) and closer to each other than `PINCH_CLOSE` plus their
distance in the hand's own `pinch` grasp pose (measured on the hand model), the (up to
`PINCH_VERTS`) cloth vertices nearest the point between them, within `PINCH_REACH`, are anchored to
the thumb's last link where they are (a run-time `connect` equality retargeted to the vertex body);
they are released when the two tips open `PINCH_OPEN` beyond that closing distance. With `pinch="friction"` nothing is
ever anchored (physics-only studies). The model is part of the cloth, the same for every policy:
policies act only through the action.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mujoco
import numpy as np
from numpy.typing import NDArray

from egosim.embodiment import SIDES
from egosim.errors import AssetError, InvalidChoiceError
from egosim.rig import TABLE_HEIGHT

if TYPE_CHECKING:
    from egosim.embodiment import Embodiment
    from egosim.rig import RigHandles

SPACING = 0.045  # grid spacing of the shirt mesh (m): 232 vertices (cloth.md: 0.03 m costs 2.5x)
BODY_W, BODY_L = 12 * SPACING, 14 * SPACING  # 0.54 x 0.63 m
SLEEVE_W, SLEEVE_L = 4 * SPACING, 4 * SPACING  # 0.18 m out from the shoulder, 0.18 m along the body
SHIRT_MASS = 0.15  # kg
CLOTH_RADIUS = 0.005  # collision half-thickness of the cloth (m)
CLOTH_FRICTION = 1.0
PINCH_MODES = ("anchor", "friction")
PINCH_TOUCH = 0.004  # a fingertip pad whose surface is this close to the cloth's surface touches it
PINCH_CLOSE = 0.020  # (the cloth between the pads keeps them ~15 mm apart) thumb and opposing tip closer than this plus their gap in the hand's pinch pose: a pinch
PINCH_OPEN = 0.015  # ... and this much farther apart than that: released
PINCH_REACH = 0.040  # anchored vertices lie this close to the point between the tips
PINCH_VERTS = 3  # spare connect equalities per hand
LAYER = 2 * CLOTH_RADIUS  # one cloth layer's thickness
Z_FLAT = TABLE_HEIGHT + CLOTH_RADIUS  # a vertex lying flat on the table


@dataclass(frozen=True)
class ShirtMesh:
    """The shirt's triangle mesh in material coordinates (shirt frame, z = 0) and its named regions.

    Attributes:
        verts: (n, 3) vertex positions.
        faces: (f, 3) triangles (counter-clockwise seen from +z).
        regions: Vertex index arrays: `body`, `left_sleeve`, `right_sleeve`, `hem` (the bottom row).
        keypoints: Named single vertices (hem corners, shoulders, sleeve tips, neck, centre), in
            `KEYPOINTS` order.
    """

    verts: NDArray[np.float64]
    faces: NDArray[np.int64]
    regions: dict[str, NDArray[np.int64]]
    keypoints: dict[str, int]


KEYPOINTS = (
    "hem_left", "hem_right", "hem_center", "center", "neck", "shoulder_left", "shoulder_right",
    "sleeve_left_outer", "sleeve_right_outer", "sleeve_left_inner", "sleeve_right_inner",
)  # fmt: skip


def shirt_mesh(h: float = SPACING) -> ShirtMesh:
    """Builds the T-shirt mesh on a square grid of spacing `h` (cells of two triangles)."""
    n_body_y, n_len, n_sl = 12, 14, 4  # cells across the body, along it, and of a sleeve
    half_y = n_body_y // 2 + n_sl  # cells from the centre line to a sleeve's end
    neck = {(n_len - 1, j) for j in (-2, -1, 0, 1)} | {(n_len - 2, j) for j in (-1, 0)}

    def cell_in(i: int, j: int) -> bool:  # cell i along the length (0 = hem), j across (-half_y..half_y-1)
        if (i, j) in neck:
            return False
        if -n_body_y // 2 <= j < n_body_y // 2:
            return True
        return i >= n_len - n_sl and -half_y <= j < half_y

    cells = [(i, j) for i in range(n_len) for j in range(-half_y, half_y) if cell_in(i, j)]
    index: dict[tuple[int, int], int] = {}
    verts = []

    def vid(i: int, j: int) -> int:
        if (i, j) not in index:
            index[(i, j)] = len(verts)
            verts.append((i * h - n_len * h / 2, j * h, 0.0))
        return index[(i, j)]

    faces = []
    for i, j in cells:
        a, b, c, d = vid(i, j), vid(i + 1, j), vid(i, j + 1), vid(i + 1, j + 1)
        # Alternate the diagonal so the cloth has no preferred folding direction.
        faces += [(a, b, d), (a, d, c)] if (i + j) % 2 == 0 else [(a, b, c), (b, d, c)]
    v = np.array(verts)
    half_w = n_body_y * h / 2
    ii = {k: (key[0], key[1]) for key, k in index.items()}
    body = np.array([k for k, (i, j) in ii.items() if abs(j * h) <= half_w + 1e-9])
    left = np.array([k for k, (i, j) in ii.items() if j * h > half_w + 1e-9])
    right = np.array([k for k, (i, j) in ii.items() if j * h < -half_w - 1e-9])
    hem = np.array([k for k, (i, j) in ii.items() if i == 0])
    kp = {
        "hem_left": index[(0, n_body_y // 2)], "hem_right": index[(0, -n_body_y // 2)],
        "hem_center": index[(0, 0)], "center": index[(n_len // 2, 0)], "neck": index[(n_len - 2, 0)],
        "shoulder_left": index[(n_len, n_body_y // 2)], "shoulder_right": index[(n_len, -n_body_y // 2)],
        "sleeve_left_outer": index[(n_len, half_y)], "sleeve_right_outer": index[(n_len, -half_y)],
        "sleeve_left_inner": index[(n_len - n_sl, half_y)], "sleeve_right_inner": index[(n_len - n_sl, -half_y)],
    }  # fmt: skip
    return ShirtMesh(v, np.array(faces, dtype=np.int64),
                     {"body": body, "left_sleeve": left, "right_sleeve": right, "hem": hem},
                     {k: kp[k] for k in KEYPOINTS})


def add_cloth_table(spec: mujoco.MjSpec) -> None:
    """Replaces the rig's table-top box by a plane at its height, for everything (see the docstring).

    The plane is a half-space: what rests on the table rests on it; the hands' workspaces stay above
    the table, so its infinite extent changes nothing they can reach.
    """
    top = spec.geom("table_top")
    top.contype, top.conaffinity = 0, 0
    spec.worldbody.add_geom(name="cloth_table", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0.35, 0.6, 0.01],
                            pos=[0.55, 0.0, TABLE_HEIGHT], rgba=[0, 0, 0, 0], group=5)


def add_shirt(spec: mujoco.MjSpec, mesh: ShirtMesh, *, name: str = "shirt", selfcollide: str = "auto") -> None:
    """Adds the shirt flex (vertex bodies `shirt_<i>`, flat at the table's centre) and its look."""
    spec.add_material(name=f"{name}_cloth", rgba=[0.20, 0.45, 0.80, 1.0], specular=0.1, shininess=0.1)
    spec.add_mesh(name=f"{name}_mesh", uservert=mesh.verts.ravel().tolist(), userface=mesh.faces.ravel().tolist(),
                  inertia=mujoco.mjtMeshInertia.mjMESH_INERTIA_SHELL)
    flex = spec.worldbody.make_flex(name, type="mesh", dim=2, mesh=f"{name}_mesh", radius=CLOTH_RADIUS,
                                    mass=SHIRT_MASS, equality=1, pos=[0.55, 0.0, Z_FLAT])
    flex.material = f"{name}_cloth"
    flex.rgba = [0.20, 0.45, 0.80, 1.0]
    flex.friction = [CLOTH_FRICTION, 0.005, 0.0001]
    flex.condim = 3
    flex.solref = [0.005, 1.0]
    # A vertex weighs 0.65 g: MuJoCo's soft contacts scale with the effective mass, so a hand
    # pressing on the cloth sinks it into the table under the default impedance (12 mm measured).
    # A near-hard impedance, and priority over the table and the fingers so these settings (and the
    # cloth's friction) govern every cloth contact, keep that within the benchmark's 2 mm.
    flex.solimp = [0.99, 0.999, 0.001, 0.5, 2.0]
    flex.priority = 1
    flex.selfcollide = {"none": mujoco.mjtFlexSelf.mjFLEXSELF_NONE,
                        "auto": mujoco.mjtFlexSelf.mjFLEXSELF_AUTO}[selfcollide]
    # Name the generated vertex joints (every element is named).
    for i in range(len(mesh.verts)):
        body = spec.body(f"{name}_{i}")
        for joint, axis in zip(body.joints, "xyz"):
            joint.name = f"{name}_{i}_{axis}"


def check_pinch_mode(pinch: str) -> str:
    """Validates the pinch option (`anchor` or `friction`)."""
    if pinch not in PINCH_MODES:
        raise InvalidChoiceError("pinch", pinch, PINCH_MODES)
    return pinch


def _point_triangle_distance(p: NDArray[np.float64], a: NDArray[np.float64], b: NDArray[np.float64],
                             c: NDArray[np.float64]) -> NDArray[np.float64]:
    """Distances from point `p` to triangles (a, b, c) (arrays (k, 3)); Ericson's closest-point regions."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = (ab * ap).sum(1), (ac * ap).sum(1)
    bp, cp = p - b, p - c
    d3, d4 = (ab * bp).sum(1), (ac * bp).sum(1)
    d5, d6 = (ab * cp).sum(1), (ac * cp).sum(1)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    denom = va + vb + vc
    denom = np.where(np.abs(denom) < 1e-18, 1e-18, denom)
    v, w = vb / denom, vc / denom
    closest = a + ab * v[:, None] + ac * w[:, None]  # interior
    # Edge and vertex regions.
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ab = np.clip(d1 / np.where(d1 - d3 == 0, 1e-18, d1 - d3), 0, 1)
        t_ac = np.clip(d2 / np.where(d2 - d6 == 0, 1e-18, d2 - d6), 0, 1)
        t_bc = np.clip((d4 - d3) / np.where((d4 - d3) + (d5 - d6) == 0, 1e-18, (d4 - d3) + (d5 - d6)), 0, 1)
    on_ab = (vc <= 0) & (d1 >= 0) & (d3 <= 0)
    on_ac = (vb <= 0) & (d2 >= 0) & (d6 <= 0)
    on_bc = (va <= 0) & ((d4 - d3) >= 0) & ((d5 - d6) >= 0)
    closest = np.where(on_bc[:, None], b + (c - b) * t_bc[:, None], closest)
    closest = np.where(on_ac[:, None], a + ac * t_ac[:, None], closest)
    closest = np.where(on_ab[:, None], a + ab * t_ab[:, None], closest)
    closest = np.where(((d6 >= 0) & (d5 <= d6))[:, None], c, closest)
    closest = np.where(((d3 >= 0) & (d4 <= d3))[:, None], b, closest)
    closest = np.where(((d1 <= 0) & (d2 <= 0))[:, None], a, closest)
    return np.linalg.norm(closest - p, axis=1)


def closed_tip_gap(embodiment: Embodiment, side: str) -> float:
    """Smallest thumb-to-partner fingertip-site distance in the hand's `pinch` grasp pose (FK on the
    hand model): 2 mm for a hand whose pads meet, 31 mm for a tripod whose thumb closes between two
    fingers. The pinch thresholds are measured from it, so one rule serves every hand."""
    return _closed_tip_gap(embodiment.hand_xml(side), embodiment.joint_names, embodiment.fingertip_sites,
                           tuple(embodiment.grasp_pose("pinch", side)))


@functools.lru_cache(maxsize=None)
def _closed_tip_gap(xml: str, joints: tuple[str, ...], sites: tuple[str, ...], pose: tuple[float, ...]) -> float:
    model = mujoco.MjModel.from_xml_path(xml)
    data = mujoco.MjData(model)
    qadr = [model.jnt_qposadr[model.joint(j).id] for j in joints]
    data.qpos[qadr] = pose
    mujoco.mj_kinematics(model, data)
    tips = [data.site_xpos[model.site(n).id] for n in sites]
    return float(min(np.linalg.norm(tips[0] - t) for t in tips[1:]))


def pad_geom(model: mujoco.MjModel, site: int) -> tuple[int, float]:
    """(geom id, radius) of the colliding geom on `site`'s body whose surface is nearest the site."""
    body = int(model.site_bodyid[site])
    best, best_d = -1, math.inf
    for g in range(model.ngeom):
        if int(model.geom_bodyid[g]) != body or not (model.geom_contype[g] or model.geom_conaffinity[g]):
            continue
        d = float(np.linalg.norm(model.site_pos[site] - model.geom_pos[g])) - float(model.geom_size[g, 0])
        if d < best_d:
            best, best_d = g, d
    if best < 0:
        raise AssetError(f"fingertip site {model.site(site).name!r} has no colliding geom on its link")
    return best, float(model.geom_size[best, 0])


class ClothPinch:
    """The pinch model of the cloth (see the module docstring): anchors cloth between closed fingertips.

    Declared in `build` (PINCH_VERTS spare, inactive `connect` equalities per hand on the thumb's last
    link), bound in `bind`, reset with the episode and updated once per control step by the task's
    `before_step` hook.
    """

    def __init__(self, mode: str = "anchor", flex_name: str = "shirt") -> None:
        self.mode = check_pinch_mode(mode)
        self.flex_name = flex_name
        self._held: dict[str, list[int]] = {s: [] for s in SIDES}  # anchored vertex indices per side
        self._partner: dict[str, int] = {s: -1 for s in SIDES}  # fingertip site that closed with the thumb

    def build(self, spec: mujoco.MjSpec, embodiment: Embodiment) -> None:
        """Adds the spare equalities (always, so both modes compile to the same model)."""
        thumb = embodiment.fingertip_sites[0]
        for side in SIDES:
            body = spec.site(f"{side}_{thumb}").parent.name
            for k in range(PINCH_VERTS):
                spec.add_equality(name=f"cloth_pinch_{side}_{k}", type=mujoco.mjtEq.mjEQ_CONNECT,
                                  objtype=mujoco.mjtObj.mjOBJ_BODY, name1=body, name2="world", active=False,
                                  solref=[0.01, 1.0])

    def bind(self, model: mujoco.MjModel, rig: RigHandles, embodiment: Embodiment, faces: NDArray[np.int64]) -> None:
        """Resolves the equalities, fingertip sites and the flex's vertex bodies."""
        f = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_FLEX, self.flex_name)
        adr, n = int(model.flex_vertadr[f]), int(model.flex_vertnum[f])
        self._vert0, self._nvert, self._flex = adr, n, f
        self._vert_body = model.flex_vertbodyid[adr : adr + n].copy()
        self._faces = faces
        self._eq = {s: [model.equality(f"cloth_pinch_{s}_{k}").id for k in range(PINCH_VERTS)] for s in SIDES}
        self._thumb_site = {s: rig.hands[s].fingertip_sites[embodiment.fingertip_sites[0]] for s in SIDES}
        self._fingers = {s: [rig.hands[s].fingertip_sites[t] for t in embodiment.fingertip_sites[1:]] for s in SIDES}
        self._thumb_body = {s: int(model.site_bodyid[self._thumb_site[s]]) for s in SIDES}
        self._pad = {int(site): pad_geom(model, int(site)) for h in rig.hands.values()
                     for site in h.fingertip_sites.values()}
        self._link_geoms = {int(site): np.flatnonzero(model.geom_bodyid == model.site_bodyid[site])
                            for h in rig.hands.values() for site in h.fingertip_sites.values()}
        self.close_at = {s: closed_tip_gap(embodiment, s) + PINCH_CLOSE for s in SIDES}
        self.open_at = {s: self.close_at[s] + PINCH_OPEN for s in SIDES}

    def reset(self, data: mujoco.MjData) -> None:
        """Releases everything (mj_resetData already restored eq_active; this clears our records)."""
        for s in SIDES:
            for e in self._eq[s]:
                data.eq_active[e] = 0
            self._held[s] = []
            self._partner[s] = -1

    def held(self, side: str) -> tuple[int, ...]:
        """Cloth vertex indices anchored to `side`'s fingertips now."""
        return tuple(self._held[side])

    @property
    def anchored(self) -> int:
        """Number of anchored vertices, both hands."""
        return sum(len(v) for v in self._held.values())

    def surface_distance(self, data: mujoco.MjData, point: NDArray[np.float64]) -> float:
        """Distance from `point` to the cloth's mid-surface (triangles near the point only)."""
        v = data.flexvert_xpos[self._vert0 : self._vert0 + self._nvert]
        near = np.linalg.norm(v - point, axis=1) < 2.5 * SPACING + 0.02
        if not near.any():
            return math.inf
        fs = self._faces[near[self._faces].any(axis=1)]
        return float(_point_triangle_distance(point, v[fs[:, 0]], v[fs[:, 1]], v[fs[:, 2]]).min())

    def touches(self, data: mujoco.MjData, site: int) -> bool:
        """Whether the pad of fingertip `site` is within PINCH_TOUCH of the cloth's surface.

        The fingertip's link in contact with the cloth touches it; so does its site (on the pad's
        surface) within PINCH_TOUCH of the cloth's surface. Otherwise: the pad is the collision geom of the site's link nearest the site (a capsule or sphere): its
        surface's gap to the cloth is the distance from its centre to the cloth's mid-surface less its
        radius and the cloth's half-thickness.
        """
        g, radius = self._pad[site]
        n = data.ncon
        if n:
            geom, flex = data.contact.geom[:n], data.contact.flex[:n]
            link = self._link_geoms[site]
            if bool((np.isin(geom[:, 0], link) & (flex[:, 1] == self._flex)).any()
                    or (np.isin(geom[:, 1], link) & (flex[:, 0] == self._flex)).any()):
                return True  # in contact (a pad pressing the cloth into the table squeezes it thinner)
        if self.surface_distance(data, data.site_xpos[site]) - CLOTH_RADIUS <= PINCH_TOUCH:
            return True
        return self.surface_distance(data, data.geom_xpos[g]) - radius - CLOTH_RADIUS <= PINCH_TOUCH

    def update(self, model: mujoco.MjModel, data: mujoco.MjData) -> None:
        """One control step of the pinch model for both hands."""
        if self.mode != "anchor":
            return
        for side in SIDES:
            thumb = data.site_xpos[self._thumb_site[side]]
            if self._held[side]:
                gap = float(np.linalg.norm(thumb - data.site_xpos[self._partner[side]]))
                if gap > self.open_at[side]:
                    for e in self._eq[side]:
                        data.eq_active[e] = 0
                    self._held[side] = []
                    self._partner[side] = -1
                continue
            gaps = [float(np.linalg.norm(thumb - data.site_xpos[f])) for f in self._fingers[side]]
            closed = [k for k in np.argsort(gaps).tolist() if gaps[k] < self.close_at[side]]
            if not closed or not self.touches(data, self._thumb_site[side]):
                continue
            k = next((k for k in closed if self.touches(data, self._fingers[side][k])), -1)
            if k < 0:
                continue
            other = data.site_xpos[self._fingers[side][k]]
            mid = 0.5 * (thumb + other)
            v = data.flexvert_xpos[self._vert0 : self._vert0 + self._nvert]
            dist = np.linalg.norm(v - mid, axis=1)
            taken = {i for s in SIDES for i in self._held[s]}
            order = [int(i) for i in np.argsort(dist) if dist[i] <= PINCH_REACH and int(i) not in taken]
            chosen = order[:PINCH_VERTS]
            if not chosen:
                continue
            body = self._thumb_body[side]
            rot, pos = data.xmat[body].reshape(3, 3), data.xpos[body]
            for e, i in zip(self._eq[side], chosen):
                model.eq_obj2id[e] = self._vert_body[i]
                model.eq_data[e, 0:3] = rot.T @ (v[i] - pos)
                model.eq_data[e, 3:6] = 0.0
                data.eq_active[e] = 1
            self._held[side] = chosen
            self._partner[side] = self._fingers[side][k]


# ---------------------------------------------------------------------------------------------- tasks
MAX_VERTEX_SPEED = 15.0  # m/s: a cloth vertex faster than this has exploded
MAX_SINK = 0.01  # m: a vertex this far below the table-top plane has passed through it
N_KEYPOINTS = len(KEYPOINTS)
CLOTH_PRIVILEGED_DIM = 3 * N_KEYPOINTS + 3 + 2  # keypoints, laid-out shirt pose (x, y, yaw), anchors per hand


class ClothTask:
    """Mixin with the shirt, the cloth table, the pinch model and cloth-state queries for cloth tasks.

    Subclasses are `Task`s; they call `build_cloth`, `bind_cloth` and `place_shirt` from their own
    `build`, `bind` and `apply_initial_state`, and write their milestones on `ShirtState`.
    """

    mesh: ShirtMesh

    def __init__(self, pinch: str = "anchor") -> None:
        self.mesh = shirt_mesh()
        self.pinch = ClothPinch(pinch)
        self.shirt_pose = np.array([0.55, 0.0, 0.0])  # laid-out (x, y, yaw) of the current episode

    # ------------------------------------------------------------------ options and hooks
    def configure(self, options: Mapping[str, Any]) -> None:
        unknown = sorted(set(options) - {"pinch"})
        if unknown:
            raise InvalidChoiceError("cloth task option", unknown[0], ("pinch",))
        if "pinch" in options:
            self.pinch = ClothPinch(str(options["pinch"]))

    def options(self) -> dict[str, Any]:
        return {"pinch": self.pinch.mode}

    def before_step(self, model: mujoco.MjModel, data: mujoco.MjData) -> None:
        self.pinch.update(model, data)

    def is_unstable(self, model: mujoco.MjModel, data: mujoco.MjData) -> bool:
        v = data.qvel[self._cloth_dof]
        low = float(data.flexvert_xpos[self._v0 : self._v0 + self._nv, 2].min())
        return bool(float(np.abs(v).max()) > MAX_VERTEX_SPEED or low < TABLE_HEIGHT - MAX_SINK)

    # ------------------------------------------------------------------ scene
    def build_cloth(self, spec: mujoco.MjSpec, embodiment: Embodiment) -> None:
        """Cloth physics settings, the table plane, the shirt and the pinch equalities."""
        # No-slip costs 1.8x with a cloth (231 contacts) and holds nothing here: cloth is held by the
        # pinch model, and no rigid object is grasped in the cloth tasks.
        spec.option.noslip_iterations = 0
        # The constraint solver is most of the cost (231 cloth contacts and ~640 edge equalities for
        # 749 dofs); CG ran 1.7x faster than Newton at rest but diverged under a pinching hand.
        spec.option.solver = mujoco.mjtSolver.mjSOL_NEWTON
        # MuJoCo sizes the constraint arena for a few hundred contacts; a hand pressing a crumpled
        # shirt makes thousands (self-collision), which overflowed the default 35 MB arena under
        # random actions (10,416 contacts). 256 MB is allocated once per env.
        spec.memory = 256 << 20
        add_cloth_table(spec)
        add_shirt(spec, self.mesh)
        self.pinch.build(spec, embodiment)

    def bind_cloth(self, model: mujoco.MjModel, rig: RigHandles, embodiment: Embodiment) -> None:
        f = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_FLEX, "shirt")
        self._v0, self._nv = int(model.flex_vertadr[f]), int(model.flex_vertnum[f])
        bodies = model.flex_vertbodyid[self._v0 : self._v0 + self._nv]
        jnt = model.body_jntadr[bodies]
        self._cloth_qpos = (model.jnt_qposadr[jnt][:, None] + np.arange(3)).astype(np.intp)  # (n, 3)
        self._cloth_dof = (model.jnt_dofadr[jnt][:, None] + np.arange(3)).astype(np.intp).ravel()
        self._body_rest = model.body_pos[bodies].copy()
        self.pinch.bind(model, rig, embodiment, self.mesh.faces)
        self._kp = np.array([self.mesh.keypoints[k] for k in KEYPOINTS])

    def place_shirt(self, data: mujoco.MjData, x: float, y: float, yaw: float) -> None:
        """Lays the shirt flat with its frame at (x, y, yaw) (before `mj_forward`)."""
        self.set_vertices(data, self.laid_out(x, y, yaw))
        self.shirt_pose = np.array([x, y, yaw])
        self.pinch.reset(data)

    def laid_out(self, x: float, y: float, yaw: float) -> NDArray[np.float64]:
        """World vertex positions of the flat shirt at (x, y, yaw)."""
        c, s = math.cos(yaw), math.sin(yaw)
        m = self.mesh.verts
        return np.stack([x + c * m[:, 0] - s * m[:, 1], y + s * m[:, 0] + c * m[:, 1],
                         np.full(len(m), Z_FLAT)], axis=1)

    def set_vertices(self, data: mujoco.MjData, world: NDArray[np.float64]) -> None:
        """Puts the cloth's vertices at `world` (n, 3), at rest (placement and tests only)."""
        data.qpos[self._cloth_qpos] = world - self._body_rest
        data.qvel[self._cloth_dof] = 0.0

    # ------------------------------------------------------------------ state
    def vertices(self, data: mujoco.MjData) -> NDArray[np.float64]:
        """(n, 3) world positions of the cloth's vertices."""
        return data.flexvert_xpos[self._v0 : self._v0 + self._nv]

    def local(self, data: mujoco.MjData) -> NDArray[np.float64]:
        """(n, 3) vertex positions in the laid-out shirt frame (x to the neck, y left, z above the table)."""
        x, y, yaw = self.shirt_pose.tolist()
        c, s = math.cos(yaw), math.sin(yaw)
        v = self.vertices(data)
        dx, dy = v[:, 0] - x, v[:, 1] - y
        return np.stack([c * dx + s * dy, -s * dx + c * dy, v[:, 2] - TABLE_HEIGHT], axis=1)

    def settled(self, data: mujoco.MjData, speed: float = 0.05) -> bool:
        """Released by the pinch model and (nearly) at rest."""
        return self.pinch.anchored == 0 and float(np.abs(data.qvel[self._cloth_dof]).max()) < speed

    def cloth_privileged(self, data: mujoco.MjData) -> NDArray[np.float64]:
        """Keypoints (11 x 3, `KEYPOINTS` order), laid-out pose (x, y, yaw), anchored vertices per hand."""
        return np.concatenate([self.vertices(data)[self._kp].ravel(), self.shirt_pose,
                               [len(self.pinch.held(s)) for s in SIDES]])
