"""The policy protocol, shared by scripted experts (in tasks), baselines and the VLA (in policies).

It lives in the core so that tasks can ship experts without importing `egosim.policies`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray


@runtime_checkable
class Policy(Protocol):
    """Maps an observation to an action chunk.

    `act` returns an array (H, action_dim) whose wrist parts are relative to the chunk's first frame
    (see `egosim.actions`); H = 1 makes chunk-relative and per-step actions the same thing.
    `embodiments` lists the embodiment names the policy can drive (empty: any). `reset(seed)` must
    make the coming episode depend on `seed` alone (reseed any sampling), so an episode's result does
    not depend on which worker of a parallel evaluation played it or what it played before.
    """

    embodiments: tuple[str, ...]

    def reset(self, seed: int | None = None) -> None: ...

    def act(self, observation: Mapping[str, Any]) -> NDArray[np.float64]: ...
