"""The `vla` policy kind: a checkpoint folder behind the `Policy` protocol."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from numpy.typing import NDArray

from egosim.actions import chunk_to_step_actions
from egosim.errors import ConfigError
from egosim.policies.vla.checkpoint import CheckpointError, load_checkpoint


class VLAPolicy:
    """Plays a VLA checkpoint on one env.

    `act` returns the first `execute_steps` rows of the predicted chunk (wrist parts relative to the
    chunk's first frame, hand joints absolute, un-normalised with the checkpoint's statistics of this
    embodiment): a prefix of a chunk-relative chunk is itself one, so the eval runner turns it into
    per-step actions with `egosim.actions.chunk_to_step_actions`, as it does for every policy.
    `step_actions` does that conversion for callers that step an env themselves. The flow's noise
    comes from the policy's own generator, reseeded by `reset(seed)`, so an episode's actions depend
    on its seed alone. Torch runs on one thread: the evaluator parallelises over episodes, one
    process per core, and intra-op threads would only oversubscribe the cores.
    """

    def __init__(self, env: gym.Env, seed: int | None = None, checkpoint: str | None = None,
                 device: str = "cpu") -> None:
        if checkpoint is None:
            raise ConfigError("policy kind 'vla' needs checkpoint=PATH (a VLA checkpoint folder; "
                              "egosim.policies.vla.train writes them)")
        torch.set_num_threads(1)
        self.ckpt = load_checkpoint(checkpoint, device=device)
        self.cfg = self.ckpt.config
        base = env.unwrapped
        name = base.embodiment.name
        if name not in self.cfg.embodiments:
            raise CheckpointError(f"checkpoint {checkpoint!r} has no head for embodiment {name!r}; it knows "
                                  f"{', '.join(self.cfg.embodiment_names)}")
        self.spec = self.cfg.spec(name)
        if self.spec.action_dim != base.action_space.shape[0] or self.spec.state_dim != base.state_dim:
            raise CheckpointError(
                f"checkpoint {checkpoint!r}: embodiment {name!r} has action/state dims "
                f"{self.spec.action_dim}/{self.spec.state_dim}, the env {base.action_space.shape[0]}/{base.state_dim}")
        self.embodiments = (name,)
        self.stats = self.ckpt.statistics[name]
        self.device = torch.device(device)
        self._seed = 0 if seed is None else int(seed)
        self._gen = torch.Generator().manual_seed(self._seed)

    def reset(self, seed: int | None = None) -> None:
        self._gen = torch.Generator().manual_seed(self._seed if seed is None else int(seed))

    def batch(self, observation: Mapping[str, Any]) -> dict[str, Any]:
        """A one-sample batch of the training contract from an env observation (state normalised)."""
        missing = [c for c in self.cfg.cameras if c not in observation]
        if missing:
            raise ConfigError(f"the VLA reads cameras {list(self.cfg.cameras)}; the observation lacks {missing} "
                              "(build the env with obs_mode='rgb')")
        images = {c: torch.from_numpy(np.ascontiguousarray(observation[c])).permute(2, 0, 1)[None].to(self.device)
                  for c in self.cfg.cameras}
        state = torch.zeros(1, self.cfg.max_state_dim)
        has_state = torch.zeros(1, dtype=torch.bool)
        if self.spec.state_dim and self.stats.state is not None:
            raw = torch.as_tensor(np.asarray(observation["state"], dtype=np.float32))[None]
            state[:, : self.spec.state_dim] = self.stats.state.normalize(raw)
            has_state[:] = True
        return {"embodiment": [self.embodiments[0]], "images": images,
                "instruction": [str(observation.get("instruction", ""))],
                "state": state.to(self.device), "has_state": has_state.to(self.device)}

    def predict_chunk(self, observation: Mapping[str, Any]) -> NDArray[np.float64]:
        """The full predicted chunk (H, action_dim), un-normalised, chunk-relative wrists."""
        with torch.inference_mode():
            x = self.ckpt.model.sample(self.batch(observation), generator=self._gen)
            chunk = self.stats.action.unnormalize(x[0, :, : self.spec.action_dim].double().cpu())
        return chunk.numpy()

    def act(self, observation: Mapping[str, Any]) -> NDArray[np.float64]:
        return self.predict_chunk(observation)[: self.cfg.execute_steps]

    def step_actions(self, observation: Mapping[str, Any]) -> NDArray[np.float64]:
        """`act` converted to per-step env actions (the shared chunk utility of `egosim.actions`)."""
        return chunk_to_step_actions(self.act(observation), self.spec.hand_dof)
