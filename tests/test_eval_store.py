"""The results store: one row per episode, resumable runs, run-id clashes, clean errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from egosim.eval.runner import run_eval
from egosim.eval.store import EPISODE_COLUMNS, ResultsStore, StoreError

from egosim.errors import ConfigError, InvalidChoiceError

SMALL = {"embodiments": ["unitree_dex3"], "policy": "random", "episodes": 3, "max_steps": 15, "seed": 2, "workers": 1}


def _strip(records):
    return [{k: v for k, v in r.items() if k not in ("wall_s", "recorded", "run_id")} for r in records]


def test_episode_rows_carry_every_column(tmp_path: Path) -> None:
    run_eval({**SMALL, "output_dir": str(tmp_path), "run_id": "r1"}, log=None)
    with ResultsStore(tmp_path / "results.sqlite") as store:
        rows = store.episodes(run_ids=["r1"])
        assert [r["initial_state"] for r in rows] == [0, 1, 2] and [r["seed"] for r in rows] == [2, 3, 4]
        for r in rows:
            assert set(EPISODE_COLUMNS) - {"end_reason"} <= set(r)
            assert r["domain"] == "sim" and r["label"] == "random" and r["dof"] == 7 and r["steps"] == 15
            assert r["egosim_version"] and r["mujoco_version"] and r["renderer"]
            assert set(r["safety"]) == {"joint_limit_hits", "max_wrist_speed", "max_contact_force"}
            assert set(r["milestones"]) == {"canister_picked", "canister_placed", "marker_picked", "marker_in_canister"}
        (run,) = store.runs()
        assert run["run_id"] == "r1" and run["config"]["seed"] == 2 and run["finished"]
    db = sqlite3.connect(tmp_path / "results.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_rerun_of_a_run_id_skips_stored_episodes(tmp_path: Path) -> None:
    first = run_eval({**SMALL, "output_dir": str(tmp_path), "run_id": "r1"}, log=None)
    lines = []
    again = run_eval({**SMALL, "episodes": 5, "output_dir": str(tmp_path), "run_id": "r1"}, log=lines.append)
    assert "2 to play" in lines[0] and "3 already in" in lines[0]
    assert again[0]["episodes"] == 5 and first[0]["episodes"] == 3
    with ResultsStore(tmp_path / "results.sqlite") as store:
        assert len(store.episodes(run_ids=["r1"])) == 5
        fresh = run_eval({**SMALL, "episodes": 5, "output_dir": str(tmp_path / "b"), "run_id": "r2"}, log=None)
        assert _strip(store.episodes(run_ids=["r1"])) == _strip(
            ResultsStore(tmp_path / "b" / "results.sqlite").episodes(run_ids=["r2"]))
    assert {k: v for k, v in fresh[0].items() if k not in ("wall_s", "run_id")} == {
        k: v for k, v in again[0].items() if k not in ("wall_s", "run_id")}


def test_run_id_with_other_settings_is_refused_and_nothing_is_lost(tmp_path: Path) -> None:
    run_eval({**SMALL, "output_dir": str(tmp_path), "run_id": "r1"}, log=None)
    with pytest.raises(StoreError, match=r"seed 2 != 3.*new run_id"):
        run_eval({**SMALL, "seed": 3, "output_dir": str(tmp_path), "run_id": "r1"}, log=None)
    with pytest.raises(StoreError, match="policy 'random' != 'expert'"):
        run_eval({**SMALL, "policy": "expert", "output_dir": str(tmp_path), "run_id": "r1"}, log=None)
    with ResultsStore(tmp_path / "results.sqlite") as store:
        assert len(store.episodes()) == 3


def test_duplicate_insert_is_ignored(tmp_path: Path) -> None:
    run_eval({**SMALL, "episodes": 1, "output_dir": str(tmp_path), "run_id": "r1"}, log=None)
    with ResultsStore(tmp_path / "results.sqlite") as store:
        (rec,) = store.episodes()
        before = dict(rec)
        rec["score"] = 0.99
        assert store.add_episode(rec) is False
        assert store.episodes() == [before]


def test_bad_store_and_bad_ids(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_text("not a database at all " * 100)
    with pytest.raises(StoreError, match="not a usable egosim results store"):
        ResultsStore(junk)
    with pytest.raises(ConfigError, match="run_id must be"):
        run_eval({**SMALL, "output_dir": str(tmp_path), "run_id": "a b"}, log=None)
    with pytest.raises(InvalidChoiceError, match="valid choices: local, ray"):
        run_eval({**SMALL, "output_dir": str(tmp_path), "backend": "slurm"}, log=None)
    with pytest.raises(ConfigError, match="takes no checkpoint"):
        run_eval({**SMALL, "output_dir": str(tmp_path), "checkpoint": str(junk)}, log=None)
