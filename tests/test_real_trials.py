"""Real-robot trials: checked against the rubric, bad CSV rows rejected with row and reason, good rows kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from egosim.eval.real import TrialError, import_csv, make_trial
from egosim.eval.store import ResultsStore

from egosim.cli import main

GOOD = {"task": "pen_in_bin", "embodiment": "unitree_dex3", "policy": "pretrained", "trial": "1",
        "milestones": "canister_picked;canister_placed", "operator": "ana"}

CSV = """task,embodiment,policy,checkpoint,trial,milestones,score,success,operator,notes
pen_in_bin,sharpa_wave,pretrained,ckpt-a,1,canister_picked;canister_placed;marker_picked;marker_in_canister,,true,ana,clean run
pen_in_bin,sharpa_wave,pretrained,ckpt-a,2,canister_picked,,,ana,
sock_sort,sharpa_wave,pretrained,ckpt-a,3,,0.5,false,ana,no such task
pen_in_bin,sharpa_wave,scratch,,1,,1.5,false,bo,score too high
pen_in_bin,unitree_dex3,scratch,,2,canister_picked;lid_opened,,false,bo,not a milestone
pen_in_bin,unitree_dex3,scratch,,3,,0.25,false,bo,score only
pen_in_bin,unitree_dex3,scratch,,4,canister_picked,0.75,false,bo,inconsistent score
pen_in_bin,unitree_dex3,scratch,,5,canister_picked,,true,bo,success without every milestone
pen_in_bin,unitree_dex3,scratch,,3,,0.0,false,bo,repeats trial 3
"""


def test_a_trial_is_scored_by_the_rubric() -> None:
    rec = make_trial(GOOD)
    assert rec["score"] == 0.5 and rec["success"] is False and rec["domain"] == "real" and rec["dof"] == 7
    assert rec["milestones"] == {"canister_picked": True, "canister_placed": True, "marker_picked": False,
                                 "marker_in_canister": False}
    full = make_trial({**GOOD, "milestones": "canister_picked, canister_placed, marker_picked, marker_in_canister"})
    assert full["score"] == 1.0 and full["success"] is True
    assert make_trial({**GOOD, "milestones": "", "score": "0.25", "success": "no"})["score"] == 0.25
    none = make_trial({**GOOD, "milestones": "none"})
    assert none["score"] == 0.0 and none["success"] is False and not any(none["milestones"].values())


@pytest.mark.parametrize(("change", "message"), [
    ({"task": "sock_sort"}, "unknown task 'sock_sort'; valid tasks: pen_in_bin"),
    ({"embodiment": "allegro"}, "unknown embodiment 'allegro'; valid embodiments: sharpa_wave, unitree_dex3"),
    ({"milestones": "canister_picked;lid_opened"}, r"\['lid_opened'\] not in the pen_in_bin rubric; valid: canister_picked"),
    ({"milestones": "", "score": "1.5", "success": "false"}, "score 1.5 is out of range"),
    ({"milestones": "", "score": "nan", "success": "false"}, "out of range"),
    ({"score": "0.75"}, "does not match the milestones"),
    ({"success": "maybe"}, "success 'maybe' is not a boolean"),
    ({"trial": "two"}, "trial 'two' is not an integer"),
    ({"milestones": ""}, "give milestones"),
    ({"success": "true"}, r"milestone\(s\) \['marker_picked', 'marker_in_canister'\] were not reached"),
    ({"operator_name": "x"}, "unknown column"),
])
def test_bad_trials_name_the_value_and_the_choices(change: dict, message: str) -> None:
    with pytest.raises(TrialError, match=message):
        make_trial({**GOOD, **change})


def test_csv_import_keeps_good_rows_and_lists_bad_ones(tmp_path: Path) -> None:
    path = tmp_path / "trials.csv"
    path.write_text(CSV)
    with ResultsStore(tmp_path / "r.sqlite") as store:
        result = import_csv(path, store)
        assert result.added == 3 and result.already_stored == 0
        assert [row for row, _ in result.rejected] == [3, 4, 5, 7, 8, 9]
        reasons = dict(result.rejected)
        assert "unknown task 'sock_sort'" in reasons[3] and "out of range" in reasons[4]
        assert "lid_opened" in reasons[5] and "does not match" in reasons[7] and "repeats trial 3 of row 6" in reasons[9]
        stored = store.episodes(domain="real")
        assert sorted((r["label"], r["initial_state"], r["score"]) for r in stored) == [
            ("pretrained", 1, 1.0), ("pretrained", 2, 0.25), ("scratch", 3, 0.25)]
        assert {r["operator"] for r in stored} == {"ana", "bo"}
        again = import_csv(path, store)  # a second import changes nothing
        assert again.added == 0 and again.already_stored == 3
        assert len(store.episodes(domain="real")) == 3


def test_real_cli(tmp_path: Path, capsys) -> None:
    store = str(tmp_path / "r.sqlite")
    args = ["real", "add", "--store", store, "--task", "pen_in_bin", "--embodiment", "unitree_dex3", "--policy", "p",
            "--trial", "4", "--milestones", "canister_picked", "--notes", "slipped"]
    assert main(args) == 0
    assert "score 0.25, failure" in capsys.readouterr().out
    assert main(args) == 0
    assert "already stored" in capsys.readouterr().out
    assert main([*args[:-4], "--score", "2"]) == 2
    assert "score 2.0 is out of range" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("task,embodiment,policy,trial,score,success,colour\npen_in_bin,unitree_dex3,p,1,0.5,false,red\n")
    assert main(["real", "import", str(bad), "--store", store]) == 2
    assert "unknown column(s) ['colour']" in capsys.readouterr().err
    good = tmp_path / "good.csv"
    good.write_text(CSV)
    assert main(["real", "import", str(good), "--store", store]) == 1  # some rows rejected
    out = capsys.readouterr().out
    assert "stored 3 trial(s)" in out and "row 4: score 1.5 is out of range" in out
    with ResultsStore(store) as s:
        assert len(s.episodes(domain="real")) == 4
