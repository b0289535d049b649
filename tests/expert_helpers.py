"""Plays a task's scripted expert through the evaluator's episode loop, for the per-task expert tests."""

from __future__ import annotations

from typing import Any

import egosim.tasks
from egosim.eval.episode import run_episode
from egosim.policies import get_policy_kind, make_policy


def play_expert(task: str, embodiment: str, states: list[int], seed: int = 0, **env_kwargs: Any) -> list[dict]:
    """Episode records of the expert on evaluation `states` (state i resets with seed + i), one env."""
    kind = get_policy_kind("expert")
    env = egosim.tasks.make_env(task, embodiment, obs_mode="rgb" if kind.needs_images else "state",
                                privileged=kind.needs_privileged, **env_kwargs)
    try:
        policy = make_policy("expert", env, seed=seed)
        return [run_episode(env, policy, initial_state=i, seed=seed + i, policy_name="expert") for i in states]
    finally:
        env.close()


def failures(records: list[dict]) -> str:
    """One line per failed episode: state, score, how it ended and the milestones it missed."""
    return "; ".join(
        f"state {r['initial_state']}: score {r['score']:.2f} {r['end']} "
        f"{[k for k, v in r['milestones'].items() if not v]} missing" for r in records if not r["success"]
    )
