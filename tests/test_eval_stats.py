"""Statistics used in reports."""

from __future__ import annotations

import pytest
from egosim.eval.stats import wilson_interval


def test_wilson_interval() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(45, 50)
    assert lo == pytest.approx(0.7864, abs=1e-3) and hi == pytest.approx(0.9565, abs=1e-3)
    lo, hi = wilson_interval(10, 10)
    assert hi == 1.0 and lo == pytest.approx(0.7225, abs=1e-3)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)
    assert wilson_interval(1, 1)[1] == 1.0 and wilson_interval(0, 5)[0] == 0.0
