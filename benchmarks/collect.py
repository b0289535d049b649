"""Demo collection throughput: robot demo episodes per hour and human-data hours per wall hour,
with and without video.

Robot half: collects the same attempts (the scripted expert on `pen_in_bin`, sampled initial states,
keep=all so every attempt is written) into fresh LeRobot v3.0 datasets, once per setting, and prints
episodes per wall-clock hour, frames per second and the mean episode length.

Human half: `source=procedural` play (`tabletop_play`, the scripted demonstrator, 30 fps) until
`--human-hours` of frames are written, once per setting, and prints hours of data per wall-clock hour
(how long a 0.1-10 h pretraining sweep takes to generate), frames per second and the programs'
success. It runs on the `human` embodiment when one is registered, else on `--human-embodiment`.

"video" records the three cameras (240x320 by default) as H.264 streams; "no video" runs state-only
envs and writes state and action only. Wall time includes worker start-up and every commit (data,
videos, metadata).

    python benchmarks/collect.py --episodes 8 --workers 2 --human-hours 0.02
    python benchmarks/collect.py --skip-robot --human-hours 0.05      # the human half only
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time

os.environ.setdefault("MUJOCO_GL", "egl")

from egosim.cli import CollectEnvFactory, CollectPolicyFactory  # noqa: E402
from egosim.data.collect import CollectConfig, collect  # noqa: E402
from egosim.data.validate import validate_dataset  # noqa: E402
from egosim.embodiment import embodiment_names  # noqa: E402
from egosim.policies import get_policy_kind  # noqa: E402


def run(emb: str, video: bool, args: argparse.Namespace, out: str) -> dict:
    kind = get_policy_kind(args.policy)
    cfg = CollectConfig(tasks=[args.task], embodiments=[emb], policy=args.policy, episodes=args.episodes, seed=100,
                        output_dir=out, keep="all", video=video, image_size=tuple(args.image_size),
                        max_steps=args.max_steps, workers=args.workers)
    t0 = time.perf_counter()
    rows = collect(cfg, CollectEnvFactory(kind.needs_images, kind.needs_privileged), CollectPolicyFactory(args.policy),
                   log=None)
    wall = time.perf_counter() - t0
    summary = validate_dataset(os.path.join(out, emb), decode_videos=False)
    frames = rows[0]["frames"]
    return {"embodiment": emb, "video": video, "workers": args.workers, "episodes": summary.episodes,
            "frames": frames, "wall_s": round(wall, 2), "episodes_per_hour": round(3600 * summary.episodes / wall, 1),
            "frames_per_s": round(frames / wall, 1), "mean_length": round(frames / max(summary.episodes, 1), 1),
            "success_rate": rows[0]["success_rate"]}


def run_human(emb: str, video: bool, args: argparse.Namespace, out: str) -> dict:
    """Procedural human play until args.human_hours are written; hours of data per wall hour."""
    cfg = CollectConfig(tasks=["tabletop_play"], embodiments=[emb], policy="expert", seed=100, output_dir=out,
                        source="procedural", hours=args.human_hours, video=video,
                        image_size=tuple(args.image_size), workers=args.workers)
    t0 = time.perf_counter()
    rows = collect(cfg, CollectEnvFactory(False, True), CollectPolicyFactory("expert"), log=None)
    wall = time.perf_counter() - t0
    summary = validate_dataset(os.path.join(out, emb), decode_videos=False)
    frames, hours = rows[0]["frames"], rows[0]["hours"]
    return {"embodiment": emb, "video": video, "workers": args.workers, "episodes": summary.episodes,
            "frames": frames, "data_hours": round(hours, 5), "wall_s": round(wall, 2),
            "data_hours_per_wall_hour": round(hours / (wall / 3600), 3), "frames_per_s": round(frames / wall, 1),
            "mean_length": round(frames / max(summary.episodes, 1), 1), "success_rate": rows[0]["success_rate"]}


def print_table(head: tuple[str, ...], body: list[tuple[str, ...]]) -> None:
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    for line in (head, ["-" * w for w in widths], *body):
        print("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="pen_in_bin")
    ap.add_argument("--embodiments", nargs="+", default=["sharpa_wave", "unitree_dex3"])
    ap.add_argument("--policy", default="expert")
    ap.add_argument("--episodes", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--image-size", type=int, nargs=2, default=[240, 320], metavar=("H", "W"))
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--human-hours", type=float, default=0.02,
                    help="hours of procedural human data per setting (0: skip the human half)")
    ap.add_argument("--human-embodiment", default="sharpa_wave",
                    help="embodiment of the human half when no `human` embodiment is registered")
    ap.add_argument("--skip-robot", action="store_true", help="only the human half")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args(argv)

    rows, human_rows = [], []
    human_emb = "human" if "human" in embodiment_names() else args.human_embodiment
    tmp = tempfile.mkdtemp(prefix="egosim-bench-collect-")
    try:
        if not args.skip_robot:
            print(f"robot demos: {args.episodes} {args.policy} episodes of {args.task} per setting, {args.workers} "
                  f"worker(s), {os.cpu_count()} CPU cores, images {args.image_size[0]}x{args.image_size[1]}")
            for emb in args.embodiments:
                for video in (False, True):
                    rows.append(run(emb, video, args, os.path.join(tmp, f"{emb}-{video}")))
        if args.human_hours > 0:
            for video in (False, True):
                human_rows.append(run_human(human_emb, video, args, os.path.join(tmp, f"human-{video}")))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if rows:
        print_table(("embodiment", "video", "episodes", "mean length", "wall s", "episodes/hour", "frames/s", "success"),
                    [(r["embodiment"], "yes" if r["video"] else "no", str(r["episodes"]), f"{r['mean_length']:.0f}",
                      f"{r['wall_s']:.1f}", f"{r['episodes_per_hour']:.0f}", f"{r['frames_per_s']:.0f}",
                      f"{100 * r['success_rate']:.0f}%") for r in rows])
        for emb in args.embodiments:
            with_v = next(r for r in rows if r["embodiment"] == emb and r["video"])
            without = next(r for r in rows if r["embodiment"] == emb and not r["video"])
            print(f"{emb}: video costs {without['episodes_per_hour'] / max(with_v['episodes_per_hour'], 1e-9):.1f}x "
                  "in episodes per hour")
    if human_rows:
        print(f"\nhuman data: source=procedural (tabletop_play, 30 fps) on {human_emb}, {args.human_hours} h per "
              f"setting, {args.workers} worker(s), {os.cpu_count()} CPU cores")
        print_table(("embodiment", "video", "data h", "episodes", "mean length", "wall s", "data h/wall h", "frames/s",
                     "programs done"),
                    [(r["embodiment"], "yes" if r["video"] else "no", f"{r['data_hours']:.4g}", str(r["episodes"]),
                      f"{r['mean_length']:.0f}", f"{r['wall_s']:.1f}", f"{r['data_hours_per_wall_hour']:.2f}",
                      f"{r['frames_per_s']:.0f}", f"{100 * r['success_rate']:.0f}%") for r in human_rows])
        with_v, without = (next(r for r in human_rows if r["video"] == v) for v in (True, False))
        print(f"human data: video costs {without['data_hours_per_wall_hour'] / max(with_v['data_hours_per_wall_hour'], 1e-9):.1f}x "
              "in data hours per wall hour")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"config": vars(args), "rows": rows, "human_rows": human_rows}, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
