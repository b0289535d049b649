"""Training the VLA: one step function, a resumable loop, and EgoScale's three stages.

Batches follow this contract (the dataset loader in `egosim.data` produces them):

    embodiment   list[str] of length B (names in the model config)
    images       {camera: (B, 3, H, W) uint8, or float in [0, 1]}; cameras may be missing
    camera_mask  optional {camera: (B,) bool}, False where a sample has no such camera
    instruction  list[str]
    state        (B, D_state_max) float32, raw units, zeros where there is none (human)
    has_state    (B,) bool  (or `state_mask` (B, D_state_max) bool, reduced with any())
    action       (B, H, D_action_max) float32, raw units; wrists chunk-relative to the chunk's first
                 frame (`egosim.actions.step_actions_to_chunk`), hand joints absolute
    action_mask  (B, H, D_action_max) bool, False on padded dims and padded time steps

States and actions are normalised here with the run's per-embodiment statistics (`normalize.py`).

Stages (egoscale_facts.md 1.7; the paper's table lists what trains in each):
- `pretrain`: human data with actions retargeted to the 22-DoF hand; everything trains.
- `midtrain`: aligned human + robot co-training with mixture weights (the loader samples by them;
  they are recorded in the provenance). The paper freezes the VLM's language model and trains the
  vision encoder, DiT and adapters: here the instruction encoder stands in for the LLM and freezes.
- `finetune`: task demos (one-shot = one robot demo + aligned human demos). The vision encoder
  freezes if the initial checkpoint was mid-trained, else it trains. Assumed: the instruction
  encoder stays frozen whenever the initial checkpoint was pre- or mid-trained, and nothing freezes
  when training starts from random weights (the from-scratch baseline), since frozen random
  weights would only cripple it.
The paper's learning rates (5e-5, 3e-5, 3e-5) are for batches of 8,192-512 on a 2B+ model; a CPU-size
model on batches of 8-64 trains with 3e-4 (AdamW, linear warm-up, then constant).

Resumption: every `save_every` steps (and at the end) the loop writes a full checkpoint folder
`RUN/checkpoints/step_NNNNNNNN/` plus `optimizer.safetensors` and `trainer_state.json`, first into a
temporary folder that is renamed in place, so a kill leaves either the old or the new checkpoint. A
restart with the same arguments continues from the newest one. Batches are a function of the step
index and each step's noise and flow times come from a generator seeded by (seed, step), so a killed
and resumed run ends bit-for-bit where an uninterrupted one does. Metrics go to `RUN/metrics.csv`;
rows past the resumed step (lost with the kill) are dropped on restart.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from egosim.actions import step_actions_to_chunk
from egosim.errors import ConfigError, InvalidChoiceError
from egosim.policies.vla.checkpoint import CheckpointError, Provenance, load_checkpoint, save_checkpoint
from egosim.policies.vla.config import VLAConfig
from egosim.policies.vla.model import VLAModel
from egosim.policies.vla.normalize import EmbodimentStats

Batch = Mapping[str, Any]
STAGES = ("pretrain", "midtrain", "finetune")
# Parameter groups that stages freeze, as prefixes of parameter names.
GROUPS: dict[str, tuple[str, ...]] = {
    "image_encoder": ("image_encoder.",),
    "text_encoder": ("text_encoder.",),
    "adapters": ("state_encoders.", "state_placeholder", "action_encoders.", "action_decoders."),
}
METRIC_FIELDS = ("step", "stage", "loss", "lr", "grad_norm", "samples_per_s", "elapsed_s")


@dataclass(frozen=True)
class StageConfig:
    """One training stage.

    Attributes:
        name: pretrain | midtrain | finetune.
        steps: Optimizer steps of this stage.
        lr: Peak learning rate (AdamW), reached after `warmup_steps`.
        batch_size: Samples per batch (for the loader; recorded in the provenance).
        freeze: Parameter groups kept fixed (keys of `GROUPS`); None = the stage's default.
        mixture: Data-source weights the loader samples by (midtrain), recorded in the provenance.
        save_every: Write a resumable checkpoint every this many steps (and at the last step).
        keep_last: Checkpoints kept in RUN/checkpoints (older ones are deleted).
        warmup_steps, weight_decay, grad_clip: Optimizer details.
    """

    name: str
    steps: int
    lr: float = 3e-4
    batch_size: int = 32
    freeze: tuple[str, ...] | None = None
    mixture: Mapping[str, float] = field(default_factory=dict)
    save_every: int = 500
    keep_last: int = 2
    warmup_steps: int = 50
    weight_decay: float = 0.01
    grad_clip: float = 1.0

    def __post_init__(self) -> None:
        if self.name not in STAGES:
            raise InvalidChoiceError("training stage", self.name, STAGES)
        if self.steps < 1 or self.save_every < 1 or self.keep_last < 1:
            raise ConfigError(f"steps, save_every and keep_last must be >= 1 (got {self.steps}, "
                              f"{self.save_every}, {self.keep_last})")
        for g in self.freeze or ():
            if g not in GROUPS:
                raise InvalidChoiceError("parameter group", g, GROUPS)


def default_freeze(stage: str, previous_stages: Sequence[str]) -> tuple[str, ...]:
    """What a stage freezes by default, given the stages its initial checkpoint went through."""
    if stage not in STAGES:
        raise InvalidChoiceError("training stage", stage, STAGES)
    if stage == "pretrain" or not previous_stages:
        return ()
    if stage == "midtrain":
        return ("text_encoder",)
    return ("text_encoder", "image_encoder") if "midtrain" in previous_stages else ("text_encoder",)


def lr_at(stage: StageConfig, step: int) -> float:
    """Learning rate of optimizer step `step` (0-based): linear warm-up, then constant."""
    return stage.lr * min(1.0, (step + 1) / max(1, stage.warmup_steps))


def normalize_batch(batch: Batch, stats: Mapping[str, EmbodimentStats], cfg: VLAConfig) -> dict[str, Any]:
    """A contract batch with states and actions mapped to [-1, 1] per embodiment; `has_state` filled in."""
    emb = list(batch["embodiment"])
    state = torch.as_tensor(batch["state"], dtype=torch.float32).clone()
    action = torch.as_tensor(batch["action"], dtype=torch.float32).clone()
    if state.shape != (len(emb), cfg.max_state_dim):
        raise ConfigError(f"batch state has shape {tuple(state.shape)}; expected ({len(emb)}, {cfg.max_state_dim})")
    if action.shape != (len(emb), cfg.horizon, cfg.max_action_dim):
        raise ConfigError(f"batch action has shape {tuple(action.shape)}; expected "
                          f"({len(emb)}, {cfg.horizon}, {cfg.max_action_dim})")
    if "has_state" in batch:
        has_state = torch.as_tensor(batch["has_state"]).to(torch.bool)
    elif "state_mask" in batch:
        has_state = torch.as_tensor(batch["state_mask"]).to(torch.bool).any(dim=-1)
    else:
        has_state = torch.tensor([cfg.spec(n).state_dim > 0 for n in emb])
    for name in set(emb):
        spec = cfg.spec(name)
        if name not in stats:
            have = ", ".join(sorted(stats)) or "none"
            raise ConfigError(f"no normalisation statistics for embodiment {name!r} (have: {have}); pass "
                              "statistics= (normalize.compute_statistics) or an init_checkpoint that has them")
        idx = torch.tensor([i for i, n in enumerate(emb) if n == name])
        action[idx, :, : spec.action_dim] = stats[name].action.normalize(action[idx, :, : spec.action_dim])
        if spec.state_dim and stats[name].state is not None:
            state[idx, : spec.state_dim] = stats[name].state.normalize(state[idx, : spec.state_dim])
    out = dict(batch)
    out.update(state=state, action=action, has_state=has_state,
               action_mask=torch.as_tensor(batch["action_mask"]).to(torch.bool))
    return out


def action_chunk_at(steps: np.ndarray, t: int, horizon: int, hand_dof: int) -> tuple[np.ndarray, np.ndarray]:
    """The training target at frame `t` of an episode's per-step env actions `steps` (T, D).

    Returns the chunk (horizon, D), wrists relative to the commanded pose at `t` (the chunk's first
    frame), hand joints absolute, and a (horizon,) bool mask that is False past the episode's end
    (those rows are zero; broadcast the mask over the action dims for `action_mask`).
    """
    steps = np.asarray(steps, dtype=np.float64)
    if not 0 <= t < len(steps):
        raise ConfigError(f"frame {t} is outside the episode's {len(steps)} steps")
    window = steps[t : t + horizon]
    chunk = np.zeros((horizon, steps.shape[1]))
    chunk[: len(window)] = step_actions_to_chunk(window, hand_dof)
    valid = np.arange(horizon) < len(window)
    return chunk, valid


def step_noise(cfg: VLAConfig, seed: int, step: int, shape: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """Gaussian noise and flow times of one training step, a function of (seed, step) alone.

    Flow time follows GR00T: tau = (s - u) / s with u ~ Beta(alpha, beta) (1.5, 1.0 and s = 0.999 by
    default), which puts more weight on the noisy end of the path. GR00T's formula reaches -0.001 for
    u near 1; it is clamped at 0 here (its bucketing truncates such times to bucket 0 anyway).
    """
    rng = np.random.default_rng([seed, step])
    u = rng.beta(cfg.noise_beta_alpha, cfg.noise_beta_beta, size=shape[0])
    tau = torch.as_tensor(np.clip((cfg.noise_s - u) / cfg.noise_s, 0.0, 1.0), dtype=torch.float32)
    gen = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
    return torch.randn(shape, generator=gen), tau


def train_step(model: VLAModel, optimizer: torch.optim.Optimizer, batch: Batch,
               stats: Mapping[str, EmbodimentStats], *, seed: int, step: int,
               grad_clip: float = 1.0) -> dict[str, float]:
    """One optimizer step on a contract batch; returns the loss and the pre-clip gradient norm."""
    model.train()
    nb = normalize_batch(batch, stats, model.cfg)
    device = model.state_placeholder.device
    nb = {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in nb.items()}
    noise, tau = step_noise(model.cfg, seed, step, tuple(nb["action"].shape))
    loss = model.loss(nb, noise.to(device), tau.to(device))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    params = [p for p in model.parameters() if p.requires_grad]
    norm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()
    return {"loss": float(loss.detach()), "grad_norm": float(norm)}


def apply_freeze(model: VLAModel, groups: Sequence[str]) -> list[str]:
    """Sets requires_grad per parameter group; returns the names of the trainable parameters."""
    prefixes = tuple(p for g in groups for p in GROUPS[g])
    trainable = []
    for name, p in model.named_parameters():
        p.requires_grad_(not name.startswith(prefixes))
        if p.requires_grad:
            trainable.append(name)
    return trainable


def make_optimizer(model: VLAModel, stage: StageConfig) -> tuple[torch.optim.AdamW, list[str]]:
    """AdamW over the trainable parameters, in a fixed order (their names, for saving its state)."""
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    params = dict(model.named_parameters())
    opt = torch.optim.AdamW([params[n] for n in names], lr=stage.lr, weight_decay=stage.weight_decay)
    return opt, names


def save_optimizer(opt: torch.optim.Optimizer, names: Sequence[str], folder: Path) -> None:
    """Optimizer state as safetensors (`<param>::<key>`) + hyperparameters in JSON; no pickle."""
    sd = opt.state_dict()
    tensors = {}
    for idx, state in sd["state"].items():
        for key, val in state.items():
            tensors[f"{names[idx]}::{key}"] = torch.as_tensor(val).detach().cpu().contiguous().clone()
    save_file(tensors, str(folder / "optimizer.safetensors"))
    groups = [{k: v for k, v in g.items() if k != "params"} for g in sd["param_groups"]]
    (folder / "optimizer.json").write_text(json.dumps({"param_names": list(names), "param_groups": groups}))


def load_optimizer(opt: torch.optim.Optimizer, names: Sequence[str], folder: Path) -> None:
    meta = json.loads((folder / "optimizer.json").read_text())
    if meta["param_names"] != list(names):
        raise CheckpointError(f"{folder}: optimizer was saved for other trainable parameters "
                              f"({len(meta['param_names'])} vs {len(names)}); was the stage's freeze changed?")
    tensors = load_file(str(folder / "optimizer.safetensors"))
    state: dict[int, dict[str, Tensor]] = {}
    for key, val in tensors.items():
        pname, skey = key.split("::")
        state.setdefault(names.index(pname), {})[skey] = val
    groups = [dict(g, params=list(range(len(names)))) for g in meta["param_groups"]]
    opt.load_state_dict({"state": state, "param_groups": groups})


@dataclass
class TrainResult:
    """What a `train` call ended with."""

    run_dir: Path
    checkpoint: Path
    step: int
    resumed_from: int
    losses: list[float]


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> Path | None:
    """The newest complete step checkpoint of a run (temporary folders of a killed save are ignored)."""
    folder = Path(run_dir) / "checkpoints"
    done = sorted(p for p in folder.glob("step_*") if (p / "trainer_state.json").is_file()) if folder.is_dir() else []
    return done[-1] if done else None


def train(
    run_dir: str | os.PathLike[str],
    stage: StageConfig,
    batches: Callable[[int], Batch],
    *,
    statistics: Mapping[str, EmbodimentStats] | None = None,
    model_config: VLAConfig | None = None,
    init_checkpoint: str | os.PathLike[str] | None = None,
    seed: int = 0,
    data_hours: Mapping[str, float] | None = None,
    device: str = "cpu",
    log_every: int = 1,
    progress: bool = False,
    on_log: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Runs (or resumes) one stage and returns where it ended.

    Args:
        run_dir: The run's folder (checkpoints/, metrics.csv). An existing checkpoint there resumes.
        stage: What to train and for how long.
        batches: `batches(step)` gives the contract batch of optimizer step `step` (0-based); a pure
            function of the step makes resumed runs identical to uninterrupted ones.
        statistics: Normalisation per embodiment; None keeps those of `init_checkpoint`.
        model_config: Network shape for a fresh model (ignored when resuming or initialising).
        init_checkpoint: Weights to start from (a previous stage); None = random init (scratch).
        seed: Seeds the initial weights and every step's noise.
        data_hours: Hours of data of this stage by source, added to the provenance.
        device: "cpu" or "cuda".
        log_every: Write a metrics row every this many steps.
        progress: Print a progress line to stderr at each logged step.
        on_log: Called with each metrics row (the CSV's fields) as it is written: progress bars,
            TensorBoard (`train_cli`).
    """
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    prev_prov = Provenance()
    prev_stats: Mapping[str, EmbodimentStats] = {}
    if init_checkpoint is not None:
        init = load_checkpoint(init_checkpoint)
        if model_config is not None and model_config != init.config:
            raise ConfigError(f"model_config differs from the config of init_checkpoint {str(init_checkpoint)!r}; "
                              "pass one or the other")
        cfg, model, prev_prov, prev_stats = init.config, init.model, init.provenance, init.statistics
    else:
        cfg = model_config or VLAConfig()
        torch.manual_seed(seed)
        model = VLAModel(cfg)
    stats = dict(prev_stats)
    stats.update(statistics or {})
    freeze = stage.freeze if stage.freeze is not None else default_freeze(
        stage.name, [s["stage"] for s in prev_prov.stages])
    stage = replace(stage, freeze=tuple(freeze))

    resume = latest_checkpoint(run)
    start = 0
    if resume is not None:
        state = json.loads((resume / "trainer_state.json").read_text())
        if state["stage"] != stage.name or state["config_hash"] != cfg.hash():
            raise CheckpointError(f"run folder {str(run)!r} holds a {state['stage']!r} run of another config; "
                                  f"use a new run_dir for stage {stage.name!r}")
        ck = load_checkpoint(resume)
        model = ck.model
        start = int(state["step"])
    model.to(device)
    apply_freeze(model, stage.freeze)
    opt, names = make_optimizer(model, stage)
    if resume is not None:
        load_optimizer(opt, names, resume)

    hours = dict(prev_prov.data_hours)
    for src, h in (data_hours or {}).items():
        hours[src] = hours.get(src, 0.0) + float(h)
    stage_record = {"stage": stage.name, "steps": stage.steps, "batch_size": stage.batch_size, "lr": stage.lr,
                    "freeze": list(stage.freeze), "mixture": dict(stage.mixture),
                    "init": None if init_checkpoint is None else str(init_checkpoint), "seed": seed}
    provenance = Provenance(data_hours=hours, stages=[*prev_prov.stages, stage_record])

    metrics = run / "metrics.csv"
    _truncate_metrics(metrics, start)
    losses: list[float] = []
    last = resume
    t0 = time.perf_counter()
    with open(metrics, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=METRIC_FIELDS)
        if fh.tell() == 0:
            writer.writeheader()
        for step in range(start, stage.steps):
            for g in opt.param_groups:
                g["lr"] = lr_at(stage, step)
            batch = batches(step)
            t_step = time.perf_counter()
            out = train_step(model, opt, batch, stats, seed=seed, step=step, grad_clip=stage.grad_clip)
            losses.append(out["loss"])
            if not math.isfinite(out["loss"]):
                raise ConfigError(f"loss became {out['loss']} at step {step}; lower stage.lr ({stage.lr})")
            done = step + 1
            if done % log_every == 0 or done == stage.steps:
                row = {"step": done, "stage": stage.name, "loss": f"{out['loss']:.6g}", "lr": f"{lr_at(stage, step):.6g}",
                       "grad_norm": f"{out['grad_norm']:.6g}",
                       "samples_per_s": f"{len(batch['embodiment']) / max(1e-9, time.perf_counter() - t_step):.4g}",
                       "elapsed_s": f"{time.perf_counter() - t0:.4g}"}
                writer.writerow(row)
                fh.flush()
                if on_log is not None:
                    on_log(row)
                if progress:
                    print(f"[{stage.name}] step {done}/{stage.steps} loss {out['loss']:.4f}", file=sys.stderr)
            if done % stage.save_every == 0 or done == stage.steps:
                last = _save_step(run, done, model, opt, names, stats, provenance, stage, seed)
    if last is None:  # resumed at the end already
        last = latest_checkpoint(run)
    return TrainResult(run, last, stage.steps, start, losses)


def _save_step(run: Path, step: int, model: VLAModel, opt: torch.optim.Optimizer, names: Sequence[str],
               stats: Mapping[str, EmbodimentStats], provenance: Provenance, stage: StageConfig, seed: int) -> Path:
    folder = run / "checkpoints"
    final = folder / f"step_{step:08d}"
    tmp = folder / f".tmp_step_{step:08d}"
    if tmp.exists():
        shutil.rmtree(tmp)
    prov = replace(provenance, stages=[*provenance.stages[:-1], dict(provenance.stages[-1], steps_done=step)])
    save_checkpoint(tmp, model, stats, prov)
    save_optimizer(opt, names, tmp)
    (tmp / "trainer_state.json").write_text(json.dumps(
        {"stage": stage.name, "step": step, "seed": seed, "freeze": list(stage.freeze or ()),
         "config_hash": model.cfg.hash()}, indent=2))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in sorted(folder.glob("step_*"))[: -stage.keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _truncate_metrics(path: Path, step: int) -> None:
    """Drops metric rows past `step` (written after the checkpoint a resumed run restarts from)."""
    if not path.is_file():
        return
    with open(path, newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= step]
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=METRIC_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
