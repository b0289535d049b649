"""The results store: one SQLite file (WAL) holding sim episodes and real-robot trials side by side.

Every finished episode is one row, committed on its own the moment it ends, so a run killed at any
point (even SIGKILL) loses at most the episodes still in flight; a unique key per episode makes a rerun
of the same run id skip what is already stored and makes double inserts impossible.

Tables:
    runs      run_id, domain, policy, label, checkpoint, checkpoint_hash, config (JSON), versions (JSON),
              started, finished.
    episodes  one row per sim episode or real trial (see `EPISODE_COLUMNS`), unique on
              (run_id, domain, label, checkpoint_hash, task, embodiment, initial_state, seed).
For real trials `initial_state` holds the trial number and `seed` is 0.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from egosim.errors import ConfigError, EgosimError

SCHEMA_VERSION = 1
DOMAINS = ("sim", "real")

# name -> SQLite type; the order is the column order of the table.
EPISODE_COLUMNS: dict[str, str] = {
    "run_id": "TEXT NOT NULL",
    "domain": "TEXT NOT NULL",
    "policy": "TEXT NOT NULL",
    "label": "TEXT NOT NULL",
    "checkpoint": "TEXT NOT NULL DEFAULT ''",
    "checkpoint_hash": "TEXT NOT NULL DEFAULT ''",
    "task": "TEXT NOT NULL",
    "embodiment": "TEXT NOT NULL",
    "dof": "INTEGER NOT NULL",
    "initial_state": "INTEGER NOT NULL",
    "seed": "INTEGER NOT NULL",
    "milestones": "TEXT NOT NULL",  # JSON {name: bool}
    "score": "REAL NOT NULL",
    "success": "INTEGER NOT NULL",
    "steps": "INTEGER",
    "wall_s": "REAL",
    "sim_unstable": "INTEGER NOT NULL DEFAULT 0",
    "mujoco_warnings": "INTEGER NOT NULL DEFAULT 0",
    "end_reason": "TEXT NOT NULL DEFAULT ''",
    "safety": "TEXT NOT NULL DEFAULT '{}'",  # JSON, see egosim.eval.safety
    "video": "TEXT NOT NULL DEFAULT ''",
    "operator": "TEXT NOT NULL DEFAULT ''",
    "notes": "TEXT NOT NULL DEFAULT ''",
    "egosim_version": "TEXT NOT NULL DEFAULT ''",
    "mujoco_version": "TEXT NOT NULL DEFAULT ''",
    "renderer": "TEXT NOT NULL DEFAULT ''",
    "recorded": "TEXT NOT NULL",
}
EPISODE_KEY = ("run_id", "domain", "label", "checkpoint_hash", "task", "embodiment", "initial_state", "seed")
_JSON_COLUMNS = ("milestones", "safety")
_BOOL_COLUMNS = ("success", "sim_unstable")


class StoreError(EgosimError):
    """The results file cannot be used (not an egosim store, newer schema, or a run-id clash)."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class ResultsStore:
    """A results file. Open it with `ResultsStore(path)`; use as a context manager to close it.

    Writes go through single-statement transactions in autocommit mode: an episode row is either
    fully on disk or absent after a crash, never half written.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(self.path), timeout=60.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
            self._create()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a usable egosim results store: {exc}") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ schema
    def _create(self) -> None:
        db = self._db
        db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {row[0]}; this egosim reads up to {SCHEMA_VERSION} (upgrade egosim)"
            )
        db.execute(
            "CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, domain TEXT NOT NULL, policy TEXT NOT NULL, "
            "label TEXT NOT NULL, checkpoint TEXT NOT NULL, checkpoint_hash TEXT NOT NULL, config TEXT NOT NULL, "
            "versions TEXT NOT NULL, started TEXT NOT NULL, finished TEXT)"
        )
        cols = ", ".join(f"{k} {v}" for k, v in EPISODE_COLUMNS.items())
        db.execute(
            f"CREATE TABLE IF NOT EXISTS episodes (id INTEGER PRIMARY KEY, {cols}, UNIQUE ({', '.join(EPISODE_KEY)}))"
        )
        db.execute("CREATE INDEX IF NOT EXISTS episodes_by_label ON episodes (label, task, embodiment, domain)")

    # ------------------------------------------------------------------ runs
    def begin_run(
        self, run_id: str, *, domain: str, policy: str, label: str, checkpoint: str, checkpoint_hash: str,
        config: Mapping[str, Any], versions: Mapping[str, Any], identity: Sequence[str] = (),
    ) -> bool:
        """Registers a run, or checks that a rerun of `run_id` is the same run. Returns True if new.

        `identity` names the config keys that must match for a rerun to resume (e.g. seed,
        max_steps): resuming with another policy or seed would mix two experiments in one run.
        """
        if domain not in DOMAINS:
            raise ConfigError(f"domain {domain!r} is not one of {', '.join(DOMAINS)}")
        row = self._db.execute(
            "SELECT policy, label, checkpoint_hash, config FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        if row is None:
            self._db.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                (run_id, domain, policy, label, checkpoint, checkpoint_hash, json.dumps(dict(config), default=str),
                 json.dumps(dict(versions), default=str), _now()),
            )
            return True
        old_policy, old_label, old_hash, old_cfg = row
        old = json.loads(old_cfg)
        clashes = [f"policy {old_policy!r} != {policy!r}"] if old_policy != policy else []
        if old_label != label:
            clashes.append(f"label {old_label!r} != {label!r}")
        if old_hash != checkpoint_hash:
            clashes.append(f"checkpoint hash {old_hash[:12]!r} != {checkpoint_hash[:12]!r}")
        clashes += [f"{k} {old.get(k)!r} != {config.get(k)!r}" for k in identity if old.get(k) != config.get(k)]
        if clashes:
            raise StoreError(
                f"run_id {run_id!r} in {self.path} was recorded with other settings ({'; '.join(clashes)}); "
                "choose a new run_id or rerun with the original settings to resume"
            )
        return False

    def finish_run(self, run_id: str) -> None:
        self._db.execute("UPDATE runs SET finished = ? WHERE run_id = ?", (_now(), run_id))

    def runs(self) -> list[dict[str, Any]]:
        cur = self._db.execute("SELECT * FROM runs ORDER BY started, run_id")
        names = [c[0] for c in cur.description]
        out = []
        for row in cur.fetchall():
            r = dict(zip(names, row))
            r["config"], r["versions"] = json.loads(r["config"]), json.loads(r["versions"])
            out.append(r)
        return out

    # ------------------------------------------------------------------ episodes
    def finished_keys(self, run_id: str) -> set[tuple[str, str, int, int]]:
        """(task, embodiment, initial_state, seed) of every episode already stored for `run_id`."""
        rows = self._db.execute(
            "SELECT task, embodiment, initial_state, seed FROM episodes WHERE run_id = ?", (run_id,)
        ).fetchall()
        return {(t, e, int(i), int(s)) for t, e, i, s in rows}

    def add_episode(self, record: Mapping[str, Any]) -> bool:
        """Stores one episode or trial; False when its key is already stored (nothing is overwritten)."""
        return self._insert(_to_row(record))

    def add_episodes(self, records: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
        """Stores several rows in one transaction; returns (added, already stored)."""
        added = skipped = 0
        rows = [_to_row(r) for r in records]
        self._db.execute("BEGIN")
        try:
            for row in rows:
                new = self._insert(row)
                added += new
                skipped += not new
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return added, skipped

    def _insert(self, row: Mapping[str, Any]) -> bool:
        cur = self._db.execute(
            f"INSERT OR IGNORE INTO episodes ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
            tuple(row.values()),
        )
        return cur.rowcount == 1

    def episodes(
        self, *, run_ids: Sequence[str] | None = None, domain: str | None = None,
        labels: Sequence[str] | None = None, tasks: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Stored rows (JSON columns decoded, booleans as bool), ordered by their key."""
        where, args = [], []
        for col, values in (("run_id", run_ids), ("label", labels), ("task", tasks)):
            if values:
                where.append(f"{col} IN ({', '.join('?' * len(values))})")
                args += list(values)
        if domain is not None:
            where.append("domain = ?")
            args.append(domain)
        sql = "SELECT * FROM episodes" + (f" WHERE {' AND '.join(where)}" if where else "")
        sql += " ORDER BY run_id, domain, label, task, embodiment, initial_state, seed"
        cur = self._db.execute(sql, args)
        names = [c[0] for c in cur.description]
        return [_from_row(dict(zip(names, row))) for row in cur.fetchall()]


def _to_row(record: Mapping[str, Any]) -> dict[str, Any]:
    missing = [k for k in EPISODE_KEY + ("policy", "dof", "milestones", "score", "success") if k not in record]
    if missing:
        raise ConfigError(f"episode record lacks {missing}")
    row: dict[str, Any] = {}
    for col in EPISODE_COLUMNS:
        if col == "recorded":
            row[col] = record.get(col) or _now()
        elif col in record and record[col] is not None:
            val = record[col]
            if col in _JSON_COLUMNS:
                val = json.dumps({k: (bool(v) if col == "milestones" else v) for k, v in dict(val).items()})
            elif col in _BOOL_COLUMNS:
                val = int(bool(val))
            row[col] = val
    if "end" in record and "end_reason" not in record:
        row["end_reason"] = record["end"]
    return row


def _from_row(row: dict[str, Any]) -> dict[str, Any]:
    row.pop("id", None)
    for col in _JSON_COLUMNS:
        row[col] = json.loads(row[col])
    for col in _BOOL_COLUMNS:
        row[col] = bool(row[col])
    row["end"] = row.pop("end_reason")
    return row
