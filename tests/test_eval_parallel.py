"""Parallel runs give the same episodes as serial ones; a runner killed with SIGKILL resumes to the
same store and summary as an uninterrupted run."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from egosim.eval.runner import run_eval
from egosim.eval.store import ResultsStore

VOLATILE = ("wall_s", "recorded", "run_id")


def _episodes(store_path: Path, run_id: str) -> list[dict]:
    with ResultsStore(store_path) as store:
        return [{k: v for k, v in r.items() if k not in VOLATILE} for r in store.episodes(run_ids=[run_id])]


def _strip_rows(rows):
    return [{k: v for k, v in r.items() if k not in ("wall_s", "run_id")} for r in rows]


@pytest.mark.parametrize("policy", ["random", "expert"])
def test_one_and_two_workers_play_identical_episodes(tmp_path: Path, policy: str) -> None:
    cfg = {"embodiments": ["unitree_dex3"], "policy": policy, "episodes": 4, "max_steps": 60, "seed": 7}
    a = run_eval({**cfg, "workers": 1, "output_dir": str(tmp_path / "w1"), "run_id": "w1"}, log=None)
    b = run_eval({**cfg, "workers": 2, "output_dir": str(tmp_path / "w2"), "run_id": "w2"}, log=None)
    ea, eb = _episodes(tmp_path / "w1" / "results.sqlite", "w1"), _episodes(tmp_path / "w2" / "results.sqlite", "w2")
    assert len(ea) == 4 and ea == eb
    assert _strip_rows(a) == _strip_rows(b)
    if policy == "expert":
        assert any(e["score"] > 0 for e in ea)  # the comparison covers episodes where something happens


def test_ray_backend_matches_the_local_pool(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    cfg = {"embodiments": ["unitree_dex3"], "policy": "random", "episodes": 3, "max_steps": 30, "seed": 1}
    run_eval({**cfg, "workers": 1, "output_dir": str(tmp_path / "local"), "run_id": "local"}, log=None)
    run_eval({**cfg, "workers": 2, "backend": "ray", "output_dir": str(tmp_path / "ray"), "run_id": "ray"}, log=None)
    assert _episodes(tmp_path / "ray" / "results.sqlite", "ray") == _episodes(
        tmp_path / "local" / "results.sqlite", "local")


def _stored(store_path: Path, run_id: str) -> int:
    """Episodes stored so far, read from another process while the runner writes (WAL allows it)."""
    try:
        db = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True, timeout=5)
        try:
            return db.execute("SELECT COUNT(*) FROM episodes WHERE run_id = ?", (run_id,)).fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0  # not created yet


def test_sigkill_at_random_moments_then_resume(tmp_path: Path) -> None:
    """10 runs of `egosim eval` (alternating 1 and 2 workers) are each killed with SIGKILL at a random
    moment after they stored at least one more episode, so every kill lands inside a run: mid-episode,
    mid-commit or between episodes. Then one run to the end: every episode is stored exactly once,
    with the results and summary of an uninterrupted run."""
    total = 24
    overrides = ["embodiments=[unitree_dex3]", "policy=random", f"episodes={total}", "max_steps=150", "seed=3",
                 f"output_dir={tmp_path / 'killed'}", "run_id=killed"]
    cmd = [sys.executable, "-m", "egosim.cli", "eval", *overrides]
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    rng = random.Random(11)
    store_path = tmp_path / "killed" / "results.sqlite"
    mid_run = 0
    for k in range(10):
        target = _stored(store_path, "killed") + 1
        proc = subprocess.Popen([*cmd, f"workers={1 + k % 2}"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while _stored(store_path, "killed") < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.25))
        mid_run += proc.poll() is None
        proc.kill()
        proc.wait()
    assert mid_run >= 8, f"only {mid_run} of 10 kills landed while the runner was still running"
    print(f"stored before the final run: {_stored(store_path, 'killed')} of {total}")
    done = subprocess.run([*cmd, "workers=1"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]

    ref = run_eval({"embodiments": ["unitree_dex3"], "policy": "random", "episodes": total, "max_steps": 150,
                    "seed": 3, "workers": 2, "output_dir": str(tmp_path / "ref"), "run_id": "ref"}, log=None)
    killed = _episodes(store_path, "killed")
    keys = Counter((e["task"], e["embodiment"], e["initial_state"], e["seed"]) for e in killed)
    assert len(keys) == total and set(keys.values()) == {1}
    assert killed == _episodes(tmp_path / "ref" / "results.sqlite", "ref")
    summary = json.loads((tmp_path / "killed" / "summary.json").read_text())
    assert _strip_rows(summary) == _strip_rows(ref)
