"""The object catalogue of `tabletop_play`: shape kinds, their random dimensions and the geoms they are made of.

A shape is a short list of MuJoCo primitives (`GeomSpec`) in the object's body frame, whose origin is
the centre of the object's footprint on the table (z = 0 is the face it stands on). Boxes, cylinders,
spheres and lying capsules are one geom; a thin tile or plate is a flat box or disk; a mug is a
weighted base, a ring of wall segments and a handle; a cup is a mug without handle; a bowl is a base and
a ring of outward-leaning wall segments; a bar is a long box. Dimensions are drawn per episode within
ranges that the hands can grasp (or, for tiles, plates and bowls, push and fill), and each kind says
which grasp its size calls for (`grasp_kind`): `pinch` up to 6 cm across, `claw` for wider objects
gripped from above, `power` for tall cylinders held from the side.

Everything here is plain numpy (no MjModel): the scene (`egosim.tasks.tabletop_play`) turns a
shape into model fields, and the grammar (`egosim.tasks.play_grammar`) reads sizes and nouns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

BOX, SPHERE, CAPSULE, CYLINDER = "box", "sphere", "capsule", "cylinder"
KINDS: tuple[str, ...] = ("box", "tile", "plate", "cylinder", "sphere", "capsule", "bar", "mug", "cup", "bowl")
GRASPABLE: frozenset[str] = frozenset({"box", "cylinder", "sphere", "capsule", "bar", "mug", "cup"})
CONTAINERS: frozenset[str] = frozenset({"mug", "cup", "bowl"})  # what beads can be poured into
POUR_SOURCES: frozenset[str] = frozenset({"mug", "cup"})
SLOT_GEOMS = 13  # geoms per object slot: the largest shape (a mug: base, 11 wall segments, handle)
WALL_SEGMENTS = 11
PINCH_MAX_WIDTH = 0.06  # objects narrower than this are pinched (thumb against fingers)
POWER_MIN_HEIGHT = 0.10  # cylinders at least this tall (and wide enough) are held from the side
_Q_Z_TO_X = (math.cos(math.pi / 4), 0.0, math.sin(math.pi / 4), 0.0)  # turns a capsule's axis (z) onto x


@dataclass(frozen=True)
class GeomSpec:
    """One primitive of a shape, in the object's body frame (MuJoCo conventions for `size`)."""

    type: str
    size: tuple[float, float, float]
    pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
    quat: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    mass_share: float = 1.0  # fraction of the object's mass in this geom (shares sum to 1)


def _r(rng: np.random.Generator, lo: float, hi: float) -> float:
    return round(float(rng.uniform(lo, hi)), 4)


def sample_dims(kind: str, rng: np.random.Generator) -> dict[str, float]:
    """Random dimensions (metres) of a shape kind."""
    if kind == "box":
        return {"hx": _r(rng, 0.012, 0.04), "hy": _r(rng, 0.012, 0.04), "hz": _r(rng, 0.015, 0.045)}
    if kind == "tile":  # a thin plate: pushed around, or a place to put things on
        return {"hx": _r(rng, 0.04, 0.07), "hy": _r(rng, 0.035, 0.06), "hz": _r(rng, 0.004, 0.008)}
    if kind == "plate":
        return {"r": _r(rng, 0.05, 0.075), "hz": _r(rng, 0.004, 0.007)}
    if kind == "cylinder":
        return {"r": _r(rng, 0.012, 0.04), "hz": _r(rng, 0.02, 0.065)}
    if kind == "sphere":  # pinched: a claw does not hold a ball
        return {"r": _r(rng, 0.016, 0.03)}
    if kind == "capsule":
        return {"r": _r(rng, 0.008, 0.014), "half_len": _r(rng, 0.03, 0.06)}
    if kind == "bar":  # long enough for two hands: the hand-over object
        return {"hx": _r(rng, 0.11, 0.14), "hy": _r(rng, 0.011, 0.015), "hz": _r(rng, 0.011, 0.015)}
    if kind in ("mug", "cup"):
        return {"r": _r(rng, 0.034, 0.042), "h": _r(rng, 0.075, 0.095), "wall": 0.006}
    if kind == "bowl":
        return {"r": _r(rng, 0.06, 0.075), "h": _r(rng, 0.035, 0.05), "wall": 0.006}
    raise KeyError(kind)


def shape_geoms(kind: str, dims: Mapping[str, float]) -> list[GeomSpec]:
    """The primitives of a shape (at most `SLOT_GEOMS`)."""
    d = dims
    if kind in ("box", "tile", "bar"):
        return [GeomSpec(BOX, (d["hx"], d["hy"], d["hz"]), (0.0, 0.0, d["hz"]))]
    if kind in ("plate", "cylinder"):
        return [GeomSpec(CYLINDER, (d["r"], d["hz"], 0.0), (0.0, 0.0, d["hz"]))]
    if kind == "sphere":
        return [GeomSpec(SPHERE, (d["r"], 0.0, 0.0), (0.0, 0.0, d["r"]))]
    if kind == "capsule":
        return [GeomSpec(CAPSULE, (d["r"], d["half_len"], 0.0), (0.0, 0.0, d["r"]), _Q_Z_TO_X)]
    if kind in ("mug", "cup", "bowl"):
        return _vessel(kind, d)
    raise KeyError(kind)


