"""One episode, the unit of work every backend runs: play a policy from a fixed initial state.

`run_episode` takes a built env and policy and returns the episode's record (a plain dict), so the
serial loop, the process pool and Ray workers all run exactly the same code.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from egosim.actions import chunk_to_step_actions
from egosim.errors import ConfigError, InvalidActionError
from egosim.eval.safety import SafetyMonitor
from egosim.policy import Policy


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

    The env is reset with `seed` and the task's evaluation state `initial_state`, the policy with
    `seed`, so the record depends on nothing but these (not on which worker plays it). Chunks are
    played step by step until the env terminates or truncates, or `max_steps` (smoke tests). The env
    must have been made with render_mode="rgb_array" when `video_path` is given.
    """
    base = env.unwrapped
    dof = base.embodiment.dof
    t0 = time.perf_counter()
    obs, info = env.reset(seed=seed, options={"initial_state": initial_state})
    policy.reset(seed=seed)
    monitor = SafetyMonitor(env)
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
                monitor.sample()
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
    record = {
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
        "safety": monitor.summary(),
        "wall_s": round(time.perf_counter() - t0, 3),
    }
    if video_path is not None:
        record["video"] = str(video_path)
    return record


def _frame(env: Any) -> np.ndarray:
    frame = env.render()
    if frame is None:
        raise ConfigError("record_video needs an env made with render_mode='rgb_array'")
    return frame


def _video_writer(path: str | os.PathLike[str], fps: int) -> Any:
    import imageio.v2 as imageio

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return imageio.get_writer(str(path), format="FFMPEG", fps=fps, codec="libx264", macro_block_size=8)
