"""The bimanual rig: two hands on force-limited floating wrists, a table and three cameras.

Composition uses MuJoCo's `MjSpec` (no string templating): each side's robot-only hand file is attached
with the prefix `left_` / `right_` under a free-floating wrist body. Each wrist is driven by six
position actuators with *site transmission* relative to a mocap target (`refsite`): a Cartesian
impedance controller inside MuJoCo, so forces and torques are limited by `forcerange`, there is no
Euler-angle singularity, and no Python runs per physics substep. The env moves the mocap target (the
*commanded* wrist pose) once per control step, clipped to the embodiment's workspace and speed limits.

`RigHandles` resolves every element by name once after compilation; nothing indexes qpos by position.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
from numpy.typing import NDArray

from egosim.embodiment import SIDES, Embodiment
from egosim.errors import AssetError, ConfigError, InvalidChoiceError
from egosim.geometry import look_at_xyaxes, matrix_to_quat
from egosim.head import HEAD_MODES, look_at_matrix

DEFAULT_TIMESTEP = 0.002  # physics step (s) when neither the rig config nor the task names one
TABLE_HEIGHT = 0.75  # table-top surface, metres above the floor
TABLE_CENTER = (0.55, 0.0)
TABLE_HALF_SIZE = (0.35, 0.6, 0.02)
CAMERAS: tuple[str, str, str] = ("ego_view", "left_wrist_view", "right_wrist_view")
# The robots' head camera: above and behind the hands, looking at the table centre.
EGO_EYE = (0.12, 0.0, 1.36)
EGO_TARGET = (TABLE_CENTER[0], 0.0, TABLE_HEIGHT)

# Home wrist orientation: palm facing down (hand +z = world -z), fingers forward (hand +x = world +x).
HOME_WRIST_MAT = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])
_WRIST_AXES = ("x", "y", "z", "rx", "ry", "rz")


@dataclass(frozen=True)
class RigConfig:
    """Physics and camera settings of the rig.

    Attributes:
        timestep: Physics step (s); None: the task's `physics_timestep`, else `DEFAULT_TIMESTEP` (2 ms).
        image_size: (height, width) of policy camera images; 240 x 320 as GR00T N1.7's video keys.
        wrist_kp: Stiffness of the Cartesian wrist controller, translation (N/m).
        wrist_kp_rot: Stiffness of the Cartesian wrist controller, rotation (N m/rad).
        head_motion: How the ego camera of an embodiment with a head model (the human) moves:
            `auto` (the embodiment's default: natural for the human), `natural` (it looks at the
            working hand, `egosim.head`) or `fixed` (held at the robots' head-camera pose, for
            aligned human/robot data). Robots' head cameras are always fixed.
    """

    timestep: float | None = None
    image_size: tuple[int, int] = (240, 320)
    wrist_kp: float = 8000.0
    wrist_kp_rot: float = 150.0
    head_motion: str = "auto"

    def __post_init__(self) -> None:
        if self.head_motion not in HEAD_MODES:
            raise InvalidChoiceError("head_motion", self.head_motion, HEAD_MODES)
        if self.timestep is not None and not 1e-4 <= self.timestep <= 0.01:
            raise ConfigError(f"timestep {self.timestep} s outside [0.0001, 0.01]")
        h, w = self.image_size
        if not (16 <= h <= 2048 and 16 <= w <= 2048):
            raise ConfigError(f"image_size {self.image_size} outside 16..2048 pixels per side")


def build_rig(embodiment: Embodiment, config: RigConfig = RigConfig()) -> mujoco.MjSpec:
    """Composes the rig for an embodiment; tasks then add their props to the returned spec."""
    spec = mujoco.MjSpec()
    spec.modelname = f"egosim_rig_{embodiment.name}"
    spec.option.timestep = config.timestep if config.timestep is not None else DEFAULT_TIMESTEP
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = 10.0
    # MuJoCo's soft friction lets a held object creep out of a fingertip grasp under a steady
    # load (a marker tipped in a pinch slid out within a second); the no-slip pass removes that
    # drift. Without it the pen_in_bin expert's marker pinch fails (see the issue #2 note).
    spec.option.noslip_iterations = 4
    spec.visual.global_.offwidth = max(1280, config.image_size[1])
    spec.visual.global_.offheight = max(960, config.image_size[0])
    spec.visual.quality.offsamples = 0  # multisampling costs 2x in software rendering
    spec.visual.headlight.ambient = [0.35, 0.35, 0.35]
    spec.visual.headlight.diffuse = [0.5, 0.5, 0.5]
    _add_world(spec, embodiment)
    for side in SIDES:
        _add_hand(spec, embodiment, side, config)
    return spec


def moving_head(embodiment: Embodiment, config: RigConfig) -> bool:
    """Whether the ego camera moves like a head (`RigConfig.head_motion`)."""
    if embodiment.head_motion is None:
        if config.head_motion == "natural":
            raise ConfigError(f"head_motion='natural' needs an embodiment with a head model; {embodiment.name!r} "
                              "has a fixed head camera (use auto or fixed)")
        return False
    return config.head_motion != "fixed"


def _add_world(spec: mujoco.MjSpec, embodiment: Embodiment) -> None:
    wb = spec.worldbody
    spec.add_material(name="floor", rgba=[0.32, 0.34, 0.38, 1])
    spec.add_material(name="table", rgba=[0.72, 0.62, 0.48, 1])
    wb.add_light(name="top", pos=[0.4, 0.0, 2.5], dir=[0, 0, -1], castshadow=False, diffuse=[0.6, 0.6, 0.6])
    wb.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[3, 3, 0.1], material="floor")
    table = wb.add_body(name="table", pos=[TABLE_CENTER[0], TABLE_CENTER[1], TABLE_HEIGHT - TABLE_HALF_SIZE[2]])
    table.add_geom(name="table_top", type=mujoco.mjtGeom.mjGEOM_BOX, size=list(TABLE_HALF_SIZE), material="table")
    for i, (sx, sy) in enumerate(((1, 1), (1, -1), (-1, 1), (-1, -1))):
        table.add_geom(
            name=f"table_leg{i}", type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.03, 0.03, (TABLE_HEIGHT - 0.04) / 2],
            pos=[sx * (TABLE_HALF_SIZE[0] - 0.05), sy * (TABLE_HALF_SIZE[1] - 0.05), -(TABLE_HEIGHT - 0.04) / 2 - 0.02],
            material="table", contype=0, conaffinity=0,
        )
    # Head (egocentric) camera, above and behind the hands, looking at the table centre. An
    # embodiment with a head model carries it on a mocap body `head` that the env moves (or holds
    # at this pose); the camera is the body's frame (looking along -z, +y up).
    eye, target = np.array(EGO_EYE), np.array(EGO_TARGET)
    if embodiment.head_motion is not None:
        head = wb.add_body(name="head", mocap=True, pos=eye.tolist(), quat=matrix_to_quat(look_at_matrix(eye, target)).tolist())
        head.add_camera(name="ego_view", fovy=70.0)
    else:
        wb.add_camera(name="ego_view", pos=eye.tolist(), fovy=70.0,
                      xyaxes=look_at_xyaxes(target - eye, [0, 0, 1]).tolist())


def _add_hand(spec: mujoco.MjSpec, emb: Embodiment, side: str, config: RigConfig) -> None:
    home_pos = list(emb.home_wrist_pos[side])
    home_quat = matrix_to_quat(HOME_WRIST_MAT).tolist()
    target = spec.worldbody.add_body(name=f"{side}_wrist_target", mocap=True, pos=home_pos, quat=home_quat)
    target.add_site(name=f"{side}_wrist_target", size=[0.005, 0, 0], rgba=[0, 0, 0, 0], group=5)

    mount = spec.worldbody.add_body(name=f"{side}_wrist_mount", pos=home_pos, quat=home_quat)
    mount.add_freejoint(name=f"{side}_wrist_free")
    # A light forearm stub: gives the free body a well-conditioned inertia and a visible wrist.
    mount.add_geom(name=f"{side}_forearm", type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[0.03, 0.03, 0],
                   fromto=[-0.09, 0, 0, -0.015, 0, 0], rgba=[0.2, 0.2, 0.22, 1], mass=0.3,
                   contype=0, conaffinity=0)
    # Wrist camera: behind the wrist on the palm side, looking along the palm past the fingertips,
    # image-up toward the back of the hand (so a palm-down hand sees the table the right way up).
    cam_pos = np.array([-0.04, 0.0, 0.06])
    look = np.array([0.16, 0.0, 0.03]) - cam_pos
    mount.add_camera(name=f"{side}_wrist_view", pos=cam_pos.tolist(), fovy=90.0,
                     xyaxes=look_at_xyaxes(look, [0.0, 0.0, -1.0]).tolist())

    try:
        hand = mujoco.MjSpec.from_file(emb.hand_xml(side))
    except ValueError as exc:
        raise AssetError(f"cannot load {emb.hand_xml(side)}: {exc}") from exc
    hand_root = hand.body("hand")
    if hand_root is None:
        raise AssetError(f"{emb.hand_xml(side)} has no root body named 'hand'")
    mount.add_frame().attach_body(hand_root, f"{side}_", "")
    for body in mount.find_all(mujoco.mjtObj.mjOBJ_BODY):
        body.gravcomp = 1.0  # the arm holds its own weight; grasped objects still weigh
    mount.gravcomp = 1.0

    wrist_site = Embodiment.prefixed(side, emb.wrist_site)
    for i, axis in enumerate(_WRIST_AXES):
        gear = [0.0] * 6
        gear[i] = 1.0
        rot = i >= 3
        kp = config.wrist_kp_rot if rot else config.wrist_kp
        limit = emb.wrist_torque if rot else emb.wrist_force
        spec.add_actuator(
            name=f"{side}_wrist_{axis}", trntype=mujoco.mjtTrn.mjTRN_SITE, target=wrist_site,
            refsite=f"{side}_wrist_target", gear=gear,
            gaintype=mujoco.mjtGain.mjGAIN_FIXED, gainprm=[kp] + [0.0] * 9,
            biastype=mujoco.mjtBias.mjBIAS_AFFINE, biasprm=[0.0, -kp, -(2.5 if rot else 180.0)] + [0.0] * 7,
            ctrlrange=[-1.0, 1.0], ctrllimited=True, forcerange=[-limit, limit], forcelimited=True,
        )


@dataclass(frozen=True)
class HandHandles:
    """Ids of one side's hand in a compiled rig, resolved by name once."""

    side: str
    joint_qpos: NDArray[np.intp]
    joint_dof: NDArray[np.intp]
    actuators: NDArray[np.intp]
    ctrl_low: NDArray[np.float64]
    ctrl_high: NDArray[np.float64]
    wrist_site: int
    palm_site: int
    fingertip_sites: dict[str, int]
    target_mocap: int
    free_qpos: int
    free_dof: int
    mount_body: int
    bodies: frozenset[int]
    wrist_actuators: NDArray[np.intp]
    camera: int


