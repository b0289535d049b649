"""A MuJoCo fatal error inside a step (e.g. the constraint arena overflowing when contacts explode)
ends the episode with `sim_unstable`; it never raises out of `env.step` and crash a run."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

import egosim.env
import egosim.tasks


def test_fatal_error_in_a_step_is_flagged_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    env = egosim.tasks.make_env("pen_in_bin", "unitree_dex3", obs_mode="state")
    try:
        env.reset(seed=0)
        real_step = mujoco.mj_step

        def overflow(m, d, nstep=1):
            real_step(m, d, nstep=1)
            raise mujoco.FatalError("mj_stackAlloc: out of memory")

        monkeypatch.setattr(egosim.env.mujoco, "mj_step", overflow)
        obs, reward, terminated, truncated, info = env.step(np.zeros(env.action_space.shape))
        assert terminated and not truncated and info["sim_unstable"] and not info["is_success"]
        assert np.isfinite(obs["state"]).all() and np.isfinite(reward)
        monkeypatch.undo()
        obs, info = env.reset(seed=1)  # the env is usable again after a blow-up
        assert not info["sim_unstable"]
    finally:
        env.close()
