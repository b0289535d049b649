"""Retargeting human keypoints to the robot hands: exactness on reachable poses, limits, labels, replay."""

from __future__ import annotations

import numpy as np
import pytest
from egosim.actions import step_actions_to_chunk
from egosim.embodiment import HUMAN_KEYPOINTS, get_embodiment
from egosim.errors import ConfigError
from egosim.geometry import matrix_to_quat, quat_to_matrix, rot6d_to_matrix
from egosim.keypoints import KP, KinematicHand, canonical_wrist_pose, random_hand_trajectory, vec_to_pose
from egosim.retarget import HandRetargeter, RetargetConfig, Retargeter, episode_actions, measure_human_alignment

EMBS = ("sharpa_wave", "unitree_dex3")
HAND = KinematicHand()


def _episode(rng: np.random.Generator, n: int, base: tuple[float, float, float] = (0.3, 0.0, 0.9)) -> tuple:
    """Human keypoints (n, 2, 21, 3) and canonical wrist poses of hands moving their fingers and wrists."""
    ang = random_hand_trajectory(rng, n)
    kp = np.zeros((n, 2, 21, 3))
    for t in range(n):
        for s, side in enumerate(("left", "right")):
            yaw = 0.3 * np.sin(t / 10.0)
            rot = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
            kp[t, s] = HAND.keypoints(ang[t], side) @ rot.T + np.add(base, [0.002 * t, 0.2 - 0.4 * s, 0.0])
    wrist = np.stack([canonical_wrist_pose(kp[:, 0], "left"), canonical_wrist_pose(kp[:, 1], "right")], axis=1)
    return kp, wrist


@pytest.mark.parametrize("emb", EMBS)
def test_embodiment_record_holds_the_measured_scale_and_wrist_offsets(emb: str) -> None:
    e = get_embodiment(emb)
    scale, offsets = measure_human_alignment(e)
    assert e.human_scale == pytest.approx(scale, abs=1e-3)
    for side in ("left", "right"):
        assert np.allclose(e.human_wrist_offset[side], offsets[side], atol=1e-3), side
    hr = HandRetargeter(e, "right")  # every mapped site exists in the hand file
    assert set(hr.names) == set(e.keypoint_map) - {"wrist"} and set(hr.names) <= set(HUMAN_KEYPOINTS)


@pytest.mark.parametrize("emb", EMBS)
def test_a_human_shaped_like_the_robot_is_retargeted_exactly(emb: str) -> None:
    """Keypoints made from the robot's own FK (mapped back through scale and offset) are reached to < 1 mm."""
    rng = np.random.default_rng(3)
    for side in ("left", "right"):
        hr = HandRetargeter(emb, side, RetargetConfig(regularization=1e-4, max_nfev=50))
        q_prev = None
        for _ in range(6):
            q_true = rng.uniform(hr.lower + 0.1 * (hr.upper - hr.lower), hr.upper - 0.1 * (hr.upper - hr.lower))
            robot = hr.keypoints(q_true)
            local = np.zeros((21, 3))  # human canonical frame: robot point = R_off p_robot_frame + t_off, / scale
            local[[KP[k] for k in hr.names]] = (robot @ hr.offset_rot.T + hr.offset_pos) / hr.scale
            q = hr.solve(local, None, q_prev)
            q_prev = q
            err = np.linalg.norm(hr.keypoints(q) - robot, axis=1)
            assert err[hr.tips].max() < 1e-3, (side, err)
            assert np.all(q >= hr.lower) and np.all(q <= hr.upper)


@pytest.mark.parametrize("emb", EMBS)
def test_episode_labels_stay_in_limits_and_replay_the_wrist_motion(emb: str) -> None:
    rng = np.random.default_rng(7)
    kp, wrist = _episode(rng, 40)
    kp_noisy = kp + rng.normal(0.0, 0.02, kp.shape)  # 2 cm jitter: targets out of reach in every direction
    res = Retargeter(emb).retarget(kp_noisy, wrist)
    e = get_embodiment(emb)
    limits = np.stack([e.joint_limits("left"), e.joint_limits("right")])
    assert res.limit_violations == 0
    assert np.all(res.joints >= limits[None, :, :, 0]) and np.all(res.joints <= limits[None, :, :, 1])
    res = Retargeter(emb).retarget(kp, wrist)
    assert res.tip_error.mean() < (0.012 if emb == "sharpa_wave" else 0.025)  # Dex3: fingers 58 mm apart, fixed
    # the robot wrist is the human wrist times the fixed offset
    for s, side in enumerate(("left", "right")):
        hp, hr_ = vec_to_pose(wrist[:, s])
        op, orot = vec_to_pose(e.human_wrist_offset[side])
        assert np.allclose(res.wrist[:, s, :3], hp + hr_ @ op, atol=1e-9)
        assert np.allclose(quat_to_matrix(res.wrist[:, s, 3:]), hr_ @ orot, atol=1e-9)
    # accumulating the per-step actions from frame 0 gives back every frame's wrist pose and joint target
    dof = e.dof
    chunk = step_actions_to_chunk(res.actions, dof)
    for s in range(2):
        off = s * (9 + dof)
        p0, r0 = vec_to_pose(res.wrist[0, s])
        pos = p0 + chunk[:, off:off + 3] @ r0.T
        rot = r0 @ rot6d_to_matrix(chunk[:, off + 3:off + 9])
        assert np.allclose(pos[:-1], res.wrist[1:, s, :3], atol=1e-9)
        assert np.allclose(rot[:-1], quat_to_matrix(res.wrist[1:, s, 3:]), atol=1e-9)
        assert np.allclose(res.actions[:-1, off + 9:off + 9 + dof], res.joints[1:, s])
        assert np.allclose(res.actions[-1, off:off + 3], 0.0) and np.allclose(res.actions[-1, off + 9:off + 9 + dof],
                                                                               res.joints[-1, s])


