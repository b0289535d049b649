"""The human embodiment in the env: its env ids, the tracking frame in `info["human"]`, the moving
head camera, `embodiments=all` meaning the robots, and `egosim collect embodiments=[human]`.
"""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import egosim.tasks
from egosim.data.collect import CollectConfig, resolve
from egosim.data.validate import validate_dataset
from egosim.embodiment import HUMAN_KEYPOINTS, ROBOT_TAG, SIDES, embodiment_names
from egosim.errors import ConfigError, InvalidChoiceError
from egosim.eval.runner import EvalConfig, resolve_names
from egosim.geometry import quat_to_matrix
from egosim.head import HeadController, HeadMotion
from egosim.keypoints import canonical_wrist_pose
from egosim.rig import EGO_EYE, TABLE_HEIGHT, RigConfig


def _human_env(**kw):
    return egosim.tasks.make_env("pen_in_bin", "human", obs_mode="state", privileged=True, **kw)


def _forward(cam_quat: np.ndarray) -> np.ndarray:
    return -quat_to_matrix(cam_quat)[:, 2]  # cameras look along their -z


def test_human_env_ids_are_registered() -> None:
    ids = egosim.tasks.env_ids()
    for task in egosim.tasks.task_names():
        assert egosim.tasks.env_id(task, "human") in ids
    env = gym.make("egosim/PenInBin-Human-v0", obs_mode="state")
    assert env.action_space.shape == (2 * (9 + 20),)
    env.close()


def test_all_means_the_robot_hands() -> None:
    robots = list(embodiment_names(ROBOT_TAG))
    assert "human" not in robots and "human" in embodiment_names()
    assert resolve(["all"], embodiment_names(), "embodiment", all_names=robots) == robots
    assert resolve(["human"], embodiment_names(), "embodiment", all_names=robots) == ["human"]
    _, embs = resolve_names(EvalConfig.from_mapping({"tasks": ["pen_in_bin"], "embodiments": ["all"], "episodes": 1}))
    assert embs == robots
    _, embs = resolve_names(EvalConfig.from_mapping({"tasks": ["pen_in_bin"], "embodiments": ["human"], "episodes": 1}))
    assert embs == ["human"]


def test_info_carries_the_clean_tracking_frame() -> None:
    env = _human_env()
    _, info = env.reset(seed=0, options={"initial_state": 0})
    for _ in range(5):
        _, _, _, _, info = env.step(np.clip(np.zeros(env.action_space.shape), env.action_space.low, env.action_space.high))
    h = info["human"]
    assert h["keypoints"].shape == (2, 21, 3) and h["keypoints"].dtype == np.float32
    assert h["keypoint_confidence"].shape == (2, 21) and np.all(h["keypoint_confidence"] == 1.0)
    assert h["wrist_pose"].shape == (2, 7) and h["camera_pose"].shape == (7,)
    m, d = env.model, env.data
    for i, side in enumerate(SIDES):
        for k, name in enumerate(HUMAN_KEYPOINTS):
            site = f"{side}_{env.embodiment.keypoint_map[name]}"
            np.testing.assert_allclose(h["keypoints"][i, k], d.site(site).xpos, atol=1e-6)
        want = canonical_wrist_pose(h["keypoints"][i].astype(np.float64), side)
        np.testing.assert_allclose(h["wrist_pose"][i, :3], want[:3], atol=1e-6)
        np.testing.assert_allclose(quat_to_matrix(h["wrist_pose"][i, 3:]), quat_to_matrix(want[3:]), atol=1e-5)
        # the wrist keypoint is the wrist site; the left hand is on +y
        np.testing.assert_allclose(h["keypoints"][i, 0], env.wrist_pose(side)[0], atol=1e-6)
    assert h["keypoints"][0, 0, 1] > 0 > h["keypoints"][1, 0, 1]
    cam = env.rig.cameras["ego_view"]
    np.testing.assert_allclose(h["camera_pose"][:3], d.cam_xpos[cam])
    np.testing.assert_allclose(quat_to_matrix(h["camera_pose"][3:]), d.cam_xmat[cam].reshape(3, 3), atol=1e-9)
    env.close()
    robot = egosim.tasks.make_env("pen_in_bin", "sharpa_wave", obs_mode="state")
    _, info = robot.reset(seed=0)
    assert "human" not in info
    with pytest.raises(ConfigError, match="human"):
        robot.human_observation()
    robot.close()


