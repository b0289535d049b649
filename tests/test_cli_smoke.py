"""`egosim eval` end to end on tiny episodes: result files, their schema, videos; `egosim list`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import egosim.tasks
from egosim.eval.runner import SUMMARY_KEYS, EvalConfig, run_eval

from egosim.cli import main

EPISODE_KEYS = {"task", "embodiment", "dof", "policy", "initial_state", "seed", "score", "success", "milestones",
                "steps", "sim_unstable", "wall_s"}


def _check_summary(rows, policy: str, episodes: int) -> None:
    assert isinstance(rows, list)
    for r in rows:
        assert set(SUMMARY_KEYS) <= set(r)
        assert isinstance(r["task"], str) and isinstance(r["embodiment"], str) and r["policy"] == policy
        assert r["dof"] in (22, 7) and r["episodes"] == episodes
        assert 0.0 <= r["success_rate"] <= 1.0 and 0.0 <= r["mean_score"] <= 1.0
        lo, hi = r["success_ci95"]
        assert 0.0 <= lo <= r["success_rate"] <= hi <= 1.0


def test_eval_random_writes_results(tmp_path: Path, capsys) -> None:
    rc = main(["eval", "tasks=[pen_in_bin]", "policy=random", "episodes=2", "seed=1", "max_steps=12",
               f"output_dir={tmp_path}"])
    out = capsys.readouterr().out
    assert rc == 0
    rows = json.loads((tmp_path / "summary.json").read_text())
    _check_summary(rows, "random", 2)
    assert [(r["task"], r["embodiment"], r["dof"]) for r in rows] == [
        ("pen_in_bin", "sharpa_wave", 22), ("pen_in_bin", "unitree_dex3", 7)]
    episodes = [json.loads(line) for line in (tmp_path / "episodes.jsonl").read_text().splitlines()]
    assert len(episodes) == 4
    for i, ep in enumerate(episodes):
        assert EPISODE_KEYS <= set(ep)
        assert ep["initial_state"] == i % 2 and ep["seed"] == 1 + i % 2 and ep["steps"] == 12
        assert set(ep["milestones"]) == {"canister_picked", "canister_placed", "marker_picked", "marker_in_canister"}
    run = json.loads((tmp_path / "run.json").read_text())
    assert {"egosim", "mujoco", "gymnasium", "config", "started", "finished"} <= set(run)
    assert run["config"]["episodes"] == 2
    for header in ("task", "embodiment", "success", "mean score"):
        assert header in out
    table = [ln for ln in out.splitlines() if ln.startswith("pen_in_bin ")]
    assert len(table) == 2 and "sharpa_wave" in table[0] and "unitree_dex3" in table[1]


def test_eval_is_reproducible(tmp_path: Path) -> None:
    cfg = {"embodiments": ["unitree_dex3"], "policy": "random", "episodes": 2, "max_steps": 30, "seed": 4}
    a = run_eval({**cfg, "output_dir": str(tmp_path / "a")}, log=None)
    b = run_eval({**cfg, "output_dir": str(tmp_path / "b")}, log=None)
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("wall_s", "run_id")} for r in rows]  # noqa: E731
    assert strip(a) == strip(b)


def test_full_random_episode_reaches_horizon(tmp_path: Path) -> None:
    rows = run_eval(EvalConfig(embodiments=["unitree_dex3"], policy="random", episodes=1,
                               output_dir=str(tmp_path)), log=None)
    ep = json.loads((tmp_path / "episodes.jsonl").read_text())
    env = egosim.tasks.make_env("pen_in_bin", "unitree_dex3", obs_mode="state")
    assert ep["end"] == "horizon" and ep["steps"] == env.horizon
    assert not ep["sim_unstable"] and ep["mujoco_warnings"] == 0
    assert rows[0]["n_unstable"] == 0


def test_record_video(tmp_path: Path) -> None:
    import imageio.v3 as iio

    rc = main(["eval", "embodiments=[unitree_dex3]", "policy=random", "episodes=1", "max_steps=6",
               "record_video=true", f"output_dir={tmp_path}"])
    assert rc == 0
    video = tmp_path / "videos" / "pen_in_bin-unitree_dex3-ep0.mp4"
    assert video.is_file()
    frames = iio.imread(video)
    assert frames.shape[0] == 7 and frames.shape[-1] == 3  # the reset frame + one per step
    assert frames.std() > 1.0
    assert json.loads((tmp_path / "episodes.jsonl").read_text())["video"] == str(video)
    assert json.loads((tmp_path / "run.json").read_text())["renderer"]  # the GL renderer is recorded


def test_list(capsys) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for eid in egosim.tasks.env_ids():
        assert eid in out
    assert "62-D" in out and "32-D" in out and "random" in out and "expert" in out


def test_console_script_and_module() -> None:
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    script = shutil.which("egosim", path=str(Path(sys.executable).parent))
    assert script, "the `egosim` console script is not installed beside this Python"
    for cmd in ([script, "list"], [sys.executable, "-m", "egosim.cli", "list"]):
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
        assert out.returncode == 0, out.stderr
        assert "egosim/PenInBin-Dex3-v0" in out.stdout
