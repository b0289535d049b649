"""The built-in embodiments: Sharpa Wave (22 DoF, on a Galaxea R1 Pro), Unitree Dex3-1 (7 DoF, on a G1)
and the simulated human demonstrator (20 DoF human hands, a moving head).

Joint names, order and limits follow the public models (assets/*/README.md). Workspaces are wrist
positions in the rig frame (x forward, y left, z up; table top at z = 0.75 m): the G1's shorter arms
reach less than the R1 Pro's. Grasp poses were measured on the models (see each asset README).
"""

from __future__ import annotations

from egosim.embodiment import HUMAN_KEYPOINTS, Embodiment, Workspace, register_embodiment
from egosim.head import HeadMotion

SHARPA_JOINTS = (
    "thumb_CMC_FE", "thumb_CMC_AA", "thumb_MCP_FE", "thumb_MCP_AA", "thumb_IP",
    "index_MCP_FE", "index_MCP_AA", "index_PIP", "index_DIP",
    "middle_MCP_FE", "middle_MCP_AA", "middle_PIP", "middle_DIP",
    "ring_MCP_FE", "ring_MCP_AA", "ring_PIP", "ring_DIP",
    "pinky_CMC", "pinky_MCP_FE", "pinky_MCP_AA", "pinky_PIP", "pinky_DIP",
)  # fmt: skip

DEX3_JOINTS = (
    "hand_thumb_0_joint", "hand_thumb_1_joint", "hand_thumb_2_joint",
    "hand_middle_0_joint", "hand_middle_1_joint", "hand_index_0_joint", "hand_index_1_joint",
)  # fmt: skip


# Measured by egosim.retarget.measure_human_alignment (scale from the open hands' wrist-to-fingertip
# distances, offsets by a Kabsch fit of the open robot hand onto the scaled reference human hand);
# tests/test_retarget.py checks these values against a fresh measurement.
HUMAN_SCALE = {"sharpa_wave": 1.0841, "unitree_dex3": 0.8785}
HUMAN_WRIST_OFFSET: dict[str, dict[str, tuple[float, ...]]] = {
    "sharpa_wave": {
        "left": (-0.0003, -0.0002, 0.002, 0.999, 0.021, 0.0188, -0.0355),
        "right": (-0.0003, 0.0002, 0.002, 0.999, -0.021, 0.0188, 0.0355),
    },
    "unitree_dex3": {
        "left": (0.0025, 0.0005, 0.0032, 0.9983, 0.0057, 0.0314, 0.0479),
        "right": (0.0025, -0.0005, 0.0032, 0.9983, -0.0057, 0.0314, -0.0479),
    },
}


def _mirror(pose: tuple[float, ...]) -> dict[str, tuple[float, ...]]:
    """Same joint values on both sides (hands whose positive angles flex on both sides)."""
    return {"left": pose, "right": pose}


def _mirror_all(poses: dict[str, tuple[float, ...]]) -> dict[str, dict[str, tuple[float, ...]]]:
    """`_mirror` for every named pose."""
    return {name: _mirror(pose) for name, pose in poses.items()}


def _dex3_sides(right: tuple[float, ...]) -> dict[str, tuple[float, ...]]:
    """Dex3-1 grasp pose for both sides from the right hand's values: the left URDF negates every
    flexion axis but keeps thumb_0's."""
    return {"right": right, "left": (right[0],) + tuple(-v for v in right[1:])}


