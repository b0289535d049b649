"""Writes assets/human_hand/{right,left}_hand.xml from the anthropometric parameters below.

The human hand model is generated, not hand-written, so that every number has one source (this file)
and the left hand is the exact mirror image of the right. `tests/test_human_hand.py` checks that the
committed files are what this script writes.

    python scripts/make_human_hand.py            # rewrite both files
    python scripts/make_human_hand.py --check    # exit 1 if a committed file differs

Sources (see assets/human_hand/README.md for the full provenance):
- Segment lengths: Buchholz, Armstrong & Goldstein (1992), "Anthropometric data for describing the
  kinematics of the human hand", Ergonomics 35(3):261-273 (segment length / hand length ratios).
- Hand length 185 mm and breadth about 80 mm: the mean of the men's and women's 50th percentiles of
  British adults in Pheasant & Haslegrave, "Bodyspace" (3rd ed., 2006): hand length 190 / 175 mm,
  hand breadth 85 / 75 mm.
- Joint ranges: the American Academy of Orthopaedic Surgeons' normal values (Greene & Heckman, "The
  Clinical Measurement of Joint Motion", AAOS 1994) for the finger and thumb MCP, PIP, DIP and IP
  joints; the thumb's trapeziometacarpal (CMC) arcs from Cooney et al. (1981), "The kinesiology of
  the thumb trapeziometacarpal joint", J Bone Joint Surg Am 63(9):1371-1381 (flexion-extension about
  53 deg, abduction-adduction about 42 deg).
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "assets" / "human_hand"

HAND_LENGTH = 0.185  # wrist crease to the middle fingertip (m)
# Buchholz et al. (1992), segment length / hand length: metacarpal, proximal, middle, distal.
RATIOS = {
    "thumb": (0.251, 0.196, 0.158),
    "index": (0.374, 0.265, 0.143, 0.097),
    "middle": (0.373, 0.277, 0.170, 0.108),
    "ring": (0.336, 0.259, 0.165, 0.107),
    "little": (0.295, 0.206, 0.117, 0.093),
}
FINGERS = ("index", "middle", "ring", "little")
# Right hand, hand frame (+x along the straight fingers, +z out of the palm, thumb on -y).
CMC_X = {"index": 0.010, "middle": 0.012, "ring": 0.012, "little": 0.014}  # metacarpal bases
MCP_Y = {"index": -0.02925, "middle": -0.00975, "ring": 0.00975, "little": 0.02925}  # 19.5 mm apart
# Link radii (m): proximal, middle, distal phalanx (finger breadths about 17-18 mm at the PIP).
RADII = {
    "index": (0.0088, 0.0082, 0.0076),
    "middle": (0.0090, 0.0084, 0.0078),
    "ring": (0.0086, 0.0080, 0.0074),
    "little": (0.0078, 0.0072, 0.0067),
}
THUMB_RADII = (0.0120, 0.0105, 0.0095)  # metacarpal (with the thenar muscles), proximal, distal
# The thumb's CMC (trapeziometacarpal) joint: in the thenar eminence, 3 cm distal and 2 cm radial of
# the wrist, 12 mm palmar. Its rest direction and pronation were chosen, within plausible anatomy, by
# a search for pad-to-pad pinch with the index and for a claw around an 80 mm cup (README).
THUMB_CMC = (0.032, -0.020, 0.012)
THUMB_YAW_DEG = -40.0  # zero pose: the thumb points 40 deg radially from the fingers, in the palm plane
THUMB_PITCH_DEG = 35.0  # ... tilted 35 deg out of the palm
THUMB_PRONATION_DEG = -125.0  # ... and its pad turned 125 deg about its axis, toward the fingers
PALM_Z = (-0.012, 0.013)  # dorsal and palmar faces of the palm (25 mm thick at the metacarpals)
DENSITY = 1100.0  # soft tissue and bone (kg/m^3)
# Skin friction: finger pads 1.0 (moist fingertip pulp on smooth objects measures about 0.5-1.5),
# the rest of the hand 0.8. MuJoCo takes the larger of two geoms' coefficients, so against egosim's
# props (1.0) the pads' value is what acts.
PAD_FRICTION = "1 0.005 0.0001"
PAD_CONDIM = 3  # 4 would add torsional friction (a soft finger's contact patch)
SKIN_FRICTION = "0.8 0.005 0.0001"

DEG = math.pi / 180.0
# Joint ranges (rad), as (lower, upper); positive = flexion / the mirror-image motion on the left hand.
RANGES = {
    "thumb_CMC_FE": (-30 * DEG, 25 * DEG),
    "thumb_CMC_AA": (-35 * DEG, 35 * DEG),
    "thumb_MCP": (-10 * DEG, 55 * DEG),
    "thumb_IP": (-20 * DEG, 80 * DEG),
    "MCP_FE": (-20 * DEG, 90 * DEG),
    "MCP_AA": (-20 * DEG, 20 * DEG),
    "PIP": (0.0, 100 * DEG),
    "DIP": (-5 * DEG, 80 * DEG),
}
# Actuator classes: kp (N m/rad), force limit (N m), armature, damping, frictionloss. Force limits are
# a fraction of a person's isometric strength (index MCP ~3 N m, fingertip pinch forces of tens of N);
# the armature stands for the fingers' muscle-tendon inertia and keeps 2 ms steps stable.
CLASSES = {
    "CMC": (10.0, 3.0, 0.002, 0.02, 0.02),
    "MCP": (12.0, 2.5, 0.002, 0.01, 0.01),
    "AA": (4.0, 1.0, 0.001, 0.01, 0.01),
    "PIP": (4.0, 1.0, 0.0008, 0.005, 0.005),
    "DIP": (2.0, 0.4, 0.0004, 0.003, 0.003),
}
SKIN = "0.87 0.72 0.60 1"
PAD = "0.93 0.62 0.55 1"


# ---------------------------------------------------------------------------- small rotation helpers
def rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_z(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def mat_to_quat(m: np.ndarray) -> np.ndarray:
    w = math.sqrt(max(0.0, 1 + m[0, 0] + m[1, 1] + m[2, 2])) / 2
    if w > 1e-6:
        q = np.array([w, (m[2, 1] - m[1, 2]) / (4 * w), (m[0, 2] - m[2, 0]) / (4 * w), (m[1, 0] - m[0, 1]) / (4 * w)])
    else:  # 180 deg turns do not occur in this model
        raise ValueError("rotation too close to 180 degrees")
    return q / np.linalg.norm(q)


# ---------------------------------------------------------------------------- the model tree
@dataclass
class Joint:
    name: str
    cls: str
    axis: tuple[float, float, float]
    range: tuple[float, float]


@dataclass
class Geom:
    name: str
    cls: str
    a: tuple[float, float, float]  # capsule from a to b (or box centre in `a`, half sizes in `b`)
    b: tuple[float, float, float]
    radius: float = 0.0
    box: bool = False


@dataclass
class Site:
    name: str
    pos: tuple[float, float, float]
    cls: str = "keypoint"


@dataclass
class Body:
    name: str
    pos: tuple[float, float, float]
    quat: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    joints: list[Joint] = field(default_factory=list)
    geoms: list[Geom] = field(default_factory=list)
    sites: list[Site] = field(default_factory=list)
    children: list[Body] = field(default_factory=list)


def _lengths(finger: str) -> tuple[float, ...]:
    return tuple(r * HAND_LENGTH for r in RATIOS[finger])


def _finger(finger: str) -> Body:
    """A finger from the MCP joint: proximal, middle and distal phalanx, flexing toward +z."""
    mc, pp, mp, dp = _lengths(finger)
    r_p, r_m, r_d = RADII[finger]
    flex = (0.0, -1.0, 0.0)  # about -y: +x turns toward +z (the palm side)
    abd = (0.0, 0.0, -1.0)  # about -z: +x turns toward -y, the thumb side (radial)
    mcp = (CMC_X[finger] + mc, MCP_Y[finger], 0.0)
    distal = Body(
        f"{finger}_distal", (mp, 0, 0),
        joints=[Joint(f"{finger}_DIP", "DIP", flex, RANGES["DIP"])],
        geoms=[Geom(f"{finger}_pad", "pad", (0, 0, 0), (dp - r_d, 0, 0), r_d)],
        sites=[
            Site(f"kp_{finger}_intermediate_tip", (0, 0, 0)),
            Site(f"{finger}_tip", (0.55 * (dp - r_d), 0, r_d), "fingertip"),
            Site(f"kp_{finger}_tip", (dp, 0, 0)),
        ],
    )
    middle = Body(
        f"{finger}_middle", (pp, 0, 0),
        joints=[Joint(f"{finger}_PIP", "PIP", flex, RANGES["PIP"])],
        geoms=[Geom(f"{finger}_middle_col", "link", (0, 0, 0), (mp, 0, 0), r_m)],
        sites=[Site(f"kp_{finger}_intermediate_base", (0, 0, 0))],
        children=[distal],
    )
    return Body(
        f"{finger}_proximal", mcp,
        joints=[Joint(f"{finger}_MCP_FE", "MCP", flex, RANGES["MCP_FE"]),
                Joint(f"{finger}_MCP_AA", "AA", abd, RANGES["MCP_AA"])],
        geoms=[Geom(f"{finger}_proximal_col", "link", (0, 0, 0), (pp, 0, 0), r_p)],
        sites=[Site(f"kp_{finger}_knuckle", (0, 0, 0))],
        children=[middle],
    )


def _thumb() -> Body:
    """The thumb from its CMC joint: metacarpal (2 DoF at the CMC), proximal and distal phalanx."""
    mc, pp, dp = _lengths("thumb")
    r_mc, r_p, r_d = THUMB_RADII
    base = rot_z(THUMB_YAW_DEG * DEG) @ rot_y(-THUMB_PITCH_DEG * DEG) @ rot_x(THUMB_PRONATION_DEG * DEG)
    direction = base[:, 0]
    # CMC flexion swings the metacarpal across the palm (about the palm normal, toward the fingers);
    # CMC abduction lifts it out of the palm plane (about the axis perpendicular to both).
    fe_hand = np.array([0.0, 0.0, 1.0])
    aa_hand = np.cross(direction, [0.0, 0.0, 1.0])
    aa_hand /= np.linalg.norm(aa_hand)
    fe_local, aa_local = base.T @ fe_hand, base.T @ aa_hand
    flex = (0.0, -1.0, 0.0)
    distal = Body(
        "thumb_distal", (pp, 0, 0),
        joints=[Joint("thumb_IP", "PIP", flex, RANGES["thumb_IP"])],
        geoms=[Geom("thumb_pad", "pad", (0, 0, 0), (dp - r_d, 0, 0), r_d)],
        sites=[
            Site("kp_thumb_intermediate_tip", (0, 0, 0)),
            Site("thumb_tip", (0.55 * (dp - r_d), 0, r_d), "fingertip"),
            Site("kp_thumb_tip", (dp, 0, 0)),
        ],
    )
    proximal = Body(
        "thumb_proximal", (mc, 0, 0),
        joints=[Joint("thumb_MCP", "MCP", flex, RANGES["thumb_MCP"])],
        geoms=[Geom("thumb_proximal_col", "link", (0, 0, 0), (pp, 0, 0), r_p)],
        sites=[Site("kp_thumb_intermediate_base", (0, 0, 0))],
        children=[distal],
    )
    return Body(
        "thumb_metacarpal", THUMB_CMC, tuple(mat_to_quat(base)),
        joints=[Joint("thumb_CMC_FE", "CMC", tuple(fe_local), RANGES["thumb_CMC_FE"]),
                Joint("thumb_CMC_AA", "CMC", tuple(aa_local), RANGES["thumb_CMC_AA"])],
        geoms=[Geom("thumb_metacarpal_col", "link", (0.006, 0, 0), (mc, 0, 0), r_mc)],
        sites=[Site("kp_thumb_knuckle", (0, 0, 0))],
        children=[proximal],
    )


def _palm() -> Body:
    z0, z1 = PALM_Z
    zc, hz = (z0 + z1) / 2, (z1 - z0) / 2
    knuckle_x = {f: CMC_X[f] + _lengths(f)[0] for f in FINGERS}
    box_end = min(knuckle_x.values()) - 0.002
    return Body(
        "hand", (0, 0, 0),
        geoms=[
            # metacarpal block, ending before the little finger's knuckle
            Geom("palm", "palm", ((0.012 + box_end) / 2, 0, zc), ((box_end - 0.012) / 2, 0.038, hz), box=True),
            # carpus (the heel of the hand)
            Geom("palm_heel", "palm", (0.0, 0, zc), (0.012, 0.028, hz), box=True),
            # the metacarpal heads, a roll under the knuckles from the index to the little finger
            Geom("palm_knuckles", "palm", (knuckle_x["index"] - 0.010, MCP_Y["index"], zc),
                 (knuckle_x["little"] - 0.010, MCP_Y["little"], zc), hz),
        ],
        sites=[Site("wrist", (0, 0, 0), "frame"), Site("palm_center", (0.045, 0, z1), "frame")],
        children=[_thumb(), *[_finger(f) for f in FINGERS]],
    )


# ---------------------------------------------------------------------------- mirroring and XML
def mirror(body: Body) -> Body:
    """The y-mirror image: positions y -> -y, quaternions (w,x,y,z) -> (w,-x,y,-z), hinge axes
    (x,y,z) -> (-x,y,-z), so that a positive angle is the mirror-image motion."""
    m = lambda p: (p[0], -p[1], p[2])  # noqa: E731
    return Body(
        body.name, m(body.pos), (body.quat[0], -body.quat[1], body.quat[2], -body.quat[3]),
        joints=[Joint(j.name, j.cls, (-j.axis[0], j.axis[1], -j.axis[2]), j.range) for j in body.joints],
        geoms=[Geom(g.name, g.cls, m(g.a), g.b if g.box else m(g.b), g.radius, g.box) for g in body.geoms],
        sites=[Site(s.name, m(s.pos), s.cls) for s in body.sites],
        children=[mirror(c) for c in body.children],
    )


def _f(v: float) -> str:
    s = f"{v:.6f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _v(vals) -> str:
    return " ".join(_f(float(v)) for v in vals)


def _body_xml(body: Body, depth: int, out: list[str], root: bool = False) -> None:
    pad = "  " * depth
    attrs = f'name="{body.name}"'
    if not root:
        attrs += f' pos="{_v(body.pos)}"'
        if not np.allclose(body.quat, (1, 0, 0, 0)):
            attrs += f' quat="{_v(body.quat)}"'
    else:
        attrs += ' childclass="human_hand"'
    out.append(f"{pad}<body {attrs}>")
    for j in body.joints:
        out.append(f'{pad}  <joint name="{j.name}" class="{j.cls}" axis="{_v(j.axis)}" range="{_v(j.range)}"/>')
    for g in body.geoms:
        if g.box:
            out.append(f'{pad}  <geom name="{g.name}" class="{g.cls}" type="box" pos="{_v(g.a)}" size="{_v(g.b)}"/>')
        else:
            out.append(f'{pad}  <geom name="{g.name}" class="{g.cls}" type="capsule" size="{_f(g.radius)}" '
                       f'fromto="{_v(g.a)} {_v(g.b)}"/>')
    for s in body.sites:
        out.append(f'{pad}  <site name="{s.name}" class="{s.cls}" pos="{_v(s.pos)}"/>')
    for c in body.children:
        _body_xml(c, depth + 1, out)
    out.append(f"{pad}</body>")


def _joints(body: Body) -> list[Joint]:
    return body.joints + [j for c in body.children for j in _joints(c)]


def hand_xml(side: str) -> str:
    """The MJCF text of one hand."""
    tree = _palm() if side == "right" else mirror(_palm())
    defaults = []
    for cls, (kp, frc, arm, damp, fric) in CLASSES.items():
        defaults.append(
            f'      <default class="{cls}">\n'
            f'        <joint armature="{_f(arm)}" damping="{_f(damp)}" frictionloss="{_f(fric)}"/>\n'
            f'        <position kp="{_f(kp)}" dampratio="1" forcerange="{_f(-frc)} {_f(frc)}"/>\n'
            f"      </default>"
        )
    body_lines: list[str] = []
    _body_xml(tree, 2, body_lines, root=True)
    excludes = ["thumb_metacarpal", *[f"{f}_proximal" for f in FINGERS]]
    acts = [f'    <position name="{j.name}" class="{j.cls}" joint="{j.name}" ctrlrange="{_v(j.range)}"/>'
            for j in _joints(tree)]
    return "\n".join([
        f'<mujoco model="human_{side}_hand">',
        f"  <!-- Adult human {side} hand, primitive geometry, 20 DoF. GENERATED by scripts/make_human_hand.py",
        "       from anthropometric data (see README.md); edit the script, not this file.",
        '       Names carry no side prefix: attach with prefix="left_"/"right_". -->',
        '  <compiler angle="radian"/>',
        "",
        "  <default>",
        '    <default class="human_hand">',
        '      <joint type="hinge" limited="true"/>',
        f'      <geom contype="1" conaffinity="1" condim="3" density="{_f(DENSITY)}" group="1" solref="0.005 1" solimp="0.95 0.99 0.001"/>',
        '      <position ctrllimited="true" forcelimited="true"/>',
        '      <default class="palm">',
        f'        <geom friction="{SKIN_FRICTION}" rgba="{SKIN}"/>',
        "      </default>",
        '      <default class="link">',
        f'        <geom friction="{SKIN_FRICTION}" rgba="{SKIN}"/>',
        "      </default>",
        '      <default class="pad">',
        f'        <geom condim="{PAD_CONDIM}" friction="{PAD_FRICTION}" rgba="{PAD}"/>',
        "      </default>",
        '      <default class="frame">',
        '        <site size="0.004" group="4" rgba="0.2 0.2 1 1"/>',
        "      </default>",
        '      <default class="fingertip">',
        '        <site size="0.003" group="4" rgba="1 0.2 0.2 1"/>',
        "      </default>",
        '      <default class="keypoint">',
        '        <site size="0.003" group="5" rgba="0.1 0.8 0.1 1"/>',
        "      </default>",
        *defaults,
        "    </default>",
        "  </default>",
        "",
        "  <worldbody>",
        "    <!-- Wrist frame: origin at the wrist joint centre, +x along the straight fingers, +z out of the",
        "         palm, +y = z cross x (the thumb is on -y for the right hand, +y for the left). -->",
        *body_lines,
        "  </worldbody>",
        "",
        "  <contact>",
        "    <!-- The palm holds the metacarpals: the thumb's metacarpal and the proximal phalanges sit in it. -->",
        *[f'    <exclude body1="hand" body2="{b}"/>' for b in excludes],
        "  </contact>",
        "",
        "  <actuator>",
        *acts,
        "  </actuator>",
        "</mujoco>",
        "",
    ])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="exit 1 if a committed file differs from the output")
    args = ap.parse_args()
    bad = 0
    for side in ("right", "left"):
        path = OUT_DIR / f"{side}_hand.xml"
        text = hand_xml(side)
        if args.check:
            if not path.is_file() or path.read_text() != text:
                print(f"{path} differs from scripts/make_human_hand.py's output", file=sys.stderr)
                bad = 1
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path}")
    return bad


if __name__ == "__main__":
    sys.exit(main())
