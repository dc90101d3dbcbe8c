"""The measurements the analyses share: finite statistics, episode lengths, recovery time,
moving averages and the principal components of a weight trajectory.

Per-step rewards are (lifetimes, T) arrays with NaN after a lifetime's episode ended;
everything here ignores those NaN.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np


# ---- finite values -------------------------------------------------------------------------
def first_nonfinite(x: np.ndarray) -> int:
    """Index of the first entry (row, for 2-D and up) of x with a non-finite value (len(x) if none):
    the length of an episode's per-step rewards, or where a weight trajectory blew up."""
    x = np.asarray(x)
    bad = ~np.isfinite(x).all(axis=tuple(range(1, x.ndim)))
    return int(np.argmax(bad)) if bad.any() else len(x)


def finite_stats(x: Sequence[float | None] | np.ndarray) -> dict[str, float]:
    """Mean, sd and count of the finite values of x (None and NaN are left out)."""
    a = np.asarray([v for v in x if v is not None and np.isfinite(v)], dtype=np.float64)
    if not len(a):
        return {"mean": float("nan"), "sd": float("nan"), "n": 0}
    return {"mean": float(a.mean()), "sd": float(a.std()), "n": int(len(a))}


def format_stats(s: Mapping[str, float], unit: str = "", digits: int = 1) -> str:
    """`mean ± sd<unit>` of a finite_stats result, or n/a."""
    return "n/a" if not s["n"] else f"{s['mean']:.{digits}f} ± {s['sd']:.{digits}f}{unit}"


