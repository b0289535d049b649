"""Evaluation: episodes on local or Ray workers, the results store, statistics and reports.

- `egosim.eval.runner.run_eval(cfg)`: play (or resume) a run of one policy over tasks x embodiments x
  fixed initial states, committing every episode to the SQLite store (`egosim.eval.store`).
- `egosim.eval.episode.run_episode`: the unit of work; `egosim.eval.backends`: where it runs.
- `egosim.eval.real`: real-robot trials (one from the command line, or a CSV), checked against rubrics.
- `egosim.eval.report`: Markdown / HTML / JSON reports, sim and real side by side.
- `egosim.eval.stats`: Wilson and bootstrap intervals, Pearson r and MMRV, the log scaling fit.
- `egosim.eval.validate`: the go/no-go gate before a real-robot session.
"""

from egosim.eval.episode import run_episode
from egosim.eval.runner import EvalConfig, run_eval
from egosim.eval.stats import wilson_interval
from egosim.eval.store import ResultsStore

__all__ = ["EvalConfig", "ResultsStore", "run_episode", "run_eval", "wilson_interval"]