def test_smoothing_is_a_first_order_filter_and_confidence_weights_keypoints() -> None:
    rng = np.random.default_rng(2)
    kp, wrist = _episode(rng, 20)
    res = Retargeter("sharpa_wave", RetargetConfig(smoothing=0.3)).retarget(kp, wrist)
    assert np.allclose(res.joints[1:], 0.3 * res.raw_joints[1:] + 0.7 * res.joints[:-1])
    assert np.allclose(res.joints[0], res.raw_joints[0])
    # a finger whose keypoints have confidence 0 keeps the previous frame's joints (regularisation only)
    hr = HandRetargeter("sharpa_wave", "right")
    pos, rot = vec_to_pose(wrist[0, 1])
    local0 = (kp[0, 1] - pos) @ rot
    q0 = hr.solve(local0, None, None)
    pos, rot = vec_to_pose(wrist[10, 1])
    local = (kp[10, 1] - pos) @ rot
    conf = np.ones(21)
    conf[[KP[f"index_{p}"] for p in ("knuckle", "intermediate_base", "intermediate_tip", "tip")]] = 0.0
    q = hr.solve(local, conf, q0)
    index = [get_embodiment("sharpa_wave").joint_names.index(j) for j in ("index_MCP_FE", "index_PIP", "index_DIP")]
    assert np.allclose(q[index], q0[index], atol=1e-3)
    assert not np.allclose(hr.solve(local, None, q0)[index], q0[index], atol=1e-2)


def test_pinch_survives_the_size_change() -> None:
    """DexPilot's point: thumb and index tips touch on the robot when they touch on the human."""
    ang = np.zeros((5, 4))
    ang[0] = [0.8, 0.0, 0.3, 0.0]
    ang[1] = [0.75, 0.0, 0.55, 0.35]
    kp = HAND.keypoints(ang, "right")
    human = np.linalg.norm(kp[KP["thumb_tip"]] - kp[KP["index_tip"]])
    assert human < 0.015
    hr = HandRetargeter("sharpa_wave", "right")
    q = hr.solve(kp, None, None)  # the open hand's canonical frame is the identity
    r = hr.keypoints(q)
    robot = np.linalg.norm(r[hr.names.index("thumb_tip")] - r[hr.names.index("index_tip")])
    assert robot < human + 0.004, (human, robot)


def test_episode_actions_of_a_still_episode_hold_still() -> None:
    wrist = np.tile(np.concatenate([[0.3, 0.1, 0.9], matrix_to_quat(np.eye(3))]), (5, 2, 1))
    joints = np.full((5, 2, 7), 0.2)
    a = episode_actions(wrist, joints)
    assert a.shape == (5, 32) and np.allclose(a[:, 0:3], 0.0) and np.allclose(a[:, 3:9], [1, 0, 0, 0, 1, 0])


def test_bad_retarget_settings_name_the_value() -> None:
    with pytest.raises(ConfigError, match="smoothing must lie in"):
        RetargetConfig(smoothing=0.0)
    with pytest.raises(ConfigError, match="unknown retarget config keys \\['smooth'\\]"):
        RetargetConfig.from_mapping({"smooth": 0.2})
    with pytest.raises(ConfigError, match="keypoints \\(T, 2, 21, 3\\)"):
        Retargeter("unitree_dex3").retarget(np.zeros((3, 2, 20, 3)), np.zeros((3, 2, 7)))


def test_retargeted_human_motion_replays_on_the_robot() -> None:
    """The labels drive the real env: its commanded wrists follow the retargeted wrist path, and the
    hands settle on the retargeted joints."""
    from egosim.tasks import make_env

    emb = get_embodiment("unitree_dex3")
    env = make_env("pen_in_bin", emb.name, obs_mode="state")
    env.reset(seed=0)
    base = env.unwrapped
    rng = np.random.default_rng(5)
    n = 30
    kp_local, wrist = _episode(rng, n, base=(0.0, 0.0, 0.0))
    # place the human so that the robot's wrists start at their home poses
    for s, side in enumerate(("left", "right")):
        cp, cr = base.commanded_wrist_pose(side)
        op, orot = vec_to_pose(emb.human_wrist_offset[side])
        h0_rot = cr @ orot.T
        h0_pos = cp - h0_rot @ op
        p0, r0 = vec_to_pose(wrist[0, s])
        move = h0_rot @ r0.T  # rigid motion taking the human's frame-0 wrist onto h0
        kp_local[:, s] = (kp_local[:, s] - p0) @ move.T + h0_pos
        wp, wr = vec_to_pose(wrist[:, s])
        wrist[:, s] = np.concatenate([(wp - p0) @ move.T + h0_pos, matrix_to_quat(move @ wr)], axis=-1)
    res = Retargeter(emb).retarget(kp_local, wrist)
    for t in range(n):
        env.step(res.actions[t])
        for s, side in enumerate(("left", "right")):
            cp, cr = base.commanded_wrist_pose(side)
            k = min(t + 1, n - 1)
            assert np.allclose(cp, res.wrist[k, s, :3], atol=1e-6), (t, side)
            assert np.allclose(cr, quat_to_matrix(res.wrist[k, s, 3:]), atol=1e-6)
    for _ in range(10):
        env.step(res.actions[-1])
    for s, side in enumerate(("left", "right")):
        q = base.data.qpos[base.rig.hands[side].joint_qpos]
        assert np.abs(q - res.joints[-1, s]).max() < 0.1
    env.close()
