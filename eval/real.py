"""Real-robot trials: checked against the task's rubric and stored beside sim episodes.

A trial comes from `egosim real add` (one on the command line) or `egosim real import FILE.csv`.
CSV columns (header row required; names are case-insensitive, order free):

    task        registered task name (e.g. pen_in_bin)                          required
    embodiment  registered embodiment (sharpa_wave, unitree_dex3)               required
    policy      policy label as used in sim runs (e.g. pretrained, scratch)      required
    checkpoint  checkpoint name or hash, to tell weights apart                   optional
    trial       trial number, an integer >= 0, unique per task/embodiment/policy required
    milestones  reached milestones, separated by ';' (rubric names; 'none': none) one of these two
    score       rubric score in [0, 1]                                           (or both, if consistent)
    success     true/false (also 1/0, yes/no); default: every milestone reached  required without milestones
    operator    who ran the trial                                                optional
    notes       free text                                                        optional
    video       path or URL of the trial's recording                             optional

A row that fails a check is rejected with its row number and the reason; the other rows of the file
are stored. Trials already stored (same run, policy, task, embodiment and trial) are left as they are.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from egosim.errors import ConfigError, EgosimError
from egosim.eval.store import ResultsStore

REAL_RUN_ID = "real"
COLUMNS = ("task", "embodiment", "policy", "checkpoint", "trial", "milestones", "score", "success", "operator",
           "notes", "video")
REQUIRED = ("task", "embodiment", "policy", "trial")
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}
_SCORE_TOL = 1e-6


class TrialError(EgosimError):
    """A real-robot trial that does not fit the task's rubric (the message says which value and why)."""


def _parse_bool(name: str, text: str) -> bool:
    t = text.strip().lower()
    if t in _TRUE:
        return True
    if t in _FALSE:
        return False
    raise TrialError(f"{name} {text!r} is not a boolean; use true/false, 1/0 or yes/no")


