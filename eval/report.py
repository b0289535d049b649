"""Reports from the results store: Markdown, a self-contained HTML page and summary.json.

What a reader gets, per task x DoF (22 for Sharpa Wave, 7 for Dex3) and per policy label, sim and real
side by side: mean rubric score, success rate with its Wilson 95% interval, n, and the number of
episodes flagged `sim_unstable` (those count as failures and also in their own column); the same per
DoF over all tasks; policy-vs-policy differences (e.g. pretrained minus scratch) with bootstrap
intervals; sim-real agreement (Pearson r and MMRV over policies, SimplerEnv's definitions, with the
number of policies they rest on); bar charts in the style of EgoScale's figures, a sim-vs-real scatter,
and links to episode videos. Charts are inline SVG, so the HTML needs no network and no plotting
library.

When one episode (same label, checkpoint, task, embodiment, initial state, seed, domain) is stored by
several runs, the newest record counts, so re-running a policy replaces rather than doubles its n.
"""

from __future__ import annotations

import html
import json
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from egosim.eval.stats import bootstrap_diff, mmrv, pearson_r, wilson_interval
from egosim.eval.store import ResultsStore

from egosim.errors import ConfigError, InvalidChoiceError

DOMAINS = ("sim", "real")
_PALETTE = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C")


@dataclass(frozen=True)
class Cell:
    """Aggregate of one (label, task, embodiment, domain); task "all" for the per-DoF overall rows."""

    label: str
    task: str
    embodiment: str
    dof: int
    domain: str
    n: int
    n_success: int
    success_rate: float
    success_ci95: tuple[float, float]
    mean_score: float
    n_unstable: int


