"""Confidence intervals for the means this project publishes (scipy.stats.bootstrap).

Over lifetimes for one agent (the test protocol's N returns), over training seeds when a
setting has several runs (their test means). Percentile bootstrap, 10,000 resamples, a
fixed resampling seed so a table re-renders to the same digits.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 10_000
RESAMPLING_SEED = 0


def mean_ci(values: Iterable[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The bootstrap `confidence` interval of the mean of the finite `values`: (lo, hi);
    (v, v) when every value is v; (nan, nan) with no finite value."""
    from scipy.stats import bootstrap

    x = np.asarray([v for v in values if v is not None], dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return math.nan, math.nan
    if np.all(x == x[0]):  # no spread to resample: the interval is the value itself
        return float(x[0]), float(x[0])
    res = bootstrap(
        (x,), np.mean, confidence_level=confidence, n_resamples=RESAMPLES, method="percentile",
        vectorized=True, random_state=np.random.default_rng(RESAMPLING_SEED),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def format_ci(ci: tuple[float, float] | list[float] | None, decimals: int = 1) -> str:
    """'[lo, hi]' for a table cell; '—' when there is none."""
    if not ci or any(v is None or v != v for v in ci):
        return "—"
    return f"[{ci[0]:.{decimals}f}, {ci[1]:.{decimals}f}]"
