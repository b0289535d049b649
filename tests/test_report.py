"""Reports: sim and real side by side per task x DoF, policy differences, sim-real agreement, and an
HTML page that headless Chromium opens without errors (a screenshot is taken)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from egosim.eval.real import make_trial
from egosim.eval.report import build_report, latest_per_episode, write_report
from egosim.eval.store import ResultsStore

from egosim.cli import main
from egosim.errors import EgosimError

MILESTONES = ("canister_picked", "canister_placed", "marker_picked", "marker_in_canister")


def _sim(label: str, emb: str, dof: int, i: int, reached: int, unstable: bool = False, run: str = "r") -> dict:
    ms = {m: k < reached for k, m in enumerate(MILESTONES)}
    return {"run_id": f"{run}-{label}", "domain": "sim", "policy": "vla", "label": label, "checkpoint_hash": "",
            "task": "pen_in_bin", "embodiment": emb, "dof": dof, "initial_state": i, "seed": i, "milestones": ms,
            "score": reached / 4, "success": reached == 4, "sim_unstable": unstable, "steps": 100,
            "egosim_version": "0.1.0", "mujoco_version": "4.0.0", "renderer": "none",
            "video": f"videos/{label}-{emb}-{i}.mp4" if i == 0 else ""}


@pytest.fixture()
def store_path(tmp_path: Path) -> Path:
    """Three policies on both hands in sim, 10 episodes each, plus 5 real trials each on Dex3."""
    path = tmp_path / "results.sqlite"
    quality = {"pretrained": 4, "midtrained": 3, "scratch": 1}
    with ResultsStore(path) as store:
        for label, q in quality.items():
            for emb, dof in (("sharpa_wave", 22), ("unitree_dex3", 7)):
                for i in range(10):
                    store.add_episode(_sim(label, emb, dof, i, reached=min(4, q + (i % 2)), unstable=(label == "scratch"
                                                                                                     and i == 9)))
            for t in range(5):
                reached = max(0, q - (t % 2))
                store.add_episode(make_trial({"task": "pen_in_bin", "embodiment": "unitree_dex3", "policy": label,
                                              "trial": t, "milestones": ";".join(MILESTONES[:reached]) or "none"}))
    return path


def test_report_contents(store_path: Path, tmp_path: Path) -> None:
    data = build_report(store_path, compare_pairs=[("pretrained", "scratch")])
    cells = {(c["label"], c["embodiment"], c["domain"]): c for c in data["cells"]}
    assert len(data["cells"]) == 3 * 3  # 3 labels x (2 sim hands + 1 real hand)
    pre = cells[("pretrained", "sharpa_wave", "sim")]
    assert pre["n"] == 10 and pre["success_rate"] == 1.0 and pre["mean_score"] == 1.0 and pre["dof"] == 22
    scr = cells[("scratch", "unitree_dex3", "sim")]
    assert scr["n_unstable"] == 1 and scr["success_rate"] == 0.0 and scr["mean_score"] == pytest.approx(0.375)
    real = cells[("midtrained", "unitree_dex3", "real")]
    assert real["n"] == 5 and real["mean_score"] == pytest.approx((3 * 0.75 + 2 * 0.5) / 5)
    overall = {(c["label"], c["dof"], c["domain"]) for c in data["overall"]}
    assert ("scratch", 22, "sim") in overall and ("scratch", 7, "real") in overall
    diff = next(r for r in data["comparisons"] if r["task"] == "pen_in_bin" and r["dof"] == 22 and r["domain"] == "sim")
    assert diff["success_diff"] == 1.0 and diff["score_diff"] == pytest.approx(1.0 - 0.375)
    assert diff["score_diff_ci95"][0] > 0
    (agree,) = data["sim_real"]
    assert agree["n_points"] == 3 and agree["mmrv_mean_score"] == 0.0
    assert agree["pearson_mean_score"] == pytest.approx(1.0, abs=0.1)
    assert data["versions"] == [{"egosim": "0.1.0", "mujoco": "4.0.0", "renderer": "none"}]
    assert len(data["videos"]) == 6

    paths = write_report(data, tmp_path / "report")
    md = paths["markdown"].read_text()
    for text in ("| pen_in_bin | 22 | sharpa_wave | pretrained | sim | 10 | 100% |", "pretrained - scratch", "MMRV",
                 "![sim_vs_real](sim_vs_real.svg)", "videos/"):
        assert text in md
    assert json.loads(paths["json"].read_text())["labels"] == ["midtrained", "pretrained", "scratch"]
    page = paths["html"].read_text()
    assert page.count("<svg") == 3 and "<script" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")


def test_newest_record_of_an_episode_counts(store_path: Path) -> None:
    with ResultsStore(store_path) as store:
        redo = _sim("pretrained", "sharpa_wave", 22, 0, reached=0, run="later")
        redo["recorded"] = "2999-01-01T00:00:00+00:00"
        store.add_episode(redo)
        records = latest_per_episode(store.episodes())
    data = build_report(store_path)
    pre = next(c for c in data["cells"] if c["label"] == "pretrained" and c["embodiment"] == "sharpa_wave")
    assert pre["n"] == 10 and pre["success_rate"] == 0.9
    assert len(records) == 3 * 20 + 15


def test_report_errors(tmp_path: Path, store_path: Path) -> None:
    with pytest.raises(EgosimError, match="does not exist"):
        build_report(tmp_path / "missing.sqlite")
    with pytest.raises(EgosimError, match="unknown policy label 'nope'; valid choices: midtrained, pretrained"):
        build_report(store_path, compare_pairs=[("nope", "scratch")])


def test_report_cli(store_path: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "rep"
    assert main(["report", "--store", str(store_path), "--out", str(out), "--compare", "midtrained", "scratch"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert {"report.md", "report.html", "summary.json", "success.svg", "score.svg", "sim_vs_real.svg"} <= {
        p.name for p in out.iterdir()}


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_html_report_opens_in_headless_chromium(store_path: Path, tmp_path: Path) -> None:
    """Renders report.html in headless Chromium: no console errors, no page errors, the charts have
    a size, and a screenshot is written."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra")
    if CHROMIUM is None:
        pytest.skip("no chromium binary; scripts/setup.sh installs it (apt-get install chromium)")
    paths = write_report(build_report(store_path), tmp_path / "report")
    shot = tmp_path / "report.png"
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"],
        )
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(paths["html"].resolve().as_uri())
            assert page.title() == "egosim report"
            boxes = [page.locator(f"#chart-{n} svg").bounding_box() for n in ("success", "score", "sim_vs_real")]
            assert all(b is not None and b["width"] > 100 and b["height"] > 100 for b in boxes), boxes
            assert page.locator("table").count() == 3  # per task, per DoF, sim-real (no pair to compare)
            page.screenshot(path=str(shot), full_page=True)
            if os.environ.get("EGOSIM_KEEP_SCREENSHOT"):
                shutil.copy(shot, os.environ["EGOSIM_KEEP_SCREENSHOT"])
        finally:
            browser.close()
    assert not errors, errors
    assert shot.stat().st_size > 10_000
