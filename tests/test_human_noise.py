"""The human-tracking noise model: the statistics the data shows are the ones configured.

Every test corrupts synthetic clean frames (a still scene: two hands in front of a tilted camera) with
one noise source on, then measures that source's error the way it is defined (module docstring of
`egosim.data.human_noise`): per-frame stds within a few percent over thousands of frames, drift
variance growing linearly in time over many episodes, dropout fraction and mean run length.
"""

from __future__ import annotations

import numpy as np
import pytest

from egosim.data.human_noise import PRESETS, HumanNoise, HumanNoiseModel, apply_episode
from egosim.errors import ConfigError, InvalidChoiceError
from egosim.geometry import axis_angle_to_matrix, matrix_to_quat, quat_to_matrix
from egosim.keypoints import canonical_wrist_pose

FPS = 20.0


def _clean(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """n identical frames: a camera 1.36 m up looking down at two hands (keypoints in a 10 cm blob)."""
    rng = np.random.default_rng(seed)
    kp = np.stack([np.array([0.45, 0.2, 0.9]) + rng.normal(0, 0.04, (21, 3)),
                   np.array([0.45, -0.2, 0.9]) + rng.normal(0, 0.04, (21, 3))])
    wrist = np.stack([canonical_wrist_pose(kp[0], "left"), canonical_wrist_pose(kp[1], "right")])
    cam_rot = axis_angle_to_matrix([1.0, 0.3, 0.2], 2.4)
    cam = np.concatenate([[0.12, 0.0, 1.36], matrix_to_quat(cam_rot)])
    return {"keypoints": np.repeat(kp[None], n, 0), "keypoint_confidence": np.ones((n, 2, 21)),
            "wrist_pose": np.repeat(wrist[None], n, 0), "camera_pose": np.repeat(cam[None], n, 0)}


def _in_camera(keypoints: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """(T, 2, 21, 3) world keypoints in each frame's camera frame: R_c^T (k - p_c)."""
    rot = quat_to_matrix(cam[:, 3:])
    return np.einsum("tji,thkj->thki", rot, keypoints - cam[:, None, None, :3])


def _rot_error(r_true: np.ndarray, r_est: np.ndarray) -> np.ndarray:
    """Axis-angle vectors of r_true^T r_est (small angles: the skew part)."""
    e = np.einsum("tji,tjk->tik", r_true, r_est)
    return 0.5 * np.stack([e[:, 2, 1] - e[:, 1, 2], e[:, 0, 2] - e[:, 2, 0], e[:, 1, 0] - e[:, 0, 1]], axis=-1)


def _run(noise: HumanNoise, n: int, seed: int = 1) -> tuple[dict, dict]:
    clean = _clean(n)
    return clean, apply_episode(clean, noise, FPS, np.random.default_rng(seed))


def test_clean_is_the_identity() -> None:
    clean, out = _run(PRESETS["clean"], 50)
    for k in clean:
        np.testing.assert_allclose(out[k], clean[k], atol=1e-6)


def test_keypoint_jitter_std_is_the_configured_one() -> None:
    sigma = 0.004
    clean, out = _run(HumanNoise(keypoint_jitter=sigma), 3000)
    err = _in_camera(out["keypoints"].astype(np.float64), clean["camera_pose"]) - _in_camera(clean["keypoints"], clean["camera_pose"])
    fingers = err[:, :, 1:, :].reshape(-1, 3)
    assert np.allclose(fingers.std(axis=0), sigma, rtol=0.03), fingers.std(axis=0)
    assert np.allclose(fingers.mean(axis=0), 0.0, atol=3 * sigma / np.sqrt(len(fingers)) * 2)
    # the wrist keypoint is the wrist pose's origin: untouched by finger jitter
    np.testing.assert_allclose(out["keypoints"][:, :, 0], clean["keypoints"][:, :, 0], atol=1e-6)
    np.testing.assert_allclose(out["camera_pose"], clean["camera_pose"], atol=1e-12)


def test_camera_jitter_std_and_hands_stay_right_relative_to_the_camera() -> None:
    sp, sr = 0.001, 0.002
    clean, out = _run(HumanNoise(camera_jitter_pos=sp, camera_jitter_rot=sr), 4000)
    r_true, r_est = quat_to_matrix(clean["camera_pose"][:, 3:]), quat_to_matrix(out["camera_pose"][:, 3:])
    pos_err_cam = np.einsum("tji,tj->ti", r_true, out["camera_pose"][:, :3] - clean["camera_pose"][:, :3])
    assert np.allclose(pos_err_cam.std(axis=0), sp, rtol=0.05), pos_err_cam.std(axis=0)
    assert np.allclose(_rot_error(r_true, r_est).std(axis=0), sr, rtol=0.05)
    # the keypoints are composed through the same (noisy) camera pose: in its frame they are exact
    rel_est = _in_camera(out["keypoints"].astype(np.float64), out["camera_pose"])
    rel_true = _in_camera(clean["keypoints"], clean["camera_pose"])
    assert np.abs(rel_est - rel_true).max() < 1e-5


def test_wrist_noise_std_and_the_hand_moves_rigidly() -> None:
    sp, sr = 0.004, 0.035
    clean, out = _run(HumanNoise(wrist_pos=sp, wrist_rot=sr), 3000)
    cam = clean["camera_pose"]
    r_cam = quat_to_matrix(cam[:, 3:])
    for h in range(2):
        dp = np.einsum("tji,tj->ti", r_cam, out["wrist_pose"][:, h, :3] - clean["wrist_pose"][:, h, :3])
        assert np.allclose(dp.std(axis=0), sp, rtol=0.05), dp.std(axis=0)
        # rotation error about the wrist, in the camera frame: R_est R_true^T = R_c dR R_c^T
        r_t, r_e = quat_to_matrix(clean["wrist_pose"][:, h, 3:]), quat_to_matrix(out["wrist_pose"][:, h, 3:])
        d = np.einsum("tji,tjk,tlk,tlm->tim", r_cam, r_e, r_t, r_cam)
        rv = 0.5 * np.stack([d[:, 2, 1] - d[:, 1, 2], d[:, 0, 2] - d[:, 2, 0], d[:, 1, 0] - d[:, 0, 1]], -1)
        assert np.allclose(rv.std(axis=0), sr, rtol=0.06), rv.std(axis=0)
        # rigid: distances between one hand's keypoints are unchanged, and the wrist pose still is
        # the canonical frame of the keypoints
        kp_out, kp_in = out["keypoints"][:, h].astype(np.float64), clean["keypoints"][:, h]
        dist = lambda k: np.linalg.norm(k[:, :, None] - k[:, None, :], axis=-1)  # noqa: E731
        assert np.abs(dist(kp_out) - dist(kp_in)).max() < 1e-5
        side = ("left", "right")[h]
        np.testing.assert_allclose(canonical_wrist_pose(kp_out[::97], side)[:, :3], out["wrist_pose"][::97, h, :3],
                                   atol=1e-5)


def test_slam_drift_variance_grows_linearly() -> None:
    """A random walk: the error's change over a lag of k frames has variance sigma^2 k dt, linear in
    k, measured along one long episode (its steps are independent); roll and pitch never drift."""
    sp, sy = 0.003, 0.004
    n = 12000
    clean, out = _run(HumanNoise(slam_drift_pos=sp, slam_drift_yaw=sy), n)
    r_t, r_e = quat_to_matrix(clean["camera_pose"][:, 3:]), quat_to_matrix(out["camera_pose"][:, 3:])
    world_err = np.einsum("tij,tkj->tik", r_e, r_t)  # R_est R_true^T: the drift rotation (world frame)
    yaw = np.unwrap(np.arctan2(world_err[:, 1, 0], world_err[:, 0, 0]))
    assert np.abs(world_err[:, 2, :2]).max() < 1e-9  # no roll or pitch
    # The camera sits at the SLAM origin, so the yaw does not move it: its position error is the walk.
    pos = out["camera_pose"][:, :3] - clean["camera_pose"][:, :3]
    assert np.abs(pos[0]).max() < 1e-12 and abs(yaw[0]) < 1e-12  # no drift at the first frame
    lags = np.array([1, 2, 3, 5, 8, 12])
    for err, sigma in ((pos, sp), (yaw[:, None], sy)):
        var = np.array([np.var(err[k:] - err[:-k], axis=0).mean() for k in lags])
        slope, intercept = np.polyfit(lags / FPS, var, 1)
        assert slope == pytest.approx(sigma**2, rel=0.1), (slope, sigma**2)
        assert abs(intercept) < 0.1 * sigma**2 * lags[-1] / FPS
        np.testing.assert_allclose(var / (lags / FPS), sigma**2, rtol=0.15)  # each lag on the line


def test_drift_moves_the_hands_with_the_camera() -> None:
    clean, out = _run(HumanNoise(slam_drift_pos=0.01, slam_drift_yaw=0.01), 200)
    rel_est = _in_camera(out["keypoints"].astype(np.float64), out["camera_pose"])
    rel_true = _in_camera(clean["keypoints"], clean["camera_pose"])
    assert np.abs(rel_est - rel_true).max() < 1e-5
    assert np.abs(out["keypoints"][-1] - clean["keypoints"][-1]).max() > 1e-3  # the world-frame hands did drift


@pytest.mark.parametrize("rate,length", [(0.05, 8.0), (0.2, 3.0)])
def test_dropout_rate_and_run_length(rate: float, length: float) -> None:
    noise = HumanNoise(dropout_rate=rate, dropout_mean_frames=length, dropout_confidence=0.1, keypoint_jitter=0.002)
    n = 40000
    clean, out = _run(noise, n)
    lost = out["keypoint_confidence"][:, :, 0] < 0.5  # (T, 2)
    np.testing.assert_allclose(np.unique(out["keypoint_confidence"]), [0.1, 1.0], rtol=1e-6)
    assert np.all(out["keypoint_confidence"][lost] == np.float32(0.1))
    runs = []
    for h in range(2):
        padded = np.concatenate([[False], lost[:, h], [False]]).astype(int)
        starts, ends = np.flatnonzero(np.diff(padded) == 1), np.flatnonzero(np.diff(padded) == -1)
        runs += list(ends - starts)
        # a lost hand holds its last estimate (jitter would otherwise move it every frame)
        held = np.flatnonzero(lost[1:, h]) + 1
        np.testing.assert_array_equal(out["keypoints"][held, h], out["keypoints"][held - 1, h])
    assert lost.mean() == pytest.approx(rate, rel=0.12)
    assert np.mean(runs) == pytest.approx(length, rel=0.12)


def test_seeded_and_streaming_equals_episode() -> None:
    noise = PRESETS["realistic"]
    clean = _clean(60)
    a = apply_episode(clean, noise, FPS, np.random.default_rng(7))
    b = apply_episode(clean, noise, FPS, np.random.default_rng(7))
    c = apply_episode(clean, noise, FPS, np.random.default_rng(8))
    model = HumanNoiseModel(noise, FPS, np.random.default_rng(7))
    streamed = [model.apply({k: clean[k][t] for k in clean}) for t in range(60)]
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
        np.testing.assert_array_equal(a[k], np.stack([s[k] for s in streamed]))
    assert not np.array_equal(a["keypoints"], c["keypoints"])


def test_config_validation_and_presets() -> None:
    assert HumanNoise.from_config("clean").is_clean and not HumanNoise.from_config("realistic").is_clean
    custom = HumanNoise.from_config({"preset": "realistic", "keypoint_jitter": 0.01})
    assert custom.keypoint_jitter == 0.01 and custom.slam_drift_pos == PRESETS["realistic"].slam_drift_pos
    assert HumanNoise.from_config({"wrist_pos": 0.002}).wrist_pos == 0.002
    with pytest.raises(InvalidChoiceError, match="realistic"):
        HumanNoise.from_config("noisy")
    with pytest.raises(ConfigError, match="jitter_m"):
        HumanNoise.from_config({"jitter_m": 0.1})
    for bad in ({"keypoint_jitter": -0.1}, {"dropout_rate": 1.0}, {"dropout_mean_frames": 0.5},
                {"dropout_confidence": 2.0}, {"dropout_rate": 0.9, "dropout_mean_frames": 1.0},
                {"slam_drift_pos": float("nan")}, {"wrist_rot": True}):
        with pytest.raises(ConfigError):
            HumanNoise(**bad)


def test_scalar_rotation_helpers_match_the_batched_ones() -> None:
    """The per-frame scalar rotation math equals egosim.geometry's batched functions."""
    from egosim.geometry import matrix_rows_to_quat, rotvec_matrix_rows

    rng = np.random.default_rng(5)
    for _ in range(50):
        v = rng.normal(0, 1.5, 3)
        r = np.array(rotvec_matrix_rows(*v))
        np.testing.assert_allclose(r, axis_angle_to_matrix(v, float(np.linalg.norm(v))), atol=1e-12)
        np.testing.assert_allclose(matrix_rows_to_quat(r), matrix_to_quat(r), atol=1e-12)
    np.testing.assert_allclose(rotvec_matrix_rows(0.0, 0.0, 0.0), np.eye(3))