def latest_per_episode(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One record per episode identity, the most recently recorded one."""
    best: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in records:
        key = (r["domain"], r["label"], r["checkpoint_hash"], r["task"], r["embodiment"], r["initial_state"], r["seed"])
        if key not in best or (r["recorded"], r["run_id"]) > (best[key]["recorded"], best[key]["run_id"]):
            best[key] = dict(r)
    return [best[k] for k in sorted(best, key=lambda k: tuple(str(x) for x in k))]


def _cell(label: str, task: str, embodiment: str, dof: int, domain: str, rs: Sequence[Mapping[str, Any]]) -> Cell:
    n = len(rs)
    k = sum(bool(r["success"]) for r in rs)
    lo, hi = wilson_interval(k, n)
    return Cell(label, task, embodiment, dof, domain, n, k, k / n if n else 0.0, (lo, hi),
                sum(float(r["score"]) for r in rs) / n if n else 0.0,
                sum(bool(r.get("sim_unstable")) for r in rs))


def aggregate(records: Sequence[Mapping[str, Any]]) -> tuple[list[Cell], list[Cell]]:
    """(per task x embodiment cells, per DoF overall cells), each per label and domain."""
    groups: dict[tuple[str, str, str, int, str], list[Mapping[str, Any]]] = defaultdict(list)
    overall: dict[tuple[str, int, str], list[Mapping[str, Any]]] = defaultdict(list)
    dof_embs: dict[int, set[str]] = defaultdict(set)
    for r in records:
        groups[(r["label"], r["task"], r["embodiment"], int(r["dof"]), r["domain"])].append(r)
        overall[(r["label"], int(r["dof"]), r["domain"])].append(r)
        dof_embs[int(r["dof"])].add(r["embodiment"])
    cells = [_cell(*key, rs) for key, rs in sorted(groups.items(), key=lambda kv: (-kv[0][3], kv[0][1], kv[0][0],
                                                                                  DOMAINS.index(kv[0][4])))]
    overall_cells = [_cell(lab, "all", "+".join(sorted(dof_embs[dof])), dof, dom, rs)
                     for (lab, dof, dom), rs in sorted(overall.items(), key=lambda kv: (-kv[0][1], kv[0][0],
                                                                                         DOMAINS.index(kv[0][2])))]
    return cells, overall_cells


def compare(records: Sequence[Mapping[str, Any]], a: str, b: str, *, seed: int = 0) -> list[dict[str, Any]]:
    """Label `a` minus label `b`, per (task, embodiment, domain) where both have episodes, and overall
    per (DoF, domain): success-rate and mean-score differences with 95% bootstrap intervals."""
    by: dict[tuple[str, str, int, str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for r in records:
        if r["label"] in (a, b):
            by[(r["label"], r["task"], int(r["dof"]), r["embodiment"], r["domain"])].append(r)
            by[(r["label"], "all", int(r["dof"]), "*", r["domain"])].append(r)
    out = []
    keys = sorted({k[1:] for k in by}, key=lambda k: (-k[1], k[0] == "all", k[0], DOMAINS.index(k[3])))
    for task, dof, emb, dom in keys:
        ra, rb = by.get((a, task, dof, emb, dom)), by.get((b, task, dof, emb, dom))
        if not ra or not rb:
            continue
        succ = bootstrap_diff([float(r["success"]) for r in ra], [float(r["success"]) for r in rb], seed=seed)
        score = bootstrap_diff([float(r["score"]) for r in ra], [float(r["score"]) for r in rb], seed=seed + 1)
        out.append({"a": a, "b": b, "task": task, "dof": dof, "embodiment": emb, "domain": dom,
                    "n_a": succ.n_a, "n_b": succ.n_b,
                    "success_diff": succ.diff, "success_diff_ci95": [succ.lo, succ.hi],
                    "score_diff": score.diff, "score_diff_ci95": [score.lo, score.hi]})
    return out


def sim_real(cells: Sequence[Cell]) -> list[dict[str, Any]]:
    """Pearson r and MMRV of sim vs real over the policies that have both, per task x embodiment and
    pooled over every (policy, task, embodiment) point; on success rate and on mean score."""
    sim = {(c.label, c.task, c.embodiment): c for c in cells if c.domain == "sim"}
    real = {(c.label, c.task, c.embodiment): c for c in cells if c.domain == "real"}
    both = sorted(set(sim) & set(real))
    out = []
    pairs: dict[tuple[str, str], list[tuple[str, str, str]]] = defaultdict(list)
    for key in both:
        pairs[(key[1], key[2])].append(key)
    groups = [(task, emb, keys) for (task, emb), keys in sorted(pairs.items())]
    if len(groups) > 1 or (groups and len(groups[0][2]) != len(both)):
        groups.append(("all", "*", both))
    for task, emb, keys in groups:
        row: dict[str, Any] = {"task": task, "embodiment": emb, "n_points": len(keys),
                               "policies": sorted({k[0] for k in keys})}
        for metric in ("success_rate", "mean_score"):
            s = [getattr(sim[k], metric) for k in keys]
            r = [getattr(real[k], metric) for k in keys]
            row[f"pearson_{metric}"] = _nan_none(pearson_r(s, r))
            row[f"mmrv_{metric}"] = _nan_none(mmrv(s, r))
        row["points"] = [{"label": k[0], "task": k[1], "embodiment": k[2], "sim_success": sim[k].success_rate,
                          "real_success": real[k].success_rate, "sim_score": sim[k].mean_score,
                          "real_score": real[k].mean_score} for k in keys]
        out.append(row)
    return out


def _nan_none(x: float) -> float | None:
    return None if math.isnan(x) else x


def build_report(
    store_path: str | Path, *, run_ids: Sequence[str] | None = None, labels: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None, compare_pairs: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """Everything a report shows, as JSON-ready data (summary.json is exactly this)."""
    path = Path(store_path)
    if not path.is_file():
        raise ConfigError(f"results store {str(path)!r} does not exist (run `egosim eval` first or pass store=PATH)")
    with ResultsStore(path) as store:
        raw = store.episodes(labels=labels, tasks=tasks)
    if run_ids:
        raw = [r for r in raw if r["run_id"] in run_ids or r["domain"] == "real"]
    records = latest_per_episode(raw)
    cells, overall = aggregate(records)
    present = sorted({r["label"] for r in records})
    pairs = list(compare_pairs)
    if not pairs and len(present) == 2:
        pairs = [(present[0], present[1])]
    missing = sorted({x for p in pairs for x in p} - set(present))
    if missing:
        raise InvalidChoiceError("policy label", missing[0], present)
    versions = sorted({(r["egosim_version"], r["mujoco_version"], r["renderer"]) for r in records
                       if r["domain"] == "sim"})
    return {
        "store": str(path),
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "n_records": len(records),
        "labels": present,
        "cells": [asdict(c) for c in cells],
        "overall": [asdict(c) for c in overall],
        "comparisons": [row for a, b in pairs for row in compare(records, a, b)],
        "sim_real": sim_real(cells),
        "versions": [{"egosim": v[0], "mujoco": v[1], "renderer": v[2]} for v in versions],
        "videos": [{k: r[k] for k in ("label", "task", "embodiment", "domain", "initial_state", "seed", "success",
                                      "score", "video")} for r in records if r.get("video")],
    }


# ---------------------------------------------------------------------- rendering
def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _ci(ci: Sequence[float]) -> str:
    return f"[{100 * ci[0]:.0f}, {100 * ci[1]:.0f}]"


def _signed(x: float, pct: bool = True) -> str:
    return f"{100 * x:+.0f}" if pct else f"{x:+.3f}"


def _fmt(x: float | None, nd: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{nd}f}"


def _cell_table(cells: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    head = ["task", "DoF", "embodiment", "policy", "domain", "n", "success", "95% CI", "mean score", "unstable"]
    rows = [[c["task"], str(c["dof"]), c["embodiment"], c["label"], c["domain"], str(c["n"]), _pct(c["success_rate"]),
             _ci(c["success_ci95"]), f"{c['mean_score']:.3f}", str(c["n_unstable"])] for c in cells]
    return head, rows


def _comparison_table(rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    head = ["A - B", "task", "DoF", "domain", "n A / n B", "success diff (pts)", "95% CI", "score diff", "95% CI "]
    body = [[f"{r['a']} - {r['b']}", r["task"], str(r["dof"]), r["domain"], f"{r['n_a']} / {r['n_b']}",
             _signed(r["success_diff"]), f"[{_signed(r['success_diff_ci95'][0])}, {_signed(r['success_diff_ci95'][1])}]",
             _signed(r["score_diff"], False),
             f"[{_signed(r['score_diff_ci95'][0], False)}, {_signed(r['score_diff_ci95'][1], False)}]"] for r in rows]
    return head, body


def _sim_real_table(rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    head = ["task", "embodiment", "policies", "Pearson r (success)", "MMRV (success)", "Pearson r (score)",
            "MMRV (score)"]
    body = [[r["task"], r["embodiment"], str(r["n_points"]), _fmt(r["pearson_success_rate"]),
             _fmt(r["mmrv_success_rate"], 3), _fmt(r["pearson_mean_score"]), _fmt(r["mmrv_mean_score"], 3)]
            for r in rows]
    return head, body


def _md_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _html_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def bar_chart_svg(cells: Sequence[Mapping[str, Any]], metric: str, title: str) -> str:
    """Grouped bars: one group per task x DoF, one bar per (policy, domain); real bars hatched.
    Success-rate bars carry their Wilson interval as a whisker."""
    groups = sorted({(c["task"], c["dof"]) for c in cells}, key=lambda g: (-g[1], g[0] == "all", g[0]))
    series = sorted({(c["label"], c["domain"]) for c in cells}, key=lambda s: (s[0], DOMAINS.index(s[1])))
    labels = sorted({s[0] for s in series})
    color = {lab: _PALETTE[i % len(_PALETTE)] for i, lab in enumerate(labels)}
    by = {(c["task"], c["dof"], c["label"], c["domain"]): c for c in cells}
    bw, gap, left, top, h = 16, 18, 46, 30, 180
    gw = max(1, len(series)) * bw + gap
    width = max(left + len(groups) * gw + 20, left + 3 * 190)
    height = top + h + 70 + 18 * ((len(series) + 2) // 3)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'font-family="sans-serif" font-size="11" role="img" aria-label="{html.escape(title)}">',
           '<defs><pattern id="hatch" width="5" height="5" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
           '<line x1="0" y1="0" x2="0" y2="5" stroke="white" stroke-width="2"/></pattern></defs>',
           f'<text x="{left}" y="16" font-size="13" font-weight="bold">{html.escape(title)}</text>']
    for k in range(6):
        y = top + h - h * k / 5
        out.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{k * 20}%</text>' if metric == "success_rate"
                   else f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{k / 5:.1f}</text>')
    for gi, (task, dof) in enumerate(groups):
        x0 = left + gi * gw + gap / 2
        for si, (lab, dom) in enumerate(series):
            c = by.get((task, dof, lab, dom))
            if c is None:
                continue
            v = float(c[metric])
            x, bh = x0 + si * bw, h * v
            tip = f"{lab} {dom} {task} {dof}-DoF: {v:.2f} (n={c['n']})"
            out.append(f'<rect x="{x:.1f}" y="{top + h - bh:.1f}" width="{bw - 2}" height="{bh:.1f}" '
                       f'fill="{color[lab]}"><title>{html.escape(tip)}</title></rect>')
            if dom == "real":
                out.append(f'<rect x="{x:.1f}" y="{top + h - bh:.1f}" width="{bw - 2}" height="{bh:.1f}" '
                           f'fill="url(#hatch)"/>')
            if metric == "success_rate":
                lo, hi = c["success_ci95"]
                cx = x + (bw - 2) / 2
                out.append(f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{top + h - h * lo:.1f}" y2="{top + h - h * hi:.1f}" '
                           'stroke="#222"/>')
        name = "all tasks" if task == "all" else task
        out.append(f'<text x="{x0 + len(series) * bw / 2:.1f}" y="{top + h + 14}" text-anchor="middle">'
                   f'{html.escape(name)}</text>')
        out.append(f'<text x="{x0 + len(series) * bw / 2:.1f}" y="{top + h + 27}" text-anchor="middle" '
                   f'fill="#555">{dof}-DoF</text>')
    for si, (lab, dom) in enumerate(series):
        lx, ly = left + (si % 3) * 190, top + h + 46 + 18 * (si // 3)
        out.append(f'<rect x="{lx}" y="{ly - 9}" width="12" height="12" fill="{color[lab]}"/>')
        if dom == "real":
            out.append(f'<rect x="{lx}" y="{ly - 9}" width="12" height="12" fill="url(#hatch)"/>')
        out.append(f'<text x="{lx + 16}" y="{ly + 1}">{html.escape(f"{lab} ({dom})")}</text>')
    out.append("</svg>")
    return "".join(out)


def scatter_svg(points: Sequence[Mapping[str, Any]], title: str) -> str:
    """Sim (x) vs real (y) success rate per (policy, task, embodiment), with the y = x diagonal."""
    size, pad = 260, 40
    labels = sorted({p["label"] for p in points})
    color = {lab: _PALETTE[i % len(_PALETTE)] for i, lab in enumerate(labels)}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{size + 2 * pad + 140}" height="{size + 2 * pad}" '
           f'font-family="sans-serif" font-size="11" role="img" aria-label="{html.escape(title)}">',
           f'<text x="{pad}" y="16" font-size="13" font-weight="bold">{html.escape(title)}</text>',
           f'<rect x="{pad}" y="{pad}" width="{size}" height="{size}" fill="none" stroke="#999"/>',
           f'<line x1="{pad}" y1="{pad + size}" x2="{pad + size}" y2="{pad}" stroke="#bbb" stroke-dasharray="4 3"/>',
           f'<text x="{pad + size / 2}" y="{pad + size + 28}" text-anchor="middle">sim success</text>',
           f'<text x="12" y="{pad + size / 2}" transform="rotate(-90 12 {pad + size / 2})" text-anchor="middle">'
           'real success</text>']
    for k in (0, 50, 100):
        out.append(f'<text x="{pad + size * k / 100}" y="{pad + size + 13}" text-anchor="middle">{k}%</text>')
        out.append(f'<text x="{pad - 4}" y="{pad + size - size * k / 100 + 4}" text-anchor="end">{k}%</text>')
    for p in points:
        x, y = pad + size * p["sim_success"], pad + size - size * p["real_success"]
        tip = f"{p['label']} {p['task']} {p['embodiment']}: sim {p['sim_success']:.2f}, real {p['real_success']:.2f}"
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{color[p["label"]]}" fill-opacity="0.85">'
                   f'<title>{html.escape(tip)}</title></circle>')
    for i, lab in enumerate(labels):
        out.append(f'<circle cx="{pad + size + 20}" cy="{pad + 10 + 18 * i}" r="5" fill="{color[lab]}"/>'
                   f'<text x="{pad + size + 30}" y="{pad + 14 + 18 * i}">{html.escape(lab)}</text>')
    out.append("</svg>")
    return "".join(out)


def _charts(data: Mapping[str, Any]) -> dict[str, str]:
    cells = list(data["cells"]) + list(data["overall"])
    charts = {}
    if cells:
        charts["success"] = bar_chart_svg(cells, "success_rate", "Success rate per task and DoF (Wilson 95% CI)")
        charts["score"] = bar_chart_svg(cells, "mean_score", "Mean rubric score per task and DoF")
    pooled = [r for r in data["sim_real"] if r["task"] == "all"] or data["sim_real"]
    points = [p for r in pooled for p in r["points"]]
    if points:
        charts["sim_vs_real"] = scatter_svg(points, "Sim vs real success (one point per policy x task x hand)")
    return charts


def _sections(data: Mapping[str, Any]) -> list[tuple[str, tuple[list[str], list[list[str]]] | str]]:
    secs: list[tuple[str, tuple[list[str], list[list[str]]] | str]] = []
    secs.append(("Per task and DoF", _cell_table(data["cells"])))
    secs.append(("Overall per DoF", _cell_table(data["overall"])))
    if data["comparisons"]:
        secs.append(("Policy differences (A - B, bootstrap 95% CI)", _comparison_table(data["comparisons"])))
    if data["sim_real"]:
        secs.append(("Sim-real agreement (SimplerEnv's Pearson r and MMRV over policies)",
                     _sim_real_table(data["sim_real"])))
    else:
        secs.append(("Sim-real agreement", "No policy has both sim episodes and real trials for the same task and "
                     "hand yet; add real trials with `egosim real add` or `egosim real import`."))
    return secs


def _video_rows(data: Mapping[str, Any], out_dir: Path) -> list[tuple[str, str]]:
    rows = []
    for v in data["videos"]:
        target = v["video"]
        if "://" not in target:
            try:
                target = os.path.relpath(Path(target).resolve(), out_dir.resolve())
            except ValueError:
                target = str(Path(target).resolve())
        text = (f"{v['label']} {v['domain']} {v['task']} {v['embodiment']} state {v['initial_state']}: "
                f"{'success' if v['success'] else 'failure'}, score {v['score']:.2f}")
        rows.append((text, target))
    return rows


def _versions_line(data: Mapping[str, Any]) -> str:
    vs = data["versions"]
    if not vs:
        return "No sim episodes."
    text = "; ".join(f"egosim {v['egosim']}, MuJoCo {v['mujoco']}, renderer {v['renderer']}" for v in vs)
    warn = " **Mixed versions: compare with care.**" if len(vs) > 1 else ""
    return f"Sim results from: {text}.{warn}"


def write_report(data: Mapping[str, Any], out_dir: str | Path, title: str = "egosim report") -> dict[str, Path]:
    """Writes report.md (+ its SVG charts), report.html (self-contained) and summary.json."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    charts = _charts(data)
    for name, svg in charts.items():
        (out / f"{name}.svg").write_text(svg)
    secs = _sections(data)
    videos = _video_rows(data, out)
    head = (f"Store `{data['store']}`, {data['n_records']} episodes/trials, generated {data['generated']}. "
            f"Episodes flagged sim_unstable count as failures and in the `unstable` column.")

    md = [f"# {title}", "", head, "", _versions_line(data), ""]
    for name, content in secs:
        md += [f"## {name}", "", content if isinstance(content, str) else _md_table(*content), ""]
    if charts:
        md += ["## Charts", ""] + [f"![{name}]({name}.svg)" for name in charts] + [""]
    if videos:
        md += ["## Episode videos", ""] + [f"- [{t}]({u})" for t, u in videos] + [""]
    paths = {"markdown": out / "report.md", "html": out / "report.html", "json": out / "summary.json"}
    paths["markdown"].write_text("\n".join(md))

    body = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(head)}</p>",
            f"<p>{html.escape(_versions_line(data).replace('**', ''))}</p>"]
    for name, content in secs:
        body.append(f"<h2>{html.escape(name)}</h2>")
        body.append(f"<p>{html.escape(content)}</p>" if isinstance(content, str) else _html_table(*content))
    if charts:
        body.append("<h2>Charts</h2>" + "".join(f'<figure id="chart-{n}">{svg}</figure>' for n, svg in charts.items()))
    if videos:
        body.append("<h2>Episode videos</h2><ul>" + "".join(
            f'<li><a href="{html.escape(u)}">{html.escape(t)}</a></li>' for t, u in videos) + "</ul>")
    style = ("body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 20px}"
             "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}"
             "td:first-child,th:first-child{text-align:left}figure{display:inline-block;margin:8px}")
    paths["html"].write_text(f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
                             f'</title><style>{style}</style></head><body>{"".join(body)}</body></html>\n')
    paths["json"].write_text(json.dumps(data, indent=2) + "\n")
    return paths
