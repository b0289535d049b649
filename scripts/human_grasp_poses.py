"""Measures the human hand's grasp poses on its model (the values in `egosim/hands.py`'s HUMAN record).

Each pose is found the way the robot hands' were (assets/*/README.md), by a search over the model's
forward kinematics or by letting the fingers close on a fixed object in simulation:

- `open`: the flat hand with the thumb swung out into the palm plane (its zero pose stands 35 deg
  out of the palm, where it would meet objects under the hand first).
- `pinch`: the thumb pad meets the index pad, pad normals opposed, the index flexed mostly at its
  MCP (as Sharpa Wave's), closing PINCH_PAST beyond contact so that a held object leaves the fingers
  short of their targets and they squeeze; a least-squares search over the thumb and index joints.
- `pre_pinch`: 30 % of the way from `open` to `pinch` (as on Sharpa Wave).
- `pre_tripod` -> `tripod`: `pre_pinch` -> `pinch` with the middle finger flexed like the index,
  beside it (Sharpa Wave's rule): a thin rim pinched by two pads is a hinge, the third pad stops it.
- `claw`: palm down over an 80 mm-wide object such as pen_in_bin's canister: the fingertip and thumb
  tip pads on a circle around the claw centre (where `GraspGeometry` puts the object's axis), at one
  depth, the fingers curled over the rim (PIP above it, DIP outside the wall) and spread around the
  object; a least-squares search over the thumb, the fingers' common curl and their abduction.
- `power`: the pose the fingers settle in around a fixed 35 mm-radius cylinder under the knuckles
  (full flexion commanded for 1 s).

    python scripts/human_grasp_poses.py     # prints the poses and their measurements (needs scipy)
"""

from __future__ import annotations

import mujoco
import numpy as np
from scipy.optimize import least_squares

from egosim.paths import asset_path

FINGERS = ("index", "middle", "ring", "little")
XML = str(asset_path("human_hand", "right_hand.xml"))
OPEN = {"thumb_CMC_FE": -0.3, "thumb_CMC_AA": -0.4}  # flat hand, thumb swung out into the palm plane
PINCH_PAST = 0.016  # the pinch's tip sites cross this far (m) along the thumb pad's normal
PRE_PINCH_FRACTION = 0.3
CLAW_RADIUS = 0.042  # fingertip sites around an 80 mm-wide (40 mm-radius) object, 2 mm out
CLAW_CURL = np.array([0.50, 0.50, 0.35])  # preferred MCP_FE, PIP, DIP of every finger in the claw
CLAW_DEPTH = 0.055  # fingertip sites this far below the wrist (along the palm normal)
RIM_BELOW_PALM = 0.012  # pen_in_bin's expert puts the canister's rim this far below the palm face
SIDE_GAP = 0.018  # neighbouring fingertips at least this far apart sideways (they do not cross)
POWER_RADIUS = 0.035
POWER_X = 0.09  # cylinder axis under the knuckles: nearer the wrist, the thenar eminence pushes it out


def _model() -> tuple[mujoco.MjModel, mujoco.MjData]:
    model = mujoco.MjModel.from_xml_path(XML)
    return model, mujoco.MjData(model)


def _set(model: mujoco.MjModel, data: mujoco.MjData, values: dict[str, float]) -> None:
    data.qpos[:] = 0
    for name, v in values.items():
        data.qpos[model.jnt_qposadr[model.joint(name).id]] = v
    mujoco.mj_kinematics(model, data)


