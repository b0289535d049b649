"""The random baseline: uniform samples of the env's action space, from the policy's own generator."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray


class RandomPolicy:
    """Samples each action uniformly from the env's (bounded) action space; returns (1, D) chunks.

    A one-step chunk makes chunk-relative and per-step wrist actions the same thing. The generator is
    the policy's own (seeded by the constructor and by `reset(seed)`), so the env's random stream is
    untouched and a run is reproducible from its seed.
    """

    embodiments: tuple[str, ...] = ()  # any

    def __init__(self, env: gym.Env, seed: int | None = None) -> None:
        space = env.action_space
        if not isinstance(space, gym.spaces.Box) or not (np.isfinite(space.low).all() and np.isfinite(space.high).all()):
            raise TypeError(f"RandomPolicy needs a bounded Box action space, got {space}")
        self._low = np.asarray(space.low, dtype=np.float64)
        self._high = np.asarray(space.high, dtype=np.float64)
        self._rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self._rng = np.random.default_rng(seed)

    def act(self, observation: Mapping[str, Any]) -> NDArray[np.float64]:
        return self._rng.uniform(self._low, self._high)[None, :]