def _head_run(seed: int, steps: int = 60, **kw):
    """Camera poses while the expert works (the right hand reaches for the canister first)."""
    from egosim.policies import make_policy
    from egosim.actions import chunk_to_step_actions

    env = _human_env(**kw)
    policy = make_policy("expert", env, seed=0)
    obs, info = env.reset(seed=seed, options={"initial_state": 0})
    poses, palms = [info["human"]["camera_pose"]], []
    for _ in range(steps):
        obs, _, _, _, info = env.step(chunk_to_step_actions(policy.act(obs), env.embodiment.dof)[0])
        poses.append(info["human"]["camera_pose"])
        palms.append([env.data.site_xpos[env.rig.hands[s].palm_site].copy() for s in SIDES])
    env.close()
    return np.array(poses), np.array(palms)


def test_head_moves_like_a_head_and_is_seeded() -> None:
    poses, palms = _head_run(seed=3)
    again, _ = _head_run(seed=3)
    other, _ = _head_run(seed=4)
    np.testing.assert_array_equal(poses, again)
    assert np.abs(poses - other).max() > 1e-4  # the sway differs with the seed
    fwd = np.array([_forward(q) for q in poses[:, 3:]])
    # it turns (the gaze follows the hands) ...
    turn = np.degrees(np.arccos(np.clip(np.sum(fwd[1:] * fwd[:-1], axis=1), -1, 1)))
    assert np.degrees(np.arccos(np.clip(fwd[0] @ fwd[-1], -1, 1))) > 3.0
    # ... smoothly: under 10 degrees per 50 ms step (200 deg/s, the upper end of peak head velocities
    # in human gaze shifts), accelerating and slowing over several steps rather than jumping
    assert turn.max() < 10.0, turn.max()
    assert np.abs(np.diff(turn)).max() < 0.6 * turn.max()
    # the head stays near the eye point (lean and sway of a few centimetres)
    assert np.linalg.norm(poses[:, :3] - np.array(EGO_EYE), axis=1).max() < 0.07
    # and looks at the working hand: after the first turn one palm is near the line of sight most of
    # the time (not while the gaze swings between hands), and the gaze moves from one hand to the
    # other as they take turns
    def off_axis(p: np.ndarray, pose: np.ndarray) -> float:
        v = p - pose[:3]
        return float(np.degrees(np.arccos(np.clip(v @ _forward(pose[3:]) / np.linalg.norm(v), -1, 1))))

    off = np.array([[off_axis(palms[t, h], poses[t + 1]) for h in range(2)] for t in range(len(palms))])
    assert np.mean(off[10:].min(axis=1) < 15.0) > 0.7, off.min(axis=1)
    looked_at = {int(np.argmin(o)) for o in off[10:] if o.min() < 10.0}
    assert looked_at == {0, 1}


def test_head_fixed_and_robots_hold_the_robot_camera() -> None:
    poses, _ = _head_run(seed=0, steps=10, rig_config=RigConfig(head_motion="fixed"))
    np.testing.assert_allclose(poses[:, :3], np.tile(EGO_EYE, (len(poses), 1)), atol=1e-9)
    assert np.ptp(poses[:, 3:], axis=0).max() < 1e-9
    robot = egosim.tasks.make_env("pen_in_bin", "unitree_dex3", obs_mode="state")
    robot.reset(seed=0)
    cam = robot.rig.cameras["ego_view"]
    np.testing.assert_allclose(robot.data.cam_xpos[cam], EGO_EYE)
    assert robot.rig.head_mocap == -1
    with pytest.raises(ConfigError, match="head model"):
        egosim.tasks.make_env("pen_in_bin", "unitree_dex3", obs_mode="state", rig_config=RigConfig(head_motion="natural"))
    with pytest.raises(InvalidChoiceError, match="fixed"):
        RigConfig(head_motion="wobbly")
    robot.close()


def test_head_controller_shifts_gaze_to_the_moving_hand() -> None:
    """Unit check of the model without physics: with the left hand moving, the fixation jumps to it
    and the gaze converges there; sway has the configured spread."""
    m = HeadMotion(sway_pos_std=0.005, sway_rot_std=0.0, dwell_mean_s=100.0)
    head = HeadController(m, TABLE_HEIGHT, 0.05)
    left, right = np.array([0.5, 0.3, 0.9]), np.array([0.5, -0.3, 0.9])
    head.reset(np.stack([left, right]), np.random.default_rng(0))
    pos = []
    for k in range(100):
        p, q = head.step(np.stack([left + [0.01 * np.sin(k / 3.0), 0.01 * k / 10, 0.0], right]))
        pos.append(p)
    assert head.working == 0  # the left hand is the one moving
    look = head.fixation - np.array(EGO_EYE)
    fwd = _forward(q)
    assert np.degrees(np.arccos(fwd @ look / np.linalg.norm(look))) < 3.0
    assert head.fixation[2] < left[2]  # looks down toward the table under the hand
    assert 0.002 < np.std(np.array(pos)[:, 2]) < 0.01


