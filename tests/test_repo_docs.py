"""The README's promises that code can check: two quick-start commands, CI calls the test command,
and every registered env id is documented."""

from __future__ import annotations

import os
import re
from pathlib import Path

import egosim.tasks

from egosim.actions import side_slices

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def test_quick_start_is_two_make_commands() -> None:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    assert [ln.strip() for ln in block.strip().splitlines()] == ["make eval", "make test"]
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^eval:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


def test_ci_runs_the_readme_test_command() -> None:
    ci = REPO / ".ci" / "run"
    assert os.access(ci, os.X_OK)
    text = ci.read_text()
    assert text.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in text
    assert re.search(r"^make test$", text, re.M)


def test_env_ids_and_slices_documented() -> None:
    for eid in egosim.tasks.env_ids():
        assert f"`{eid}`" in README, f"{eid} missing from README"
    for dof in (22, 7):
        for name in side_slices(dof):
            assert f"`{name}`" in README
    assert "| `right_hand_joints` | 40:62 | 25:32 |" in README


def test_every_task_is_in_the_task_table() -> None:
    block = README.split("<!-- task-table:start -->", 1)[1].split("<!-- task-table:end -->", 1)[0]
    for task in egosim.tasks.task_names():
        assert f"| `{task}` |" in block, f"{task} missing from the README task table (scripts/task_table.py)"
