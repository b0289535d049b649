"""The serial episode runner: one policy kind over tasks x embodiments x fixed initial states.

For each (task, embodiment) the env is built once (state observations unless the policy needs
images), then episode i plays the task's fixed evaluation initial state i with seed `seed + i`:
`env.reset(seed=seed + i, options={"initial_state": i})`. The policy's chunks are converted to
per-step actions with `egosim.actions.chunk_to_step_actions` and played until the env terminates or
truncates (or `max_steps`, for smoke tests).

Files written to `output_dir`:
    summary.json    a JSON list of rows, one per (task, embodiment): task, embodiment, dof, policy,
                    episodes, success_rate, mean_score, plus success_ci95 (Wilson), n_success,
                    n_unstable, mean_steps, wall_s and env_id.
    episodes.jsonl  one JSON object per finished episode, appended as each one ends.
    run.json        the configuration and the egosim / MuJoCo / Gymnasium / renderer versions.
    videos/<task>-<embodiment>-ep<k>.mp4   with record_video=true (ego camera, 20 fps).

`run_episode` is the unit of work: it takes a built env and policy and returns the episode record,
so a process pool (a later issue) can call it per worker.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from egosim.eval.stats import wilson_interval
from egosim.policies import get_policy_kind, make_policy

from egosim.actions import chunk_to_step_actions
from egosim.embodiment import embodiment_names, get_embodiment
from egosim.errors import ConfigError, InvalidActionError
from egosim.policy import Policy

Log = Callable[[str], None]

SUMMARY_KEYS = ("task", "embodiment", "dof", "policy", "episodes", "success_rate", "mean_score")


@dataclass
class EvalConfig:
    """What `run_eval` plays (mirrors `egosim/conf/eval.yaml`).

    Attributes:
        tasks: Task names (`egosim.tasks.task_names()`), or ["all"].
        embodiments: Embodiment names (`egosim.embodiment.embodiment_names()`), or ["all"].
        policy: Policy kind (`egosim.policies.policy_kinds()`).
        episodes: Episodes per (task, embodiment), on the task's evaluation states 0..episodes-1.
        seed: Episode i is reset with seed + i (and the policy with the same seed).
        output_dir: Folder for summary.json, episodes.jsonl, run.json and videos/.
        record_video: Write an mp4 of the ego camera per episode (renders every step).
        max_steps: Cut episodes after this many env steps (None: play to the task's horizon).
    """

    tasks: list[str] = field(default_factory=lambda: ["pen_in_bin"])
    embodiments: list[str] = field(default_factory=lambda: ["sharpa_wave", "unitree_dex3"])
    policy: str = "expert"
    episodes: int = 10
    seed: int = 0
    output_dir: str = "outputs/eval"
    record_video: bool = False
    max_steps: int | None = None

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any]) -> EvalConfig:
        """Builds a config from a dict or an OmegaConf DictConfig, checking keys and types."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ConfigError(f"unknown eval config keys {unknown}; valid keys: {', '.join(sorted(known))}")
        kw = {k: cfg[k] for k in cfg}
        for key in ("tasks", "embodiments"):
            if key in kw:
                kw[key] = _as_name_list(key, kw[key])
        out = cls(**kw)
        out.validate()
        return out

    def validate(self) -> None:
        if not isinstance(self.policy, str):
            raise ConfigError(f"policy must be a name, got {self.policy!r}")
        for key in ("episodes", "seed"):
            val = getattr(self, key)
            if isinstance(val, bool) or not isinstance(val, (int, np.integer)):
                raise ConfigError(f"{key} must be an integer, got {val!r}")
        if self.episodes < 1:
            raise ConfigError(f"episodes must be >= 1, got {self.episodes}")
        if self.max_steps is not None and (isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int)
                                           or self.max_steps < 1):
            raise ConfigError(f"max_steps must be a positive integer or null, got {self.max_steps!r}")
        if not isinstance(self.record_video, bool):
            raise ConfigError(f"record_video must be true or false, got {self.record_video!r}")
        if not self.tasks or not self.embodiments:
            raise ConfigError("tasks and embodiments must each name at least one entry")


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
    embs = list(embodiment_names()) if cfg.embodiments == ["all"] else cfg.embodiments
    for name in embs:
        get_embodiment(name)
    get_policy_kind(cfg.policy)
    for name in tasks:
        available = len(get_task(name)().eval_initial_states())
        if cfg.episodes > available:
            raise ConfigError(
                f"episodes={cfg.episodes} but task {name!r} has {available} evaluation initial states "
                f"(ids 0..{available - 1}); use episodes <= {available}"
            )
    return tasks, embs


