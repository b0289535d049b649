"""Builds the README's task table from the registry and from `egosim eval policy=expert` summaries.

Each row: task, tags, rubric (mode and milestone points, read from the task class), horizon, the
expert's success on each hand (k/n with the Wilson 95% interval, from the eval's `summary.json`), and
links to the expert videos under `docs/media/` when they exist. The table is measured, never typed:

    egosim eval tasks=all policy=expert episodes=50 output_dir=outputs/expert50
    python scripts/task_table.py outputs/expert50/summary.json --write README.md

With `--write`, the block between `<!-- task-table:start -->` and `<!-- task-table:end -->` in the
given file is replaced; otherwise the table is printed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import egosim.tasks
from egosim.embodiment import embodiment_names, get_embodiment

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT / "docs" / "media"
START, END = "<!-- task-table:start -->", "<!-- task-table:end -->"


def rubric_text(task: str) -> str:
    """`additive: a 0.25, b 0.25` / `progress: ...` from the task's rubric."""
    r = egosim.tasks.get_task(task).rubric
    return f"{r.mode}: " + ", ".join(f"{m.name} {m.points:g}" for m in r.milestones)


def load_rows(paths: Sequence[Path]) -> dict[tuple[str, str], Mapping[str, Any]]:
    """(task, embodiment) -> summary row; a later file wins over an earlier one."""
    rows: dict[tuple[str, str], Mapping[str, Any]] = {}
    for p in paths:
        for row in json.loads(Path(p).read_text()):
            if row.get("policy") != "expert":
                continue
            rows[(row["task"], row["embodiment"])] = row
    return rows


def success_cell(row: Mapping[str, Any] | None) -> str:
    if row is None:
        return "not measured"
    lo, hi = row["success_ci95"]
    return f"{row['n_success']}/{row['episodes']} ({100 * row['success_rate']:.0f}%, CI {100 * lo:.0f}-{100 * hi:.0f})"


def video_cell(task: str, readme_dir: Path) -> str:
    links = []
    for emb in embodiment_names():
        f = MEDIA / f"{task}-{emb}.mp4"
        if f.exists():
            links.append(f"[{get_embodiment(emb).env_name}]({f.relative_to(readme_dir).as_posix()})")
    return " ".join(links) or "-"


def table(rows: Mapping[tuple[str, str], Mapping[str, Any]], readme_dir: Path = ROOT) -> str:
    embs = list(embodiment_names())
    head = ["task", "tags", "rubric", "horizon", *(f"expert success, {e}" for e in embs), "video"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for task in egosim.tasks.task_names():
        cls = egosim.tasks.get_task(task)
        cells = [f"`{task}`", ", ".join(sorted(cls.tags)), rubric_text(task),
                 f"{cls.horizon_s:g} s ({round(cls.horizon_s * 20)} steps)",
                 *(success_cell(rows.get((task, e))) for e in embs), video_cell(task, readme_dir)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_block(readme: Path, text: str) -> None:
    """Replaces the marked block in `readme`; fails loudly when the markers are missing."""
    doc = readme.read_text()
    pat = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    if not pat.search(doc):
        sys.exit(f"{readme}: no {START} ... {END} block to replace")
    readme.write_text(pat.sub(lambda _: f"{START}\n{text}\n{END}", doc))


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("summaries", nargs="*", type=Path, help="summary.json files of expert evals")
    ap.add_argument("--write", type=Path, help="replace the task-table block in this Markdown file")
    args = ap.parse_args(argv)
    readme_dir = args.write.resolve().parent if args.write else ROOT
    text = table(load_rows(args.summaries), readme_dir)
    if args.write:
        write_block(args.write, text)
        print(f"wrote the task table into {args.write}")
    else:
        print(text)


if __name__ == "__main__":
    main()