SHARPA_WAVE = register_embodiment(
    Embodiment(
        name="sharpa_wave",
        env_name="SharpaWave",
        asset_dir="sharpa_wave",
        robot="Galaxea R1 Pro (fixed base and torso)",
        joint_names=SHARPA_JOINTS,
        fingertip_sites=("thumb_tip", "index_tip", "middle_tip", "ring_tip", "pinky_tip"),
        home_wrist_pos={"left": (0.28, 0.22, 0.95), "right": (0.28, -0.22, 0.95)},
        workspace={
            "left": Workspace(low=(0.15, -0.25, 0.77), high=(0.85, 0.55, 1.30)),
            "right": Workspace(low=(0.15, -0.55, 0.77), high=(0.85, 0.25, 1.30)),
        },
        max_wrist_speed=0.6,
        max_wrist_rot_speed=3.0,
        wrist_force=100.0,
        wrist_torque=15.0,
        # Measured on the model (assets/sharpa_wave/README.md). pinch: thumb pad meets the index pad
        # (sites 2.3 mm apart, pad normals 153 deg apart); pre_pinch: 30 % of the way there; power: the
        # pose the fingers settle in around a 35 mm-radius cylinder held against the palm; claw: palm
        # down over an 80 mm-wide object, the four fingertips down its far side and the opposed thumb
        # tip down its near side, 7 cm below the wrist. pre_tripod -> tripod: pre_pinch -> pinch with
        # the middle finger flexed like the index, its pad 2 cm beside the index pad: on a thin rim
        # the thumb meets the index from one side and the middle rests beside the index, so the
        # rim cannot turn about the line through the two opposed pads (a two-pad pinch is a hinge).
        grasp_poses={
            "open": _mirror((0.0,) * 22),
            "pre_pinch": _mirror(
                (0.488, 0.057, -0.157, 0.028, 0.0, 0.41, 0.0, 0.0, 0.0) + (0.0,) * 13
            ),
            "pinch": _mirror(
                (1.627, 0.191, -0.524, 0.094, 0.0, 1.367, 0.0, 0.0, 0.0) + (0.0,) * 13
            ),
            "pre_tripod": _mirror(
                (0.488, 0.057, -0.157, 0.028, 0.0, 0.41, 0.0, 0.0, 0.0, 0.41, 0.0, 0.0, 0.0) + (0.0,) * 9
            ),
            "tripod": _mirror(
                (1.627, 0.191, -0.524, 0.094, 0.0, 1.367, 0.0, 0.0, 0.0, 1.367, 0.0, 0.0, 0.0) + (0.0,) * 9
            ),
            "power": _mirror(
                (-0.14, -0.06, 0.75, 0.07, 1.08, 1.09, -0.01, 0.41, 0.91, 1.18, -0.02, 0.29, 0.94,
                 1.03, -0.02, 0.39, 0.99, 0.09, 0.85, 0.04, 0.70, 0.66)
            ),
            "claw": _mirror(
                (1.27, -0.35, 1.01, -0.35, 1.47) + (0.55, 0.0, 0.5, 0.35) * 3 + (0.0, 0.55, 0.0, 0.5, 0.35)
            ),
        },
        # Every human keypoint has a robot site: joint-centre sites (knuckle = MCP, intermediate base =
        # PIP, intermediate tip = DIP; the thumb's CMC, MCP, IP) at the joint bodies' origins, and the
        # pad sites for the tips.
        keypoint_map={"wrist": "wrist", "thumb_knuckle": "thumb_cmc", "thumb_intermediate_base": "thumb_mcp",
                      "thumb_intermediate_tip": "thumb_ip", "thumb_tip": "thumb_tip"} | {
            f"{human}_{part}": f"{robot}_{site}"
            for human, robot in (("index", "index"), ("middle", "middle"), ("ring", "ring"), ("little", "pinky"))
            for part, site in (("knuckle", "mcp"), ("intermediate_base", "pip"), ("intermediate_tip", "dip"),
                               ("tip", "tip"))
        },
        # egosim.retarget.measure_human_alignment: the open hand is 8 % larger than the reference human hand.
        human_scale=HUMAN_SCALE["sharpa_wave"],
        human_wrist_offset=HUMAN_WRIST_OFFSET["sharpa_wave"],
        tags=frozenset({"robot", "r1pro", "22dof"}),
    )
)