def run_episode(
    env: Any,
    policy: Policy,
    *,
    initial_state: int,
    seed: int,
    max_steps: int | None = None,
    video_path: str | os.PathLike[str] | None = None,
    policy_name: str = "",
) -> dict[str, Any]:
    """Plays one episode from a fixed evaluation initial state and returns its record.

    The env must have been made with render_mode="rgb_array" when `video_path` is given.
    """
    base = env.unwrapped
    dof = base.embodiment.dof
    t0 = time.perf_counter()
    obs, info = env.reset(seed=seed, options={"initial_state": initial_state})
    policy.reset(seed=seed)
    writer = _video_writer(video_path, fps=round(1.0 / base.control_dt)) if video_path else None
    steps = 0
    terminated = truncated = cut = False
    warnings = 0
    ret = 0.0
    try:
        if writer is not None:
            writer.append_data(_frame(env))
        while not (terminated or truncated or cut):
            steps_of_chunk = chunk_to_step_actions(policy.act(obs), dof)
            if len(steps_of_chunk) == 0:
                raise InvalidActionError(f"policy returned an empty action chunk at step {steps}")
            for action in steps_of_chunk:
                obs, reward, terminated, truncated, info = env.step(action)
                steps += 1
                ret += float(reward)
                warnings += int(info.get("mujoco_warnings", 0))
                if writer is not None:
                    writer.append_data(_frame(env))
                cut = max_steps is not None and steps >= max_steps
                if terminated or truncated or cut:
                    break
    finally:
        if writer is not None:
            writer.close()
    success = bool(info["is_success"])
    unstable = bool(info["sim_unstable"])
    end = "success" if success else "unstable" if unstable else "terminated" if terminated else (
        "horizon" if truncated else "max_steps")
    return {
        "task": base.task.name,
        "embodiment": base.embodiment.name,
        "dof": dof,
        "policy": policy_name,
        "initial_state": int(initial_state),
        "seed": int(seed),
        "score": float(info["score"]),
        "success": success,
        "milestones": {k: bool(v) for k, v in info["milestones"].items()},
        "steps": steps,
        "sim_unstable": unstable,
        "mujoco_warnings": warnings,
        "return": ret,
        "end": end,
        "wall_s": round(time.perf_counter() - t0, 3),
    }


def _frame(env: Any) -> np.ndarray:
    frame = env.render()
    if frame is None:
        raise ConfigError("record_video needs an env made with render_mode='rgb_array'")
    return frame


def _video_writer(path: str | os.PathLike[str], fps: int) -> Any:
    import imageio.v2 as imageio

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return imageio.get_writer(str(path), format="FFMPEG", fps=fps, codec="libx264", macro_block_size=8)


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


def gl_renderer() -> str:
    """The OpenGL renderer and version behind MuJoCo's offscreen contexts (best effort)."""
    try:
        import mujoco
        from OpenGL import GL

        ctx = mujoco.GLContext(16, 16)
        try:
            ctx.make_current()
            return f"{GL.glGetString(GL.GL_RENDERER).decode()}; OpenGL {GL.glGetString(GL.GL_VERSION).decode()}"
        finally:
            ctx.free()
    except Exception as exc:  # noqa: BLE001 - any backend failure is just recorded
        return f"unavailable ({type(exc).__name__}: {exc})"


def run_info(cfg: EvalConfig, renders: bool = False) -> dict[str, Any]:
    """Versions and settings that a results file must carry (DESIGN.md: every report records them).

    The OpenGL renderer is queried only when the run renders (state-only runs need no GL at all).
    """
    import gymnasium
    import mujoco

    import egosim

    return {
        "egosim": egosim.__version__,
        "mujoco": mujoco.__version__,
        "gymnasium": gymnasium.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "mujoco_gl": os.environ.get("MUJOCO_GL", "<unset>"),
        "renderer": gl_renderer() if renders else "not used (state observations, no video)",
        "argv": sys.argv,
        "config": dataclasses.asdict(cfg),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def run_eval(cfg: EvalConfig | Mapping[str, Any], log: Log | None = print) -> list[dict[str, Any]]:
    """Plays every (task, embodiment) pair of `cfg` serially; writes the result files; returns the rows."""
    from egosim.tasks import env_id, make_env

    if not isinstance(cfg, EvalConfig):
        cfg = EvalConfig.from_mapping(cfg)
    else:
        cfg.validate()
    tasks, embs = resolve_names(cfg)
    kind = get_policy_kind(cfg.policy)
    emit = log or (lambda _msg: None)

    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    info = run_info(cfg, renders=cfg.record_video or kind.needs_images)
    _write_json(out / "run.json", info)
    t_run = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with open(out / "episodes.jsonl", "w") as episodes_file:
        for task in tasks:
            for emb in embs:
                t_pair = time.perf_counter()
                env = make_env(
                    task, emb,
                    obs_mode="rgb" if kind.needs_images else "state",
                    privileged=kind.needs_privileged,
                    render_mode="rgb_array" if cfg.record_video else None,
                )
                try:
                    policy = make_policy(cfg.policy, env, seed=cfg.seed)
                    records = []
                    for i in range(cfg.episodes):
                        video = out / "videos" / f"{task}-{emb}-ep{i}.mp4" if cfg.record_video else None
                        rec = run_episode(env, policy, initial_state=i, seed=cfg.seed + i,
                                          max_steps=cfg.max_steps, video_path=video, policy_name=cfg.policy)
                        if video is not None:
                            rec["video"] = str(video)
                        records.append(rec)
                        episodes_file.write(json.dumps(rec) + "\n")
                        episodes_file.flush()
                        emit(
                            f"[{task} {emb} ep {i + 1}/{cfg.episodes}] score {rec['score']:.2f} "
                            f"{'success' if rec['success'] else rec['end']} in {rec['steps']} steps "
                            f"({rec['wall_s']:.1f} s)"
                        )
                finally:
                    env.close()
                rows.append(summarize(records, task=task, embodiment=emb, dof=env.embodiment.dof, policy=cfg.policy,
                                      env_id=env_id(task, emb), wall_s=time.perf_counter() - t_pair))
                _write_json(out / "summary.json", rows)  # partial results survive an interrupted run
    info["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    info["wall_s"] = round(time.perf_counter() - t_run, 2)
    _write_json(out / "run.json", info)
    emit("")
    emit(format_table(rows))
    videos = f", {out / 'videos'}/" if cfg.record_video else ""
    emit(f"\nwrote {out / 'summary.json'}, {out / 'episodes.jsonl'}{videos}")
    return rows


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    tmp.replace(path)
