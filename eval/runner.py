"""The benchmark runner: one policy over tasks x embodiments x fixed initial states, into the store.

`run_eval(cfg)` turns the config into a fixed list of episodes (task, embodiment, evaluation state
i, seed + i: the list depends on the tasks, never on the worker count), skips those already in the
results store under the same run id (so a killed run resumes where it stopped), plays the rest on a
backend (`egosim.eval.backends`), commits each episode to the store as it ends, then writes this
run's files from the store.

Files written to `output_dir`:
    summary.json    a JSON list of rows, one per (task, embodiment): task, embodiment, dof, policy,
                    episodes, success_rate, mean_score, plus label, run_id, success_ci95 (Wilson),
                    n_success, n_unstable, mean_steps, wall_s and env_id.
    episodes.jsonl  this run's episodes, one JSON object per line, ordered by task, embodiment, state.
    run.json        the configuration, run id, store path and the egosim / MuJoCo / Gymnasium /
                    renderer versions.
    videos/<task>-<embodiment>-ep<k>.mp4   with record_video=true (ego camera, 20 fps).
The store (`store`, SQLite) keeps every run's episodes and real-robot trials; `egosim report` reads it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from egosim.eval.backends import BACKENDS, EpisodeJob, run_jobs
from egosim.eval.stats import wilson_interval
from egosim.eval.store import ResultsStore
from egosim.eval.versions import versions
from egosim.policies import check_policy_options, get_policy_kind

from egosim.embodiment import ROBOT_TAG, embodiment_names, get_embodiment
from egosim.errors import ConfigError, InvalidChoiceError, reject_unknown_keys

Log = Callable[[str], None]

SUMMARY_KEYS = ("task", "embodiment", "dof", "policy", "episodes", "success_rate", "mean_score")
# A rerun resumes a run id only with these settings unchanged (besides policy, label, checkpoint).
RUN_IDENTITY = ("seed", "max_steps")
_RUN_ID = re.compile(r"^[A-Za-z0-9_.:@+-]{1,128}$")


@dataclass
class EvalConfig:
    """What `run_eval` plays (mirrors `egosim/conf/eval.yaml`).

    Attributes:
        tasks: Task names (`egosim.tasks.task_names()`), or ["all"].
        embodiments: Embodiment names (`egosim.embodiment.embodiment_names()`), or ["all"]: the robot
            hands (tag `robot`); the human demonstrator only when named.
        policy: Policy kind (`egosim.policies.policy_kinds()`).
        checkpoint: Checkpoint folder or file for policy kinds that load one; None otherwise.
        label: Name of this policy in reports (e.g. "pretrained", "scratch"); default: the policy
            kind, with the checkpoint's folder name when there is one.
        episodes: Episodes per (task, embodiment), on the task's evaluation states 0..episodes-1.
        seed: Episode i is reset with seed + i (and the policy with the same seed).
        output_dir: Folder for summary.json, episodes.jsonl, run.json and videos/.
        store: Results store (SQLite) that every episode is committed to; None: `output_dir`/results.sqlite.
        run_id: Resume this run (skip its stored episodes); None starts a new run with a fresh id.
        workers: Parallel workers; 0 = one per CPU core (capped by the number of episodes).
        backend: "local" (process pool) or "ray".
        ray_address: A running Ray cluster for backend=ray; None starts a local Ray.
        record_video: Write an mp4 of the ego camera per episode (renders every step).
        max_steps: Cut episodes after this many env steps (None: play to the task's horizon).
        protocol, host, port: Where a `remote` policy is served (protocol gr00t or openpi); None
            leaves them out. They are policy options, like the entries of `policy_args`.
        policy_args: Further options of the policy kind (`PolicyKind.options`), passed to its class.
    """

    tasks: list[str] = field(default_factory=lambda: ["pen_in_bin"])
    embodiments: list[str] = field(default_factory=lambda: ["sharpa_wave", "unitree_dex3"])
    policy: str = "expert"
    checkpoint: str | None = None
    label: str | None = None
    episodes: int = 10
    seed: int = 0
    output_dir: str = "outputs/eval"
    store: str | None = None
    run_id: str | None = None
    workers: int = 0
    backend: str = "local"
    ray_address: str | None = None
    record_video: bool = False
    max_steps: int | None = None
    protocol: str | None = None
    host: str | None = None
    port: int | None = None
    policy_args: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any]) -> EvalConfig:
        """Builds a config from a dict or an OmegaConf DictConfig, checking keys and types."""
        reject_unknown_keys(cfg, (f.name for f in dataclasses.fields(cls)), "eval config")
        kw = {k: cfg[k] for k in cfg}
        if kw.get("policy_args") is None:
            kw["policy_args"] = {}
        for key in ("tasks", "embodiments"):
            if key in kw:
                kw[key] = _as_name_list(key, kw[key])
        out = cls(**kw)
        out.validate()
        return out

    def validate(self) -> None:
        if not isinstance(self.policy, str):
            raise ConfigError(f"policy must be a name, got {self.policy!r}")
        for key in ("episodes", "seed", "workers"):
            val = getattr(self, key)
            if isinstance(val, bool) or not isinstance(val, (int, np.integer)):
                raise ConfigError(f"{key} must be an integer, got {val!r}")
        if self.episodes < 1:
            raise ConfigError(f"episodes must be >= 1, got {self.episodes}")
        if self.workers < 0:
            raise ConfigError(f"workers must be >= 0 (0: one per CPU core), got {self.workers}")
        if self.backend not in BACKENDS:
            raise InvalidChoiceError("backend", self.backend, BACKENDS)
        if self.max_steps is not None and (isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int)
                                           or self.max_steps < 1):
            raise ConfigError(f"max_steps must be a positive integer or null, got {self.max_steps!r}")
        if not isinstance(self.record_video, bool):
            raise ConfigError(f"record_video must be true or false, got {self.record_video!r}")
        if not self.tasks or not self.embodiments:
            raise ConfigError("tasks and embodiments must each name at least one entry")
        for key in ("run_id", "label"):
            val = getattr(self, key)
            if val is not None and (not isinstance(val, str) or not _RUN_ID.match(val)):
                raise ConfigError(f"{key} must be 1-128 characters of letters, digits and _.:@+-, got {val!r}")
        if self.checkpoint is not None and not Path(self.checkpoint).exists():
            raise ConfigError(f"checkpoint {self.checkpoint!r} does not exist")
        if not isinstance(self.policy_args, Mapping) or not all(isinstance(k, str) for k in self.policy_args):
            raise ConfigError(f"policy_args must be a mapping of option names to values, got {self.policy_args!r}")
        clash = sorted(k for k in ("protocol", "host", "port") if getattr(self, k) is not None and k in self.policy_args)
        if clash:
            raise ConfigError(f"{clash} given both as keys and in policy_args; give each once")

    @property
    def policy_options(self) -> dict[str, Any]:
        """The options the policy is built with: protocol/host/port when set, then `policy_args`."""
        top = {k: getattr(self, k) for k in ("protocol", "host", "port") if getattr(self, k) is not None}
        return {**top, **dict(self.policy_args)}

    @property
    def store_path(self) -> Path:
        return Path(self.store) if self.store else Path(self.output_dir) / "results.sqlite"

    @property
    def policy_label(self) -> str:
        if self.label:
            return self.label
        return f"{self.policy}:{Path(self.checkpoint).name}" if self.checkpoint else self.policy

    def resolved_workers(self, n_jobs: int) -> int:
        n = self.workers or (os.cpu_count() or 1)
        return max(1, min(n, n_jobs))


def _as_name_list(key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable):
        names = list(value)
        if all(isinstance(v, str) for v in names):
            return names
    raise ConfigError(f"{key} must be a name or a list of names, got {value!r}")


def resolve_names(cfg: EvalConfig) -> tuple[list[str], list[str]]:
    """Checks every task, embodiment and policy name up front (before any episode runs).

    Raises `InvalidChoiceError` naming the bad value and the valid choices, and `ConfigError` when
    more episodes are asked for than a task has evaluation initial states.
    """
    from egosim.tasks import get_task, task_names

    tasks = list(task_names()) if cfg.tasks == ["all"] else cfg.tasks
    # "all" is the benchmark's robot hands; the human demonstrator only when named
    embs = list(embodiment_names(ROBOT_TAG)) if cfg.embodiments == ["all"] else cfg.embodiments
    for name in embs:
        get_embodiment(name)
    kind = get_policy_kind(cfg.policy)
    if cfg.checkpoint is not None and not kind.takes_checkpoint:
        raise ConfigError(f"policy kind {cfg.policy!r} takes no checkpoint (got checkpoint={cfg.checkpoint!r})")
    check_policy_options(cfg.policy, cfg.policy_options)
    for name in tasks:
        available = len(get_task(name)().eval_initial_states())
        if cfg.episodes > available:
            raise ConfigError(
                f"episodes={cfg.episodes} but task {name!r} has {available} evaluation initial states "
                f"(ids 0..{available - 1}); use episodes <= {available}"
            )
    return tasks, embs


def checkpoint_hash(path: str | os.PathLike[str] | None) -> str:
    """sha256 (first 16 hex digits) over a checkpoint file, or over a folder's files and names.

    Stored with every episode so that results name the exact weights, not just a path.
    """
    if path is None:
        return ""
    p = Path(path)
    h = hashlib.sha256()
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    for f in files:
        h.update(str(f.relative_to(p) if p.is_dir() else f.name).encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


def new_run_id(label: str) -> str:
    """A fresh run id: the label, UTC time and a random suffix (so two runs never collide)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    safe = re.sub(r"[^A-Za-z0-9_.@+-]", "-", label)[:80]
    return f"{safe}-{stamp}-{secrets.token_hex(2)}"


def plan_jobs(cfg: EvalConfig, tasks: Sequence[str], embs: Sequence[str]) -> list[EpisodeJob]:
    """The run's episode list, fixed by the config alone (task, embodiment, state i, seed + i)."""
    out = Path(cfg.output_dir)
    return [
        EpisodeJob(
            task=task, embodiment=emb, initial_state=i, seed=cfg.seed + i, policy=cfg.policy,
            checkpoint=str(cfg.checkpoint or ""), policy_seed=cfg.seed, max_steps=cfg.max_steps,
            policy_args=tuple(sorted(cfg.policy_options.items())),
            video=str(out / "videos" / f"{task}-{emb}-ep{i}.mp4") if cfg.record_video else "",
        )
        for task in tasks for emb in embs for i in range(cfg.episodes)
    ]


class Progress:
    """A progress line with the live success rate: a redrawn bar on a terminal, one line per episode
    otherwise (logs, CI)."""

    def __init__(self, total: int, done: int, log: Log | None) -> None:
        self.total, self.n, self.ok = total, done, 0
        self.played = 0
        self.log = log
        self.tty = log is print and sys.stdout.isatty()
        self.t0 = time.perf_counter()

    def update(self, rec: Mapping[str, Any]) -> None:
        self.n += 1
        self.played += 1
        self.ok += bool(rec["success"])
        if self.log is None:
            return
        rate = f"success {self.ok}/{self.played} ({100 * self.ok / self.played:.0f}%)"
        eta = (time.perf_counter() - self.t0) / self.played * (self.total - self.n)
        what = (f"{rec['task']} {rec['embodiment']} state {rec['initial_state']}: score {rec['score']:.2f} "
                f"{'success' if rec['success'] else rec['end']} in {rec['steps']} steps ({rec['wall_s']:.1f} s)")
        if self.tty:
            width = 24
            fill = int(width * self.n / max(self.total, 1))
            sys.stdout.write(f"\r[{'#' * fill}{'.' * (width - fill)}] {self.n}/{self.total} {rate} eta {eta:.0f} s   ")
            sys.stdout.flush()
            if self.n == self.total:
                sys.stdout.write("\n")
        else:
            self.log(f"[{self.n}/{self.total}] {rate} | {what}")


def summarize(records: Sequence[Mapping[str, Any]], *, task: str, embodiment: str, dof: int, policy: str,
              env_id: str = "", wall_s: float | None = None) -> dict[str, Any]:
    """The summary row of one (task, embodiment) from its episode records."""
    n = len(records)
    k = sum(bool(r["success"]) for r in records)
    lo, hi = wilson_interval(k, n)
    scores = [float(r["score"]) for r in records]
    return {
        "task": task,
        "embodiment": embodiment,
        "dof": dof,
        "policy": policy,
        "episodes": n,
        "success_rate": k / n if n else 0.0,
        "mean_score": float(np.mean(scores)) if n else 0.0,
        "success_ci95": [round(lo, 4), round(hi, 4)],
        "n_success": k,
        "n_unstable": sum(bool(r["sim_unstable"]) for r in records),
        "mean_steps": float(np.mean([r["steps"] for r in records])) if n else 0.0,
        "wall_s": round(sum(r["wall_s"] for r in records) if wall_s is None else wall_s, 2),
        "env_id": env_id,
    }


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A fixed-width results table, one line per (task, embodiment)."""
    head = ("task", "embodiment", "dof", "policy", "episodes", "success", "95% CI", "mean score", "unstable", "wall s")
    body = [
        (
            r["task"], r["embodiment"], str(r["dof"]), r["policy"], str(r["episodes"]),
            f"{100 * r['success_rate']:.0f}%", f"[{100 * r['success_ci95'][0]:.0f}, {100 * r['success_ci95'][1]:.0f}]",
            f"{r['mean_score']:.3f}", str(r["n_unstable"]), f"{r['wall_s']:.1f}",
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(head), line(["-" * w for w in widths]), *(line(b) for b in body)])


def run_eval(cfg: EvalConfig | Mapping[str, Any], log: Log | None = print) -> list[dict[str, Any]]:
    """Plays (or resumes) a run; commits every episode to the store; writes the run's files; returns
    the summary rows (one per task x embodiment, in config order)."""
    from egosim.tasks import env_id

    if not isinstance(cfg, EvalConfig):
        cfg = EvalConfig.from_mapping(cfg)
    else:
        cfg.validate()
    tasks, embs = resolve_names(cfg)
    kind = get_policy_kind(cfg.policy)
    emit = log or (lambda _msg: None)
    label = cfg.policy_label
    ckpt_hash = checkpoint_hash(cfg.checkpoint)
    run_id = cfg.run_id or new_run_id(label)
    info = {"run_id": run_id, "label": label, "store": str(cfg.store_path), "checkpoint_hash": ckpt_hash,
            **versions(renders=cfg.record_video or kind.needs_images), "argv": sys.argv,
            "config": dataclasses.asdict(cfg), "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}

    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "run.json", info)
    t_run = time.perf_counter()
    with ResultsStore(cfg.store_path) as store:
        store.begin_run(run_id, domain="sim", policy=cfg.policy, label=label, checkpoint=str(cfg.checkpoint or ""),
                        checkpoint_hash=ckpt_hash, config=dataclasses.asdict(cfg), versions=info,
                        identity=RUN_IDENTITY)
        jobs = plan_jobs(cfg, tasks, embs)
        stored = store.finished_keys(run_id)
        todo = [j for j in jobs if j.key not in stored]
        workers = cfg.resolved_workers(len(todo))
        emit(f"run {run_id}: {len(jobs)} episodes, {len(jobs) - len(todo)} already in {cfg.store_path}, "
             f"{len(todo)} to play on {workers} {cfg.backend} worker(s); if interrupted, resume with run_id={run_id}")
        progress = Progress(len(jobs), len(jobs) - len(todo), log)
        extra = {"run_id": run_id, "domain": "sim", "label": label, "checkpoint": str(cfg.checkpoint or ""),
                 "checkpoint_hash": ckpt_hash}
        for rec in run_jobs(todo, backend=cfg.backend, workers=workers, ray_address=cfg.ray_address):
            store.add_episode({**rec, **extra})
            progress.update(rec)
        store.finish_run(run_id)
        wanted = {j.key for j in jobs}
        records = [r for r in store.episodes(run_ids=[run_id], domain="sim")
                   if (r["task"], r["embodiment"], r["initial_state"], r["seed"]) in wanted]

    order = {(t, e): k for k, (t, e) in enumerate((t, e) for t in tasks for e in embs)}
    records.sort(key=lambda r: (order[(r["task"], r["embodiment"])], r["initial_state"]))
    rows = []
    for (task, emb) in order:
        group = [r for r in records if (r["task"], r["embodiment"]) == (task, emb)]
        row = summarize(group, task=task, embodiment=emb, dof=get_embodiment(emb).dof, policy=cfg.policy,
                        env_id=env_id(task, emb))
        rows.append({**row, "label": label, "run_id": run_id})
    _write_json(out / "summary.json", rows)
    with open(out / "episodes.jsonl", "w") as fh:
        for r in records:
            fh.write(json.dumps(r) + "\n")
    info["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    info["wall_s"] = round(time.perf_counter() - t_run, 2)
    _write_json(out / "run.json", info)
    emit("")
    emit(format_table(rows))
    videos = f", {out / 'videos'}/" if cfg.record_video else ""
    emit(f"\nwrote {out / 'summary.json'}, {out / 'episodes.jsonl'}{videos}; episodes stored in {cfg.store_path} "
         f"(run {run_id})")
    return rows


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    tmp.replace(path)
