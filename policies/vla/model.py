"""The VLA network: context encoders, embodiment adapters and the flow-matching DiT.

Layout follows GR00T N1's action head (NVIDIA/Isaac-GR00T `flow_matching_action_head.py`): the DiT
reads the token sequence `[state (1), future tokens (F), action tokens (H)]`, cross-attends to the
vision-language context, is conditioned on the flow time through adaptive layer norm, and regresses
the velocity `A - eps` of the path `A_tau = tau A + (1 - tau) eps`. The loss is the MSE averaged over
the entries of `action_mask` only, so padded action dimensions and padded time steps never count.

Everything here works on *normalised* states and actions (see `normalize.py`); the train step and the
policy wrapper convert.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from egosim.errors import ConfigError
from egosim.policies.vla.config import VLAConfig

PAD, BOS = 0, 1  # instruction token ids; byte b is token b + 2
TEXT_VOCAB = 258


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding (B,) -> (B, dim) of a (bucketed) flow time, as in DiT/GR00T."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def instruction_tokens(texts: Sequence[str], length: int) -> Tensor:
    """UTF-8 bytes of each instruction as token ids (B, length): BOS, bytes + 2, then PAD.

    A byte vocabulary needs no tokenizer download (toolchain.md: no model hub) and covers any text.
    """
    out = torch.full((len(texts), length), PAD, dtype=torch.long)
    for i, text in enumerate(texts):
        data = text.encode("utf-8")[: length - 1]
        out[i, 0] = BOS
        if data:
            out[i, 1 : 1 + len(data)] = torch.tensor(list(data), dtype=torch.long) + 2
    return out


def _conv(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride=2, padding=k // 2), nn.GroupNorm(8, cout), nn.SiLU())


class ImageEncoder(nn.Module):
    """A small conv net shared by all cameras; a learned camera embedding tells the views apart.

    Each camera gives `grid_h * grid_w` tokens (the pooled last feature map plus a position embedding).
    GroupNorm instead of BatchNorm keeps a sample's features independent of its batch.
    """

    def __init__(self, cfg: VLAConfig) -> None:
        super().__init__()
        c = cfg.image_channels
        self.size = tuple(cfg.image_size)
        self.grid = tuple(cfg.image_grid)
        self.convs = nn.Sequential(_conv(3, c[0], 5), _conv(c[0], c[1], 3), _conv(c[1], c[2], 3), _conv(c[2], c[3], 3))
        self.proj = nn.Linear(c[3], cfg.d_model)
        self.pos = nn.Parameter(0.02 * torch.randn(self.grid[0] * self.grid[1], cfg.d_model))
        self.camera = nn.Parameter(0.02 * torch.randn(len(cfg.cameras), cfg.d_model))

    def forward(self, images: Tensor, camera_index: int) -> Tensor:
        """(B, 3, H, W) uint8 or float in [0, 1] -> (B, grid_h * grid_w, d_model)."""
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        if tuple(x.shape[-2:]) != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False, antialias=True)
        x = self.convs((x - 0.5) / 0.25)
        x = F.adaptive_avg_pool2d(x, self.grid).flatten(2).transpose(1, 2)
        return self.proj(x) + self.pos + self.camera[camera_index]


class InstructionEncoder(nn.Module):
    """Byte embedding + a small pre-norm transformer encoder (the stand-in for GR00T's VLM language side)."""

    def __init__(self, cfg: VLAConfig) -> None:
        super().__init__()
        self.length = cfg.text_len
        self.embed = nn.Embedding(TEXT_VOCAB, cfg.d_model)
        self.pos = nn.Parameter(0.02 * torch.randn(cfg.text_len, cfg.d_model))
        layer = nn.TransformerEncoderLayer(cfg.d_model, cfg.heads, 4 * cfg.d_model, cfg.dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, cfg.text_layers, enable_nested_tensor=False)

    def forward(self, texts: Sequence[str], device: torch.device) -> tuple[Tensor, Tensor]:
        """Instructions -> (tokens (B, L, d), padding mask (B, L), True where padded)."""
        ids = instruction_tokens(texts, self.length).to(device)
        pad = ids == PAD
        return self.encoder(self.embed(ids) + self.pos, src_key_padding_mask=pad), pad


class DiTBlock(nn.Module):
    """Self-attention over state/future/action tokens, cross-attention to the context, then an MLP.

    Each sub-layer is modulated by the flow-time embedding (adaLN-Zero: shift, scale and a gate that
    starts at zero, so an untrained block is the identity).
    """

    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d, elementwise_affine=False)
        self.attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(d, elementwise_affine=False)
        self.cross = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.norm3 = nn.LayerNorm(d, elementwise_affine=False)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.ada = nn.Linear(d, 9 * d)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)

    def forward(self, x: Tensor, cond: Tensor, context: Tensor, context_pad: Tensor) -> Tensor:
        s1, c1, g1, s2, c2, g2, s3, c3, g3 = self.ada(F.silu(cond))[:, None].chunk(9, dim=-1)
        h = self.norm1(x) * (1 + c1) + s1
        x = x + g1 * self.attn(h, h, h, need_weights=False)[0]
        h = self.norm2(x) * (1 + c2) + s2
        x = x + g2 * self.cross(h, context, context, key_padding_mask=context_pad, need_weights=False)[0]
        h = self.norm3(x) * (1 + c3) + s3
        return x + g3 * self.mlp(h)


