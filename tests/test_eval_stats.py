"""Statistics checked against known values: Newcombe's Wilson intervals, bootstrap coverage on
synthetic data, Pearson r and MMRV on SimplerEnv's published sim/real table, the log scaling fit."""

from __future__ import annotations

import math

import numpy as np
import pytest
from egosim.eval.stats import bootstrap_diff, fit_log_scaling, mmrv, pearson_r, wilson_interval

# SimplerEnv (Li et al. 2024), Google Robot "pick coke can": real-robot success and SIMPLER visual-matching
# success per policy, in the order rt-2-x, rt-1-converged, rt-1-15pct, rt-1-x, rt-1-begin, octo-base.
COKE_REAL = [0.907, 0.853, 0.920, 0.760, 0.133, 0.293]
COKE_SIM = [0.787, 0.857, 0.710, 0.567, 0.027, 0.170]


@pytest.mark.parametrize(("k", "n", "lo", "hi"), [
    # Newcombe (1998), Statistics in Medicine 17:857, Table I, method 3 (score interval without correction).
    (81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718),
    (45, 50, 0.7864, 0.9565),
])
def test_wilson_interval_matches_published_values(k: int, n: int, lo: float, hi: float) -> None:
    got = wilson_interval(k, n)
    assert got[0] == pytest.approx(lo, abs=1e-4) and got[1] == pytest.approx(hi, abs=1e-4)


def test_wilson_interval_edges() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(10, 10)[1] == 1.0 and wilson_interval(0, 5)[0] == 0.0
    with pytest.raises(ValueError, match="successes=3, n=2"):
        wilson_interval(3, 2)


def test_bootstrap_interval_covers_the_true_difference_about_95_percent() -> None:
    """300 synthetic A/B experiments (success p=0.7 vs 0.5, 60 episodes each): the 95% interval must
    contain the true difference 0.2 in about 95% of them."""
    rng = np.random.default_rng(1)
    hits = 0
    trials = 300
    for t in range(trials):
        a = rng.random(60) < 0.7
        b = rng.random(60) < 0.5
        d = bootstrap_diff(a, b, reps=1000, seed=t)
        assert d.lo <= d.diff <= d.hi
        hits += d.lo <= 0.2 <= d.hi
    assert 0.90 <= hits / trials <= 0.985, hits / trials


def test_bootstrap_is_seeded_and_checks_input() -> None:
    a, b = [1, 0, 1, 1], [0, 0, 1, 0]
    assert bootstrap_diff(a, b, seed=3) == bootstrap_diff(a, b, seed=3)
    assert bootstrap_diff(a, b).diff == pytest.approx(0.5)
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_diff([], b)


def test_pearson_and_mmrv_on_simplerenv_coke_can_table() -> None:
    assert pearson_r(COKE_SIM, COKE_REAL) == pytest.approx(np.corrcoef(COKE_SIM, COKE_REAL)[0, 1], abs=1e-12)
    assert pearson_r(COKE_SIM, COKE_REAL) == pytest.approx(0.9754, abs=1e-4)
    # By hand: sim orders three pairs unlike real: (rt-2-x, rt-1-converged) |0.907-0.853| = 0.054,
    # (rt-2-x, rt-1-15pct) 0.013, (rt-1-converged, rt-1-15pct) 0.067. Per-policy maxima 0.054, 0.067,
    # 0.067, 0, 0, 0; their mean is 0.188 / 6.
    assert mmrv(COKE_SIM, COKE_REAL) == pytest.approx(0.188 / 6, abs=1e-9)


def test_mmrv_and_pearson_edges() -> None:
    assert mmrv([0.1, 0.5, 0.9], [0.2, 0.3, 0.8]) == 0.0  # same order
    assert mmrv([0.9, 0.5, 0.1], [0.2, 0.3, 0.8]) == pytest.approx((0.6 + 0.5 + 0.6) / 3)  # reversed
    assert math.isnan(mmrv([0.5], [0.5])) and math.isnan(pearson_r([0.5], [0.4]))
    assert math.isnan(pearson_r([0.5, 0.5], [0.1, 0.9]))  # no spread in sim: undefined, not 0
    with pytest.raises(ValueError, match="same 1-D length"):
        mmrv([0.1, 0.2], [0.1])


def test_log_scaling_fit() -> None:
    hours = np.array([1_000, 2_000, 5_000, 10_000, 20_000])
    loss = 0.9 - 0.05 * np.log(hours)
    fit = fit_log_scaling(hours, loss)
    assert fit.a == pytest.approx(0.9) and fit.b == pytest.approx(-0.05) and fit.r2 == pytest.approx(1.0)
    noisy = loss + np.random.default_rng(0).normal(0, 0.01, loss.size)
    assert 0.5 < fit_log_scaling(hours, noisy).r2 < 1.0
    with pytest.raises(ValueError, match="positive"):
        fit_log_scaling([0, 1], [1, 2])
