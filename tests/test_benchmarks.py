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


def test_retarget_benchmark_smoke(tmp_path: Path) -> None:
    """Tiny run over the script's own EgoDex-format files and a human dataset; labels never leave the limits."""
    import numpy as np

    from egosim.data.egodex import ImportConfig, import_egodex, write_egodex
    from egosim.keypoints import synthetic_hands

    write_egodex(tmp_path / "src/t/0.hdf5", synthetic_hands(np.random.default_rng(0), 8),
                 np.tile([0, 0, 1.5, 1, 0, 0, 0.0], (8, 1)))
    import_egodex(tmp_path / "src", ImportConfig(output_dir=str(tmp_path / "human"), video=False), log=None)
    out_json = tmp_path / "retarget.json"
    out = subprocess.run(
        [sys.executable, str(SCRIPT.parent / "retarget.py"), "--episodes", "1", "--frames", "12", "--cold-frames", "3",
         "--human-dataset", str(tmp_path / "human"), "--json", str(out_json)],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    rows = json.loads(out_json.read_text())["rows"]
    assert {(r["embodiment"], r["frames"]) for r in rows} == {(e, n) for e in ("sharpa_wave", "unitree_dex3")
                                                              for n in (12, 8)}
    for r in rows:
        assert r["limit_violations"] == 0 and r["fps_per_core"] > 0 and 0 < r["tip_error_mm"] < 50
    assert "fps/core" in out.stdout and "sharpa_wave" in out.stdout
