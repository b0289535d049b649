"""Shared pieces of the VLA tests: a tiny config, synthetic contract batches, a stand-in env."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from egosim.policies.vla.config import CAMERAS, VLAConfig
from egosim.policies.vla.normalize import compute_statistics

torch.set_num_threads(1)

TINY = VLAConfig(image_size=(24, 32), image_channels=(8, 8, 16, 16), image_grid=(2, 2), text_len=16,
                 text_layers=1, d_model=32, heads=2, dit_layers=1, future_tokens=2, horizon=4, execute_steps=2)


def synthetic_batch(cfg: VLAConfig, embodiments: list[str], seed: int = 0, image_hw: tuple[int, int] = (24, 32),
                    pad_steps: int = 0) -> dict[str, Any]:
    """A contract batch with random content; `pad_steps` last time steps are masked out."""
    g = torch.Generator().manual_seed(seed)
    b, h, da, ds = len(embodiments), cfg.horizon, cfg.max_action_dim, cfg.max_state_dim
    state = torch.zeros(b, ds)
    mask = torch.zeros(b, h, da, dtype=torch.bool)
    action = torch.zeros(b, h, da)
    for i, name in enumerate(embodiments):
        spec = cfg.spec(name)
        state[i, : spec.state_dim] = torch.randn(spec.state_dim, generator=g)
        action[i, :, : spec.action_dim] = torch.randn(h, spec.action_dim, generator=g)
        mask[i, : h - pad_steps, : spec.action_dim] = True
    return {
        "embodiment": list(embodiments),
        "images": {c: torch.randint(0, 256, (b, 3, *image_hw), generator=g, dtype=torch.uint8) for c in cfg.cameras},
        "instruction": [f"put the pen in the bin {i}" for i in range(b)],
        "state": state,
        "has_state": torch.tensor([cfg.spec(n).state_dim > 0 for n in embodiments]),
        "action": action,
        "action_mask": mask,
    }


def fake_env(name: str, action_dim: int) -> Any:
    """What `VLAPolicy` reads from an env, without building MuJoCo."""
    base = SimpleNamespace(embodiment=SimpleNamespace(name=name), state_dim=action_dim,
                           action_space=spaces.Box(-1, 1, (action_dim,)))
    return SimpleNamespace(unwrapped=base)


def fake_obs(state_dim: int, seed: int = 0, hw: tuple[int, int] = (240, 320)) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    obs: dict[str, Any] = {c: rng.integers(0, 256, (*hw, 3), dtype=np.uint8) for c in CAMERAS}
    obs["state"] = rng.normal(size=state_dim).astype(np.float32)
    obs["instruction"] = "put the pen in the bin"
    return obs


EMBS = ["human", "sharpa_wave", "unitree_dex3"]


def _stats():
    g = np.random.default_rng(0)
    return compute_statistics({n: (None if TINY.spec(n).state_dim == 0 else g.normal(size=(64, TINY.spec(n).state_dim)),
                                   g.normal(size=(64, TINY.horizon, TINY.spec(n).action_dim))) for n in EMBS})


STATS = _stats()


def batches(step: int) -> dict[str, Any]:
    """Mixed-embodiment batches as a pure function of the step, as the train loop's contract asks."""
    return synthetic_batch(TINY, [EMBS[(step + i) % 3] for i in range(4)], seed=step % 5, pad_steps=step % 2)
