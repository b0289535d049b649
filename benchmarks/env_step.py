"""Steps per second of every egosim env beside a raw `mujoco.mj_step` loop, as ratios from one run.

For each registered env id:
  raw          a plain loop on the env's own model: set the ctrl and mocap (commanded wrist) values the
               env used at that step, then `mj_step(model, data, nstep=n_substeps)`; no Python physics
               glue, no observation.
  env state    `env.step` with obs_mode="state" (action validation, wrist targets, milestones, state).
  raw+3cam     the raw loop plus rendering the three policy cameras with a bare `mujoco.Renderer`.
  env rgb      `env.step` with obs_mode="rgb" (three camera images per step).
Ratios: state/raw (the env's overhead; target >= 0.9) and rgb/raw+3cam (overhead of the image path).

Actions are random with modest wrist deltas (a quarter of the speed limit, small rotations) and
uniform hand-joint targets, drawn once from --seed and replayed identically by every loop. Each loop
runs --repeats times, interleaved, and the best run counts.

    python benchmarks/env_step.py --steps 1000 --rgb-steps 200
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import egosim.tasks  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402

import egosim  # noqa: E402
from egosim.actions import side_slices  # noqa: E402
from egosim.embodiment import SIDES  # noqa: E402
from egosim.geometry import axis_angle_to_matrix, matrix_to_rot6d  # noqa: E402
from egosim.rig import CAMERAS  # noqa: E402

STATE_SPEC = mujoco.mjtState.mjSTATE_INTEGRATION


def modest_actions(env, n: int, seed: int) -> np.ndarray:
    """Random actions: wrist steps within 25% of the speed limits, joint targets uniform in their limits."""
    rng = np.random.default_rng(seed)
    emb = env.embodiment
    sl = side_slices(emb.dof)
    max_step = emb.max_wrist_speed * env.control_dt
    max_rot = emb.max_wrist_rot_speed * env.control_dt
    acts = rng.uniform(env.action_space.low, env.action_space.high, size=(n, env.action_space.shape[0]))
    for side in SIDES:
        w = sl[f"{side}_wrist_eef"].start
        acts[:, w : w + 3] = rng.uniform(-0.25, 0.25, size=(n, 3)) * max_step
        for k in range(n):
            rot = axis_angle_to_matrix(rng.normal(size=3), rng.uniform(0, 0.25 * max_rot))
            acts[k, w + 3 : w + 9] = matrix_to_rot6d(rot)
    return acts


def record_controls(env, actions: np.ndarray, seed: int):
    """Plays the actions once (untimed) and records what the env fed the simulator at every step."""
    env.reset(seed=seed)
    d = env.data
    start = np.empty(mujoco.mj_stateSize(env.model, STATE_SPEC))
    mujoco.mj_getState(env.model, d, start, STATE_SPEC)
    ctrl = np.empty((len(actions), env.model.nu))
    mpos = np.empty((len(actions),) + d.mocap_pos.shape)
    mquat = np.empty((len(actions),) + d.mocap_quat.shape)
    qpos = np.empty((len(actions), env.model.nq))
    for k, a in enumerate(actions):
        env.step(a)
        ctrl[k], mpos[k], mquat[k], qpos[k] = d.ctrl, d.mocap_pos, d.mocap_quat, d.qpos
    return start, ctrl, mpos, mquat, qpos


def time_env(env, actions: np.ndarray, seed: int) -> float:
    env.reset(seed=seed)
    step = env.step
    t0 = time.perf_counter()
    for a in actions:
        step(a)
    return len(actions) / (time.perf_counter() - t0)


def time_raw(model, n_sub: int, recorded, n: int, renderer=None, cameras=()) -> tuple[float, bool]:
    """Steps/s of the raw loop, and whether it reproduced the env's trajectory exactly."""
    start, ctrl, mpos, mquat, qpos = recorded
    data = mujoco.MjData(model)
    mujoco.mj_setState(model, data, start, STATE_SPEC)
    mujoco.mj_forward(model, data)
    t0 = time.perf_counter()
    for k in range(n):
        data.ctrl[:] = ctrl[k]
        data.mocap_pos[:] = mpos[k]
        data.mocap_quat[:] = mquat[k]
        mujoco.mj_step(model, data, nstep=n_sub)
        if renderer is not None:
            for cam in cameras:
                renderer.update_scene(data, camera=cam)
                renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
                renderer.render()
    sps = n / (time.perf_counter() - t0)
    return sps, bool(np.array_equal(data.qpos, qpos[n - 1]))


