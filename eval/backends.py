"""Where episodes run: in this process, in a local process pool, or on a Ray cluster.

Every backend runs the same worker function, `play_job`, on an `EpisodeJob` and yields records as
episodes finish (in completion order; the caller stores them and sorts later). A worker keeps one env
and one policy per (task, embodiment, policy) and reuses them across its episodes; envs are built,
and rendering initialised, inside the worker process (an EGL context must not cross a fork), and the
pool uses the "spawn" start method for the same reason.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from egosim.errors import ConfigError, InvalidChoiceError

BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class EpisodeJob:
    """One episode to play; everything a worker needs, and picklable.

    Attributes:
        task, embodiment: What to build.
        initial_state: The task's evaluation initial-state id.
        seed: Env and policy seed of this episode.
        policy: Policy kind; `checkpoint` its checkpoint path ('' for none); `policy_seed` the seed the
            policy is constructed with.
        max_steps: Cut the episode after this many steps (None: the task's horizon).
        video: mp4 path to write, or '' for none.
        policy_args: The policy's options as sorted (name, value) pairs (hashable, picklable).
    """

    task: str
    embodiment: str
    initial_state: int
    seed: int
    policy: str
    checkpoint: str = ""
    policy_seed: int = 0
    max_steps: int | None = None
    video: str = ""
    policy_args: tuple[tuple[str, Any], ...] = ()

    @property
    def key(self) -> tuple[str, str, int, int]:
        return (self.task, self.embodiment, self.initial_state, self.seed)


_CACHE: dict[tuple[Any, ...], tuple[Any, Any]] = {}
_RENDERER: list[str] = []


def play_job(job: EpisodeJob) -> dict[str, Any]:
    """Plays one job in this process (the worker function of every backend) and returns its record.

    The record carries the versions of *this* process (on Ray, a worker may be another machine).
    """
    import mujoco

    import egosim
    from egosim.eval.episode import run_episode
    from egosim.policies import get_policy_kind, make_policy
    from egosim.tasks import make_env

    kind = get_policy_kind(job.policy)
    renders = bool(job.video) or kind.needs_images
    key = (job.task, job.embodiment, job.policy, job.checkpoint, job.policy_seed, bool(job.video), job.policy_args)
    if key not in _CACHE:
        _close_cached()  # one env per worker at a time: envs with cameras hold GL contexts
        env = make_env(
            job.task, job.embodiment,
            obs_mode="rgb" if kind.needs_images else "state",
            privileged=kind.needs_privileged,
            render_mode="rgb_array" if job.video else None,
        )
        _CACHE[key] = (env, make_policy(job.policy, env, seed=job.policy_seed, checkpoint=job.checkpoint or None,
                                        **dict(job.policy_args)))
    env, policy = _CACHE[key]
    rec = run_episode(env, policy, initial_state=job.initial_state, seed=job.seed, max_steps=job.max_steps,
                      video_path=job.video or None, policy_name=job.policy)
    if renders and not _RENDERER:
        from egosim.eval.versions import gl_renderer

        _RENDERER.append(gl_renderer())
    rec["egosim_version"] = egosim.__version__
    rec["mujoco_version"] = mujoco.__version__
    rec["renderer"] = _RENDERER[0] if renders else "none (state observations)"
    return rec


def _close_cached() -> None:
    for env, policy in _CACHE.values():
        env.close()
        close = getattr(policy, "close", None)  # e.g. a remote policy's connection
        if close is not None:
            close()
    _CACHE.clear()


def _init_worker(parent: int) -> None:
    # MUJOCO_GL needs no passing: spawned workers inherit this process's environment.
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """Ends a pool worker whose runner died (e.g. SIGKILL): orphans would otherwise idle forever."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def run_jobs(
    jobs: Sequence[EpisodeJob], *, backend: str = "local", workers: int = 1, ray_address: str | None = None
) -> Iterator[dict[str, Any]]:
    """Plays `jobs` and yields each record as its episode finishes.

    Args:
        jobs: Episodes to play.
        backend: "local" (this process when workers == 1, else a spawn process pool) or "ray".
        workers: Parallel workers (processes, or Ray CPUs when starting a local Ray).
        ray_address: Address of a running Ray cluster; None starts a local one for this call.
    """
    if backend not in BACKENDS:
        raise InvalidChoiceError("backend", backend, BACKENDS)
    if not jobs:
        return
    if backend == "ray":
        yield from _run_ray(jobs, workers, ray_address)
    elif workers <= 1:
        try:
            for job in jobs:
                yield play_job(job)
        finally:
            _close_cached()  # in this process the cache would otherwise outlive the run
    else:
        yield from _run_pool(jobs, workers)


def _run_pool(jobs: Sequence[EpisodeJob], workers: int) -> Iterator[dict[str, Any]]:
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=mp.get_context("spawn"),
                               initializer=_init_worker, initargs=(os.getpid(),))
    try:
        pending = {pool.submit(play_job, job) for job in jobs}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _run_ray(jobs: Sequence[EpisodeJob], workers: int, address: str | None) -> Iterator[dict[str, Any]]:
    try:
        import ray
    except ImportError:
        raise ConfigError("backend=ray needs the `ray` package: pip install 'egosim[ray]'") from None
    started = not ray.is_initialized()
    if started:
        # No runtime_env: Ray would start a fresh worker pool for it (seconds), and workers need none,
        # since importing egosim picks the headless GL backend (MUJOCO_GL) inside each of them.
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address is None:
            kwargs["num_cpus"] = max(1, workers)
        ray.init(address=address, **kwargs)
    try:
        remote = ray.remote(num_cpus=1)(play_job)
        pending = [remote.remote(job) for job in jobs]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])
    finally:
        if started:
            ray.shutdown()
