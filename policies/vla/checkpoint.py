"""VLA checkpoints: one folder, plain JSON and safetensors, validated on load, never unpickled.

Layout (the names GR00T N1.7 uses where it has one):

    config.json           {"format": "egosim-vla", "format_version": 1, "egosim_version", "model": VLAConfig}
    model.safetensors     the network's tensors (the `safetensors` format holds no code)
    statistics.json       normalisation per embodiment (see `normalize.py`)
    embodiment_id.json    embodiment name -> adapter index, as in the config's order
    provenance.json       data hours by source, stages and steps run, egosim version, config hash

Loading checks, in order, and stops at the first failure with one `CheckpointError` that names the bad
value and what was expected: the folder exists; it holds no pickle-format file (by extension, by a
pickle header, or a zip-based torch save); the required files exist; each JSON parses; the format
version is one this egosim reads; the config builds a network; `embodiment_id.json` and
`statistics.json` agree with the config; every tensor is present with the right shape; and the
provenance's config hash matches. `torch.load` is never called: pickle runs arbitrary code on load.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

import egosim
from egosim.errors import ConfigError, EgosimError
from egosim.pickle_guard import PICKLE_SUFFIXES, find_pickle_files  # noqa: F401  (re-exported)
from egosim.policies.vla.config import VLAConfig
from egosim.policies.vla.model import VLAModel
from egosim.policies.vla.normalize import EmbodimentStats, Stats, statistics_from_json, statistics_to_json

FORMAT = "egosim-vla"
FORMAT_VERSION = 1
REQUIRED_FILES = ("config.json", "model.safetensors", "statistics.json", "embodiment_id.json", "provenance.json")


class CheckpointError(EgosimError, ValueError):
    """A checkpoint folder that cannot be loaded; the message says which file and what is wrong."""


@dataclass
class Provenance:
    """Where a checkpoint came from (`provenance.json`).

    Attributes:
        data_hours: Hours of data seen, by source (e.g. {"human_sim": 1.5, "robot_demos": 0.2}),
            summed over all stages.
        stages: Stages run, oldest first: {"stage": name, "steps": n, ...}.
        egosim_version: The egosim that wrote the checkpoint.
        config_hash: `VLAConfig.hash()` of the network saved beside it.
        created: UTC time of writing (ISO 8601).
    """

    data_hours: dict[str, float] = field(default_factory=dict)
    stages: list[dict[str, Any]] = field(default_factory=list)
    egosim_version: str = egosim.__version__
    config_hash: str = ""
    created: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"data_hours": dict(self.data_hours), "stages": list(self.stages),
                "egosim_version": self.egosim_version, "config_hash": self.config_hash, "created": self.created}


@dataclass
class Checkpoint:
    """A loaded, validated checkpoint."""

    path: Path
    config: VLAConfig
    model: VLAModel
    statistics: dict[str, EmbodimentStats]
    embodiment_ids: dict[str, int]
    provenance: Provenance


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path.name} is not valid JSON ({path}): {exc.msg} at line {exc.lineno} "
                              f"column {exc.colno}") from None
    except UnicodeDecodeError:
        raise CheckpointError(f"{path.name} is not UTF-8 text ({path})") from None


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def save_checkpoint(
    folder: str | os.PathLike[str],
    model: VLAModel,
    statistics: Mapping[str, EmbodimentStats],
    provenance: Provenance | None = None,
) -> Path:
    """Writes a checkpoint folder (created if needed; the five files are overwritten).

    Embodiments without statistics get identity statistics, so an untrained network still makes a
    loadable checkpoint (used by smoke tests of the eval path).
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    cfg = model.cfg
    stats = {}
    for name, spec in cfg.embodiments.items():
        given = statistics.get(name)
        stats[name] = given or EmbodimentStats(
            Stats.identity(spec.action_dim), Stats.identity(spec.state_dim) if spec.state_dim else None)
    prov = provenance or Provenance()
    prov.config_hash = cfg.hash()
    prov.egosim_version = egosim.__version__
    prov.created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    _write_json(out / "config.json", {"format": FORMAT, "format_version": FORMAT_VERSION,
                                      "egosim_version": egosim.__version__, "model": cfg.to_dict()})
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": FORMAT})
    _write_json(out / "statistics.json", statistics_to_json(stats))
    _write_json(out / "embodiment_id.json", {n: i for i, n in enumerate(cfg.embodiment_names)})
    _write_json(out / "provenance.json", prov.to_dict())
    return out