def nanmean_rows(x: np.ndarray) -> np.ndarray:
    """Mean over lifetimes (axis 0) ignoring NaN; NaN, without a warning, where no lifetime is left."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(x, axis=0)


def pad(rewards: np.ndarray, length: int) -> np.ndarray:
    """(lifetimes, length): rewards cut or NaN-padded to `length` steps."""
    out = np.full((rewards.shape[0], length), np.nan)
    out[:, : rewards.shape[1]] = rewards[:, :length]
    return out


def cumulative(x: np.ndarray) -> np.ndarray:
    """Mean over lifetimes of the cumulative reward (NaN after every lifetime ended)."""
    c = np.where(np.isfinite(x), x, 0.0).cumsum(axis=1)
    c[~np.isfinite(x)] = np.nan
    return nanmean_rows(c)


def moving_average(x: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average along the last axis, ignoring NaN (partial windows at the ends)."""
    x = np.asarray(x, dtype=np.float64)
    if window <= 1:
        return x.copy()
    ok = np.isfinite(x)
    vals = np.where(ok, x, 0.0)
    kernel = np.ones(window)
    lead = (window - 1) // 2

    def conv(a: np.ndarray) -> np.ndarray:
        full = np.convolve(a, kernel, mode="full")
        return full[window - 1 - lead : window - 1 - lead + len(a)]

    if x.ndim == 1:
        s, n = conv(vals), conv(ok.astype(np.float64))
    else:
        flat_v, flat_n = vals.reshape(-1, x.shape[-1]), ok.reshape(-1, x.shape[-1]).astype(np.float64)
        s = np.stack([conv(a) for a in flat_v]).reshape(x.shape)
        n = np.stack([conv(a) for a in flat_n]).reshape(x.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = s / n
    out[~ok] = np.nan  # nothing after the episode ended
    return out


def mean_curve(x: np.ndarray, smooth: int) -> np.ndarray:
    """The `smooth`-step moving average of each lifetime, averaged over lifetimes."""
    return nanmean_rows(moving_average(x, smooth))


# ---- recovery ------------------------------------------------------------------------------
NOT_RECOVERED = "not recovered before the episode ended"
ENDED_DURING = "ended during the perturbation"
ENDED_BEFORE = "ended before the perturbation"  # never perturbed: neither recovered nor not


@dataclass(frozen=True)
class Recovery:
    """Pre-perturbation level and the steps it took to get back to it (None: not back)."""

    level: float  # mean per-step reward over the baseline window before the perturbation
    steps: int | None  # recovery time in steps after the perturbation ended
    at: int | None  # the step at which it counts as recovered (end + steps)
    status: str  # "recovered", NOT_RECOVERED, ENDED_DURING, ENDED_BEFORE, "no baseline"


def recovery(rewards: np.ndarray, start: int, end: int, window: int = 20, baseline: int = 100) -> Recovery:
    """Recovery time of one lifetime's per-step rewards (NaN after the episode ended).

    level = mean reward over the `baseline` steps before `start` (fewer if the
    episode is younger).  Recovered at the first step s >= `end` whose forward
    window — the mean reward over steps [s, s + window) — is at least the level;
    recovery time = s − end (0: no lasting drop).  Only steps after the
    perturbation enter that window, and the window must fit in the episode."""
    r = np.asarray(rewards, dtype=np.float64)
    length = first_nonfinite(r)
    if length <= start:  # the perturbation never happened in this lifetime
        return Recovery(float("nan"), None, None, ENDED_BEFORE)
    pre = r[max(0, start - baseline) : start]
    if len(pre) == 0:
        return Recovery(float("nan"), None, None, "no baseline")
    level = float(np.mean(pre))
    if length < end:
        return Recovery(level, None, None, ENDED_DURING)
    if length - end < window:
        return Recovery(level, None, None, NOT_RECOVERED)
    csum = np.concatenate([[0.0], np.cumsum(r[:length])])
    starts = np.arange(end, length - window + 1)
    means = (csum[starts + window] - csum[starts]) / window
    hit = np.flatnonzero(means >= level)
    if len(hit) == 0:
        return Recovery(level, None, None, NOT_RECOVERED)
    s = int(starts[hit[0]])
    return Recovery(level, s - end, s, "recovered")


def recovery_steps(recoveries: Sequence[Recovery]) -> dict[str, float]:
    """finite_stats of the recovery times of the lifetimes that recovered."""
    return finite_stats([r.steps for r in recoveries if r.steps is not None])


def mean_level(recoveries: Sequence[Recovery]) -> float | None:
    """Mean pre-perturbation level over the lifetimes that had one (None: none had)."""
    levels = [r.level for r in recoveries if np.isfinite(r.level)]
    return float(np.mean(levels)) if levels else None


def mean_recovered_at(recoveries: Sequence[Recovery]) -> int | None:
    """The mean step at which the recovered lifetimes counted as recovered (None: none did)."""
    at = [r.at for r in recoveries if r.at is not None]
    return int(round(np.mean(at))) if at else None


# ---- PCA -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PCA:
    mean: np.ndarray  # (D,)
    components: np.ndarray  # (k, D), orthonormal rows
    projection: np.ndarray  # (T, k): the centred trajectory in component coordinates
    explained_variance_ratio: np.ndarray  # (k,)


def pca(x: np.ndarray, k: int = 3) -> PCA:
    """Principal components of the rows of x (T points in D dims), via the T×T Gram matrix
    when D > T (a 1,000-step trajectory of 90 k weights needs no D×D matrix)."""
    x = np.asarray(x, dtype=np.float64)
    t, d = x.shape
    mean = x.mean(axis=0)
    xc = x - mean
    total = float((xc**2).sum())
    k = min(k, t, d)
    if total == 0.0:
        return PCA(mean, np.zeros((k, d)), np.zeros((t, k)), np.zeros(k))
    if d > t:
        gram = xc @ xc.T
        vals, vecs = np.linalg.eigh(gram)
        order = np.argsort(vals)[::-1][:k]
        vals, vecs = np.clip(vals[order], 0.0, None), vecs[:, order]
        sing = np.sqrt(vals)
        safe = np.where(sing > 0, sing, 1.0)
        components = (xc.T @ vecs / safe).T
        components[sing == 0] = 0.0
        projection = vecs * sing
        var = vals
    else:
        _, sing, vt = np.linalg.svd(xc, full_matrices=False)
        components = vt[:k]
        projection = xc @ components.T
        var = sing[:k] ** 2
    # A fixed sign per component (largest-magnitude loading positive) makes plots reproducible.
    signs = np.sign(components[np.arange(k), np.abs(components).argmax(axis=1)])
    signs[signs == 0] = 1.0
    return PCA(mean, components * signs[:, None], projection * signs[None, :], var / total)


def flatten_weights(trace: Sequence[np.ndarray], row: int) -> np.ndarray:
    """(T, D) trajectory of lifetime `row` from a per-layer weights trace [(T, B, out, in), ...]."""
    return np.concatenate([w[:, row].reshape(w.shape[0], -1) for w in trace], axis=1)


def snapshot_arrays(by_step: Mapping[int, Sequence[np.ndarray]], layers: Sequence[int]) -> dict[str, Any]:
    """NPZ entries `step<s>_fc<l>` of weight snapshots {step: [every FC layer's weights]}, for the given layers."""
    return {f"step{s}_fc{l}": ws[l] for s, ws in by_step.items() for l in layers}
