"""Demo collection: play a policy in the envs and write one LeRobot v3.0 dataset per embodiment.

One dataset per embodiment (`OUTPUT_DIR/<embodiment>/`), holding every task collected on that hand:
state and action widths differ between hands (62 vs 32), and a LeRobot dataset has one width per
feature. Tasks share a dataset through `tasks.parquet` and each frame's `task_index`.

The attempt list is fixed by the config: per (task, embodiment), attempt k resets the env with seed
`seed + k` (and the policy with the same seed). Initial states are drawn from that seed
(`initial_states=sampled`, the default, which keeps training data off the fixed evaluation states) or
are evaluation state k (`initial_states=eval`). With `keep=success` attempts go on until `episodes`
of them succeeded (at most `max_attempts`); with `keep=all` exactly `episodes` attempts are played
and all kept. Every attempt is committed as it ends (`egosim.data.writer`), so a killed collection
resumes where it stopped: attempts already recorded, kept or not, are skipped.

On the human embodiment (`embodiments=[human]`) the dataset is a *human* dataset
(`egosim.data.format`): per frame the 21 keypoints per hand, their confidences, the wrist poses and
the head camera's pose, as the env reports them (`info["human"]`), passed through the tracking noise
model (`noise=clean|realistic` or a mapping of `egosim.data.human_noise.HumanNoise` fields, seeded by
the attempt's seed), and the ego camera (`human_cameras` for the robots' three-camera layout). With
`retarget_to=<robot>` each episode also gets that robot's actions by retargeting (`egosim.retarget`).

`source=procedural` collects human play instead (issue #8, diverse pretraining data): the procedural
tasks (tag `procedural`, e.g. `tabletop_play`: a new scene and activity program from each attempt's
seed) are played until `hours` of frames at the dataset's frame rate (the task's control rate: 30 Hz
for tabletop_play, like human video) are written per (task, embodiment). Every attempt is kept with
its score (play has no success: keep=all), and the last one is cut to the frame, so the dataset holds
exactly round(hours x 3600 x fps) frames. With several workers an attempt that would overshoot is
replayed cut short, which gives the same frames (the envs are deterministic), so the dataset again
does not depend on `workers`. A resumed collection counts the frames already there and goes on to
`hours` (asking for more hours later appends; the episode that was cut stays cut).

This module takes the env and policy as factories, so it does not import tasks or policies (the CLI
wires them in).
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from egosim.actions import chunk_to_step_actions
from egosim.data.format import CAMERA_KEYS, HUMAN_CAMERAS, DatasetError
from egosim.data.human_noise import HumanNoise, HumanNoiseModel
from egosim.data.writer import DatasetWriter, EpisodeRecorder, FrameRecorder, HumanEpisodeRecorder
from egosim.errors import ConfigError, InvalidActionError, InvalidChoiceError, reject_unknown_keys
from egosim.policy import Policy

KEEP = ("success", "all")
INITIAL_STATES = ("sampled", "eval")
SOURCES = ("tasks", "procedural")
DEFAULT_TASKS = ("pen_in_bin",)
Log = Callable[[str], None]
# (task, embodiment, video, image_size) -> env; (env, seed) -> policy.
EnvFactory = Callable[[str, str, bool, tuple[int, int]], Any]
PolicyFactory = Callable[[Any, int], Policy]


@dataclass
class CollectConfig:
    """What `collect` records (mirrors `egosim/conf/collect.yaml`).

    Attributes:
        tasks, embodiments: Names (already resolved: no "all"). tasks None: `pen_in_bin` for
            source=tasks; with source=procedural the CLI fills in the procedural tasks.
        policy: Policy kind name, stored with each episode.
        episodes: Episodes per (task, embodiment) the dataset should end up with (source=tasks).
        seed: Attempt k uses seed + k.
        output_dir: One dataset per embodiment in OUTPUT_DIR/<embodiment>.
        keep: "success" (only successful episodes) or "all" (every episode, with its score); None:
            success for source=tasks, all for source=procedural (which only allows all).
        source: "tasks" (the benchmark tasks' scenes, `episodes` of them) or "procedural" (human
            play in procedural scenes, `hours` of it).
        hours: source=procedural: hours of frames per (task, embodiment), at the dataset's fps.
        video: Record the three cameras as H.264 streams (false: state and action only).
        image_size: (height, width) of the camera streams; even numbers.
        max_steps: Cut episodes after this many steps (None: the task's horizon).
        max_attempts: With keep=success, give up a (task, embodiment) after this many attempts
            (None: 3 x episodes + 10).
        initial_states: "sampled" (drawn from the attempt's seed) or "eval" (evaluation state k).
        workers: Attempts played in parallel (spawned processes); 0 = one per CPU core. The dataset
            is the same for any number of workers.
        noise: Human datasets: the tracking noise, a preset (`clean`, `realistic`) or a mapping of
            `HumanNoise` fields (optionally with `preset` as the base).
        retarget_to: Human datasets: `none`, or a robot embodiment whose actions each episode gets.
        human_cameras: Human datasets: the camera streams (`ego_view`; add the wrist cameras for the
            robots' layout, as EgoScale's aligned human data has).
        head_motion: The human's ego camera: `auto` (moves like a head), `natural` or `fixed` (held at
            the robots' head-camera pose), see `egosim.rig.RigConfig`; the env factory applies it.
    """

    tasks: list[str] | None = None
    embodiments: list[str] = field(default_factory=lambda: ["sharpa_wave", "unitree_dex3"])
    policy: str = "expert"
    episodes: int = 10
    seed: int = 0
    output_dir: str = "outputs/collect"
    keep: str | None = None
    video: bool = True
    image_size: tuple[int, int] = (240, 320)
    max_steps: int | None = None
    max_attempts: int | None = None
    initial_states: str = "sampled"
    workers: int = 1
    noise: Any = "clean"
    retarget_to: str = "none"
    human_cameras: list[str] = field(default_factory=lambda: list(HUMAN_CAMERAS))
    head_motion: str = "auto"
    source: str = "tasks"
    hours: float | None = None

    def __post_init__(self) -> None:
        if self.source == "tasks" and self.tasks is None:
            self.tasks = list(DEFAULT_TASKS)
        if self.keep is None:
            self.keep = "all" if self.source == "procedural" else "success"

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any]) -> CollectConfig:
        """Builds a config from a dict or DictConfig, checking keys and values."""
        reject_unknown_keys(cfg, (f.name for f in dataclasses.fields(cls)), "collect config")
        kw = dict(cfg)
        for key in ("tasks", "embodiments", "human_cameras"):
            if kw.get(key) is not None:
                v = kw[key]
                kw[key] = [v] if isinstance(v, str) else list(v)
        if "image_size" in kw:
            kw["image_size"] = tuple(kw["image_size"])
        out = cls(**kw)
        out.validate()
        return out

    def validate(self) -> None:
        for key in ("episodes", "seed", "workers"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise ConfigError(f"{key} must be an integer, got {v!r}")
        if self.workers < 0:
            raise ConfigError(f"workers must be >= 0 (0: one per CPU core), got {self.workers}")
        if self.episodes < 1:
            raise ConfigError(f"episodes must be >= 1, got {self.episodes}")
        if self.keep not in KEEP:
            raise InvalidChoiceError("keep", self.keep, KEEP)
        if self.initial_states not in INITIAL_STATES:
            raise InvalidChoiceError("initial_states", self.initial_states, INITIAL_STATES)
        if not isinstance(self.video, bool):
            raise ConfigError(f"video must be true or false, got {self.video!r}")
        size = self.image_size
        if (len(size) != 2 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in size)
                or any(s < 16 or s > 2048 or s % 2 for s in size)):
            raise ConfigError(f"image_size must be [height, width], even, 16..2048 each; got {list(size)}")
        for key in ("max_steps", "max_attempts"):
            v = getattr(self, key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ConfigError(f"{key} must be a positive integer or null, got {v!r}")
        if self.source not in SOURCES:
            raise InvalidChoiceError("source", self.source, SOURCES)
        if self.source == "procedural":
            h = self.hours
            if h is None or isinstance(h, bool) or not isinstance(h, (int, float)) or not 0 < h <= 1000:
                raise ConfigError(f"source=procedural needs hours=H (hours of data per task and embodiment, "
                                  f"0 < H <= 1000), got {h!r}")
            if self.keep != "all":
                raise ConfigError(f"source=procedural keeps every episode (play has no success): keep={self.keep!r}; "
                                  "leave keep unset or use keep=all")
            if self.initial_states != "sampled":
                raise ConfigError("source=procedural draws a new scene per attempt: initial_states must be 'sampled'")
        elif self.hours is not None:
            raise ConfigError(f"hours={self.hours!r} is for source=procedural; source=tasks counts episodes=N")
        if (self.tasks is not None and not self.tasks) or not self.embodiments:
            raise ConfigError("tasks and embodiments must each name at least one entry")
        self.noise_config  # validates the noise settings
        from egosim.embodiment import ROBOT_TAG, embodiment_names
        from egosim.head import HEAD_MODES

        robots = ("none", *embodiment_names(ROBOT_TAG))
        if self.retarget_to not in robots:
            raise InvalidChoiceError("retarget_to", self.retarget_to, robots)
        if self.head_motion not in HEAD_MODES:
            raise InvalidChoiceError("head_motion", self.head_motion, HEAD_MODES)
        if not self.human_cameras or len(set(self.human_cameras)) != len(self.human_cameras):
            raise ConfigError(f"human_cameras must name distinct cameras, got {self.human_cameras}")
        for cam in self.human_cameras:
            if cam not in CAMERA_KEYS:
                raise InvalidChoiceError("camera", cam, CAMERA_KEYS)

    @property
    def noise_config(self) -> HumanNoise:
        """`noise` as a validated `HumanNoise`."""
        return HumanNoise.from_config(self.noise)

    @property
    def attempt_cap(self) -> int | None:
        """Attempts per (task, embodiment) at most (None: until `hours` of frames, source=procedural)."""
        if self.source == "procedural":
            return None
        if self.keep == "all":
            return self.episodes
        return self.max_attempts or 3 * self.episodes + 10

    def frame_target(self, fps: int) -> int | None:
        """Frames per (task, embodiment) that `hours` asks for at `fps` (None with source=tasks)."""
        return None if self.hours is None else int(round(self.hours * 3600 * fps))


class Progress:
    """A redrawn bar with the kept count (or, counting frames, the hours) on a terminal, one line per
    attempt otherwise."""

    def __init__(self, total: int, done: int, log: Log | None, fps: int | None = None) -> None:
        self.total, self.kept, self.log = total, done, log
        self.fps = fps  # counting frames (source=procedural): the bar shows hours
        self.played = self.ok = 0
        self.tty = log is print and sys.stdout.isatty()
        self.t0 = time.perf_counter()

    def _count(self) -> str:
        if self.fps is None:
            return f"{self.kept}/{self.total} kept"
        return f"{self.kept / self.fps / 3600:.4g}/{self.total / self.fps / 3600:.4g} h"

    def update(self, rec: Mapping[str, Any], kept: bool) -> None:
        self.played += 1
        self.ok += bool(rec["success"])
        self.kept += (int(rec["steps"]) if kept else 0) if self.fps is not None else kept
        if self.log is None:
            return
        rate = f"success {self.ok}/{self.played} ({100 * self.ok / self.played:.0f}%)"
        per = (time.perf_counter() - self.t0) / self.played
        if self.tty:
            width = 24
            fill = int(width * min(self.kept, self.total) / max(self.total, 1))
            sys.stdout.write(f"\r[{'#' * fill}{'.' * (width - fill)}] {self._count()}, {rate}, "
                             f"{per:.1f} s/attempt   ")
            sys.stdout.flush()
        else:
            self.log(f"[{self._count()}] {rate} | {rec['task']} {rec['embodiment']} attempt "
                     f"{rec['attempt']} (seed {rec['seed']}): score {rec['score']:.2f} "
                     f"{'success' if rec['success'] else rec['end']} in {rec['steps']} steps ({rec['wall_s']:.1f} s)"
                     f"{'' if kept else ', not kept'}")

    def close(self) -> None:
        if self.tty and self.played:
            sys.stdout.write("\n")


def play_attempt(env: Any, policy: Policy, recorder: FrameRecorder | None, *, task: str, attempt: int, seed: int,
                 initial_state: int | None, max_steps: int | None, policy_name: str, video: bool,
                 noise: HumanNoise = HumanNoise()) -> dict[str, Any]:
    """Plays one attempt into `recorder` (None: not recorded) and returns the attempt's record.

    Robot datasets (an `EpisodeRecorder`): frame t holds the observation before step t, the clipped
    per-step action the env was stepped with, and the reward that step earned. Human datasets (a
    `HumanEpisodeRecorder`): frame t holds the human-tracking frame of that observation
    (`info["human"]`) through the noise model, seeded by `seed`, and its camera images.
    """
    base = env.unwrapped
    dof = base.embodiment.dof
    low, high = base.action_space.low, base.action_space.high
    t0 = time.perf_counter()
    options = {"initial_state": initial_state} if initial_state is not None else None
    obs, info = env.reset(seed=seed, options=options)
    init = dict(base.initial_state)
    instruction = obs["instruction"]  # a task may draw its instruction per episode (tabletop_play)
    policy.reset(seed=seed)
    human = isinstance(recorder, HumanEpisodeRecorder)
    tracker = HumanNoiseModel(noise, round(1.0 / base.control_dt), np.random.default_rng([seed, 0x4855])) if human else None
    steps = 0
    terminated = truncated = cut = False
    while not (terminated or truncated or cut):
        chunk = chunk_to_step_actions(policy.act(obs), dof)
        if len(chunk) == 0:
            raise InvalidActionError(f"policy returned an empty action chunk at step {steps}")
        for action in chunk:
            a = np.minimum(np.maximum(np.asarray(action, dtype=np.float64), low), high)
            images = {c: obs[c] for c in CAMERA_KEYS} if video else None
            state, frame = obs["state"], info.get("human")
            obs, reward, terminated, truncated, info = env.step(a)
            if tracker is not None:
                f = tracker.apply(frame)
                recorder.add(f["keypoints"], f["keypoint_confidence"], f["wrist_pose"], f["camera_pose"], images)  # type: ignore[union-attr]
            elif recorder is not None:
                recorder.add(state, a, float(reward), images)  # type: ignore[call-arg]
            steps += 1
            cut = max_steps is not None and steps >= max_steps
            if terminated or truncated or cut:
                break
    if recorder is not None:
        recorder.finish()
    success = bool(info["is_success"])
    unstable = bool(info["sim_unstable"])
    end = "success" if success else "unstable" if unstable else "terminated" if terminated else (
        "horizon" if truncated else "max_steps")
    return {
        "task": task, "embodiment": base.embodiment.name, "attempt": attempt, "seed": seed,
        "initial_state_id": -1 if initial_state is None else int(initial_state),
        "initial_state": {k: v for k, v in init.items() if k != "id"}, "policy": policy_name,
        "instruction": str(instruction),
        "score": float(info["score"]), "success": success, "end": end, "steps": steps,
        "milestones": {k: bool(v) for k, v in info["milestones"].items()},
        "wall_s": round(time.perf_counter() - t0, 3),
    }


@dataclass(frozen=True)
class _Job:
    """One attempt, everything a worker needs (picklable)."""

    task: str
    embodiment: str
    attempt: int
    seed: int
    initial_state: int | None
    policy_seed: int
    policy_name: str
    max_steps: int | None
    video: bool
    image_size: tuple[int, int]
    work: str
    fps: int
    human: bool = False
    cameras: tuple[str, ...] = CAMERA_KEYS
    noise: HumanNoise = HumanNoise()
    retarget_to: str = "none"


_CACHE: dict[tuple[Any, ...], tuple[Any, Any]] = {}


def _play_job(job: _Job, make_env: EnvFactory, make_policy: PolicyFactory) -> tuple[dict[str, Any], EpisodeRecorder]:
    """Worker function: plays one attempt with this process's cached env and policy."""
    key = (job.task, job.embodiment, job.video, job.image_size)
    if key not in _CACHE:
        _close_cached()
        env = make_env(job.task, job.embodiment, job.video, job.image_size)
        _CACHE[key] = (env, make_policy(env, job.policy_seed))
    env, policy = _CACHE[key]
    size = job.image_size if job.video else None
    recorder = (HumanEpisodeRecorder(job.work, job.fps, size, job.cameras) if job.human
                else EpisodeRecorder(job.work, job.fps, size))
    rec = play_attempt(env, policy, recorder, task=job.task, attempt=job.attempt, seed=job.seed,
                       initial_state=job.initial_state, max_steps=job.max_steps, policy_name=job.policy_name,
                       video=job.video, noise=job.noise)
    if job.human:
        rec["noise"] = dataclasses.asdict(job.noise)
        rec["retarget"] = {}
        if job.retarget_to != "none":
            from egosim.retarget import retarget_recorder

            recorder.finish()
            rec["retarget"] = retarget_recorder(recorder, _retargeter(job.retarget_to)).summary()
    return rec, recorder


_RETARGETERS: dict[str, Any] = {}


def _retargeter(robot: str) -> Any:
    """One retargeter per robot and process (building it compiles the hand models)."""
    if robot not in _RETARGETERS:
        from egosim.retarget import Retargeter

        _RETARGETERS[robot] = Retargeter(robot)
    return _RETARGETERS[robot]


def _close_cached() -> None:
    for env, _ in _CACHE.values():
        env.close()
    _CACHE.clear()


def _watch_parent(parent: int) -> None:
    """Pool initializer: a worker ends itself when the collecting process dies (e.g. SIGKILL)."""
    import os
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def collect(cfg: CollectConfig, make_env: EnvFactory, make_policy: PolicyFactory,
            log: Log | None = print) -> list[dict[str, Any]]:
    """Collects (or resumes) demos into one dataset per embodiment; returns one summary row each.

    Attempts are committed in attempt order whatever the number of workers, so a dataset does not
    depend on `workers` (with keep=success the first `episodes` successes in attempt order are kept).

    Args:
        cfg: The collection config (task and embodiment names already resolved).
        make_env: Builds the env of (task, embodiment, video, image_size); it must give camera
            observations when video is true and whatever the policy needs (e.g. privileged state).
            Picklable (a module-level function or class instance) when cfg.workers > 1.
        make_policy: Builds the policy for an env with a seed (picklable likewise).
        log: Where progress goes (None: silent).
    """
    import os

    cfg.validate()
    if not cfg.tasks:
        raise ConfigError("no tasks to collect: name them (tasks=[...]; `egosim collect source=procedural` fills in "
                          "the procedural tasks)")
    emit = log or (lambda _m: None)
    out = Path(cfg.output_dir)
    workers = cfg.workers or (os.cpu_count() or 1)
    pool = None
    if workers > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                   initializer=_watch_parent, initargs=(os.getpid(),))
    rows = []
    try:
        for emb in cfg.embodiments:
            rows.append(_collect_embodiment(cfg, emb, out / emb, make_env, make_policy, pool, workers, log, emit))
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        _close_cached()
    return rows


def _collect_embodiment(cfg: CollectConfig, emb: str, root: Path, make_env: EnvFactory, make_policy: PolicyFactory,
                        pool: Any, workers: int, log: Log | None, emit: Log) -> dict[str, Any]:
    from concurrent.futures import FIRST_COMPLETED, wait

    writer: DatasetWriter | None = None
    done_by_task: dict[str, set[int]] = {}
    kept_by_task: dict[str, int] = {}
    frames_by_task: dict[str, int] = {}
    for task in cfg.tasks or ():
        probe_env = make_env(task, emb, False, cfg.image_size)  # for names, rates and limits only
        base = probe_env.unwrapped
        fps = round(1.0 / base.control_dt)
        n_eval = len(base.task.eval_initial_states()) if cfg.initial_states == "eval" else 0
        human = bool(base.embodiment.is_human)
        if writer is None:
            size = cfg.image_size if cfg.video else None
            if human:
                writer = DatasetWriter(root, kind="human", robot_type=emb, fps=fps, image_size=size,
                                       action_embodiment=None if cfg.retarget_to == "none" else cfg.retarget_to,
                                       cameras=cfg.human_cameras)
            else:
                if cfg.retarget_to != "none":
                    raise ConfigError(f"retarget_to={cfg.retarget_to!r} applies to the human embodiment only; "
                                      f"{emb!r} records its own actions")
                writer = DatasetWriter(root, robot_type=emb, joint_names=base.embodiment.joint_names, fps=fps,
                                       image_size=size)
            for a in writer.attempts:
                done_by_task.setdefault(a["task"], set()).add(int(a["attempt"]))
                kept_by_task[a["task"]] = kept_by_task.get(a["task"], 0) + bool(a["kept"])
            for ep in writer.episodes:
                frames_by_task[ep["egosim/task"]] = frames_by_task.get(ep["egosim/task"], 0) + int(ep["length"])
            emit(f"{root}: {len(writer.episodes)} episodes already there ({len(writer.attempts)} attempts recorded); "
                 f"collecting {cfg.policy} on {emb} with {workers} worker(s)")
        elif writer.fps != fps:
            raise DatasetError(f"{task} runs at {fps} Hz but the dataset in {root} is {writer.fps} fps (one rate per "
                               "dataset); collect it into another output_dir")
        probe_env.close()
        cap = cfg.attempt_cap
        if cfg.initial_states == "eval" and cap is not None and cap > n_eval:
            raise ConfigError(f"initial_states=eval allows {n_eval} attempts on {task!r}, but up to "
                              f"{cap} may be needed; lower episodes or max_attempts")
        done = done_by_task.get(task, set())
        kept = kept_by_task.get(task, 0)
        frames = frames_by_task.get(task, 0)
        target = cfg.frame_target(fps)
        todo = (k for k in (range(cap) if cap is not None else itertools.count()) if k not in done)
        if target is None:
            progress = Progress(cfg.episodes, min(kept, cfg.episodes), log)
        else:
            progress = Progress(target, min(frames, target), log, fps=fps)

        def job(k: int, max_steps: int | None = cfg.max_steps) -> _Job:
            return _Job(task=task, embodiment=emb, attempt=k, seed=cfg.seed + k,
                        initial_state=k if cfg.initial_states == "eval" else None, policy_seed=cfg.seed,
                        policy_name=cfg.policy, max_steps=max_steps, video=cfg.video,
                        image_size=tuple(cfg.image_size), work=str(writer.work_dir(f"{task}-{k}")), fps=fps,
                        human=human, cameras=tuple(cfg.human_cameras), noise=cfg.noise_config,
                        retarget_to=cfg.retarget_to)

        def wanted() -> bool:
            if target is not None:
                return frames < target
            return cfg.keep == "all" or kept < cfg.episodes

        def cut() -> int | None:
            """Steps the next attempt may take: with an hours budget, no more than the frames left."""
            if target is None:
                return cfg.max_steps
            left = target - frames
            return left if cfg.max_steps is None else min(cfg.max_steps, left)

        def commit(rec: dict[str, Any], recorder: EpisodeRecorder) -> None:
            nonlocal kept, frames
            if target is not None and rec["steps"] > target - frames:
                # Played ahead in a worker without knowing the frames left: replay it cut short (the
                # same frames, the envs are deterministic).
                recorder.discard()
                rec, recorder = _play_job(job(int(rec["attempt"]), cut()), make_env, make_policy)
            is_kept = _commit(writer, rec, recorder, cfg, progress)
            kept += is_kept
            frames += int(rec["steps"]) if is_kept else 0

        if pool is None:
            for k in todo:
                if not wanted():
                    break
                commit(*_play_job(job(k, cut()), make_env, make_policy))
        else:
            pending: dict[Any, int] = {}
            ready: dict[int, tuple[dict[str, Any], EpisodeRecorder]] = {}
            order: list[int] = []
            try:
                while wanted():
                    while len(pending) + len(ready) < 2 * workers:
                        k = next(todo, None)
                        if k is None:
                            break
                        order.append(k)
                        pending[pool.submit(_play_job, job(k), make_env, make_policy)] = k
                    if not pending and not ready:
                        break
                    if pending:
                        finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                        for fut in finished:
                            ready[pending.pop(fut)] = fut.result()
                    while order and order[0] in ready and wanted():
                        commit(*ready.pop(order.pop(0)))
            finally:
                running = [f for f in pending if not f.cancel()]
                for fut in running:  # surplus attempts still playing: let them end, then drop them
                    try:
                        ready[pending[fut]] = fut.result()
                    except Exception:  # noqa: BLE001 - an attempt nobody will commit
                        pass
                for _rec, recorder in ready.values():
                    recorder.discard()
        progress.close()
        if target is None and kept < cfg.episodes:
            emit(f"warning: {task} on {emb}: only {kept} of {cfg.episodes} episodes succeeded in "
                 f"{cap} attempts")
    assert writer is not None
    writer.close()
    atts = writer.attempts
    row = {"embodiment": emb, "dataset": str(root), "episodes": len(writer.episodes), "frames": writer.total_frames,
           "hours": writer.total_frames / writer.fps / 3600, "attempts": len(atts),
           "success_rate": (sum(a["success"] for a in atts) / len(atts)) if atts else 0.0}
    emit(f"{root}: {row['episodes']} episodes, {row['frames']} frames ({row['hours']:.4g} h at {writer.fps} fps; "
         f"{row['attempts']} attempts, {100 * row['success_rate']:.0f}% success)")
    return row


def _commit(writer: DatasetWriter, rec: dict[str, Any], recorder: EpisodeRecorder, cfg: CollectConfig,
            progress: Progress) -> bool:
    keep = cfg.keep == "all" or bool(rec["success"])
    if not keep:
        recorder.discard()
    # The episode's task text (its own for procedural play); not an attempt column: it is the
    # episode's `tasks` entry already.
    instruction = rec.pop("instruction")
    writer.commit(rec, recorder if keep else None, instruction)
    progress.update(rec, keep)
    return keep


def resolve(names: Iterable[str], valid_names: Iterable[str], kind: str,
            all_names: Iterable[str] | None = None) -> list[str]:
    """Expands ["all"] (to `all_names`, default every valid name: for embodiments, the robot hands
    only) and checks every name; raises `InvalidChoiceError` for an unknown one."""
    valid = list(valid_names)
    names = list(names)
    if names == ["all"]:
        return list(all_names) if all_names is not None else valid
    for n in names:
        if n not in valid:
            raise InvalidChoiceError(kind, n, valid)
    return names


__all__ = ["SOURCES", "CollectConfig", "DatasetError", "EnvFactory", "PolicyFactory", "collect", "play_attempt", "resolve"]