def test_collect_human_dataset_validates(tmp_path: Path) -> None:
    from egosim.cli import main

    out = tmp_path / "demos"
    rc = main(["collect", "tasks=[pen_in_bin]", "embodiments=[human]", "episodes=1", "keep=all", "max_steps=12",
               "workers=1", "video=true", "image_size=[48,64]", "noise=realistic", f"output_dir={out}"])
    assert rc == 0
    report = validate_dataset(out / "human")
    info = json.loads((out / "human" / "meta" / "info.json").read_text())
    assert report.episodes == 1 and info["total_frames"] == 12 and info["robot_type"] == "human"
    assert "observation.human.keypoints" in info["features"] and "action" not in info["features"]
    import pyarrow.parquet as pq

    table = pq.read_table(next((out / "human" / "data").rglob("*.parquet")))
    kp = np.array(table.column("observation.human.keypoints").to_pylist(), dtype=np.float64).reshape(12, 2, 21, 3)
    # realistic noise: the first frame's keypoints are not the clean ones of the reset state
    env = _human_env()
    _, info0 = env.reset(seed=0)
    assert 1e-4 < np.abs(kp[0] - info0["human"]["keypoints"]).max() < 0.05
    env.close()


def test_collect_config_checks_the_human_options() -> None:
    with pytest.raises(InvalidChoiceError, match="realistic"):
        CollectConfig.from_mapping({"noise": "loud"})
    with pytest.raises(ConfigError):
        CollectConfig.from_mapping({"noise": {"keypoint_jitter": -1.0}})
    with pytest.raises(InvalidChoiceError, match="sharpa_wave"):
        CollectConfig.from_mapping({"retarget_to": "human"})
    with pytest.raises(InvalidChoiceError, match="ego_view"):
        CollectConfig.from_mapping({"human_cameras": ["top_view"]})
    cfg = CollectConfig.from_mapping({"noise": {"preset": "realistic", "dropout_rate": 0.1}})
    assert cfg.noise_config.dropout_rate == 0.1


def test_expert_solves_pen_in_bin_with_human_hands() -> None:
    """The task's own expert, through the human hand's semantic handles, end to end on state 0."""
    from expert_helpers import failures, play_expert

    records = play_expert("pen_in_bin", "human", [0, 1])
    assert all(r["success"] for r in records), failures(records)
    assert not any(r["sim_unstable"] for r in records)


@pytest.mark.slow
def test_human_pen_in_bin_success_rate_on_all_eval_states() -> None:
    """The human demos of pen_in_bin get retargeted and replayed on the robots: >= 80 % must succeed."""
    from expert_helpers import failures, play_expert

    n = len(egosim.tasks.get_task("pen_in_bin")().eval_initial_states())
    records = play_expert("pen_in_bin", "human", list(range(n)))
    rate = sum(r["success"] for r in records) / n
    print(f"\nhuman: expert success {rate:.0%} over {n} states; failures: {failures(records) or 'none'}")
    assert rate >= 0.8, failures(records)


def test_head_pose_math_matches_the_reference() -> None:
    """The head's per-step scalar look-at (with sway) equals look_at_matrix @ R(sway)."""
    from egosim.geometry import axis_angle_to_matrix
    from egosim.head import _look_at_sway_quat, look_at_matrix

    rng = np.random.default_rng(0)
    for _ in range(20):
        eye, target, sway = rng.normal(size=3), rng.normal(size=3), rng.normal(0, 0.2, 3)
        want = look_at_matrix(eye, target) @ axis_angle_to_matrix(sway, float(np.linalg.norm(sway)))
        np.testing.assert_allclose(quat_to_matrix(_look_at_sway_quat(eye, target, sway)), want, atol=1e-12)
        assert _forward(_look_at_sway_quat(eye, target, np.zeros(3))) @ (target - eye) > 0.999 * np.linalg.norm(target - eye)