def _vessel(kind: str, d: Mapping[str, float]) -> list[GeomSpec]:
    """A base and a ring of wall segments (leaning out for a bowl), plus a handle on a mug's +y side."""
    r, h, wall = d["r"], d["h"], d["wall"]
    base_h = 0.008 if kind != "bowl" else 0.006
    base_r = r if kind != "bowl" else 0.55 * r
    handle = kind == "mug"
    base_share = 0.5 if kind != "bowl" else 0.3  # a weighted base keeps a vessel upright
    wall_share = (1.0 - base_share - (0.06 if handle else 0.0)) / WALL_SEGMENTS
    out = [GeomSpec(CYLINDER, (base_r, base_h / 2, 0.0), (0.0, 0.0, base_h / 2), mass_share=base_share)]
    lean = math.atan2(r - base_r, h - base_h) if kind == "bowl" else 0.0  # outward tilt of the wall
    wall_len = (h - base_h) / math.cos(lean)
    r_mid_bottom = base_r - wall / 2
    for k in range(WALL_SEGMENTS):
        ang = 2 * math.pi * k / WALL_SEGMENTS
        r_mid = r_mid_bottom + math.sin(lean) * wall_len / 2
        half_chord = (r if kind == "bowl" else r_mid + wall / 2) * math.tan(math.pi / WALL_SEGMENTS) + 0.001
        # Rotate about z by ang, then tilt outward (about the segment's tangent, the local y axis).
        qz = np.array([math.cos(ang / 2), 0.0, 0.0, math.sin(ang / 2)])
        qy = np.array([math.cos(lean / 2), 0.0, math.sin(lean / 2), 0.0])
        q = _quat_mul(qz, qy)
        pos = (r_mid * math.cos(ang), r_mid * math.sin(ang), base_h + (h - base_h) / 2)
        out.append(GeomSpec(BOX, (wall / 2, half_chord, wall_len / 2), pos, tuple(float(v) for v in q),
                            mass_share=wall_share))
    if handle:
        out.append(GeomSpec(BOX, (0.006, 0.011, 0.3 * h), (0.0, r + 0.009, 0.55 * h), mass_share=0.06))
    return out


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2])


def extent(kind: str, dims: Mapping[str, float]) -> tuple[float, float, float]:
    """(half length along body x, half width along body y, height) of the object's bounding box."""
    d = dims
    if kind in ("box", "tile", "bar"):
        return d["hx"], d["hy"], 2 * d["hz"]
    if kind in ("plate", "cylinder"):
        return d["r"], d["r"], 2 * d["hz"]
    if kind == "sphere":
        return d["r"], d["r"], 2 * d["r"]
    if kind == "capsule":
        return d["half_len"] + d["r"], d["r"], 2 * d["r"]
    if kind == "mug":
        return d["r"], d["r"] + 0.015, d["h"]
    return d["r"], d["r"], d["h"]


def footprint_radius(kind: str, dims: Mapping[str, float]) -> float:
    """Radius of a circle around the object's footprint (for non-overlapping placement)."""
    hx, hy, _ = extent(kind, dims)
    if kind in ("box", "tile", "bar", "capsule", "mug"):
        return math.hypot(hx, hy)
    return max(hx, hy)


def grip_width(kind: str, dims: Mapping[str, float]) -> float:
    """The narrowest horizontal width across which a hand can close on the object."""
    hx, hy, _ = extent(kind, dims)
    if kind == "mug":
        return 2 * dims["r"]
    return 2 * min(hx, hy)


def grasp_kind(kind: str, dims: Mapping[str, float]) -> str | None:
    """`pinch`, `claw` or `power` by size; None for objects the grammar does not pick up."""
    if kind not in GRASPABLE:
        return None
    width, height = grip_width(kind, dims), extent(kind, dims)[2]
    if kind == "cylinder" and height >= POWER_MIN_HEIGHT and width > 0.035:
        return "power"
    return "pinch" if width <= PINCH_MAX_WIDTH else "claw"


def mass_range(kind: str, grasp: str | None) -> tuple[float, float]:
    """Masses (kg) drawn per kind: light enough for the grasp the size calls for."""
    if grasp == "pinch":
        return 0.01, 0.1
    if grasp == "claw":
        return (0.15, 0.25) if kind in POUR_SOURCES else (0.04, 0.2)
    if grasp == "power":
        return 0.08, 0.25
    return {"tile": (0.05, 0.2), "plate": (0.1, 0.3), "bowl": (0.12, 0.3)}.get(kind, (0.05, 0.2))


def noun(kind: str, dims: Mapping[str, float]) -> str:
    """What an instruction calls the object."""
    if kind == "box":
        hx, hy, h = extent(kind, dims)
        cube = max(hx, hy, h / 2) < 1.35 * min(hx, hy, h / 2)
        return "cube" if cube else "block"
    if kind == "cylinder":
        return "peg" if dims["r"] < 0.02 else "can"
    return {"tile": "tile", "plate": "plate", "sphere": "ball", "capsule": "stick", "bar": "bar", "mug": "mug",
            "cup": "cup", "bowl": "bowl"}[kind]


# Colours an instruction can name (distinct per scene, so "the red mug" is unambiguous).
COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.82, 0.14, 0.12), "green": (0.2, 0.62, 0.25), "blue": (0.16, 0.34, 0.8), "yellow": (0.93, 0.8, 0.15),
    "orange": (0.95, 0.5, 0.1), "purple": (0.5, 0.25, 0.65), "white": (0.92, 0.92, 0.9), "black": (0.1, 0.1, 0.11),
    "pink": (0.95, 0.55, 0.7), "brown": (0.45, 0.3, 0.18), "teal": (0.1, 0.55, 0.55), "grey": (0.55, 0.55, 0.57),
}


def describe(obj: Mapping[str, Any]) -> str:
    """`the red mug`: colour and noun of a scene object record."""
    return f"the {obj['colour']} {noun(obj['kind'], obj['dims'])}"
