"""Cloth speed: simulated seconds per wall-clock second (RT) of the shirt scene on one core, from one run.

Rows (both hands in every scene, `--embodiment`, default sharpa_wave):
  no cloth     the same rig with the cloth tasks' table plane and no shirt (raw `mj_step`, hands hovering)
  shirt rest   the shirt_fold scene, shirt flat, hands hovering (raw `mj_step`)
  sleeve fold  the shirt_fold env played through `env.step` (state observations): the left hand pinches
               the left sleeve's outer edge, lifts it, carries it over the body, lays it down and lets go
               (the pinch model anchors the pinched vertices; self-collision works on the folded layer)
Settings rows repeat "sleeve fold" with one setting changed, to show what each bought (see --variants).

Times are this process's CPU time by default (`--wall` for wall-clock time): on a shared machine the
wall clock measures the wait for a core.

Interpenetration check (the sleeve-fold run, every control step): cloth-table = how far a vertex's
collision sphere (radius 5 mm) sinks below the table plane; cloth-finger = the deepest contact between
a hand geom and the cloth (MuJoCo's contact distance). Both must stay <= 2 mm.

    python benchmarks/cloth.py                # default settings only
    python benchmarks/cloth.py --variants     # plus one row per alternative setting
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import egosim.tasks  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402

import egosim  # noqa: E402
from egosim.embodiment import SIDES, get_embodiment  # noqa: E402
from egosim.geometry import axis_angle_to_matrix  # noqa: E402
from egosim.rig import HOME_WRIST_MAT, TABLE_HEIGHT, build_rig  # noqa: E402
from egosim.tasks.cloth import BODY_W, CLOTH_RADIUS, add_cloth_table  # noqa: E402
from egosim.tasks.scripted import _wrist_action  # noqa: E402

# CPU time of this process (one thread): on a machine shared with other jobs, wall-clock time
# measures the queue for the core rather than the simulator (--wall to use it anyway).
CLOCK = time.process_time
FLAT = {"id": None, "shirt_xy": [0.56, 0.0], "shirt_yaw": 0.0}


class PadDriver:
    """Drives one hand's thumb and partner pads to a point through the env's action (levelled pads)."""

    def __init__(self, env, side: str) -> None:
        self.env, self.side, self.emb = env, side, env.embodiment
        h = env.rig.hands[side]
        sites = [h.fingertip_sites[n] for n in self.emb.fingertip_sites[:2]]
        self.pads = [env.task.pinch._pad[s][0] for s in sites]
        self.pad_r = env.task.pinch._pad[sites[0]][1]
        self.rot = HOME_WRIST_MAT
        self.point = np.zeros(3)
        self.log: list[tuple[float, float, float]] = []  # per step: (wall s, table pen. m, finger pen. m)

    def measure(self) -> None:
        """Closes in the air, then turns the wrist so the closed pads sit side by side (level)."""
        self.step_to(None, "pinch", 15, record=False)
        d = self.env.data
        p, r = self.env.wrist_pose(self.side)
        a, b = (r.T @ (d.geom_xpos[g] - p) for g in self.pads)
        v = self.rot @ (b - a)
        axis = np.cross(v, [0.0, 0.0, 1.0])
        self.rot = axis_angle_to_matrix(axis / np.linalg.norm(axis), -math.asin(v[2] / np.linalg.norm(v))) @ self.rot
        self.point = 0.5 * (a + b)

    def step_to(self, point, hand: str, steps: int, record: bool = True) -> None:
        env = self.env
        for _ in range(steps):
            parts = []
            for s in SIDES:
                cmd = env.commanded_wrist_pose(s)
                goal = cmd if (s != self.side or point is None) else (point - self.rot @ self.point, self.rot)
                parts.append(np.concatenate([_wrist_action(cmd, goal, env._max_step, env._max_rot),
                                             self.emb.grasp_pose(hand if s == self.side else "open", s)]))
            a = np.concatenate(parts)
            t0 = CLOCK()
            _, _, term, trunc, info = env.step(a)
            wall = CLOCK() - t0
            if info["sim_unstable"] or info["mujoco_warnings"]:
                raise RuntimeError(f"unstable or warnings: {info}")
            if record:
                self.log.append((wall, *penetrations(env)))


def penetrations(env) -> tuple[float, float]:
    """(cloth-table, cloth-hand) penetration depths now, metres (>= 0)."""
    task, d = env.task, env.data
    table = max(0.0, float(TABLE_HEIGHT + CLOTH_RADIUS - task.vertices(d)[:, 2].min()))
    finger = 0.0
    n = d.ncon
    if n:
        flex, geom, dist = d.contact.flex[:n], d.contact.geom[:n], d.contact.dist[:n]
        hand_body = env._cloth_bench_hand
        for k in range(n):
            f0, f1 = int(flex[k, 0]), int(flex[k, 1])
            if (f0 >= 0) == (f1 >= 0):
                continue
            g = int(geom[k, 1] if f0 >= 0 else geom[k, 0])
            if g >= 0 and hand_body[int(env.model.geom_bodyid[g])]:
                finger = max(finger, -float(dist[k]))
    return table, finger


def sleeve_fold(env) -> PadDriver:
    """The left hand folds the left sleeve over the body through the pinch model."""
    task = env.task
    env.reset(seed=0, options={"initial_state": FLAT})
    drv = PadDriver(env, "left")
    drv.measure()
    x, y, _ = task.shirt_pose.tolist()
    grab = np.array([x + 0.315 - 0.09, y + 0.45 - 0.035, TABLE_HEIGHT])
    drop = np.array([grab[0], y + BODY_W - (grab[1] - y), TABLE_HEIGHT])
    press = drv.pad_r + 2 * CLOTH_RADIUS - 0.002
    drv.step_to(grab + [0, 0, 0.08], "pre_pinch", 30)
    drv.step_to(grab + [0, 0, press], "pre_pinch", 15)
    drv.step_to(grab + [0, 0, press], "pinch", 12)
    if not task.pinch.held("left") and task.pinch.mode == "anchor":
        raise RuntimeError("the sleeve pinch anchored nothing")
    drv.step_to(grab + [0, 0, 0.10], "pinch", 15)
    drv.step_to(drop + [0, 0, 0.10], "pinch", 30)
    drv.step_to(drop + [0, 0, 0.03], "pinch", 15)
    drv.step_to(drop + [0, 0, 0.03], "open", 8)
    drv.step_to(drop + [0, 0, 0.12], "open", 20)
    return drv


def raw_rt(model, data, steps: int) -> float:
    mujoco.mj_forward(model, data)
    for _ in range(100):
        mujoco.mj_step(model, data)
    t0 = CLOCK()
    mujoco.mj_step(model, data, nstep=steps)
    return steps * model.opt.timestep / (CLOCK() - t0)


VARIANTS = {
    "default": {},
    "noslip 4 (rig default)": {"noslip": 4},
    "selfcollide none": {"selfcollide": "none"},
    "pyramidal cone": {"cone": "pyramidal"},
    "table box, no plane": {"box": True},
    "CG solver": {"solver": "cg"},
    "rigid-body contact impedance": {"solimp": True},
}


def apply_variant(env, v: dict) -> None:
    m = env.model
    if "noslip" in v:
        m.opt.noslip_iterations = v["noslip"]
    if v.get("selfcollide") == "none":
        m.flex_selfcollide[:] = int(mujoco.mjtFlexSelf.mjFLEXSELF_NONE)
    if v.get("cone") == "pyramidal":
        m.opt.cone = mujoco.mjtCone.mjCONE_PYRAMIDAL
    if v.get("solver") == "cg":
        m.opt.solver = mujoco.mjtSolver.mjSOL_CG
    if v.get("solimp"):
        m.flex_solimp[:] = [0.9, 0.95, 0.001, 0.5, 2.0]
    if v.get("box"):
        top, plane = m.geom("table_top").id, m.geom("cloth_table").id
        m.geom_contype[top], m.geom_conaffinity[top] = 1, 1
        m.geom_contype[plane], m.geom_conaffinity[plane] = 0, 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embodiment", default="sharpa_wave")
    ap.add_argument("--raw-steps", type=int, default=1000, help="physics steps of the raw rows")
    ap.add_argument("--variants", action="store_true", help="also time the alternative settings")
    ap.add_argument("--json", help="write the rows here")
    ap.add_argument("--wall", action="store_true", help="time with the wall clock instead of CPU time")
    args = ap.parse_args(argv)
    if args.wall:
        global CLOCK
        CLOCK = time.perf_counter
    emb = get_embodiment(args.embodiment)

    rows = []
    spec = build_rig(emb)
    spec.option.noslip_iterations = 0
    add_cloth_table(spec)
    m0 = spec.compile()
    rows.append({"row": "no cloth", "rt": raw_rt(m0, mujoco.MjData(m0), args.raw_steps)})
    env = egosim.tasks.make_env("shirt_fold", emb.name, obs_mode="state", privileged=True)
    env.reset(seed=0, options={"initial_state": FLAT})
    rows.append({"row": "shirt rest", "rt": raw_rt(env.model, env.data, args.raw_steps)})
    names = list(VARIANTS) if args.variants else ["default"]
    for name in names:
        env = egosim.tasks.make_env("shirt_fold", emb.name, obs_mode="state", privileged=True)
        is_hand = np.zeros(env.model.nbody, dtype=bool)
        for h in env.rig.hands.values():
            is_hand[list(h.bodies)] = True
        env._cloth_bench_hand = is_hand
        apply_variant(env, VARIANTS[name])
        try:
            drv = sleeve_fold(env)
        except (RuntimeError, mujoco.FatalError) as exc:
            rows.append({"row": f"sleeve fold [{name}]", "rt": float("nan"), "failed": str(exc)[:120]})
            continue
        wall = sum(w for w, _, _ in drv.log)
        rows.append({
            "row": "sleeve fold" + ("" if name == "default" else f" [{name}]"),
            "rt": len(drv.log) * env.control_dt / wall,
            "table_pen_mm": 1000 * max(t for _, t, _ in drv.log),
            "finger_pen_mm": 1000 * max(f for _, _, f in drv.log),
            "one_sleeve": bool(env._reached.get("one_sleeve")),
        })
    print(f"egosim {egosim.__version__}, mujoco {mujoco.__version__}, {platform.processor() or platform.machine()}, "
          f"{emb.name}, one thread, {'wall' if args.wall else 'CPU'} time, dt {env.model.opt.timestep * 1000:.0f} ms, {env.model.nflexvert} cloth vertices")
    print(f"{'scene':40s} {'RT':>6s} {'table pen mm':>13s} {'finger pen mm':>14s}")
    for r in rows:
        pen = (f"{r['table_pen_mm']:13.2f} {r['finger_pen_mm']:14.2f}  sleeve folded: {r['one_sleeve']}"
               if "table_pen_mm" in r else f"  FAILED: {r['failed']}" if "failed" in r else "")
        print(f"{r['row']:40s} {r['rt']:6.2f} {pen}")
    fold = rows[2]
    ok = fold["table_pen_mm"] <= 2.0 and fold["finger_pen_mm"] <= 2.0
    print(f"shirt/no-cloth {rows[1]['rt'] / rows[0]['rt']:.2f}; sleeve fold {fold['rt']:.2f}x real time "
          f"(target >= 4); interpenetration <= 2 mm: {'yes' if ok else 'NO'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "python": sys.version.split()[0]}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
