"""`egosim train`: the VLA's stages on LeRobot v3.0 datasets, from a config (egosim/conf/train.yaml).

    egosim train stage=finetune data=[outputs/demos/unitree_dex3] steps=2000 output_dir=outputs/run
    egosim train stage=midtrain init=RUN/checkpoints/step_N \\
        data=[{path:outputs/human,weight:0.5},{path:outputs/robot,weight:0.5}]

Data: `data` lists dataset folders (one embodiment each, as `egosim collect` writes them), each a path
(weight 1) or `{path: DIR, weight: W}`. Every sample first draws its dataset with probability
W / sum(W), then a frame uniformly within it; draws come from a generator seeded by (seed, step), so
a batch is a function of its step and a killed run, rerun with the same output_dir, resumes exactly.

Statistics: min-max per embodiment over every frame of every dataset of that embodiment (states,
and actions in the chunk-relative form the model predicts, padded steps excluded); computed at start
and stored in each checkpoint's `statistics.json`. With `init` and no data of an embodiment, the
checkpoint's statistics for it are kept.

Frames: decoding H.264 per sample (a seek + up to 3 decoded 240x320 frames per camera per sample)
is a large share of a CPU step. Measured on the shared 2-core machine (card_sort, batch 32, default
model, one thread, same load): building a batch by per-sample decoding took 1.33 s, the state and
action part alone 0.20 s, the train step 2.6-2.9 s, so decoding was ~30% of loader + step time. With
the cache the real run's loop ran at ~39 samples/s against ~44 for the step alone (loader ~10%).
So `cache_frames=true` (default) decodes each video once at start,
resizes it to the model's input size with the model's own resize (bilinear, antialiased) and keeps
uint8 frames in memory (3 cameras x 96x128x3 = 110 KB per frame; 4,000 frames = 440 MB).
`cache_frames=false` decodes per sample (no start-up cost, little memory).

Outputs in OUTPUT_DIR: checkpoints/step_N (each a full checkpoint for `egosim eval policy=vla`),
metrics.csv, TensorBoard event files in tb/ (`tensorboard --logdir OUTPUT_DIR/tb`), train_config.json.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from egosim.data.format import DatasetError
from egosim.data.loader import ChunkDataset, collate_batch, dataset_cameras
from egosim.errors import ConfigError, InvalidChoiceError, reject_unknown_keys
from egosim.policies.vla.config import VLAConfig
from egosim.policies.vla.normalize import EmbodimentStats, Stats
from egosim.policies.vla.train import GROUPS, STAGES, StageConfig, TrainResult, latest_checkpoint, train

DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class DataSource:
    """One dataset folder and its mixture weight."""

    path: str
    weight: float = 1.0


@dataclass
class TrainConfig:
    """What `egosim train` runs (mirrors `egosim/conf/train.yaml`; see its comments)."""

    stage: str = "finetune"
    data: list[DataSource] = field(default_factory=list)
    init: str | None = None
    steps: int = 1000
    batch_size: int = 32
    lr: float = 3e-4
    warmup_steps: int = 50
    horizon: int = 16
    save_every: int = 200
    keep_last: int = 2
    output_dir: str = "outputs/train"
    seed: int = 0
    device: str = "auto"
    cache_frames: bool = True
    freeze: list[str] | None = None
    model: dict[str, Any] = field(default_factory=dict)
    log_every: int = 10
    threads: int | None = None

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any]) -> TrainConfig:
        """Builds a config from a dict or DictConfig; unknown keys and bad values name the valid ones."""
        reject_unknown_keys(cfg, (f.name for f in dataclasses.fields(cls)), "train config")
        kw = dict(cfg)
        kw["data"] = parse_data(kw.get("data") or [])
        if kw.get("freeze") is not None:
            kw["freeze"] = [kw["freeze"]] if isinstance(kw["freeze"], str) else list(kw["freeze"])
        kw["model"] = dict(kw.get("model") or {})
        out = cls(**kw)
        out.validate()
        return out

    def validate(self) -> None:
        if self.stage not in STAGES:
            raise InvalidChoiceError("training stage", self.stage, STAGES)
        if self.device not in DEVICES:
            raise InvalidChoiceError("device", self.device, DEVICES)
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device=cuda but torch sees no CUDA device; use device=auto or device=cpu")
        for key in ("steps", "batch_size", "horizon", "save_every", "keep_last", "log_every"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"{key} must be a positive integer, got {v!r}")
        for key in ("seed", "warmup_steps"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"{key} must be an integer >= 0, got {v!r}")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int)
                                         or self.threads < 1):
            raise ConfigError(f"threads must be a positive integer or null, got {self.threads!r}")
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not 0 < self.lr < 1:
            raise ConfigError(f"lr must be a number in (0, 1), got {self.lr!r}")
        if not isinstance(self.cache_frames, bool):
            raise ConfigError(f"cache_frames must be true or false, got {self.cache_frames!r}")
        for g in self.freeze or ():
            if g not in GROUPS:
                raise InvalidChoiceError("parameter group", g, GROUPS)
        if not self.data:
            raise ConfigError("data is empty; pass data=[DIR,...] or data=[{path:DIR,weight:W},...] "
                              "(dataset folders written by `egosim collect`)")
        if self.model and self.init is not None:
            raise ConfigError("model={...} shapes a fresh network; with init=CKPT the checkpoint's config is used")
        names = [f.name for f in dataclasses.fields(VLAConfig)]
        reject_unknown_keys(self.model, [n for n in names if n != "horizon"], "model")

    def resolved_device(self) -> str:
        return ("cuda" if torch.cuda.is_available() else "cpu") if self.device == "auto" else self.device


def parse_data(raw: Any) -> list[DataSource]:
    """`data` entries: a path string (weight 1) or a mapping {path, weight}; weights must be > 0."""
    if isinstance(raw, (str, Mapping)):
        raw = [raw]
    out = []
    for i, entry in enumerate(raw):
        if isinstance(entry, DataSource):
            src = entry
        elif isinstance(entry, str):
            src = DataSource(entry)
        elif isinstance(entry, Mapping):
            reject_unknown_keys(entry, ("path", "weight"), f"data[{i}]")
            if "path" not in entry:
                raise ConfigError(f"data[{i}] needs a path: {{path: DIR, weight: W}}")
            src = DataSource(str(entry["path"]), entry.get("weight", 1.0))
        else:
            raise ConfigError(f"data[{i}] is {entry!r}; expected a path or {{path: DIR, weight: W}}")
        w = src.weight
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w <= 0:
            raise ConfigError(f"data[{i}] ({src.path}) has weight {w!r}; weights must be numbers > 0")
        out.append(DataSource(src.path, float(w)))
    return out


class FrameCache:
    """Every frame of a dataset's camera streams, decoded once and resized to the model's input size.

    `images(index)` gives {camera: (3, h, w) uint8} of the dataset's global frame `index`.
    """

    def __init__(self, ds: ChunkDataset, cameras: Sequence[str], size: tuple[int, int]) -> None:
        self.size = tuple(size)
        self.frames: dict[str, np.ndarray] = {}
        for cam in cameras:
            key = f"observation.images.{cam}"
            arr = np.zeros((len(ds), 3, *self.size), dtype=np.uint8)
            decoded: dict[Path, np.ndarray] = {}
            for e, r in enumerate(ds.episodes):
                path = ds.root / ds.info["video_path"].format(
                    video_key=key, chunk_index=r[f"videos/{key}/chunk_index"], file_index=r[f"videos/{key}/file_index"])
                if path not in decoded:
                    decoded = {path: self._decode(path)}  # files hold consecutive episodes: keep one
                first = round(r[f"videos/{key}/from_timestamp"] * ds.fps)
                n = int(r["length"])
                got = decoded[path][first:first + n]
                if len(got) != n:
                    raise DatasetError(f"{path}: episode {r['episode_index']} needs frames {first}..{first + n - 1}, "
                                       f"the video has {len(decoded[path])}")
                start = int(ds._starts[e])
                arr[start:start + n] = got
            self.frames[cam] = arr

    def _decode(self, path: Path, chunk: int = 64) -> np.ndarray:
        import av

        out, pending = [], []
        try:
            with av.open(str(path)) as container:
                for frame in container.decode(container.streams.video[0]):
                    pending.append(frame.to_ndarray(format="rgb24"))
                    if len(pending) == chunk:
                        out.append(resize_uint8(np.stack(pending), self.size))
                        pending = []
        except (OSError, av.error.FFmpegError) as exc:  # type: ignore[attr-defined]
            raise DatasetError(f"cannot decode video {path}: {exc}") from None
        if pending:
            out.append(resize_uint8(np.stack(pending), self.size))
        return np.concatenate(out) if out else np.zeros((0, 3, *self.size), np.uint8)

    def images(self, index: int) -> dict[str, torch.Tensor]:
        return {cam: torch.from_numpy(a[index]) for cam, a in self.frames.items()}

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.frames.values())


def resize_uint8(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, 3, h, w) uint8 with the VLA image encoder's own resize."""
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
    if tuple(x.shape[-2:]) != tuple(size):
        x = torch.nn.functional.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    return (x * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()


class MixtureBatches:
    """`batches(step)` for the training loop: weighted draws across datasets, a pure function of the step.

    Args:
        datasets: One `ChunkDataset` per source (their `video_keys` empty when `caches` are given).
        weights: Mixture weight per dataset (normalised here).
        cfg: The model config (padding widths, cameras).
        batch_size: Samples per batch.
        seed: With the step, seeds the draws.
        caches: Optional `FrameCache` per dataset (images come from them instead of the videos).
    """

    def __init__(self, datasets: Sequence[ChunkDataset], weights: Sequence[float], cfg: VLAConfig, batch_size: int,
                 seed: int, caches: Sequence[FrameCache] | None = None) -> None:
        w = np.asarray(weights, dtype=np.float64)
        self.p = w / w.sum()
        self.datasets, self.cfg, self.batch_size, self.seed, self.caches = list(datasets), cfg, batch_size, seed, caches

    def draws(self, step: int) -> list[tuple[int, int]]:
        """(dataset, frame) of each sample of step `step`."""
        rng = np.random.default_rng([self.seed, step, 0x5EED])
        which = rng.choice(len(self.datasets), size=self.batch_size, p=self.p)
        return [(int(d), int(rng.integers(0, len(self.datasets[d])))) for d in which]

    def __call__(self, step: int) -> dict[str, Any]:
        items = []
        for d, i in self.draws(step):
            item = self.datasets[d][i]
            if self.caches is not None:
                item.update({f"observation.images.{c}": x for c, x in self.caches[d].images(i).items()})
            items.append(item)
        return collate_batch(items, self.cfg.max_state_dim, self.cfg.max_action_dim)


def dataset_statistics(datasets: Sequence[ChunkDataset]) -> dict[str, EmbodimentStats]:
    """Min-max (and mean/std) per embodiment: states of every frame, chunk-relative actions of unpadded steps."""
    states: dict[str, list[np.ndarray]] = {}
    actions: dict[str, list[np.ndarray]] = {}
    for ds in datasets:
        emb = str(ds.info["robot_type"])
        states.setdefault(emb, []).append(ds._states)
        for i in range(len(ds)):
            chunk, pad = ds.action_chunk(i)
            actions.setdefault(emb, []).append(chunk[~pad])
    out = {}
    for emb in actions:
        state = np.concatenate(states[emb])
        # human data has no proprioception: no state statistics (the model's placeholder takes its place)
        out[emb] = EmbodimentStats(Stats.of(np.concatenate(actions[emb])), Stats.of(state) if state.shape[1] else None)
    return out


class ProgressReporter:
    """Metrics rows -> a tqdm bar on a terminal (lines otherwise) and TensorBoard scalars.

    Adds `samples_per_s_total` (batches loaded + trained per wall second since the previous row), the
    throughput that includes data loading, which the loop's own `samples_per_s` (step time only) does not.
    """

    def __init__(self, tb_dir: Path, stage: str, steps: int, start: int, batch_size: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.tb = SummaryWriter(str(tb_dir), purge_step=start + 1 if start else None)
        self.stage, self.steps, self.batch_size = stage, steps, batch_size
        self.last_step, self.last_t = start, time.perf_counter()
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=steps, initial=start, desc=stage, unit="step", file=sys.stderr)

    def __call__(self, row: Mapping[str, Any]) -> None:
        step = int(row["step"])
        now = time.perf_counter()
        total = (step - self.last_step) * self.batch_size / max(1e-9, now - self.last_t)
        self.last_step, self.last_t = step, now
        for key in ("loss", "lr", "grad_norm", "samples_per_s"):
            self.tb.add_scalar(f"train/{key}", float(row[key]), step)
        self.tb.add_scalar("train/samples_per_s_total", total, step)
        self.tb.flush()
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix(loss=f"{float(row['loss']):.4f}", sps=f"{total:.1f}")
        else:
            print(f"[{self.stage}] step {step}/{self.steps} loss {float(row['loss']):.4f} "
                  f"samples/s {total:.1f} (step only {float(row['samples_per_s']):.1f})", file=sys.stderr, flush=True)

    def close(self) -> None:
        self.tb.close()
        if self.bar is not None:
            self.bar.close()


def run_train(cfg: TrainConfig, log: bool = True) -> TrainResult:
    """Loads the data, computes statistics, builds the mixture sampler and runs (or resumes) the stage."""
    def say(msg: str) -> None:
        if log:
            print(msg, file=sys.stderr, flush=True)

    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    device = cfg.resolved_device()
    if cfg.init is not None:
        from egosim.policies.vla.checkpoint import load_checkpoint

        model_cfg = load_checkpoint(cfg.init).config
        if model_cfg.horizon != cfg.horizon:
            raise ConfigError(f"horizon={cfg.horizon} but init checkpoint {cfg.init!r} predicts {model_cfg.horizon}")
    else:
        model_cfg = VLAConfig.from_dict({**cfg.model, "horizon": cfg.horizon})
    datasets, caches = [], []
    for src in cfg.data:
        if not Path(src.path).is_dir():
            raise ConfigError(f"data path {src.path!r} is not a folder (a dataset written by `egosim collect`)")
        cams = [c for c in model_cfg.cameras if c in dataset_cameras(src.path)]  # human data: ego_view only
        ds = ChunkDataset(src.path, horizon=cfg.horizon, cameras=() if cfg.cache_frames else cams)
        if len(ds) == 0:
            raise ConfigError(f"dataset {src.path!r} has no frames")
        spec = model_cfg.spec(str(ds.info["robot_type"]))  # the model needs a head for it
        if spec.action_dim != ds.info["features"]["action"]["shape"][0]:
            raise ConfigError(f"dataset {src.path!r} has {ds.info['features']['action']['shape'][0]}-D actions "
                              f"(for {ds.action_embodiment}), the model's {ds.info['robot_type']!r} head predicts "
                              f"{spec.action_dim}")
        datasets.append(ds)
        if cfg.cache_frames:
            t = time.perf_counter()
            caches.append(FrameCache(ds, cams, model_cfg.image_size))
            say(f"cached {len(ds)} frames x {len(cams)} cameras of {src.path} at "
                f"{model_cfg.image_size[0]}x{model_cfg.image_size[1]} ({caches[-1].nbytes / 2**20:.0f} MiB, "
                f"{time.perf_counter() - t:.1f} s)")
    stats = dataset_statistics(datasets)
    hours: dict[str, float] = {}
    for ds in datasets:
        emb = str(ds.info["robot_type"])
        hours[emb] = hours.get(emb, 0.0) + len(ds) / ds.fps / 3600.0
    stage = StageConfig(cfg.stage, steps=cfg.steps, lr=float(cfg.lr), batch_size=cfg.batch_size,
                        freeze=None if cfg.freeze is None else tuple(cfg.freeze),
                        mixture={s.path: s.weight for s in cfg.data}, save_every=cfg.save_every,
                        keep_last=cfg.keep_last, warmup_steps=cfg.warmup_steps)
    run = Path(cfg.output_dir)
    run.mkdir(parents=True, exist_ok=True)
    (run / "train_config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2) + "\n")
    resume = latest_checkpoint(run)
    start = json.loads((resume / "trainer_state.json").read_text())["step"] if resume is not None else 0
    if resume is not None:
        say(f"resuming {run} from step {start}")
    batches = MixtureBatches(datasets, [s.weight for s in cfg.data], model_cfg, cfg.batch_size, cfg.seed,
                             caches if cfg.cache_frames else None)
    reporter = ProgressReporter(run / "tb", cfg.stage, cfg.steps, start, cfg.batch_size)
    say(f"training {cfg.stage} on {device}: {sum(len(d) for d in datasets)} frames from {len(datasets)} "
        f"dataset(s), {cfg.steps} steps x {cfg.batch_size}")
    try:
        result = train(run, stage, batches, statistics=stats, model_config=None if cfg.init else model_cfg,
                       init_checkpoint=cfg.init, seed=cfg.seed, data_hours=hours, device=device,
                       log_every=cfg.log_every, on_log=reporter)
    finally:
        reporter.close()
    say(f"done: {result.checkpoint} (egosim eval policy=vla checkpoint={result.checkpoint})")
    return result

