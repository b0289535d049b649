"""The task registry (name -> Task class, with tags) and Gymnasium registration of every env id."""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from egosim.embodiment import embodiment_names, get_embodiment
from egosim.env import EgosimEnv
from egosim.errors import InvalidChoiceError
from egosim.task import Task
from egosim.tasks.bottle_uncap import BottleUncap
from egosim.tasks.card_sort import CardSort
from egosim.tasks.dish_rack import DishRack
from egosim.tasks.pen_in_bin import PenInBin
from egosim.tasks.shirt_fold import ShirtFold
from egosim.tasks.shirt_roll import ShirtRoll
from egosim.tasks.syringe_transfer import SyringeTransfer
from egosim.tasks.tabletop_play import TabletopPlay
from egosim.tasks.tong_transfer import TongTransfer
from egosim.tasks.water_bottle_uncap import WaterBottleUncap

TASKS: dict[str, type[Task]] = {
    cls.name: cls
    for cls in (
        PenInBin, CardSort, TongTransfer, BottleUncap, SyringeTransfer, WaterBottleUncap, DishRack,
        ShirtRoll, ShirtFold, TabletopPlay,
    )
}
PROCEDURAL = "procedural"  # the tag of scene generators for pretraining data (not benchmark tasks)


def task_names(tag: str | None = None) -> tuple[str, ...]:
    """Registered task names, optionally only those carrying `tag` (`main`, `one_shot`, `g1`, `cloth`,
    `procedural`).

    Without a tag: the benchmark tasks, i.e. every task but the `procedural` scene generators (what
    `tasks=all` means in eval and collect). `task_names("procedural")` lists those.
    """
    if tag is None:
        return tuple(n for n, cls in TASKS.items() if PROCEDURAL not in cls.tags)
    return tuple(n for n, cls in TASKS.items() if tag in cls.tags)


def get_task(name: str) -> type[Task]:
    """The task class registered as `name`; raises `InvalidChoiceError` listing the valid names."""
    try:
        return TASKS[name]
    except KeyError:
        raise InvalidChoiceError("task", name, TASKS) from None


def env_id(task: str, embodiment: str) -> str:
    """Gymnasium id of a (task, embodiment) pair, e.g. `egosim/PenInBin-SharpaWave-v0`."""
    cls, emb = get_task(task), get_embodiment(embodiment)
    return f"egosim/{cls.env_name}-{emb.env_name}-v{cls.version}"


def env_ids() -> list[str]:
    """Every registered env id."""
    return [env_id(t, e) for t in TASKS for e in embodiment_names()]


def make_env(task: str, embodiment: str, **kwargs: Any) -> EgosimEnv:
    """Builds the env of a (task, embodiment) pair; kwargs go to `EgosimEnv`."""
    return EgosimEnv(get_task(task)(), embodiment, **kwargs)


def register_envs() -> None:
    """Registers every (task, embodiment) pair with Gymnasium (idempotent)."""
    for task in TASKS:
        for emb in embodiment_names():
            eid = env_id(task, emb)
            if eid not in gym.registry:
                gym.register(
                    id=eid,
                    entry_point="egosim.tasks.registry:make_env",
                    kwargs={"task": task, "embodiment": emb},
                    disable_env_checker=False,
                )