def make_trial(fields: Mapping[str, Any], *, run_id: str = REAL_RUN_ID) -> dict[str, Any]:
    """Checks one trial against the registries and the task's rubric; returns the store record.

    Args:
        fields: Column name -> value (strings as read from a CSV, or typed values).
        run_id: Groups trials of one real-robot session in the store.

    Raises:
        TrialError: naming the bad value and the valid choices (unknown task, embodiment or
            milestone, score out of [0, 1], score inconsistent with the milestones, ...).
    """
    from egosim.embodiment import embodiment_names, get_embodiment
    from egosim.tasks import TASKS

    f = {str(k).strip().lower(): ("" if v is None else v) for k, v in fields.items()}
    unknown = sorted(k for k in f if k not in COLUMNS)
    if unknown:
        raise TrialError(f"unknown column(s) {unknown}; valid columns: {', '.join(COLUMNS)}")
    for key in REQUIRED:
        if str(f.get(key, "")).strip() == "":
            raise TrialError(f"{key} is missing")
    task_name = str(f["task"]).strip()
    if task_name not in TASKS:
        raise TrialError(f"unknown task {task_name!r}; valid tasks: {', '.join(TASKS)}")
    emb_name = str(f["embodiment"]).strip()
    if emb_name not in embodiment_names():
        raise TrialError(f"unknown embodiment {emb_name!r}; valid embodiments: {', '.join(embodiment_names())}")
    try:
        trial = int(str(f["trial"]).strip())
    except ValueError:
        raise TrialError(f"trial {f['trial']!r} is not an integer") from None
    if trial < 0:
        raise TrialError(f"trial {trial} is negative")
    rubric = TASKS[task_name].rubric

    ms_text = f.get("milestones", "")
    milestones: dict[str, bool] | None = None
    if isinstance(ms_text, (list, tuple, set)):
        names = [str(m).strip() for m in ms_text if str(m).strip()]
        ms_given = True
    else:
        text = str(ms_text).strip()
        names = [] if text.lower() in ("none", "-") else [m.strip() for m in text.replace(",", ";").split(";") if m.strip()]
        ms_given = text != ""
    if ms_given or names:
        bad = [m for m in names if m not in rubric.names]
        if bad:
            raise TrialError(f"milestone(s) {bad} not in the {task_name} rubric; valid: {', '.join(rubric.names)}")
        milestones = {m: m in names for m in rubric.names}

    score: float | None = None
    if str(f.get("score", "")).strip() != "":
        try:
            score = float(f["score"])
        except (TypeError, ValueError):
            raise TrialError(f"score {f['score']!r} is not a number") from None
        if not math.isfinite(score) or not 0.0 <= score <= 1.0:
            raise TrialError(f"score {score} is out of range; rubric scores lie in [0, 1]")
    if milestones is None and score is None:
        raise TrialError(f"give milestones (from: {', '.join(rubric.names)}) or a score in [0, 1]")
    if milestones is not None:
        from_ms = rubric.score(milestones)
        if score is not None and abs(score - from_ms) > _SCORE_TOL:
            raise TrialError(
                f"score {score} does not match the milestones {names} (the {rubric.mode} rubric gives {from_ms:g})"
            )
        score = from_ms

    if str(f.get("success", "")).strip() != "":
        success = f["success"] if isinstance(f["success"], bool) else _parse_bool("success", str(f["success"]))
    elif milestones is not None:
        success = all(milestones.values())
    else:
        raise TrialError("success is missing (it can be left out only when milestones are given)")
    if success and milestones is not None and not all(milestones.values()):
        missing = [m for m, v in milestones.items() if not v]
        raise TrialError(f"success is true but milestone(s) {missing} were not reached")

    return {
        "run_id": run_id,
        "domain": "real",
        "policy": str(f["policy"]).strip(),
        "label": str(f["policy"]).strip(),
        "checkpoint": str(f.get("checkpoint", "")).strip(),
        "checkpoint_hash": str(f.get("checkpoint", "")).strip(),
        "task": task_name,
        "embodiment": emb_name,
        "dof": get_embodiment(emb_name).dof,
        "initial_state": trial,
        "seed": 0,
        "milestones": milestones or {},
        "score": float(score),
        "success": bool(success),
        "operator": str(f.get("operator", "")).strip(),
        "notes": str(f.get("notes", "")).strip(),
        "video": str(f.get("video", "")).strip(),
        "end": "success" if success else "failure",
    }


@dataclass
class ImportResult:
    """What an import did: rows stored, rows already in the store, and rejected rows with reasons."""

    added: int = 0
    already_stored: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"stored {self.added} trial(s); {self.already_stored} already in the store; "
               f"{len(self.rejected)} rejected"]
        out += [f"  row {row}: {reason}" for row, reason in self.rejected]
        return out


def import_csv(path: str | Path, store: ResultsStore, *, run_id: str = REAL_RUN_ID) -> ImportResult:
    """Imports a CSV of real trials; good rows are stored even when other rows are rejected.

    Row numbers count data rows from 1 (the header is row 0), as a spreadsheet user sees them
    below the header.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"CSV file {str(p)!r} does not exist")
    with open(p, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise ConfigError(f"{p} lacks required column(s) {missing}; columns: {', '.join(COLUMNS)}")
        unknown = [h for h in header if h not in COLUMNS]
        if unknown:
            raise ConfigError(f"{p} has unknown column(s) {unknown}; valid columns: {', '.join(COLUMNS)}")
        result = ImportResult()
        good: list[dict[str, Any]] = []
        seen: dict[tuple[Any, ...], int] = {}
        for row_no, row in enumerate(reader, start=1):
            if None in row:
                result.rejected.append((row_no, f"more cells than the {len(header)} columns of the header"))
                continue
            try:
                rec = make_trial(row, run_id=run_id)
            except TrialError as exc:
                result.rejected.append((row_no, str(exc)))
                continue
            key = (rec["label"], rec["checkpoint_hash"], rec["task"], rec["embodiment"], rec["initial_state"])
            if key in seen:
                result.rejected.append((row_no, f"repeats trial {rec['initial_state']} of row {seen[key]}"))
                continue
            seen[key] = row_no
            good.append(rec)
    result.added, result.already_stored = store.add_episodes(good)
    return result
