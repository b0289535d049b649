"""1,000 steps of uniformly random actions in every env: finite observations, no MuJoCo warning."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make

STEPS = 1000


def _rollout(env, steps: int, seed: int) -> int:
    rng = np.random.default_rng(seed)
    low, high = env.action_space.low, env.action_space.high
    obs, info = env.reset(seed=seed)
    resets = 0
    for t in range(steps):
        obs, reward, terminated, truncated, info = env.step(rng.uniform(low, high))
        for key, val in obs.items():
            if isinstance(val, np.ndarray):
                assert np.isfinite(val).all(), f"step {t}: non-finite {key}"
                assert env.observation_space[key].contains(val), f"step {t}: {key} outside its space"
        assert np.isfinite(reward)
        assert info["mujoco_warnings"] == 0, f"step {t}: MuJoCo warning {_warnings(env)}"
        assert not info["sim_unstable"], f"step {t}: simulation unstable"
        assert 0.0 <= info["score"] <= 1.0
        if terminated or truncated:
            obs, info = env.reset(seed=seed + resets + 1)
            resets += 1
    assert not env.data.warning.number.any(), _warnings(env)
    return resets


def _warnings(env) -> dict[str, int]:
    import mujoco

    return {mujoco.mjtWarning(i).name: int(n) for i, n in enumerate(env.data.warning.number) if n}


def test_random_rollout_state(env_id: str) -> None:
    env = make(env_id, obs_mode="state", privileged=True)
    try:
        _rollout(env, STEPS, seed=7)
    finally:
        env.close()


@pytest.mark.parametrize("steps", [40])
def test_random_rollout_rgb(env_id: str, steps: int) -> None:
    env = make(env_id, obs_mode="rgb")
    try:
        _rollout(env, steps, seed=3)
    finally:
        env.close()
