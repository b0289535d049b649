"""Benchmark tasks: one module per task, an explicit registry with tags, and the env ids.

Importing this package registers every (task, embodiment) pair with Gymnasium as
`egosim/<Task>-<Embodiment>-v<N>`. Gymnasium >= 1.0 no longer loads plugin entry points, so use either
`import egosim.tasks` before `gym.make("egosim/PenInBin-SharpaWave-v0")`, or the self-importing form
`gym.make("egosim.tasks:egosim/PenInBin-SharpaWave-v0")`.
"""

from __future__ import annotations

from egosim.tasks.registry import (
    TASKS,
    env_id,
    env_ids,
    get_task,
    make_env,
    register_envs,
    task_names,
)

register_envs()

__all__ = ["TASKS", "env_id", "env_ids", "get_task", "make_env", "register_envs", "task_names"]
