"""Offline metrics: EgoScale's validation-loss protocol and its scaling-law fit over checkpoints.

EgoScale reports, besides task success, the action-prediction error of a checkpoint on held-out
human episodes, and fits it against pretraining data volume as L = a + b ln(D). The protocol:
20 timesteps per held-out episode; at each, 16 action chunks sampled from the flow-matching head and
averaged; the mean squared error against the recorded chunk, on the wrist part and on the hand part.

The protocol is written against a sampler callable, so any checkpoint that can draw action chunks
for an observation plugs in (the egosim VLA, a remote policy); episodes are plain arrays.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from egosim.actions import side_slices
from egosim.eval.stats import LogFit, fit_log_scaling

TIMESTEPS_PER_EPISODE = 20
FLOW_SAMPLES = 16

Sampler = Callable[[Mapping[str, Any], int, np.random.Generator], NDArray[np.float64]]
"""(observation, n_samples, rng) -> (n_samples, H, action_dim) sampled action chunks."""


@dataclass(frozen=True)
class HeldOutEpisode:
    """One held-out episode: per-frame observations and the recorded action chunks (T, H, action_dim)."""

    observations: Sequence[Mapping[str, Any]]
    action_chunks: NDArray[np.float64]


@dataclass(frozen=True)
class ValidationLoss:
    """Mean squared errors of the averaged predictions (wrist part, hand part, all), over n frames."""

    wrist_mse: float
    hand_mse: float
    mse: float
    n_frames: int


def eval_timesteps(n_frames: int, k: int = TIMESTEPS_PER_EPISODE) -> list[int]:
    """The k frames of an episode the protocol scores: evenly spaced, first and last included, fixed
    (no randomness, so two checkpoints are scored on the same frames)."""
    if n_frames <= 0:
        return []
    return sorted({int(round(x)) for x in np.linspace(0, n_frames - 1, min(k, n_frames))})


def validation_loss(
    sample: Sampler, episodes: Sequence[HeldOutEpisode], dof: int, *, timesteps: int = TIMESTEPS_PER_EPISODE,
    flow_samples: int = FLOW_SAMPLES, seed: int = 0,
) -> ValidationLoss:
    """EgoScale's validation loss of one checkpoint on held-out episodes.

    Args:
        sample: Draws action chunks for an observation (see `Sampler`).
        episodes: Held-out episodes; their action layout is egosim's (left wrist 9, left hand dof,
            right wrist 9, right hand dof).
        dof: Hand joints per side, to split wrist and hand parts.
        timesteps: Frames scored per episode.
        flow_samples: Chunks sampled and averaged per frame.
        seed: Seeds the sampler's generator, so a checkpoint's loss is reproducible.
    """
    rng = np.random.default_rng(seed)
    sl = side_slices(dof)
    wrist_idx = np.r_[sl["left_wrist_eef"], sl["right_wrist_eef"]]
    hand_idx = np.r_[sl["left_hand_joints"], sl["right_hand_joints"]]
    sq_wrist, sq_hand, n = [], [], 0
    for ep in episodes:
        truth_all = np.asarray(ep.action_chunks, dtype=np.float64)
        if truth_all.ndim != 3 or truth_all.shape[-1] != 2 * (9 + dof):
            raise ValueError(f"action_chunks must be (T, H, {2 * (9 + dof)}), got {truth_all.shape}")
        for t in eval_timesteps(len(ep.observations), timesteps):
            draws = np.asarray(sample(ep.observations[t], flow_samples, rng), dtype=np.float64)
            if draws.shape != (flow_samples, *truth_all.shape[1:]):
                raise ValueError(f"sampler returned {draws.shape}, expected {(flow_samples, *truth_all.shape[1:])}")
            err = draws.mean(axis=0) - truth_all[t]
            sq_wrist.append(float((err[:, wrist_idx] ** 2).mean()))
            sq_hand.append(float((err[:, hand_idx] ** 2).mean()))
            n += 1
    if n == 0:
        raise ValueError("no frames to score: give at least one non-empty held-out episode")
    w, h = float(np.mean(sq_wrist)), float(np.mean(sq_hand))
    n_w, n_h = len(wrist_idx), len(hand_idx)
    return ValidationLoss(w, h, (w * n_w + h * n_h) / (n_w + n_h), n)


def scaling_plot_svg(hours: Sequence[float], losses: Sequence[float], fit: LogFit | None = None,
                     title: str = "Validation loss vs pretraining data") -> str:
    """An SVG plot of loss against data volume (log axis) with the fitted L = a + b ln(D) line."""
    d = np.asarray(hours, dtype=np.float64)
    y = np.asarray(losses, dtype=np.float64)
    fit = fit or fit_log_scaling(d, y)
    w, h, pad = 420, 260, 50
    lx0, lx1 = math.log(d.min()), math.log(d.max())
    lx1 = lx1 if lx1 > lx0 else lx0 + 1.0
    y0, y1 = float(min(y.min(), fit.predict(d).min())), float(max(y.max(), fit.predict(d).max()))
    y1 = y1 if y1 > y0 else y0 + 1.0
    px = lambda v: pad + (math.log(v) - lx0) / (lx1 - lx0) * (w - 2 * pad)  # noqa: E731
    py = lambda v: h - pad - (v - y0) / (y1 - y0) * (h - 2 * pad)  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
           f'<text x="{pad}" y="18" font-size="13" font-weight="bold">{html.escape(title)}</text>',
           f'<rect x="{pad}" y="{pad}" width="{w - 2 * pad}" height="{h - 2 * pad}" fill="none" stroke="#999"/>']
    xs = np.exp(np.linspace(lx0, lx1, 50))
    path = " ".join(f"{'M' if i == 0 else 'L'}{px(x):.1f},{py(float(fit.predict(x))):.1f}" for i, x in enumerate(xs))
    out.append(f'<path d="{path}" stroke="#C44E52" fill="none" stroke-width="1.5"/>')
    for dv, yv in zip(d, y):
        out.append(f'<circle cx="{px(dv):.1f}" cy="{py(yv):.1f}" r="4" fill="#4C72B0"><title>{dv:g} h: {yv:.4f}'
                   '</title></circle>')
        out.append(f'<text x="{px(dv):.1f}" y="{h - pad + 14}" text-anchor="middle">{dv:g}</text>')
    out.append(f'<text x="{w / 2}" y="{h - 12}" text-anchor="middle">data (hours, log scale)</text>')
    out.append(f'<text x="{w - pad}" y="{pad - 6}" text-anchor="end">L = {fit.a:.3f} {fit.b:+.3f} ln D, '
               f'R\u00b2 = {fit.r2:.3f}</text>')
    out.append("</svg>")
    return "".join(out)