def _mlp(din: int, d: int, dout: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(din, d), nn.SiLU(), nn.Linear(d, dout))


class VLAModel(nn.Module):
    """The whole network; `loss` for training and `sample` for inference (both on normalised values)."""

    def __init__(self, cfg: VLAConfig) -> None:
        super().__init__()
        for name in cfg.embodiment_names:
            if not name.isidentifier():
                raise ConfigError(f"embodiment name {name!r} must be a Python identifier (it names modules)")
        self.cfg = cfg
        d = cfg.d_model
        self.image_encoder = ImageEncoder(cfg)
        self.text_encoder = InstructionEncoder(cfg)
        self.context_norm = nn.LayerNorm(d)
        self.state_encoders = nn.ModuleDict(
            {n: _mlp(s.state_dim, d, d) for n, s in cfg.embodiments.items() if s.state_dim > 0})
        self.state_placeholder = nn.Parameter(0.02 * torch.randn(d))  # samples without proprioception
        self.action_encoders = nn.ModuleDict({n: nn.Linear(s.action_dim, d) for n, s in cfg.embodiments.items()})
        self.action_time_mix = nn.Sequential(nn.Linear(2 * d, d), nn.SiLU(), nn.Linear(d, d))
        self.action_pos = nn.Parameter(0.02 * torch.randn(cfg.horizon, d))
        self.future = nn.Parameter(0.02 * torch.randn(cfg.future_tokens, d))
        self.time_mlp = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.blocks = nn.ModuleList([DiTBlock(d, cfg.heads, cfg.dropout) for _ in range(cfg.dit_layers)])
        self.final_norm = nn.LayerNorm(d, elementwise_affine=False)
        self.final_ada = nn.Linear(d, 2 * d)
        self.action_decoders = nn.ModuleDict({n: _mlp(d, d, s.action_dim) for n, s in cfg.embodiments.items()})

    # -- context -------------------------------------------------------------------------------
    def encode_context(
        self,
        images: Mapping[str, Tensor],
        instruction: Sequence[str],
        camera_mask: Mapping[str, Tensor] | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Image and instruction tokens -> (context (B, N, d), padding mask (B, N)).

        Cameras missing from `images` are left out; `camera_mask[cam]` (B,) bool marks per sample
        which cameras exist (e.g. human clips with only the head camera).
        """
        device = self.state_placeholder.device
        tokens, pads = [], []
        for i, cam in enumerate(self.cfg.cameras):
            if cam not in images:
                continue
            tok = self.image_encoder(images[cam].to(device), i)
            tokens.append(tok)
            present = torch.ones(tok.shape[0], dtype=torch.bool, device=device)
            if camera_mask is not None and cam in camera_mask:
                present = camera_mask[cam].to(device=device, dtype=torch.bool)
            pads.append((~present)[:, None].expand(-1, tok.shape[1]))
        text, text_pad = self.text_encoder(instruction, device)
        tokens.append(text)
        pads.append(text_pad)
        return self.context_norm(torch.cat(tokens, dim=1)), torch.cat(pads, dim=1)

    # -- adapters ------------------------------------------------------------------------------
    def _groups(self, embodiment: Sequence[str]) -> dict[str, Tensor]:
        groups: dict[str, list[int]] = {}
        for i, name in enumerate(embodiment):
            self.cfg.spec(name)  # unknown names raise, listing the known ones
            groups.setdefault(name, []).append(i)
        device = self.state_placeholder.device
        return {n: torch.tensor(ix, dtype=torch.long, device=device) for n, ix in groups.items()}

    def encode_state(self, embodiment: Sequence[str], state: Tensor, has_state: Tensor) -> Tensor:
        """(B, D_state_max) -> one state token per sample (B, 1, d); the placeholder where there is none."""
        out = self.state_placeholder.expand(len(embodiment), -1)
        for name, idx in self._groups(embodiment).items():
            dim = self.cfg.spec(name).state_dim
            if dim == 0:
                continue
            enc = self.state_encoders[name](state.index_select(0, idx)[:, :dim])
            keep = has_state.index_select(0, idx).to(torch.bool)[:, None]
            out = out.index_copy(0, idx, torch.where(keep, enc, self.state_placeholder.expand_as(enc)))
        return out[:, None]

    def _velocity(self, groups: Mapping[str, Tensor], context: Tensor, context_pad: Tensor, state_tok: Tensor,
                  noisy: Tensor, tau: Tensor) -> Tensor:
        cfg = self.cfg
        b, h, _ = noisy.shape
        if h != cfg.horizon:
            raise ConfigError(f"action chunk has {h} steps; this VLA predicts horizon={cfg.horizon}")
        bucket = torch.floor(tau * cfg.timestep_buckets).clamp(max=cfg.timestep_buckets - 1)
        t_emb = timestep_embedding(bucket, cfg.d_model)
        act = noisy.new_zeros(b, h, cfg.d_model)
        for name, idx in groups.items():
            dim = cfg.spec(name).action_dim
            act = act.index_copy(0, idx, self.action_encoders[name](noisy.index_select(0, idx)[..., :dim]))
        act = self.action_time_mix(torch.cat([act, t_emb[:, None].expand(-1, h, -1)], dim=-1)) + self.action_pos
        x = torch.cat([state_tok, self.future.expand(b, -1, -1), act], dim=1)
        cond = self.time_mlp(t_emb)
        for block in self.blocks:
            x = block(x, cond, context, context_pad)
        shift, scale = self.final_ada(F.silu(cond))[:, None].chunk(2, dim=-1)
        x = (self.final_norm(x) * (1 + scale) + shift)[:, -h:]
        out = noisy.new_zeros(b, h, cfg.max_action_dim)
        for name, idx in groups.items():
            dec = self.action_decoders[name](x.index_select(0, idx))
            out = out.index_copy(0, idx, F.pad(dec, (0, cfg.max_action_dim - dec.shape[-1])))
        return out

    # -- training / inference ------------------------------------------------------------------
    def loss(self, batch: Mapping[str, object], noise: Tensor, tau: Tensor) -> Tensor:
        """Flow-matching loss of a normalised batch for given noise (B, H, D) and flow times (B,).

        Targets outside `action_mask` are zeroed before they enter the noisy path, so padded
        dimensions and time steps change neither the input nor the loss.
        """
        mask = batch["action_mask"].to(torch.bool)
        action = torch.where(mask, batch["action"], torch.zeros_like(batch["action"]))
        noise = torch.where(mask, noise, torch.zeros_like(noise))
        embodiment = list(batch["embodiment"])
        groups = self._groups(embodiment)
        context, pad = self.encode_context(batch["images"], batch["instruction"], batch.get("camera_mask"))
        state_tok = self.encode_state(embodiment, batch["state"], batch["has_state"])
        t = tau[:, None, None]
        noisy = t * action + (1 - t) * noise
        pred = self._velocity(groups, context, pad, state_tok, noisy, tau)
        err = (pred - (action - noise)) ** 2 * mask
        return err.sum() / mask.sum().clamp(min=1)

    @torch.no_grad()
    def sample(self, batch: Mapping[str, object], generator: torch.Generator | None = None,
               steps: int | None = None) -> Tensor:
        """K Euler steps of the flow ODE from Gaussian noise at tau = 0 to a chunk at tau = 1.

        Returns normalised chunks (B, H, D_action_max), zero in each embodiment's padded dims. The
        context and state token are computed once and reused by every step.
        """
        cfg = self.cfg
        embodiment = list(batch["embodiment"])
        groups = self._groups(embodiment)
        context, pad = self.encode_context(batch["images"], batch["instruction"], batch.get("camera_mask"))
        state_tok = self.encode_state(embodiment, batch["state"], batch["has_state"])
        b, k = len(embodiment), steps or cfg.inference_steps
        x = torch.randn(b, cfg.horizon, cfg.max_action_dim, generator=generator).to(context.device)
        for i in range(k):
            tau = torch.full((b,), i / k, device=context.device)
            x = x + self._velocity(groups, context, pad, state_tok, x, tau) / k
        dims = torch.tensor([cfg.spec(n).action_dim for n in embodiment], device=x.device)
        return x * (torch.arange(cfg.max_action_dim, device=x.device)[None] < dims[:, None])[:, None]


def parameter_count(model: nn.Module) -> int:
    """Number of scalar parameters (trainable or not)."""
    return sum(p.numel() for p in model.parameters())