_DEX3_POWER = (0.0, -0.19, -0.43, 0.51, 0.98, 0.51, 0.98)  # also Dex3's claw (see its grasp_poses comment)
_DEX3_PRE_PINCH = (0.0, 0.72, -1.5, 1.3, 0.3, 1.3, 0.3)  # also pre_tripod, and pinch also tripod
_DEX3_PINCH = (0.0, 0.285, -1.35, 1.57, 0.3, 1.57, 0.3)

UNITREE_DEX3 = register_embodiment(
    Embodiment(
        name="unitree_dex3",
        env_name="Dex3",
        asset_dir="unitree_dex3",
        robot="Unitree G1 (lower body held by a balance controller; fixed here)",
        joint_names=DEX3_JOINTS,
        fingertip_sites=("thumb_tip", "index_tip", "middle_tip"),
        home_wrist_pos={"left": (0.28, 0.2, 0.93), "right": (0.28, -0.2, 0.93)},
        workspace={
            "left": Workspace(low=(0.2, -0.2, 0.77), high=(0.68, 0.45, 1.15)),
            "right": Workspace(low=(0.2, -0.45, 0.77), high=(0.68, 0.2, 1.15)),
        },
        max_wrist_speed=0.5,
        max_wrist_rot_speed=2.5,
        wrist_force=60.0,
        wrist_torque=8.0,
        # Right-hand values; the left hand's flexion signs are mirrored (its URDF convention), thumb_0 is not.
        # open: thumb swung back 0.3 rad so it clears objects under the palm. pre_pinch -> pinch: a
        # tripod for thin objects lying on a table, found by a search over the model's kinematics:
        # index and middle stay near vertical (their distal ends meet the object's side), the hooked
        # thumb closes about 16 mm past contact with an 18 mm-thick object at the same depth, so
        # the squeeze does not lift the fingertips up the object. power: closes around a 35 mm-radius
        # cylinder; from above, the same pose is already a claw (thumb down one side of an 80 mm-wide
        # object, index and middle down the other), so claw = power. The pinch already is a tripod
        # (thumb against index and middle), so pre_tripod/tripod = pre_pinch/pinch.
        grasp_poses={
            "open": _dex3_sides((0.0, 0.3, 0.0, 0.0, 0.0, 0.0, 0.0)),
            "pre_pinch": _dex3_sides(_DEX3_PRE_PINCH),
            "pinch": _dex3_sides(_DEX3_PINCH),
            "pre_tripod": _dex3_sides(_DEX3_PRE_PINCH),
            "tripod": _dex3_sides(_DEX3_PINCH),
            "power": _dex3_sides(_DEX3_POWER),
            "claw": _dex3_sides(_DEX3_POWER),
        },
        # A tri-finger hand: the human thumb, index and middle finger drive its three fingers (the fingertips
        # of Unitree's xr_teleoperate DexPilot config for Dex3); its two fingers' MCP and middle-joint sites take
        # the human knuckles and PIP joints. The thumb has no sites besides its tip: its links do not
        # correspond to the human thumb's.
        keypoint_map={"wrist": "wrist", "thumb_tip": "thumb_tip"} | {
            f"{finger}_{part}": f"{finger}_{site}" for finger in ("index", "middle")
            for part, site in (("knuckle", "mcp"), ("intermediate_base", "pip"), ("tip", "tip"))
        },
        human_scale=HUMAN_SCALE["unitree_dex3"],
        human_wrist_offset=HUMAN_WRIST_OFFSET["unitree_dex3"],
        tags=frozenset({"robot", "g1", "7dof"}),
    )
)