@dataclass(frozen=True)
class RigHandles:
    """Semantic handles into a compiled rig: both hands, the cameras and the table."""

    hands: dict[str, HandHandles]
    cameras: dict[str, int]
    table_geom: int
    head_mocap: int = -1  # mocap index of the `head` body (-1: the robots' fixed head camera)

    @classmethod
    def resolve(cls, model: mujoco.MjModel, emb: Embodiment) -> RigHandles:
        def lookup(kind: mujoco.mjtObj, name: str) -> int:
            idx = mujoco.mj_name2id(model, kind, name)
            if idx < 0:
                raise AssetError(f"{kind.name[6:].lower()} {name!r} not found in the compiled rig")
            return idx

        hands = {}
        for side in SIDES:
            p = lambda n, s=side: Embodiment.prefixed(s, n)  # noqa: E731
            joints = [lookup(mujoco.mjtObj.mjOBJ_JOINT, p(j)) for j in emb.joint_names]
            acts = np.array([lookup(mujoco.mjtObj.mjOBJ_ACTUATOR, p(j)) for j in emb.joint_names])
            mount = lookup(mujoco.mjtObj.mjOBJ_BODY, f"{side}_wrist_mount")
            free = lookup(mujoco.mjtObj.mjOBJ_JOINT, f"{side}_wrist_free")
            bodies = frozenset(b for b in range(model.nbody) if _is_descendant(model, b, mount))
            hands[side] = HandHandles(
                side=side,
                joint_qpos=model.jnt_qposadr[joints].astype(np.intp),
                joint_dof=model.jnt_dofadr[joints].astype(np.intp),
                actuators=acts.astype(np.intp),
                ctrl_low=model.actuator_ctrlrange[acts, 0].copy(),
                ctrl_high=model.actuator_ctrlrange[acts, 1].copy(),
                wrist_site=lookup(mujoco.mjtObj.mjOBJ_SITE, p(emb.wrist_site)),
                palm_site=lookup(mujoco.mjtObj.mjOBJ_SITE, p(emb.palm_site)),
                fingertip_sites={s: lookup(mujoco.mjtObj.mjOBJ_SITE, p(s)) for s in emb.fingertip_sites},
                target_mocap=int(model.body_mocapid[lookup(mujoco.mjtObj.mjOBJ_BODY, f"{side}_wrist_target")]),
                free_qpos=int(model.jnt_qposadr[free]),
                free_dof=int(model.jnt_dofadr[free]),
                mount_body=mount,
                bodies=bodies,
                wrist_actuators=np.array(
                    [lookup(mujoco.mjtObj.mjOBJ_ACTUATOR, f"{side}_wrist_{a}") for a in _WRIST_AXES], dtype=np.intp
                ),
                camera=lookup(mujoco.mjtObj.mjOBJ_CAMERA, f"{side}_wrist_view"),
            )
        cameras = {name: lookup(mujoco.mjtObj.mjOBJ_CAMERA, name) for name in CAMERAS}
        head = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "head")
        return cls(hands=hands, cameras=cameras, table_geom=lookup(mujoco.mjtObj.mjOBJ_GEOM, "table_top"),
                   head_mocap=int(model.body_mocapid[head]) if head >= 0 else -1)


def _is_descendant(model: mujoco.MjModel, body: int, ancestor: int) -> bool:
    while body > 0:
        if body == ancestor:
            return True
        body = int(model.body_parentid[body])
    return ancestor == 0
