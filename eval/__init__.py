"""Evaluation: the episode runner, scoring statistics and result files.

`egosim.eval.runner.run_eval(cfg)` plays (task x embodiment x initial state) episodes of one policy
kind and writes `summary.json`, `episodes.jsonl` and `run.json`; `run_episode` is the per-episode unit a
process pool can call. Statistics (Wilson intervals) live in `egosim.eval.stats`.
"""

from egosim.eval.runner import EvalConfig, run_episode, run_eval
from egosim.eval.stats import wilson_interval

__all__ = ["EvalConfig", "run_episode", "run_eval", "wilson_interval"]
