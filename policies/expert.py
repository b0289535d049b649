"""The scripted-expert policy kind: wraps the task's own expert (`task.make_expert(env)`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray


class ExpertPolicy:
    """Adapts a task's scripted expert to the `Policy` protocol.

    The expert is built from the unwrapped env (it reads privileged simulator state through it) and
    returns action chunks (H, D), usually one step (H = 1).
    """

    def __init__(self, env: gym.Env, seed: int | None = None) -> None:
        base = env.unwrapped
        self.expert = base.task.make_expert(base)
        self.embodiments = (base.embodiment.name,)
        self._seed = seed

    def reset(self, seed: int | None = None) -> None:
        self.expert.reset(self._seed if seed is None else seed)

    def act(self, observation: Mapping[str, Any]) -> NDArray[np.float64]:
        chunk = np.asarray(self.expert.act(observation), dtype=np.float64)
        return chunk[None, :] if chunk.ndim == 1 else chunk
