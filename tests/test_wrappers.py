"""RL wrappers: `NormalizedAction` maps [-1, 1] onto the action box and back; `StateOnly` flattens."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import egosim.tasks
from egosim.errors import ConfigError, EgosimError, InvalidActionError
from egosim.geometry import matrix_to_rot6d, rot6d_to_matrix, rotation_angle
from egosim.wrappers import NormalizedAction, StateOnly, matrix_to_rotvec, rotvec_to_matrix

HANDS = ["unitree_dex3", "sharpa_wave"]
# The checker's advice for unbounded state boxes, and its note that a wrapper is not `env.unwrapped`
# (checking the wrapper is the point here); anything else is a finding.
ADVISORY = ("observation space minimum value is -infinity", "observation space maximum value is infinity",
            "is different from the unwrapped version")


@pytest.fixture(scope="module", params=HANDS)
def env(request):
    e = egosim.tasks.make_env("pen_in_bin", request.param, obs_mode="state", privileged=True)
    yield e
    e.close()


def test_rotvec_round_trip() -> None:
    rng = np.random.default_rng(0)
    for v in [np.zeros(3), np.array([1e-10, 0, 0]), *(rng.normal(size=(20, 3)) * 0.8), np.array([0, 0, 3.1])]:
        np.testing.assert_allclose(matrix_to_rotvec(rotvec_to_matrix(v)), v, atol=1e-7)
    np.testing.assert_allclose(rotation_angle(rotvec_to_matrix(np.array([0.3, -0.4, 0.0]))), 0.5, atol=1e-12)


def test_normalized_round_trip_and_bounds(env) -> None:
    w = NormalizedAction(env)
    dof = env.embodiment.dof
    assert w.action_space.shape == (2 * (6 + dof),)
    assert np.all(w.action_space.low == -1) and np.all(w.action_space.high == 1)
    rng = np.random.default_rng(1)
    for _ in range(20):
        a = rng.uniform(-1, 1, w.norm_dim)
        for off in (3, 6 + dof + 3):  # keep rotations inside the speed limit, where the map is exact
            n = np.linalg.norm(a[off : off + 3])
            if n > 1:
                a[off : off + 3] /= n
        env_a = w.action(a)
        assert env.action_space.contains(env_a.astype(env.action_space.dtype)), env_a
        np.testing.assert_allclose(w.to_normalized(env_a), a, atol=1e-5)
    # zero rotation input is the identity rot6d; the extremes are the speed limit and the joint limits
    zero = w.action(np.zeros(w.norm_dim))
    np.testing.assert_allclose(zero[3:9], [1, 0, 0, 0, 1, 0], atol=1e-12)
    ones = w.action(np.ones(w.norm_dim))
    np.testing.assert_allclose(ones[:3], env.embodiment.max_wrist_speed * env.control_dt)
    np.testing.assert_allclose(ones[9 : 9 + dof], env.action_space.high[9 : 9 + dof])
    np.testing.assert_allclose(w.action(-np.ones(w.norm_dim))[9 : 9 + dof], env.action_space.low[9 : 9 + dof])
    angle = rotation_angle(rot6d_to_matrix(ones[3:9]))
    np.testing.assert_allclose(angle, env.embodiment.max_wrist_rot_speed * env.control_dt, rtol=1e-9)
    # out of range is clipped, not extrapolated
    np.testing.assert_allclose(w.action(5 * np.ones(w.norm_dim)), ones)


def test_normalized_inverse_of_env_actions(env) -> None:
    """Env actions from the expert's range (small rotations) survive env -> normalised -> env."""
    w = NormalizedAction(env)
    rng = np.random.default_rng(2)
    a = env.action_space.sample()
    small = rotvec_to_matrix(rng.normal(size=3) * 0.01)
    dof = env.embodiment.dof
    for off in (3, 9 + dof + 3):
        a[off : off + 6] = matrix_to_rot6d(small)
    np.testing.assert_allclose(w.action(w.to_normalized(a)), a, atol=1e-5)


def test_normalized_rejects_bad_actions(env) -> None:
    w = NormalizedAction(env)
    with pytest.raises(InvalidActionError, match=rf"expected \({w.norm_dim},\)"):
        w.action(np.zeros(w.norm_dim + 1))
    bad = np.zeros(w.norm_dim)
    bad[2] = np.nan
    with pytest.raises(InvalidActionError, match=r"indices \[2\]"):
        w.action(bad)


def test_state_only(env) -> None:
    s = StateOnly(NormalizedAction(env))
    obs, _ = s.reset(seed=0, options={"initial_state": 0})
    assert obs.dtype == np.float32 and obs.shape == (env.state_dim + env.task.privileged_dim,)
    assert s.observation_space.contains(obs)
    obs2, *_ = s.step(np.zeros(s.action_space.shape, dtype=np.float32))
    assert obs2.shape == obs.shape


@pytest.mark.parametrize("wrap", ["normalized", "state_only", "both"])
def test_check_env_wrappers(env, wrap: str) -> None:
    w = {"normalized": lambda e: NormalizedAction(e), "state_only": lambda e: StateOnly(e),
         "both": lambda e: StateOnly(NormalizedAction(e))}[wrap](env)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(w, skip_render_check=True)
    # StateOnly alone keeps the env's own action box, which the checker advises normalising: the very
    # advice NormalizedAction answers, so it must not appear for the other two.
    advisory = ADVISORY + (("symmetric and normalized space",) if wrap == "state_only" else ())
    other = [str(m.message) for m in caught if not any(a in str(m.message) for a in advisory)]
    assert not other, other


def test_state_only_needs_privileged() -> None:
    e = egosim.tasks.make_env("pen_in_bin", "unitree_dex3", obs_mode="state")
    try:
        with pytest.raises(ConfigError, match="privileged=True") as info:
            StateOnly(e)
        assert isinstance(info.value, EgosimError)
    finally:
        e.close()