def load_checkpoint(folder: str | os.PathLike[str], device: str | torch.device = "cpu") -> Checkpoint:
    """Loads and validates a checkpoint folder; any problem raises one `CheckpointError` explaining it."""
    root = Path(folder)
    if not root.is_dir():
        raise CheckpointError(f"checkpoint folder {str(root)!r} does not exist or is not a folder")
    pickles = find_pickle_files(root)
    if pickles:
        raise CheckpointError(
            f"checkpoint folder {str(root)!r} holds pickle-format files, which egosim refuses to load "
            f"(unpickling runs arbitrary code): {', '.join(pickles)}. Keep tensors in model.safetensors only.")
    missing = [n for n in REQUIRED_FILES if not (root / n).is_file()]
    if missing:
        raise CheckpointError(f"checkpoint folder {str(root)!r} lacks {missing}; a VLA checkpoint holds "
                              f"{list(REQUIRED_FILES)}")
    meta = _read_json(root / "config.json")
    cfg = _check_config(meta)
    _check_embodiment_ids(_read_json(root / "embodiment_id.json"), cfg)
    stats = _check_statistics(_read_json(root / "statistics.json"), cfg)
    prov = _check_provenance(_read_json(root / "provenance.json"), cfg)
    model = VLAModel(cfg)
    _load_tensors(model, root / "model.safetensors")
    model.to(device).eval()
    return Checkpoint(root, cfg, model, stats, {n: i for i, n in enumerate(cfg.embodiment_names)}, prov)


def _check_config(meta: Any) -> VLAConfig:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise CheckpointError(f"config.json: format is {got!r}; expected {FORMAT!r}")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        writer = meta.get("egosim_version", "unknown")
        hint = "upgrade egosim" if isinstance(version, int) and version > FORMAT_VERSION else "re-save it"
        raise CheckpointError(
            f"config.json: checkpoint format_version {version!r} (written by egosim {writer}) is incompatible; "
            f"egosim {egosim.__version__} reads format_version {FORMAT_VERSION} only ({hint})")
    try:
        return VLAConfig.from_dict(meta.get("model", {}))
    except (ConfigError, TypeError, ValueError) as exc:
        raise CheckpointError(f"config.json: invalid model config: {exc}") from None


def _check_embodiment_ids(ids: Any, cfg: VLAConfig) -> None:
    expected = {n: i for i, n in enumerate(cfg.embodiment_names)}
    if not isinstance(ids, dict):
        raise CheckpointError(f"embodiment_id.json must map names to ids, got {type(ids).__name__}")
    unknown = sorted(set(ids) - set(expected))
    if unknown:
        raise CheckpointError(f"embodiment_id.json: unknown embodiment(s) {unknown}; the config knows "
                              f"{', '.join(cfg.embodiment_names)}")
    if ids != expected:
        raise CheckpointError(f"embodiment_id.json is {ids}; the config's embodiment order gives {expected}")


def _check_statistics(data: Any, cfg: VLAConfig) -> dict[str, EmbodimentStats]:
    if not isinstance(data, dict):
        raise CheckpointError(f"statistics.json must be an object, got {type(data).__name__}")
    try:
        stats = statistics_from_json(data)
    except ConfigError as exc:
        raise CheckpointError(f"statistics.json: {exc}") from None
    unknown = sorted(set(stats) - set(cfg.embodiment_names))
    if unknown:
        raise CheckpointError(f"statistics.json: unknown embodiment(s) {unknown}; the config knows "
                              f"{', '.join(cfg.embodiment_names)}")
    for name, spec in cfg.embodiments.items():
        if name not in stats:
            raise CheckpointError(f"statistics.json has no entry for embodiment {name!r}")
        s = stats[name]
        if s.action.dim != spec.action_dim:
            raise CheckpointError(f"statistics.json: {name}.action has {s.action.dim} dims; the config's "
                                  f"action_dim is {spec.action_dim}")
        if spec.state_dim and (s.state is None or s.state.dim != spec.state_dim):
            got = "none" if s.state is None else s.state.dim
            raise CheckpointError(f"statistics.json: {name}.state has {got} dims; the config's state_dim is "
                                  f"{spec.state_dim}")
    return stats


def _check_provenance(data: Any, cfg: VLAConfig) -> Provenance:
    if not isinstance(data, dict):
        raise CheckpointError(f"provenance.json must be an object, got {type(data).__name__}")
    known = set(Provenance.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise CheckpointError(f"provenance.json: unknown keys {unknown}; valid keys: {', '.join(sorted(known))}")
    prov = Provenance(**data)
    if prov.config_hash != cfg.hash():
        raise CheckpointError(f"provenance.json: config_hash {prov.config_hash!r} does not match config.json "
                              f"({cfg.hash()!r}); the config was edited after the weights were saved")
    return prov


def _load_tensors(model: VLAModel, path: Path) -> None:
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"model.safetensors is not a valid safetensors file ({path}): {exc}") from None
    expected = model.state_dict()
    problems = [f"missing tensor {k!r} (expected shape {tuple(v.shape)})" for k, v in expected.items()
                if k not in tensors]
    problems += [f"tensor {k!r} has shape {tuple(tensors[k].shape)}, expected {tuple(v.shape)}"
                 for k, v in expected.items() if k in tensors and tensors[k].shape != v.shape]
    problems += [f"tensor {k!r} has dtype {tensors[k].dtype}, expected {v.dtype}"
                 for k, v in expected.items() if k in tensors and tensors[k].shape == v.shape
                 and tensors[k].dtype != v.dtype]
    problems += [f"unexpected tensor {k!r}" for k in sorted(set(tensors) - set(expected))]
    if problems:
        raise CheckpointError(f"model.safetensors does not fit config.json: {'; '.join(problems)}")
    model.load_state_dict(tensors, strict=True)