# The simulated human demonstrator (assets/human_hand, generated by scripts/make_human_hand.py): 20 DoF
# per hand, in the hand file's order.
HUMAN_JOINTS = (
    "thumb_CMC_FE", "thumb_CMC_AA", "thumb_MCP", "thumb_IP",
    "index_MCP_FE", "index_MCP_AA", "index_PIP", "index_DIP",
    "middle_MCP_FE", "middle_MCP_AA", "middle_PIP", "middle_DIP",
    "ring_MCP_FE", "ring_MCP_AA", "ring_PIP", "ring_DIP",
    "little_MCP_FE", "little_MCP_AA", "little_PIP", "little_DIP",
)  # fmt: skip

HUMAN = register_embodiment(
    Embodiment(
        name="human",
        env_name="Human",
        asset_dir="human_hand",
        robot="human demonstrator (adult hands, 185 mm long, on free wrists)",
        joint_names=HUMAN_JOINTS,
        fingertip_sites=("thumb_tip", "index_tip", "middle_tip", "ring_tip", "little_tip"),
        # Stands where the robots stand, hands at the same home poses, so aligned human and robot
        # demos start alike. A person reaches about as far as the R1 Pro over a table.
        home_wrist_pos={"left": (0.28, 0.22, 0.95), "right": (0.28, -0.22, 0.95)},
        workspace={
            "left": Workspace(low=(0.15, -0.25, 0.77), high=(0.85, 0.55, 1.30)),
            "right": Workspace(low=(0.15, -0.55, 0.77), high=(0.85, 0.25, 1.30)),
        },
        # Hand speeds of unhurried tabletop manipulation (peaks of 0.5-1 m/s in reach-to-grasp).
        max_wrist_speed=0.7,
        max_wrist_rot_speed=3.5,
        wrist_force=80.0,
        wrist_torque=10.0,
        # Measured on the model by scripts/human_grasp_poses.py (values and measurements in
        # assets/human_hand/README.md). open: flat hand, thumb swung out into the palm plane;
        # pre_pinch: 30 % of the way from open to pinch; pinch: the thumb pad meets the index pad
        # (index flexed at its MCP), closing 16 mm past contact; pre_tripod -> tripod: the same with
        # the middle finger flexed like the index, beside it; power: settled around a 35 mm-radius
        # cylinder under the knuckles; claw: palm down over an 80 mm cup, the fingertips and the
        # opposed thumb tip on a circle around it 5 cm below the wrist, fingers curled over its rim.
        grasp_poses=_mirror_all({
            "open": (-0.3, -0.4, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
            "pre_pinch": (-0.115, -0.177, 0.165, -0.069, 0.38, 0.0, 0.035, 0.009, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
            "pinch": (0.317, 0.345, 0.55, -0.231, 1.266, 0.0, 0.118, 0.03, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
            "pre_tripod": (-0.115, -0.177, 0.165, -0.069, 0.38, 0.0, 0.035, 0.009, 0.38, 0.0, 0.035, 0.009, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
            "tripod": (0.317, 0.345, 0.55, -0.231, 1.266, 0.0, 0.118, 0.03, 1.266, 0.0, 0.118, 0.03, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
            "power": (-0.52, 0.38, 0.22, 0.94, 0.3, 0.0, 0.76, 1.29, 0.31, 0.0, 0.87, 1.28, 0.25, 0.0, 0.68, 1.25, 0.23, 0.0, 0.21, 1.1),
            "claw": (-0.477, 0.576, 0.911, 1.353, 0.352, 0.288, 0.604, 0.049, 0.352, 0.108, 0.604, 0.049, 0.352, 0.141, 0.604, 0.049, 0.352, 0.246, 0.604, 0.049),
        }),
        keypoint_map={k: ("wrist" if k == "wrist" else f"kp_{k}") for k in HUMAN_KEYPOINTS},
        tags=frozenset({"human", "20dof"}),
        head_motion=HeadMotion(),
        # Its pads meet a marker 3 cm from where they close on nothing (scripts/human_grasp_poses.py's
        # pinch closes 16 mm past contact to squeeze): experts hold the marker where the pads meet it.
        pinch_hold=1.0,
    )
)
