"""Shared fixtures: every registered env id, and a builder that makes the env behind an id."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is imported anywhere

import egosim.tasks  # noqa: E402  (registers the env ids)
import gymnasium as gym  # noqa: E402
import pytest  # noqa: E402

from egosim.env import EgosimEnv  # noqa: E402

ENV_IDS: list[str] = egosim.tasks.env_ids()


def pair_of(env_id: str) -> tuple[str, str]:
    """(task, embodiment) registered behind a Gymnasium id."""
    kw = gym.spec(env_id).kwargs
    return kw["task"], kw["embodiment"]


def make(env_id: str, **kwargs) -> EgosimEnv:
    """The unwrapped env of a registered id (fast path for tests; `gym.make` adds wrappers)."""
    task, emb = pair_of(env_id)
    return egosim.tasks.make_env(task, emb, **kwargs)


HUMAN_DEFAULT_TASKS = ("pen_in_bin",)  # the human's envs in the default suite; the rest are slow


def _param(env_id: str):
    """Every robot env runs in the default suite; the human demonstrator's only on `pen_in_bin` (its
    envs cost as much as the robots' and double the suite; the cloth ones take minutes), the rest in
    `make test-slow`."""
    from egosim.embodiment import get_embodiment

    task, emb = pair_of(env_id)
    if get_embodiment(emb).is_human and task not in HUMAN_DEFAULT_TASKS:
        return pytest.param(env_id, marks=pytest.mark.slow)
    return env_id


@pytest.fixture(params=[_param(e) for e in ENV_IDS])
def env_id(request) -> str:
    return request.param
