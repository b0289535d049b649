"""The `replay` kind: recorded actions replay an episode exactly, from .npz and .jsonl, and in `egosim eval`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from egosim.cli import main
from egosim.errors import InvalidChoiceError
from egosim.policies import make_policy
from egosim.policies.replay import ReplayError, save_replay_jsonl, save_replay_npz
from egosim.tasks import make_env


def _record(state: int, steps: int = 12) -> tuple[np.ndarray, np.ndarray]:
    env = make_env("pen_in_bin", "unitree_dex3", obs_mode="state")
    pol = make_policy("random", env, seed=state)
    env.reset(seed=state, options={"initial_state": state})
    actions = []
    for _ in range(steps):
        a = pol.act({})[0]
        obs, *_ = env.step(a)
        actions.append(a)
    return np.array(actions), obs["state"]


@pytest.mark.parametrize("fmt", ["npz", "jsonl"])
def test_replay_reproduces_the_episode(fmt: str, tmp_path: Path) -> None:
    actions, final = _record(2)
    path = tmp_path / f"rec.{fmt}"
    (save_replay_npz if fmt == "npz" else save_replay_jsonl)(path, {("pen_in_bin", "unitree_dex3", 2): actions})
    env = make_env("pen_in_bin", "unitree_dex3", obs_mode="state")
    pol = make_policy("replay", env, checkpoint=str(path))
    obs, _ = env.reset(seed=2, options={"initial_state": 2})
    pol.reset(seed=2)
    for _ in range(len(actions)):
        obs, *_ = env.step(pol.act(obs)[0])
    assert np.array_equal(obs["state"], final)
    held = pol.act(obs)[0]  # past the end: wrists still, last hand targets
    assert np.array_equal(held[9:16], actions[-1][9:16]) and np.array_equal(held[:3], np.zeros(3))
    env.reset(seed=3, options={"initial_state": 3})
    with pytest.raises(ReplayError, match="has no episode pen_in_bin/unitree_dex3/3; it has pen_in_bin/unitree_dex3/2"):
        pol.reset(seed=3)


def test_replay_errors(tmp_path: Path) -> None:
    env = make_env("pen_in_bin", "unitree_dex3", obs_mode="state")
    bad = tmp_path / "rec.csv"
    bad.write_text("x")
    with pytest.raises(InvalidChoiceError, match="unknown replay file type '.csv'; valid choices: .jsonl, .npz"):
        make_policy("replay", env, checkpoint=str(bad))
    short = tmp_path / "short.npz"
    save_replay_npz(short, {("pen_in_bin", "unitree_dex3", 0): np.zeros((1, 32))})
    pol = make_policy("replay", env, checkpoint=str(short), at_end="error")
    env.reset(seed=0, options={"initial_state": 0})
    pol.reset(seed=0)
    pol.act({})
    with pytest.raises(ReplayError, match="ended after 1 steps"):
        pol.act({})
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text(json.dumps({"task": "pen_in_bin", "embodiment": "unitree_dex3", "initial_state": 0,
                                 "actions": [[0.0] * 62]}) + "\n")
    with pytest.raises(ReplayError, match="62-D actions; unitree_dex3 takes 32-D"):
        make_policy("replay", env, checkpoint=str(wrong)).reset(seed=0)


def test_eval_policy_replay(tmp_path: Path) -> None:
    actions, _ = _record(0, steps=8)
    path = tmp_path / "rec.npz"
    save_replay_npz(path, {("pen_in_bin", "unitree_dex3", 0): actions})
    rc = main(["eval", "policy=replay", f"checkpoint={path}", "embodiments=[unitree_dex3]", "episodes=1",
               "max_steps=8", "workers=1", f"output_dir={tmp_path / 'out'}"])
    assert rc == 0
    (row,) = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert row["policy"] == "replay" and row["mean_steps"] == 8
