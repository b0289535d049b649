"""run_episode plays multi-step chunks and rejects empty ones; run_eval validates before running."""

from __future__ import annotations

import egosim.tasks
import numpy as np
import pytest
from egosim.eval.episode import run_episode
from egosim.eval.runner import EvalConfig, run_eval

from egosim.actions import side_slices
from egosim.errors import ConfigError, InvalidActionError
from egosim.geometry import IDENTITY_ROT6D


class ChunkPolicy:
    """Holds still with chunks of `h` identical chunk-relative poses (identity wrists, open hands)."""

    embodiments = ()

    def __init__(self, env, h: int) -> None:
        self.h, self.dof = h, env.embodiment.dof
        self.calls = 0

    def reset(self, seed=None) -> None:
        self.calls = 0

    def act(self, obs):
        self.calls += 1
        a = np.zeros(2 * (9 + self.dof))
        for key in ("left_wrist_eef", "right_wrist_eef"):
            a[side_slices(self.dof)[key].start + 3 : side_slices(self.dof)[key].stop] = IDENTITY_ROT6D
        return np.tile(a, (self.h, 1))


@pytest.fixture(scope="module")
def env():
    e = egosim.tasks.make_env("pen_in_bin", "unitree_dex3", obs_mode="state")
    yield e
    e.close()


def test_chunks_are_played_step_by_step(env) -> None:
    policy = ChunkPolicy(env, h=4)
    rec = run_episode(env, policy, initial_state=2, seed=5, max_steps=10, policy_name="hold")
    assert rec["steps"] == 10 and policy.calls == 3  # 4 + 4 + 2 steps
    assert rec["end"] == "max_steps" and rec["initial_state"] == 2 and rec["seed"] == 5 and rec["policy"] == "hold"
    assert env.initial_state["id"] == 2


def test_empty_chunk_raises(env) -> None:
    with pytest.raises(InvalidActionError, match="empty"):
        run_episode(env, ChunkPolicy(env, h=0), initial_state=0, seed=0)


def test_config_checked_before_running(tmp_path) -> None:
    with pytest.raises(ConfigError, match="unknown eval config keys"):
        EvalConfig.from_mapping({"episode": 3})
    with pytest.raises(ConfigError, match="max_steps"):
        EvalConfig.from_mapping({"max_steps": 0})
    with pytest.raises(ConfigError, match="50"):
        run_eval({"episodes": 51, "policy": "random", "output_dir": str(tmp_path)}, log=None)
    assert not any(tmp_path.iterdir())
