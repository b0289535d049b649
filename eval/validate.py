"""The pre-real-robot gate: does a policy's sim run justify an afternoon on the real robot?

`check(records, gate)` reads a run's episodes (scores and the safety figures measured while they
played, see `egosim.eval.safety`) and returns go / no-go with every reason. `egosim validate` runs the
policy on the sim suite first, then applies the gate.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from egosim.errors import ConfigError, reject_unknown_keys


@dataclass
class GateConfig:
    """Thresholds of the gate (mirrors the `gate:` block of `egosim/conf/validate.yaml`).

    Attributes:
        min_score: Mean rubric score every task x embodiment must reach.
        task_min_score: Per-task overrides of `min_score` ({task: score}).
        min_success: Success rate every task x embodiment must reach (None: not checked).
        max_unstable: Episodes flagged sim_unstable allowed per run (physics blow-ups hint at
            commands a real hand would not survive).
        max_joint_limit_hits: Most arrivals of hand joints at their limits in one episode.
        max_wrist_speed: Largest wrist speed in any episode (m/s).
        max_contact_force: Largest normal force of a hand contact in any episode (N).
    """

    min_score: float = 0.5
    task_min_score: dict[str, float] = field(default_factory=dict)
    min_success: float | None = None
    max_unstable: int = 0
    max_joint_limit_hits: int = 20
    max_wrist_speed: float = 1.0
    max_contact_force: float = 200.0

    def __post_init__(self) -> None:
        for name in ("min_score", "min_success"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0):
                raise ConfigError(f"gate.{name} must be a number in [0, 1], got {v!r}")
        for name in ("max_wrist_speed", "max_contact_force"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ConfigError(f"gate.{name} must be a positive number, got {v!r}")
        for name in ("max_unstable", "max_joint_limit_hits"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"gate.{name} must be an integer >= 0, got {v!r}")
        for task, v in dict(self.task_min_score).items():
            if not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                raise ConfigError(f"gate.task_min_score.{task} must be in [0, 1], got {v!r}")

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any]) -> GateConfig:
        reject_unknown_keys(cfg, (f.name for f in dataclasses.fields(cls)), "gate")
        kw = dict(cfg)
        if "task_min_score" in kw:
            kw["task_min_score"] = dict(kw["task_min_score"] or {})
        return cls(**kw)


@dataclass
class Verdict:
    """The gate's answer: go, the reasons against (empty on go), and what was checked."""

    go: bool
    reasons: list[str]
    checked: list[str]

    def lines(self) -> list[str]:
        head = "GO: the policy passes every check" if self.go else f"NO-GO: {len(self.reasons)} check(s) failed"
        return [head, *(f"  - {r}" for r in self.reasons), "checked:", *(f"  {c}" for c in self.checked)]


def check(records: Sequence[Mapping[str, Any]], gate: GateConfig, *, known_tasks: Sequence[str] = ()) -> Verdict:
    """Applies `gate` to a run's sim episodes.

    Raises:
        ConfigError: a `task_min_score` names a task that is not in `known_tasks` (when given).
    """
    if known_tasks:
        bad = sorted(set(gate.task_min_score) - set(known_tasks))
        if bad:
            raise ConfigError(f"gate.task_min_score names unknown task(s) {bad}; valid: {', '.join(known_tasks)}")
    if not records:
        return Verdict(False, ["no sim episodes to judge"], [])
    reasons, checked = [], []
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for r in records:
        groups[(r["task"], r["embodiment"])].append(r)
    for (task, emb), rs in sorted(groups.items()):
        n = len(rs)
        score = sum(float(r["score"]) for r in rs) / n
        need = gate.task_min_score.get(task, gate.min_score)
        checked.append(f"{task} {emb}: mean score {score:.3f} (need >= {need:.3f}, n={n})")
        if score < need:
            reasons.append(f"{task} {emb}: mean score {score:.3f} < {need:.3f}")
        if gate.min_success is not None:
            rate = sum(bool(r["success"]) for r in rs) / n
            checked.append(f"{task} {emb}: success {rate:.0%} (need >= {gate.min_success:.0%})")
            if rate < gate.min_success:
                reasons.append(f"{task} {emb}: success {rate:.0%} < {gate.min_success:.0%}")
    unstable = [r for r in records if r.get("sim_unstable")]
    checked.append(f"sim_unstable episodes: {len(unstable)} (allowed {gate.max_unstable})")
    if len(unstable) > gate.max_unstable:
        where = ", ".join(f"{r['task']}/{r['embodiment']}#{r['initial_state']}" for r in unstable[:5])
        reasons.append(f"{len(unstable)} episode(s) went sim_unstable (allowed {gate.max_unstable}): {where}")
    for key, limit, unit in (("joint_limit_hits", gate.max_joint_limit_hits, ""),
                             ("max_wrist_speed", gate.max_wrist_speed, " m/s"),
                             ("max_contact_force", gate.max_contact_force, " N")):
        vals = [(float(r.get("safety", {}).get(key, math.nan)), r) for r in records]
        vals = [(v, r) for v, r in vals if not math.isnan(v)]
        if not vals:
            reasons.append(f"{key}: no safety measurements in the episodes")
            continue
        worst, rw = max(vals, key=lambda t: t[0])
        checked.append(f"{key}: worst {worst:.3f}{unit} (limit {limit:g}{unit})")
        if worst > limit:
            over = sum(v > limit for v, _ in vals)
            reasons.append(f"{key} {worst:.3f}{unit} > {limit:g}{unit} in {over} episode(s), worst "
                           f"{rw['task']}/{rw['embodiment']} state {rw['initial_state']}")
    return Verdict(not reasons, reasons, checked)
