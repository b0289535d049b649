"""Embodiment records: the one place hand facts live, and the registry that names them.

Tasks and experts never branch on an embodiment's name. They use the semantic handles an
`Embodiment` declares (joint groups, fingertip sites, the wrist and palm sites, grasp poses and the
wrist workspace); the rig resolves those names in the compiled model once (see `egosim.rig`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from egosim.errors import ConfigError, InvalidChoiceError
from egosim.head import HeadMotion
from egosim.paths import asset_path

SIDES: tuple[str, str] = ("left", "right")
ROBOT_TAG = "robot"  # the benchmark's robot hands: what `embodiments=all` selects
HUMAN_TAG = "human"  # the simulated human demonstrator: only when named

# The 21 human keypoints per hand (DESIGN.md "Data"): wrist; thumb knuckle, intermediate base,
# intermediate tip, tip; then index, middle, ring and little finger, each knuckle, intermediate base,
# intermediate tip, tip.
HUMAN_KEYPOINTS: tuple[str, ...] = ("wrist",) + tuple(
    f"{finger}_{part}"
    for finger in ("thumb", "index", "middle", "ring", "little")
    for part in ("knuckle", "intermediate_base", "intermediate_tip", "tip")
)


@dataclass(frozen=True)
class Workspace:
    """Axis-aligned box (rig frame, metres) that a commanded wrist position is clipped into."""

    low: tuple[float, float, float]
    high: tuple[float, float, float]

    def __post_init__(self) -> None:
        if len(self.low) != 3 or len(self.high) != 3 or any(lo >= hi for lo, hi in zip(self.low, self.high)):
            raise ConfigError(f"workspace needs low < high on x, y, z; got low={self.low} high={self.high}")

    def clip(self, pos: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.minimum(np.maximum(pos, self.low), self.high)

    def contains(self, pos: NDArray[np.float64], tol: float = 1e-9) -> bool:
        return bool(np.all(pos >= np.asarray(self.low) - tol) and np.all(pos <= np.asarray(self.high) + tol))


@dataclass(frozen=True)
class Embodiment:
    """Everything egosim knows about one bimanual hand embodiment.

    Element names are unprefixed, as in the hand's MJCF file; the rig attaches each side's file with the
    prefix `left_` / `right_` (see `prefixed`).

    Attributes:
        name: Registry key (`sharpa_wave`), used on the command line.
        env_name: CamelCase name used in env ids (`SharpaWave`).
        asset_dir: Folder under `assets/` with `left_hand.xml` and `right_hand.xml`.
        robot: The robot the hands are mounted on, for reports.
        joint_names: Hand joints in action/state order.
        fingertip_sites: Fingertip sites; the thumb first, then the opposing fingers.
        home_wrist_pos: Wrist positions at reset per side (rig frame).
        workspace: Box per side that commanded wrist positions are clipped into.
        max_wrist_speed: Linear speed limit of the commanded wrist (m/s).
        max_wrist_rot_speed: Angular speed limit of the commanded wrist (rad/s).
        wrist_force: Force limit of each translational wrist actuator (N).
        wrist_torque: Torque limit of each rotational wrist actuator (N m).
        grasp_poses: Named hand-joint targets per side (`open`, `pre_pinch`, `pinch`, `pre_tripod`,
            `tripod`, `power`, `claw`), for experts.
        keypoint_map: Human keypoint name -> site (unprefixed): for a robot, the sites retargeting
            (`egosim.retarget`) matches human keypoints to (fingertips, and the knuckle / PIP / DIP
            (thumb: CMC / MCP / IP) sites the hand has); for the human hand, all 21, which the env
            reports each step (`EgosimEnv.human_observation`).
        human_scale: Robot hand size / reference human hand size: human keypoints relative to the wrist
            are multiplied by it before they become robot targets.
        human_wrist_offset: Per side, the robot wrist site's pose (xyz + wxyz) in the (scaled) human's
            canonical wrist frame (`egosim.keypoints`): robot wrist = human wrist pose x this offset.
            How both are chosen: `egosim.retarget.measure_human_alignment` (the tests check these
            values against it).
        wrist_site, palm_site: The wrist frame (+x along the straight fingers, +z out of the palm) and
            the palm's centre, on its inner face.
        tags: `robot` for the benchmark's robot hands (what `embodiments=all` selects), `human` for the
            demonstrator, plus descriptive tags.
        head_motion: How the ego camera moves (`egosim.head`); None: a head camera fixed on the robot.
        pinch_hold: Where experts place a thin object (a marker) in a top-down pinch, from the pinch
            point (0: where the pads meet closing on nothing) to where the closing pads first meet an
            object of its thickness from both sides (1, `GraspGeometry.center_at_width`). Measured per
            hand by expert success; see `egosim.hands`.
    """

    name: str
    env_name: str
    asset_dir: str
    robot: str
    joint_names: tuple[str, ...]
    fingertip_sites: tuple[str, ...]
    home_wrist_pos: Mapping[str, tuple[float, float, float]]
    workspace: Mapping[str, Workspace]
    max_wrist_speed: float
    max_wrist_rot_speed: float
    wrist_force: float
    wrist_torque: float
    grasp_poses: Mapping[str, Mapping[str, tuple[float, ...]]]
    keypoint_map: Mapping[str, str] = field(default_factory=dict)
    human_scale: float = 1.0
    human_wrist_offset: Mapping[str, tuple[float, ...]] = field(
        default_factory=lambda: {side: (0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0) for side in SIDES})
    wrist_site: str = "wrist"
    palm_site: str = "palm_center"
    tags: frozenset[str] = frozenset()
    head_motion: HeadMotion | None = None
    pinch_hold: float = 0.0

    def __post_init__(self) -> None:
        for pose, per_side in self.grasp_poses.items():
            for side in SIDES:
                if len(per_side.get(side, ())) != self.dof:
                    raise ConfigError(f"{self.name}: grasp pose {pose!r} needs {self.dof} values for side {side!r}")
        for key in self.keypoint_map:
            if key not in HUMAN_KEYPOINTS:
                raise InvalidChoiceError("human keypoint", key, HUMAN_KEYPOINTS)
        if not 0.0 <= self.pinch_hold <= 1.0:
            raise ConfigError(f"{self.name}: pinch_hold must be in [0, 1], got {self.pinch_hold}")
        if not self.human_scale > 0.0:
            raise ConfigError(f"{self.name}: human_scale must be > 0, got {self.human_scale}")
        for side in SIDES:
            off = np.asarray(self.human_wrist_offset.get(side, ()), dtype=np.float64)
            if off.shape != (7,) or abs(np.linalg.norm(off[3:]) - 1.0) > 1e-3:
                raise ConfigError(f"{self.name}: human_wrist_offset[{side!r}] must be xyz + a unit quaternion wxyz")
        for side in SIDES:
            if not self.workspace[side].contains(np.asarray(self.home_wrist_pos[side])):
                raise ConfigError(f"{self.name}: home wrist position of {side} lies outside its workspace")

    @property
    def is_human(self) -> bool:
        """The simulated human demonstrator (tag `human`): the env reports its keypoints each step."""
        return HUMAN_TAG in self.tags

    @property
    def dof(self) -> int:
        """Hand joints per side."""
        return len(self.joint_names)

    @property
    def action_dim(self) -> int:
        """Bimanual action size: 2 x (wrist 9 + hand joints)."""
        return 2 * (9 + self.dof)

    @staticmethod
    def prefixed(side: str, name: str) -> str:
        """The name an element of the hand file gets in the rig (`right_` + name)."""
        if side not in SIDES:
            raise InvalidChoiceError("side", side, SIDES)
        return f"{side}_{name}"

    def hand_xml(self, side: str) -> str:
        """Path of the robot-only MJCF of one hand."""
        if side not in SIDES:
            raise InvalidChoiceError("side", side, SIDES)
        return str(asset_path(self.asset_dir, f"{side}_hand.xml"))

    def joint_limits(self, side: str) -> NDArray[np.float64]:
        """(dof, 2) joint ranges of one hand, read from its MJCF (the single source of limits)."""
        return _joint_limits(self.hand_xml(side), self.joint_names).copy()

    def grasp_pose(self, name: str, side: str) -> NDArray[np.float64]:
        """Joint targets of a named grasp pose for one side."""
        if name not in self.grasp_poses:
            raise InvalidChoiceError(f"{self.name} grasp pose", name, self.grasp_poses)
        return np.asarray(self.grasp_poses[name][side], dtype=np.float64)


@functools.lru_cache(maxsize=None)
def _joint_limits(xml_path: str, joint_names: tuple[str, ...]) -> NDArray[np.float64]:
    import mujoco

    model = mujoco.MjModel.from_xml_path(xml_path)
    out = np.empty((len(joint_names), 2))
    for i, name in enumerate(joint_names):
        jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
        if jid < 0:
            raise ConfigError(f"joint {name!r} not found in {xml_path}")
        out[i] = model.jnt_range[jid]
    return out


_REGISTRY: dict[str, Embodiment] = {}


def register_embodiment(embodiment: Embodiment) -> Embodiment:
    """Adds an embodiment to the registry (names must be unique)."""
    if embodiment.name in _REGISTRY:
        raise ConfigError(f"embodiment {embodiment.name!r} is already registered")
    _REGISTRY[embodiment.name] = embodiment
    return embodiment


def get_embodiment(name: str | Embodiment) -> Embodiment:
    """Looks an embodiment up by registry name; raises `InvalidChoiceError` listing the valid names."""
    if isinstance(name, Embodiment):
        return name
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InvalidChoiceError("embodiment", name, _REGISTRY) from None


def embodiment_names(tag: str | None = None) -> tuple[str, ...]:
    """Registered embodiment names in registration order, optionally only those carrying `tag`
    (`robot`: the benchmark's robot hands; `human`: the demonstrator)."""
    _load_builtin()
    return tuple(n for n, e in _REGISTRY.items() if tag is None or tag in e.tags)


def _load_builtin() -> None:
    import egosim.hands  # noqa: F401  (registers sharpa_wave, unitree_dex3 and human on first import)
