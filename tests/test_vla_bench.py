"""benchmarks/policy.py runs end to end at tiny counts and reports the VLA's size and speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "policy.py"


def test_policy_benchmark_smoke(tmp_path: Path) -> None:
    out_json = tmp_path / "policy.json"
    out = subprocess.run([sys.executable, str(SCRIPT), "--chunks", "2", "--train-steps", "1", "--batch", "2",
                          "--threads", "1", "--json", str(out_json)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "M parameters" in out.stdout and "ms per chunk" in out.stdout
    row = json.loads(out_json.read_text())["rows"][0]
    assert 2.0e6 < row["params"] < 3.0e6 and row["ms_per_chunk_median"] > 0 and row["train_samples_per_s"] > 0
