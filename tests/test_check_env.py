"""Gymnasium's env checker passes for every registered egosim env, with images and state-only."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from conftest import ENV_IDS, make, pair_of
from gymnasium.utils.env_checker import check_env

from egosim.embodiment import get_embodiment

# Advice the checker prints for every continuous-control env; anything else is a finding.
ADVISORY = (
    "recommend using a symmetric and normalized space",
    "observation space minimum value is -infinity",
    "observation space maximum value is infinity",
)


def _check(env) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    other = [str(w.message) for w in caught if not any(a in str(w.message) for a in ADVISORY)]
    assert not other, other


@pytest.mark.parametrize("obs_mode", ["rgb", "state"])
def test_check_env_registered(env_id: str, obs_mode: str) -> None:
    env = gym.make(env_id, obs_mode=obs_mode, render_mode="rgb_array")
    try:
        _check(env)
    finally:
        env.close()


def test_check_env_privileged(env_id: str) -> None:
    env = gym.make(env_id, obs_mode="state", privileged=True)
    try:
        _check(env)
    finally:
        env.close()


def test_spaces(env_id: str) -> None:
    _, emb_name = pair_of(env_id)
    emb = get_embodiment(emb_name)
    env = make(env_id, obs_mode="rgb")
    try:
        dim = {"sharpa_wave": 62, "unitree_dex3": 32}.get(emb_name, emb.action_dim)
        assert env.action_space.shape == (dim,) == (2 * (9 + emb.dof),)
        obs, info = env.reset(seed=0)
        assert set(obs) == {"ego_view", "left_wrist_view", "right_wrist_view", "state", "instruction"}
        for cam in ("ego_view", "left_wrist_view", "right_wrist_view"):
            assert obs[cam].dtype == np.uint8 and obs[cam].ndim == 3 and obs[cam].shape[2] == 3
            assert obs[cam].std() > 1.0, f"{cam} renders a flat image"
        assert obs["state"].dtype == np.float32 and obs["state"].shape == (dim,)
        assert isinstance(obs["instruction"], str) and obs["instruction"]
        assert {"milestones", "score", "is_success", "sim_unstable"} <= set(info)
    finally:
        env.close()


def test_gym_make_self_importing_id() -> None:
    """`gym.make("egosim.tasks:<id>")` imports egosim.tasks itself (Gymnasium >= 1.0 has no plugins)."""
    code = (
        "import gymnasium as gym\n"
        f"env = gym.make('egosim.tasks:{ENV_IDS[-1]}', obs_mode='state')\n"
        "obs, _ = env.reset(seed=0)\n"
        "print(env.action_space.shape[0], obs['state'].shape[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")})
    assert out.returncode == 0, out.stderr
    dim = get_embodiment(pair_of(ENV_IDS[-1])[1]).action_dim
    assert out.stdout.split() == [str(dim), str(dim)]
