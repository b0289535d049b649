"""Per-embodiment normalisation statistics (the checkpoint's `statistics.json`).

Both state and action use **min-max to [-1, 1]** per dimension, as GR00T does for its action
modalities: bounded targets suit the flow's unit-Gaussian source, and joint targets have hard limits
anyway. Dimensions whose range is below `EPS` (constant in the data, e.g. an unused rot6d entry) map
to 0 and back to their constant. Actions are normalised in the form the model predicts them: wrist
parts chunk-relative (the chunk's first frame is the reference), hand joints absolute. Mean and std
are stored too, for reports and for anyone who prefers mean-std; the model uses min and max only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from egosim.errors import ConfigError

EPS = 1e-6
KEYS = ("min", "max", "mean", "std")


@dataclass(frozen=True)
class Stats:
    """Per-dimension statistics of one modality of one embodiment (float64 arrays of equal length)."""

    min: NDArray[np.float64]
    max: NDArray[np.float64]
    mean: NDArray[np.float64]
    std: NDArray[np.float64]

    @property
    def dim(self) -> int:
        return int(self.min.shape[0])

    @classmethod
    def of(cls, values: NDArray) -> Stats:
        """Statistics of samples (..., D), pooled over every leading axis."""
        flat = np.asarray(values, dtype=np.float64).reshape(-1, np.shape(values)[-1])
        if flat.shape[0] == 0:
            raise ConfigError("cannot compute statistics of zero samples")
        return cls(flat.min(0), flat.max(0), flat.mean(0), flat.std(0))

    @classmethod
    def identity(cls, dim: int) -> Stats:
        """Range [-1, 1] per dimension: normalising is a no-op (an untrained model's placeholder)."""
        return cls(-np.ones(dim), np.ones(dim), np.zeros(dim), np.ones(dim))

    def to_dict(self) -> dict[str, list[float]]:
        return {k: getattr(self, k).tolist() for k in KEYS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> Stats:
        missing = [k for k in KEYS if k not in data]
        if missing:
            raise ConfigError(f"{where}: missing {missing}; each modality needs {list(KEYS)}")
        arrays = {k: np.asarray(data[k], dtype=np.float64) for k in KEYS}
        lengths = {k: a.shape for k, a in arrays.items()}
        if len({a.shape for a in arrays.values()}) != 1 or arrays["min"].ndim != 1:
            raise ConfigError(f"{where}: min/max/mean/std must be equal-length lists, got shapes {lengths}")
        if not all(np.isfinite(a).all() for a in arrays.values()):
            raise ConfigError(f"{where}: statistics contain NaN or inf")
        if (arrays["max"] < arrays["min"]).any():
            raise ConfigError(f"{where}: max < min at dims {np.flatnonzero(arrays['max'] < arrays['min']).tolist()}")
        return cls(**arrays)

    def normalize(self, x: Tensor) -> Tensor:
        """Maps [min, max] to [-1, 1] along the last axis (which must have `dim` entries)."""
        lo, hi = self._bounds(x)
        span = hi - lo
        return torch.where(span > EPS, 2 * (x - lo) / span.clamp(min=EPS) - 1, torch.zeros_like(x))

    def unnormalize(self, x: Tensor) -> Tensor:
        lo, hi = self._bounds(x)
        span = hi - lo
        return torch.where(span > EPS, (x + 1) / 2 * span + lo, lo.expand_as(x))

    def _bounds(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return (torch.as_tensor(self.min, dtype=x.dtype, device=x.device),
                torch.as_tensor(self.max, dtype=x.dtype, device=x.device))


@dataclass(frozen=True)
class EmbodimentStats:
    """State (None without proprioception) and action statistics of one embodiment."""

    action: Stats
    state: Stats | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action.to_dict()}
        if self.state is not None:
            out["state"] = self.state.to_dict()
        return out


def statistics_to_json(stats: Mapping[str, EmbodimentStats]) -> dict[str, Any]:
    """The `statistics.json` document: {embodiment: {"action": {...}, "state": {...}}, "_method": ...}."""
    out: dict[str, Any] = {"_method": "min_max_to_unit_interval"}
    out.update({name: s.to_dict() for name, s in stats.items()})
    return out


def statistics_from_json(data: Mapping[str, Any]) -> dict[str, EmbodimentStats]:
    """Parses `statistics.json`; raises `ConfigError` naming the embodiment and modality at fault."""
    out = {}
    for name, entry in data.items():
        if name.startswith("_"):
            continue
        if not isinstance(entry, Mapping) or "action" not in entry:
            raise ConfigError(f"statistics of {name!r} need an 'action' entry")
        state = Stats.from_dict(entry["state"], f"statistics {name}.state") if "state" in entry else None
        out[name] = EmbodimentStats(Stats.from_dict(entry["action"], f"statistics {name}.action"), state)
    return out


def compute_statistics(
    samples: Mapping[str, tuple[NDArray | None, NDArray]],
) -> dict[str, EmbodimentStats]:
    """Statistics per embodiment from `{name: (states (N, Ds) or None, action chunks (N, H, Da))}`.

    Action chunks must already be chunk-relative (`egosim.actions.step_actions_to_chunk`).
    """
    return {name: EmbodimentStats(Stats.of(actions), None if states is None else Stats.of(states))
            for name, (states, actions) in samples.items()}
