"""The pre-real-robot gate: thresholds checked, reasons named, exit status 0 = go, 1 = no-go."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from egosim.eval.validate import GateConfig, check

from egosim.cli import main
from egosim.errors import ConfigError


def _ep(i: int, score: float, *, unstable: bool = False, speed: float = 0.3, force: float = 10.0, hits: int = 2) -> dict:
    return {"task": "pen_in_bin", "embodiment": "unitree_dex3", "initial_state": i, "score": score,
            "success": score == 1.0, "sim_unstable": unstable,
            "safety": {"joint_limit_hits": hits, "max_wrist_speed": speed, "max_contact_force": force}}


def test_gate_passes_a_safe_good_policy() -> None:
    verdict = check([_ep(i, 1.0) for i in range(5)], GateConfig(min_score=0.9, min_success=0.8))
    assert verdict.go and verdict.reasons == [] and "GO" in verdict.lines()[0]


def test_gate_names_every_failed_check() -> None:
    eps = [_ep(0, 0.25), _ep(1, 0.5, unstable=True), _ep(2, 0.75, speed=2.5), _ep(3, 1.0, force=900.0, hits=40)]
    verdict = check(eps, GateConfig(min_score=0.8, min_success=0.5))
    assert not verdict.go
    text = "\n".join(verdict.reasons)
    for part in ("mean score 0.625 < 0.800", "success 25% < 50%", "went sim_unstable", "pen_in_bin/unitree_dex3#1",
                 "max_wrist_speed 2.500 m/s > 1 m/s", "max_contact_force 900.000 N > 200 N", "joint_limit_hits 40.000"):
        assert part in text, text
    assert check(eps, GateConfig(min_score=0.5, task_min_score={"pen_in_bin": 0.9})).reasons[0].endswith("< 0.900")


def test_gate_config_errors() -> None:
    with pytest.raises(ConfigError, match="gate.min_score must be a number in"):
        GateConfig(min_score=1.5)
    with pytest.raises(ConfigError, match="unknown gate keys \\['max_speed'\\]; valid keys:"):
        GateConfig.from_mapping({"max_speed": 1.0})
    with pytest.raises(ConfigError, match="unknown task\\(s\\) \\['shirt'\\]"):
        check([_ep(0, 1.0)], GateConfig(task_min_score={"shirt": 0.5}), known_tasks=["pen_in_bin"])
    assert not check([], GateConfig()).go


def test_validate_cli(tmp_path: Path, capsys) -> None:
    common = ["embodiments=[unitree_dex3]", "episodes=2", "max_steps=20", "workers=1"]
    rc = main(["validate", *common, "policy=random", f"output_dir={tmp_path / 'a'}"])
    out = capsys.readouterr().out
    assert rc == 1 and "NO-GO" in out and "mean score 0.000 < 0.500" in out
    assert json.loads((tmp_path / "a" / "verdict.json").read_text())["go"] is False
    rc = main(["validate", *common, "policy=random", "gate.min_score=0.0", f"output_dir={tmp_path / 'b'}"])
    assert rc == 0 and "GO: the policy passes every check" in capsys.readouterr().out
    assert main(["validate", *common, "gate.max_speed=1", f"output_dir={tmp_path / 'c'}"]) == 2
    assert "gate.max_speed" in capsys.readouterr().err
