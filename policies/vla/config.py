"""The VLA's configuration: network sizes, flow-matching settings and the embodiment table.

Everything that fixes a tensor shape lives here, so a checkpoint's `config.json` alone rebuilds the
network its `model.safetensors` was saved from. Adding an embodiment is one `EmbodimentSpec` entry.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from egosim.errors import ConfigError, InvalidChoiceError, reject_unknown_keys

CAMERAS: tuple[str, ...] = ("ego_view", "left_wrist_view", "right_wrist_view")


@dataclass(frozen=True)
class EmbodimentSpec:
    """Input and output sizes of one embodiment's adapters.

    Attributes:
        state_dim: Proprioceptive state size; 0 for embodiments without proprioception (human), whose
            samples get the learned placeholder token instead of a state token.
        action_dim: Per-step action size (2 x (9 + hand_dof) for a bimanual hand).
        hand_dof: Hand joints per side; the policy wrapper needs it to split wrist and joint slices.
    """

    state_dim: int
    action_dim: int
    hand_dof: int

    def __post_init__(self) -> None:
        if self.state_dim < 0 or self.action_dim <= 0 or self.hand_dof <= 0:
            raise ConfigError(f"embodiment sizes must be positive (state may be 0), got {self}")
        if self.action_dim != 2 * (9 + self.hand_dof):
            raise ConfigError(f"action_dim {self.action_dim} is not 2 x (9 + hand_dof={self.hand_dof})")


# Human actions are retargeted to the 22-DoF Sharpa hand, as in EgoScale (egoscale_facts.md 1.5), so
# the human head predicts the same 62-D layout; human samples carry no proprioception.
DEFAULT_EMBODIMENTS: dict[str, EmbodimentSpec] = {
    "human": EmbodimentSpec(state_dim=0, action_dim=62, hand_dof=22),
    "sharpa_wave": EmbodimentSpec(state_dim=62, action_dim=62, hand_dof=22),
    "unitree_dex3": EmbodimentSpec(state_dim=32, action_dim=32, hand_dof=7),
}


@dataclass(frozen=True)
class VLAConfig:
    """Shape and sampling settings of the VLA (see `egosim.policies.vla` for why these defaults).

    Attributes:
        embodiments: Name -> adapter sizes; the order is the embodiment id order.
        cameras: Camera keys the image encoder reads (shared weights + a learned camera embedding).
        image_size: (H, W) the camera images are resized to before the conv encoder.
        image_channels: Conv widths of the four stride-2 stages of the image encoder.
        image_grid: (h, w) the last feature map is pooled to; h*w tokens per camera.
        text_len: Instruction bytes kept (UTF-8, truncated); the byte vocabulary needs no tokenizer.
        text_layers: Transformer layers of the instruction encoder.
        d_model: Width of every token.
        heads: Attention heads everywhere.
        dit_layers: Blocks of the flow-matching transformer (self-attn, cross-attn to context, MLP).
        future_tokens: Learned extra query tokens between state and action tokens (GR00T layout).
        horizon: Action chunk length H predicted per call.
        execute_steps: How many of the H steps the policy wrapper returns per call (receding horizon).
        inference_steps: Euler steps K of the flow ODE at inference.
        noise_beta_alpha, noise_beta_beta, noise_s: Flow time tau = (s - u) / s, u ~ Beta(alpha, beta).
        timestep_buckets: Flow time is discretised to this many buckets before its sinusoidal embedding.
        dropout: Dropout in the transformers (0: deterministic training steps are easier to compare).
    """

    embodiments: Mapping[str, EmbodimentSpec] = field(default_factory=lambda: dict(DEFAULT_EMBODIMENTS))
    cameras: tuple[str, ...] = CAMERAS
    image_size: tuple[int, int] = (96, 128)
    image_channels: tuple[int, ...] = (16, 32, 64, 96)
    image_grid: tuple[int, int] = (3, 4)
    text_len: int = 64
    text_layers: int = 2
    d_model: int = 128
    heads: int = 4
    dit_layers: int = 4
    future_tokens: int = 4
    horizon: int = 16
    execute_steps: int = 8
    inference_steps: int = 4
    noise_beta_alpha: float = 1.5
    noise_beta_beta: float = 1.0
    noise_s: float = 0.999
    timestep_buckets: int = 1000
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if not self.embodiments:
            raise ConfigError("a VLA needs at least one embodiment")
        if self.d_model % self.heads:
            raise ConfigError(f"d_model={self.d_model} is not divisible by heads={self.heads}")
        if not 1 <= self.execute_steps <= self.horizon:
            raise ConfigError(f"execute_steps={self.execute_steps} must lie in 1..horizon={self.horizon}")
        if self.inference_steps < 1:
            raise ConfigError(f"inference_steps={self.inference_steps} must be >= 1")
        if not 0.0 < self.noise_s <= 1.0:
            raise ConfigError(f"noise_s={self.noise_s} must lie in (0, 1]")
        if len(self.image_channels) != 4:
            raise ConfigError(f"image_channels needs 4 conv widths, got {self.image_channels}")

    @property
    def embodiment_names(self) -> tuple[str, ...]:
        return tuple(self.embodiments)

    @property
    def max_state_dim(self) -> int:
        """Width of the padded `state` batch tensor (at least 1, so an all-human model still has one)."""
        return max(1, max(s.state_dim for s in self.embodiments.values()))

    @property
    def max_action_dim(self) -> int:
        """Width of the padded `action` batch tensor."""
        return max(s.action_dim for s in self.embodiments.values())

    def spec(self, embodiment: str) -> EmbodimentSpec:
        """The adapter sizes of `embodiment`; raises `InvalidChoiceError` listing the known ones."""
        try:
            return self.embodiments[embodiment]
        except KeyError:
            raise InvalidChoiceError("embodiment", embodiment, self.embodiments) from None

    def embodiment_id(self, embodiment: str) -> int:
        self.spec(embodiment)
        return self.embodiment_names.index(embodiment)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (tuples become lists; `from_dict` undoes it)."""
        out = dataclasses.asdict(self)
        out["embodiments"] = {k: dataclasses.asdict(v) for k, v in self.embodiments.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VLAConfig:
        """Rebuilds a config from `to_dict` output; unknown keys are an error naming the valid ones."""
        reject_unknown_keys(data, [f.name for f in dataclasses.fields(cls)], "VLA config")
        kw = dict(data)
        if "embodiments" in kw:
            embs = {}
            for name, spec in kw["embodiments"].items():
                reject_unknown_keys(spec, [f.name for f in dataclasses.fields(EmbodimentSpec)], f"embodiment {name!r}")
                embs[name] = EmbodimentSpec(**spec)
            kw["embodiments"] = embs
        for key in ("cameras", "image_size", "image_channels", "image_grid"):
            if key in kw:
                kw[key] = tuple(kw[key])
        return cls(**kw)

    def hash(self) -> str:
        """sha256 of the canonical JSON form: two checkpoints with the same hash share a network shape."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()
