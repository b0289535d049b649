"""The speed benchmarks run end to end (tiny sizes); the env one's raw loop replays the env's physics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import egosim.tasks

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "env_step.py"


def test_env_step_benchmark_smoke(tmp_path: Path) -> None:
    out_json = tmp_path / "bench.json"
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--steps", "20", "--rgb-steps", "2", "--repeats", "1", "--json", str(out_json)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    for eid in egosim.tasks.env_ids():
        assert eid in out.stdout
    assert "state/raw" in out.stdout and "bit for bit: yes" in out.stdout
    rows = json.loads(out_json.read_text())["rows"]
    assert {r["env_id"] for r in rows} == set(egosim.tasks.env_ids())
    for r in rows:
        assert r["raw_reproduces_env"] and r["raw_sps"] > 0 and r["state_sps"] > 0 and r["rgb_sps"] > 0


def test_eval_benchmark_smoke(tmp_path: Path) -> None:
    script = SCRIPT.parent / "eval.py"
    out_json = tmp_path / "eval.json"
    out = subprocess.run(
        [sys.executable, str(script), "--embodiment", "unitree_dex3", "--policy", "random", "--episodes", "2",
         "--max-steps", "10", "--no-ray", "--json", str(out_json)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "speed-up vs serial" in out.stdout and "same results: yes" in out.stdout
    figures = json.loads(out_json.read_text())
    assert figures["local_matches_serial"] and figures["speedup_local"] > 0
