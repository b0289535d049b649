"""Statistics for benchmark results: intervals, policy differences, sim-real agreement, scaling fits.

Each function is small and pure so it can be checked against known values (tests/test_eval_stats.py):
Wilson bounds from the literature, bootstrap coverage on synthetic data, and Pearson r / MMRV on
SimplerEnv's published sim/real table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95% by default); (0, 1) when n == 0.

    Wilson rather than the normal approximation because benchmark success rates sit near 0 and 1
    with tens of episodes, where the normal interval leaves [0, 1] and under-covers.
    """
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return lo, hi


@dataclass(frozen=True)
class Difference:
    """Mean of `a` minus mean of `b` with a percentile-bootstrap interval."""

    diff: float
    lo: float
    hi: float
    n_a: int
    n_b: int


def bootstrap_diff(
    a: Sequence[float], b: Sequence[float], *, reps: int = 2000, level: float = 0.95, seed: int = 0
) -> Difference:
    """Difference of means (a - b) with a percentile bootstrap interval, resampling each group.

    Used for "policy A vs policy B" on success (0/1) or rubric score per episode. The two groups
    are resampled independently (unpaired), which is right when A and B ran on the same fixed
    initial states but their outcomes per state are not matched by the caller. Seeded: a report
    prints the same interval every time it is rebuilt.
    """
    xa = np.asarray(a, dtype=np.float64)
    xb = np.asarray(b, dtype=np.float64)
    if xa.size == 0 or xb.size == 0:
        raise ValueError(f"bootstrap_diff needs two non-empty groups, got sizes {xa.size} and {xb.size}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, xa.size, size=(reps, xa.size))
    ib = rng.integers(0, xb.size, size=(reps, xb.size))
    diffs = xa[ia].mean(axis=1) - xb[ib].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(diffs, [alpha, 1.0 - alpha])
    return Difference(float(xa.mean() - xb.mean()), float(lo), float(hi), int(xa.size), int(xb.size))


def _paired(sim: Sequence[float], real: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(sim, dtype=np.float64)
    r = np.asarray(real, dtype=np.float64)
    if s.shape != r.shape or s.ndim != 1:
        raise ValueError(f"sim and real need the same 1-D length, got {s.shape} and {r.shape}")
    if not (np.isfinite(s).all() and np.isfinite(r).all()):
        raise ValueError("sim and real values must be finite")
    return s, r


def pearson_r(sim: Sequence[float], real: Sequence[float]) -> float:
    """Pearson correlation of per-policy sim and real performance (SimplerEnv's definition).

    Returns nan when fewer than 2 policies or when either side has no spread (undefined), so a
    report can say "not enough policies" instead of printing a number that means nothing.
    """
    s, r = _paired(sim, real)
    if s.size < 2:
        return math.nan
    ds, dr = s - s.mean(), r - r.mean()
    den = math.sqrt(float((ds * ds).sum()) * float((dr * dr).sum()))
    return float((ds * dr).sum()) / den if den > 0 else math.nan


def mmrv(sim: Sequence[float], real: Sequence[float]) -> float:
    """Mean Maximum Rank Violation (SimplerEnv): 0 when sim orders every pair of policies as real does.

    For each policy i, the largest |real_i - real_j| over the policies j that sim orders differently
    from real (strict comparisons, as in SimplerEnv's code), averaged over i. nan with < 2 policies.
    """
    s, r = _paired(sim, real)
    n = s.size
    if n < 2:
        return math.nan
    worst = np.zeros(n)
    for i in range(n):
        for j in range(n):
            if (s[i] > s[j]) != (r[i] > r[j]):
                worst[i] = max(worst[i], abs(r[i] - r[j]))
    return float(worst.mean())


@dataclass(frozen=True)
class LogFit:
    """L = a + b ln(D), fitted by least squares, with its coefficient of determination."""

    a: float
    b: float
    r2: float
    n: int

    def predict(self, d: float | np.ndarray) -> float | np.ndarray:
        return self.a + self.b * np.log(d)


def fit_log_scaling(data: Sequence[float], loss: Sequence[float]) -> LogFit:
    """Fits EgoScale's scaling law L = a + b ln(D) (D: data volume, e.g. hours) by least squares."""
    d = np.asarray(data, dtype=np.float64)
    y = np.asarray(loss, dtype=np.float64)
    if d.shape != y.shape or d.ndim != 1 or d.size < 2:
        raise ValueError(f"need matching 1-D data volumes and losses (>= 2 points), got {d.shape} and {y.shape}")
    if (d <= 0).any() or not np.isfinite(d).all() or not np.isfinite(y).all():
        raise ValueError("data volumes must be positive and finite, losses finite")
    x = np.log(d)
    if np.ptp(x) == 0:
        raise ValueError("data volumes must not all be equal")
    design = np.stack([np.ones_like(x), x], axis=1)
    (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - (a + b * x)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / ss_tot if ss_tot > 0 else 1.0
    return LogFit(float(a), float(b), r2, int(d.size))