def bench(env_id: str, steps: int, rgb_steps: int, repeats: int, seed: int) -> dict:
    kw = egosim.tasks.registry.gym.spec(env_id).kwargs
    task, emb = kw["task"], kw["embodiment"]
    env = egosim.tasks.make_env(task, emb, obs_mode="state")
    actions = modest_actions(env, max(steps, rgb_steps), seed)
    recorded = record_controls(env, actions, seed)
    model, n_sub = env.model, env.n_substeps
    raw, state, same = [], [], True
    time_env(env, actions[: min(50, steps)], seed)  # warm-up
    for _ in range(repeats):
        state.append(time_env(env, actions[:steps], seed))
        sps, identical = time_raw(model, n_sub, recorded, steps)
        raw.append(sps)
        same &= identical
    env.close()
    row = {"env_id": env_id, "task": task, "embodiment": emb, "n_substeps": n_sub, "steps": steps,
           "raw_sps": max(raw), "state_sps": max(state), "raw_reproduces_env": same}
    row["state_ratio"] = row["state_sps"] / row["raw_sps"]
    row["realtime_x"] = row["state_sps"] * env.control_dt
    if rgb_steps > 0:
        env_rgb = egosim.tasks.make_env(task, emb, obs_mode="rgb")
        h, w = env_rgb.rig_config.image_size
        cams = [env_rgb.rig.cameras[c] for c in CAMERAS]
        renderer = mujoco.Renderer(env_rgb.model, height=h, width=w)
        rgb, raw_r = [], []
        time_env(env_rgb, actions[:5], seed)  # warm-up (creates the renderer)
        for _ in range(repeats):
            rgb.append(time_env(env_rgb, actions[:rgb_steps], seed))
            raw_r.append(time_raw(env_rgb.model, n_sub, recorded, rgb_steps, renderer, cams)[0])
        renderer.close()
        env_rgb.close()
        row.update(rgb_steps=rgb_steps, image_size=[h, w], raw_render_sps=max(raw_r), rgb_sps=max(rgb))
        row["rgb_ratio_raw"] = row["rgb_sps"] / row["raw_sps"]
        row["rgb_ratio_raw_render"] = row["rgb_sps"] / row["raw_render_sps"]
    return row


def format_table(rows: list[dict]) -> str:
    head = ["env id", "substeps", "raw sps", "env state sps", "state/raw", "x realtime"]
    has_rgb = any("rgb_sps" in r for r in rows)
    if has_rgb:
        head += ["raw+3cam sps", "env rgb sps", "rgb/raw", "rgb/raw+3cam"]
    body = []
    for r in rows:
        cells = [r["env_id"], str(r["n_substeps"]), f"{r['raw_sps']:.0f}", f"{r['state_sps']:.0f}",
                 f"{r['state_ratio']:.2f}", f"{r['realtime_x']:.1f}"]
        if has_rgb:
            cells += [f"{r['raw_render_sps']:.1f}", f"{r['rgb_sps']:.1f}", f"{r['rgb_ratio_raw']:.3f}",
                      f"{r['rgb_ratio_raw_render']:.2f}"] if "rgb_sps" in r else ["-"] * 4
        body.append(cells)
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    fmt = lambda cells: " | ".join(c.ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([fmt(head), "-|-".join("-" * w for w in widths), *map(fmt, body)])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=1000, help="control steps per state-mode / raw run (default 1000)")
    p.add_argument("--rgb-steps", type=int, default=100, help="control steps per rgb run; 0 skips rgb (default 100)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved runs per loop; the best counts (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--env", action="append", default=None, help="env id to measure (repeatable; default: all)")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = p.parse_args(argv)
    if args.steps < 1 or args.rgb_steps < 0 or args.repeats < 1:
        p.error("--steps and --repeats must be >= 1, --rgb-steps >= 0")
    ids = args.env or egosim.tasks.env_ids()
    unknown = sorted(set(ids) - set(egosim.tasks.env_ids()))
    if unknown:
        p.error(f"unknown env ids {unknown}; valid: {', '.join(egosim.tasks.env_ids())}")
    print(f"egosim {egosim.__version__}, mujoco {mujoco.__version__}, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, MUJOCO_GL={os.environ.get('MUJOCO_GL')}; steps={args.steps} "
          f"rgb_steps={args.rgb_steps} repeats={args.repeats} (best of)", flush=True)
    rows = []
    for eid in ids:
        rows.append(bench(eid, args.steps, args.rgb_steps, args.repeats, args.seed))
        print(f"  measured {eid}", file=sys.stderr, flush=True)
    print(format_table(rows))
    print("sps = control steps per second (each = n_substeps physics steps); target: state/raw >= 0.9")
    same = all(r["raw_reproduces_env"] for r in rows)
    print("raw loop reproduced the env's trajectory bit for bit: " + ("yes" if same else "NO (ratios not comparable)"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"mujoco": mujoco.__version__, "egosim": egosim.__version__, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