def _limits(model: mujoco.MjModel, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    r = np.array([model.jnt_range[model.joint(n).id] for n in names])
    return r[:, 0], r[:, 1]


def _solve(res, lo: np.ndarray, hi: np.ndarray, seeds: int = 12) -> np.ndarray:
    best = None
    for s in range(seeds):
        x0 = lo + np.random.default_rng(s).random(len(lo)) * (hi - lo)
        r = least_squares(res, x0, bounds=(lo, hi))
        if best is None or r.cost < best.cost:
            best = r
    return best.x


def pinch() -> dict[str, float]:
    model, data = _model()
    names = ["thumb_CMC_FE", "thumb_CMC_AA", "thumb_MCP", "thumb_IP", "index_MCP_FE", "index_PIP", "index_DIP"]
    lo, hi = _limits(model, names)

    def res(x: np.ndarray) -> np.ndarray:
        _set(model, data, dict(zip(names, x)))
        t, i = data.site("thumb_tip"), data.site("index_tip")
        margin = np.maximum(0, lo + 0.12 - x) + np.maximum(0, x - hi + 0.12)  # stay off the joint limits
        past = (t.xpos - i.xpos) - PINCH_PAST * t.xmat[[2, 5, 8]]
        return np.concatenate([past * 100, (t.xmat[[2, 5, 8]] + i.xmat[[2, 5, 8]]) * 0.7, margin * 10])

    return {k: round(float(v), 3) for k, v in zip(names, _solve(res, lo, hi))}


def pre_pinch(pinch_pose: dict[str, float]) -> dict[str, float]:
    keys = {*OPEN, *pinch_pose}
    return {k: round(OPEN.get(k, 0.0) + PRE_PINCH_FRACTION * (pinch_pose.get(k, 0.0) - OPEN.get(k, 0.0)), 3)
            for k in keys}


def with_middle_like_index(pose: dict[str, float]) -> dict[str, float]:
    """The pose with the middle finger's flexion copied from the index (the tripod poses)."""
    return {**pose, **{f"middle_{j}": pose.get(f"index_{j}", 0.0) for j in ("MCP_FE", "PIP", "DIP")}}


def claw() -> dict[str, float]:
    """Fingertips and thumb tip on a circle of radius CLAW_RADIUS around the claw centre (the midpoint
    of the thumb tip and the fingertips' mean, where `GraspGeometry` puts an object's axis), at one
    depth: the fingers curl alike and spread (MCP_AA) around the object."""
    model, data = _model()
    names = ["thumb_CMC_FE", "thumb_CMC_AA", "thumb_MCP", "thumb_IP", "MCP_FE", "PIP", "DIP"]
    names += [f"{f}_MCP_AA" for f in FINGERS]
    lo, hi = _limits(model, names[:4])
    aa_lo, aa_hi = _limits(model, names[7:])
    lo = np.concatenate([lo, [0.0, 0.0, 0.0], aa_lo])
    hi = np.concatenate([hi, [1.0, 1.0, 0.8], aa_hi])  # a claw, not a fist

    def pose(x: np.ndarray) -> dict[str, float]:
        curl = {f"{f}_{j}": v for f in FINGERS for j, v in zip(names[4:7], x[4:7])}
        return {**curl, **dict(zip(names[:4], x[:4])), **dict(zip(names[7:], x[7:]))}

    def res(x: np.ndarray) -> np.ndarray:
        _set(model, data, pose(x))
        tips = np.array([data.site(f"{f}_tip").xpos for f in FINGERS])
        thumb = data.site("thumb_tip").xpos
        centre = 0.5 * (thumb + tips.mean(axis=0))
        radii = np.linalg.norm(np.vstack([tips, thumb])[:, :2] - centre[:2], axis=1)
        margin = np.maximum(0, lo + 0.05 - x) + np.maximum(0, x - hi + 0.05)
        # Over the rim and down the outside: each finger's PIP joint stays above the rim (which the
        # expert puts 12 mm below the palm face) and its DIP joint outside the wall, so the links
        # do not rest on the rim (straight fingers sloping down did, and the canister slipped out).
        rim = float(model.site("palm_center").pos[2]) + RIM_BELOW_PALM
        pips = np.array([data.site(f"kp_{f}_intermediate_base").xpos for f in FINGERS])
        dips = np.array([data.site(f"kp_{f}_intermediate_tip").xpos for f in FINGERS])
        dip_r = np.linalg.norm(dips[:, :2] - centre[:2], axis=1)
        clear = np.concatenate([np.maximum(0.0, pips[:, 2] - (rim - 0.010)), np.maximum(0.0, CLAW_RADIUS + 0.005 - dip_r)])
        return np.concatenate([(radii - CLAW_RADIUS) * 100, (np.append(tips[:, 2], thumb[2]) - CLAW_DEPTH) * 50,
                               clear * 100,
                               [centre[1] * 5, max(0.0, 0.06 - (tips[:, 0].mean() - thumb[0])) * 100],
                               np.maximum(0.0, SIDE_GAP - np.diff(tips[:, 1])) * 100,  # index to little along +y
                               (x[4:7] - CLAW_CURL) * 0.3, margin * 10])

    return {k: round(float(v), 3) for k, v in pose(_solve(res, lo, hi)).items()}


def power() -> dict[str, float]:
    """Closes the hand on a fixed cylinder (axis along hand y, touching the palm) and reads the pose."""
    spec = mujoco.MjSpec.from_file(XML)
    spec.option.timestep = 0.002
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    model0 = spec.compile()
    palm_face = float(model0.site("palm_center").pos[2])
    spec.worldbody.add_geom(name="cylinder", type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[POWER_RADIUS, 0.06, 0],
                            pos=[POWER_X, 0, palm_face + POWER_RADIUS + 0.001], quat=[0.7071068, 0.7071068, 0, 0])
    model = spec.compile()
    data = mujoco.MjData(model)
    ctrl = {"thumb_CMC_FE": 0.2, "thumb_CMC_AA": 0.3, "thumb_MCP": 0.6, "thumb_IP": 1.0}
    for f in FINGERS:
        ctrl.update({f"{f}_MCP_FE": 1.5708, f"{f}_PIP": 1.7453, f"{f}_DIP": 1.3963})
    for name, v in ctrl.items():
        data.ctrl[model.actuator(name).id] = v
    for _ in range(500):
        mujoco.mj_step(model, data)
    # (a joint the cylinder pushed a little past its soft limit is read at the limit)
    return {model.joint(j).name: round(float(np.clip(data.qpos[model.jnt_qposadr[j]], *model.jnt_range[j])), 2)
            for j in range(model.njnt)}


def report(name: str, pose: dict[str, float]) -> None:
    model, data = _model()
    _set(model, data, pose)
    print(f"{name}: {pose}")
    for s in ("thumb_tip", *[f"{f}_tip" for f in FINGERS]):
        print(f"    {s:<11} {np.round(data.site(s).xpos, 4)}")


def as_tuple(pose: dict[str, float]) -> tuple[float, ...]:
    """A pose in the embodiment's joint order (the hand file's joint order), zeros elsewhere."""
    model, _ = _model()
    return tuple(round(float(pose.get(model.joint(j).name, 0.0)), 3) for j in range(model.njnt))


def main() -> None:
    report("open", OPEN)
    p = pinch()
    report("pinch", p)
    model, data = _model()
    _set(model, data, p)
    t, i = data.site("thumb_tip"), data.site("index_tip")
    angle = np.degrees(np.arccos(np.clip(t.xmat[[2, 5, 8]] @ i.xmat[[2, 5, 8]], -1, 1)))
    print(f"    tip sites {1000 * np.linalg.norm(t.xpos - i.xpos):.1f} mm apart, pad normals {angle:.0f} deg apart")
    pre = pre_pinch(p)
    report("pre_pinch", pre)
    c, w = claw(), power()
    report("claw", c)
    report("power", w)
    print("\nin joint order (egosim/hands.py):")
    poses = (("open", OPEN), ("pre_pinch", pre), ("pinch", p), ("pre_tripod", with_middle_like_index(pre)),
             ("tripod", with_middle_like_index(p)), ("power", w), ("claw", c))
    for name, pose in poses:
        print(f"    {name}: {as_tuple(pose)}")


if __name__ == "__main__":
    main()
