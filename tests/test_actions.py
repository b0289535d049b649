"""Action validation and clipping in the env, chunk conversion, and rot6d round trips."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make

from egosim.actions import WRIST_DIM, chunk_to_step_actions, side_slices, step_actions_to_chunk
from egosim.embodiment import SIDES
from egosim.errors import EgosimError, InvalidActionError
from egosim.geometry import (
    IDENTITY_ROT6D,
    axis_angle_to_matrix,
    matrix_to_quat,
    matrix_to_rot6d,
    quat_to_matrix,
    rot6d_to_matrix,
    rotation_angle,
)


def _random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    q = rng.normal(size=(n, 4))
    return quat_to_matrix(q / np.linalg.norm(q, axis=1, keepdims=True))


@pytest.fixture
def env(env_id):
    e = make(env_id, obs_mode="state")
    e.reset(seed=0, options={"initial_state": 0})
    yield e
    e.close()


def _hold(env) -> np.ndarray:
    """An action that keeps both wrists where they are and the hands at their current targets."""
    a = np.zeros(env.action_space.shape)
    for side in SIDES:
        sl = side_slices(env.embodiment.dof)
        a[sl[f"{side}_wrist_eef"].start + 3 : sl[f"{side}_wrist_eef"].stop] = IDENTITY_ROT6D
        a[sl[f"{side}_hand_joints"]] = env.data.ctrl[env.rig.hands[side].actuators]
    return a


# --------------------------------------------------------------------------- invalid actions
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_action_names_indices(env, bad) -> None:
    a = _hold(env)
    a[[2, 12]] = bad
    with pytest.raises(InvalidActionError, match=r"NaN or inf at indices \[2, 12\]") as exc:
        env.step(a)
    assert isinstance(exc.value, EgosimError)


@pytest.mark.parametrize("shape", [(5,), (1, 62), (2, 32), (63,), (31,), ()])
def test_wrong_shape_names_expected_shape(env, shape) -> None:
    if shape == env.action_space.shape:
        pytest.skip("the right shape for this env")
    with pytest.raises(InvalidActionError, match="shape") as exc:
        env.step(np.zeros(shape))
    assert str(env.action_space.shape) in str(exc.value)


def test_non_numeric_action(env) -> None:
    with pytest.raises(InvalidActionError):
        env.step(["a"] * env.action_space.shape[0])


def test_invalid_action_leaves_state_untouched(env) -> None:
    qpos = env.data.qpos.copy()
    a = _hold(env)
    a[0] = np.nan
    with pytest.raises(InvalidActionError):
        env.step(a)
    assert np.array_equal(qpos, env.data.qpos) and env.steps == 0


# --------------------------------------------------------------------------- clipping
def test_position_delta_clipped_per_axis(env) -> None:
    emb = env.embodiment
    max_step = emb.max_wrist_speed * env.control_dt
    sl = side_slices(emb.dof)
    before = {s: env.commanded_wrist_pose(s) for s in SIDES}
    a = _hold(env)
    a[sl["left_wrist_eef"].start : sl["left_wrist_eef"].start + 3] = [10.0, -10.0, 0.0]
    a[sl["right_wrist_eef"].start : sl["right_wrist_eef"].start + 3] = [-1e6, 0.0, 1e6]
    env.step(a)
    for side, delta in (("left", [1, -1, 0]), ("right", [-1, 0, 1])):
        (p0, r0), (p1, r1) = before[side], env.commanded_wrist_pose(side)
        local = r0.T @ (p1 - p0)  # the delta is expressed in the wrist's own frame
        assert np.all(np.abs(local) <= max_step + 1e-9), local
        np.testing.assert_allclose(local, max_step * np.asarray(delta, float), atol=1e-9)
        np.testing.assert_allclose(r1, r0, atol=1e-9)


def test_commanded_wrist_stays_in_workspace(env) -> None:
    emb = env.embodiment
    sl = side_slices(emb.dof)
    a = _hold(env)
    a[sl["left_wrist_eef"].start] = 1.0  # forward (wrist +x) as fast as allowed
    a[sl["right_wrist_eef"].start + 2] = -1.0  # wrist -z: up, palm down
    for _ in range(60):
        env.step(a)
    for side in SIDES:
        pos, _ = env.commanded_wrist_pose(side)
        assert emb.workspace[side].contains(pos), (side, pos)
    assert env.commanded_wrist_pose("left")[0][0] == pytest.approx(emb.workspace["left"].high[0])


def test_rotation_clipped_to_rate_limit(env) -> None:
    max_rot = env.embodiment.max_wrist_rot_speed * env.control_dt
    sl = side_slices(env.embodiment.dof)
    r0 = env.commanded_wrist_pose("left")[1]
    a = _hold(env)
    a[sl["left_wrist_eef"].start + 3 : sl["left_wrist_eef"].stop] = matrix_to_rot6d(axis_angle_to_matrix([0, 0, 1], 2.0))
    env.step(a)
    r1 = env.commanded_wrist_pose("left")[1]
    assert rotation_angle(r0.T @ r1) == pytest.approx(max_rot, abs=1e-6)
    # rot6d entries beyond [-1, 1] are clipped to the space before decoding: (5,0,0,0,5,0) -> identity
    a[sl["left_wrist_eef"].start + 3 : sl["left_wrist_eef"].stop] = [5.0, 0, 0, 0, 5.0, 0]
    env.step(a)
    np.testing.assert_allclose(env.commanded_wrist_pose("left")[1], r1, atol=1e-9)


def test_joint_targets_clipped_to_limits(env) -> None:
    sl = side_slices(env.embodiment.dof)
    a = _hold(env)
    a[sl["left_hand_joints"]] = 100.0
    a[sl["right_hand_joints"]] = -100.0
    env.step(a)
    for side, bound in (("left", 1), ("right", 0)):
        h = env.rig.hands[side]
        limits = env.embodiment.joint_limits(side)[:, bound]
        np.testing.assert_array_equal(env.data.ctrl[h.actuators], limits)
        np.testing.assert_array_equal(env.data.ctrl[h.actuators], h.ctrl_high if bound else h.ctrl_low)


def test_action_space_bounds_documented(env) -> None:
    emb = env.embodiment
    max_step = emb.max_wrist_speed * env.control_dt
    sl = side_slices(emb.dof)
    for side in SIDES:
        w = sl[f"{side}_wrist_eef"]
        np.testing.assert_allclose(env.action_space.high[w.start : w.start + 3], max_step)
        np.testing.assert_allclose(env.action_space.high[w.start + 3 : w.stop], 1.0)
        np.testing.assert_allclose(env.action_space.low[sl[f"{side}_hand_joints"]], emb.joint_limits(side)[:, 0])


def test_chunk_reaches_chunk_relative_poses(env) -> None:
    """A chunk of W_ref^-1 W_k poses, converted by chunk_to_step_actions, commands W_ref W_k."""
    dof = env.embodiment.dof
    sl = side_slices(dof)
    rng = np.random.default_rng(0)
    ref = {s: env.commanded_wrist_pose(s) for s in SIDES}
    chunk = np.tile(_hold(env), (4, 1))
    targets = {}
    for side in SIDES:
        w = sl[f"{side}_wrist_eef"].start
        pos, rot = np.zeros(3), np.eye(3)
        for k in range(4):
            pos = pos + rng.uniform(-0.01, 0.01, 3)
            rot = rot @ axis_angle_to_matrix(rng.normal(size=3), 0.05)
            chunk[k, w : w + 3], chunk[k, w + 3 : w + 9] = pos, matrix_to_rot6d(rot)
        targets[side] = (ref[side][0] + ref[side][1] @ pos, ref[side][1] @ rot)
    for step in chunk_to_step_actions(chunk, dof):
        env.step(step)
    for side in SIDES:
        p, r = env.commanded_wrist_pose(side)
        np.testing.assert_allclose(p, targets[side][0], atol=1e-9)
        np.testing.assert_allclose(r, targets[side][1], atol=1e-6)


# --------------------------------------------------------------------------- chunk utility
@pytest.mark.parametrize("dof", [22, 7])
def test_chunk_step_round_trip(dof: int) -> None:
    rng = np.random.default_rng(dof)
    h, d = 6, 2 * (WRIST_DIM + dof)
    chunk = rng.uniform(-1, 1, size=(h, d))
    for off in (0, WRIST_DIM + dof):
        chunk[:, off + 3 : off + 9] = matrix_to_rot6d(_random_rotations(rng, h))
    steps = chunk_to_step_actions(chunk, dof)
    np.testing.assert_allclose(step_actions_to_chunk(steps, dof), chunk, atol=1e-12)
    np.testing.assert_allclose(chunk_to_step_actions(step_actions_to_chunk(steps, dof), dof), steps, atol=1e-12)
    # the first step equals the first chunk entry; hand joints pass through unchanged
    np.testing.assert_allclose(steps[0], chunk[0], atol=1e-12)
    sl = side_slices(dof)
    for key in ("left_hand_joints", "right_hand_joints"):
        np.testing.assert_array_equal(steps[:, sl[key]], chunk[:, sl[key]])


def test_chunk_of_one_is_a_step() -> None:
    a = np.random.default_rng(1).uniform(-1, 1, size=(1, 32))
    a[0, 3:9] = a[0, 19:25] = IDENTITY_ROT6D
    np.testing.assert_allclose(chunk_to_step_actions(a, 7), a)


def test_chunk_wrong_shape_raises() -> None:
    with pytest.raises(InvalidActionError, match=r"expected \(H, 32\)"):
        chunk_to_step_actions(np.zeros((3, 31)), 7)
    with pytest.raises(InvalidActionError, match="shape"):
        step_actions_to_chunk(np.zeros(62), 22)


# --------------------------------------------------------------------------- geometry
def test_rot6d_round_trip() -> None:
    rots = _random_rotations(np.random.default_rng(0), 200)
    np.testing.assert_allclose(rot6d_to_matrix(matrix_to_rot6d(rots)), rots, atol=1e-12)
    np.testing.assert_allclose(rot6d_to_matrix(IDENTITY_ROT6D), np.eye(3))
    np.testing.assert_allclose(quat_to_matrix(matrix_to_quat(rots)), rots, atol=1e-12)


def test_rot6d_decodes_any_vector_to_a_rotation() -> None:
    v = np.random.default_rng(2).uniform(-1, 1, size=(500, 6))
    m = rot6d_to_matrix(v)
    np.testing.assert_allclose(m @ np.swapaxes(m, -1, -2), np.broadcast_to(np.eye(3), m.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(m), 1.0, atol=1e-12)
    # degenerate inputs (zero or parallel halves) decode to the identity, never NaN
    np.testing.assert_array_equal(rot6d_to_matrix(np.zeros(6)), np.eye(3))
    np.testing.assert_array_equal(rot6d_to_matrix([1, 0, 0, 2, 0, 0]), np.eye(3))
