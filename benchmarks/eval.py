"""Evaluator throughput: 1 worker vs N local workers, and Ray vs the local pool, on the same episodes.

Plays one fixed episode list (the expert by default, a state-based policy) three or four ways and
prints wall times and ratios from this one run:
  serial       backend=local, workers=1 (in this process, no pool)
  local xN     backend=local, workers=N (spawn process pool; includes worker start-up)
  ray xN       backend=ray on a local Ray with N CPUs; Ray's own start-up (ray.init) is timed apart,
               since a cluster is started once and serves many runs
It also checks that every way produced the same per-episode results (wall time aside).
Targets (issue #4): local xN / serial speed-up >= 1.8 with N = 2; ray within 10% of the local pool.

    python benchmarks/eval.py --embodiment sharpa_wave --episodes 32 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("MUJOCO_GL", "egl")

from egosim.eval.backends import run_jobs  # noqa: E402
from egosim.eval.runner import EvalConfig, plan_jobs, resolve_names  # noqa: E402

VOLATILE = ("wall_s",)


def _play(jobs, **kw) -> tuple[float, list[dict]]:
    t0 = time.perf_counter()
    recs = list(run_jobs(jobs, **kw))
    wall = time.perf_counter() - t0
    recs.sort(key=lambda r: (r["task"], r["embodiment"], r["initial_state"]))
    return wall, [{k: v for k, v in r.items() if k not in VOLATILE} for r in recs]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="pen_in_bin")
    ap.add_argument("--embodiment", default="sharpa_wave")
    ap.add_argument("--policy", default="expert")
    ap.add_argument("--episodes", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray comparison")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)

    cfg = EvalConfig(tasks=[args.task], embodiments=[args.embodiment], policy=args.policy, episodes=args.episodes,
                     max_steps=args.max_steps, workers=args.workers)
    cfg.validate()
    tasks, embs = resolve_names(cfg)
    jobs = plan_jobs(cfg, tasks, embs)
    print(f"{len(jobs)} episodes of {args.policy} on {args.task}/{args.embodiment}; {os.cpu_count()} CPU cores")

    t_serial, ref = _play(jobs, backend="local", workers=1)
    t_local, local = _play(jobs, backend="local", workers=args.workers)
    rows = {"serial_s": t_serial, "local_s": t_local, "speedup_local": t_serial / t_local,
            "local_matches_serial": local == ref}
    print(f"serial        {t_serial:7.1f} s")
    print(f"local x{args.workers}      {t_local:7.1f} s   speed-up vs serial {t_serial / t_local:.2f}x   "
          f"same results: {'yes' if local == ref else 'NO'}")
    if not args.no_ray:
        try:
            import ray
        except ImportError:
            print("ray           not installed (pip install 'egosim[ray]'); skipped")
        else:
            t0 = time.perf_counter()
            ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
            t_init = time.perf_counter() - t0
            try:
                t_ray, on_ray = _play(jobs, backend="ray", workers=args.workers)
            finally:
                ray.shutdown()
            rows.update({"ray_init_s": t_init, "ray_s": t_ray, "ray_vs_local": t_ray / t_local,
                         "ray_matches_serial": on_ray == ref})
            print(f"ray x{args.workers}        {t_ray:7.1f} s   ray/local {t_ray / t_local:.2f}   "
                  f"(ray.init {t_init:.1f} s apart)   same results: {'yes' if on_ray == ref else 'NO'}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"episodes": len(jobs), "workers": args.workers, "cpus": os.cpu_count(), **rows}, fh, indent=2)
    ok = rows["local_matches_serial"] and rows.get("ray_matches_serial", True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
