"""Perturbations of a lifetime as hooks on the one rollout loop, and the measures the analyses use.

Hooks (see `hebbian_es.rollout` for when each method is called):

- `FreezePlasticity(k)`: the Hebbian update after step t runs only while t < k
  (k may differ per lifetime), so k updates happen in all.
- `ClampOutputs(t0, t1, value)`: the output layer's activity is `value` during
  steps [t0, t1): the action comes from it and the last layer's Hebbian update
  sees it.  `ClampActions` overwrites only the env action.
- `ZeroWeights(t, masks)`: before the forward pass of step t, the given entries of
  each layer's weights are set to 0 (`zero_mask` draws them: a contiguous band
  or a random subset, an exact fraction of each layer).
- `WeightSnapshots(steps)`: copies of the weights the forward pass uses at given steps.

Measures: `recovery` (steps until the per-step reward is back at its
pre-perturbation level) and `pca` (principal components of a weight trajectory).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
import torch

from hebbian_es.network import PolicyPopulation

ZERO_MODES = ("band", "random")


class FreezePlasticity:
    """Hebbian updates stop after k steps: the update after step t runs while t < k.

    k=0 keeps the initial weights for the whole lifetime; k >= the episode length
    is the unfrozen lifetime.  `k` is one number or one per lifetime (B,)."""

    def __init__(self, k: int | Sequence[int] | np.ndarray) -> None:
        self.k = np.asarray(k, dtype=np.int64)

    def plasticity_enabled(self, t: int) -> bool | np.ndarray:
        return t < self.k


class _StepWindow:
    """A value forced during steps [t0, t1); `steps` lists the steps it changed."""

    def __init__(self, t0: int, t1: int, value: float = 1.0) -> None:
        self.t0, self.t1, self.value = int(t0), int(t1), float(value)
        self.steps: list[int] = []

    def _active(self, t: int) -> bool:
        if self.t0 <= t < self.t1:
            self.steps.append(t)
            return True
        return False


class ClampOutputs(_StepWindow):
    """The output layer's activity is `value` during steps [t0, t1) (actuators saturated).

    The env action is computed from the clamped outputs through the env's usual
    squashing, and the Hebbian update of the last layer sees them as its
    post-synaptic activity.  `steps` lists the steps it changed."""

    def on_outputs(self, t: int, outputs: torch.Tensor) -> torch.Tensor:
        return torch.full_like(outputs, self.value) if self._active(t) else outputs


class ClampActions(_StepWindow):
    """Only the env action is `value` during [t0, t1) (a Discrete action becomes index int(value));
    the network runs and learns undisturbed."""

    def on_actions(self, t: int, actions: np.ndarray) -> np.ndarray:
        return np.full_like(actions, self.value) if self._active(t) else actions


def zero_count(n: int, fraction: float) -> int:
    """How many of n weights a fraction means: round half up, so 1/3 of 12 is 4."""
    return int(math.floor(fraction * n + 0.5))


def zero_mask(n: int, fraction: float, mode: str, position: float = 0.5, seed: int = 0) -> np.ndarray:
    """Flat indices (row-major over (out, in)) of the weights to zero: exactly zero_count(n, fraction).

    band: one contiguous run in row-major order (whole rows of post-synaptic units
    when the count is a multiple of the row length), starting at position·(n − count);
    random: a uniform random subset drawn from `seed`."""
    if mode not in ZERO_MODES:
        raise ValueError(f"mode={mode!r}; allowed: {ZERO_MODES}")
    count = zero_count(n, fraction)
    if mode == "band":
        start = int(round(position * (n - count)))
        return np.arange(start, start + count, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(n, size=count, replace=False)).astype(np.int64)


class ZeroWeights:
    """Before the forward pass of step t, entries `masks[layer]` (flat indices) of each
    listed FC layer are set to zero in every lifetime of the batch.  A static layer's
    weights are copied first, so the evolved parameters themselves are never touched."""

    def __init__(self, t: int, masks: Mapping[int, np.ndarray]) -> None:
        self.t = int(t)
        self.masks = {int(l): torch.as_tensor(np.asarray(m, dtype=np.int64)) for l, m in masks.items()}
        self.done = False

    def on_weights(self, t: int, policy: PolicyPopulation) -> None:
        if t != self.t:
            return
        for layer, idx in self.masks.items():
            w = policy.weights[layer]
            if layer not in policy.plastic:
                w = w.clone()
                policy.weights[layer] = w
            w.view(w.shape[0], -1)[:, idx] = 0.0
        self.done = True


class WeightSnapshots:
    """Copies of every FC layer's weights as the forward pass of the given steps uses them
    (after the hooks before this one).  The weights after the last step are the
    policy's own `weights` once the rollout returns."""

    def __init__(self, steps: Iterable[int]) -> None:
        self.steps = {int(s) for s in steps}
        self.taken: dict[int, list[np.ndarray]] = {}

    def on_weights(self, t: int, policy: PolicyPopulation) -> None:
        if t in self.steps:
            self.taken[t] = [w.numpy().copy() for w in policy.weights]


# ---- recovery ------------------------------------------------------------------------------
NOT_RECOVERED = "not recovered before the episode ended"
ENDED_DURING = "ended during the perturbation"


@dataclass(frozen=True)
class Recovery:
    """Pre-perturbation level and the steps it took to get back to it (None: not back)."""

    level: float  # mean per-step reward over the baseline window before the perturbation
    steps: int | None  # recovery time in steps after the perturbation ended
    at: int | None  # the step at which it counts as recovered (end + steps)
    status: str  # "recovered", "not recovered before the episode ended", "ended during the perturbation", "no baseline"


def recovery(rewards: np.ndarray, start: int, end: int, window: int = 20, baseline: int = 100) -> Recovery:
    """Recovery time of one lifetime's per-step rewards (NaN after the episode ended).

    level = mean reward over the `baseline` steps before `start` (fewer if the
    episode is younger).  Recovered at the first step s >= `end` whose forward
    window — the mean reward over steps [s, s + window) — is at least the level;
    recovery time = s − end (0: no lasting drop).  Only steps after the
    perturbation enter that window, and the window must fit in the episode."""
    r = np.asarray(rewards, dtype=np.float64)
    ended = ~np.isfinite(r)
    length = int(np.argmax(ended)) if ended.any() else len(r)
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


def first_nonfinite(x: np.ndarray) -> int:
    """Index of the first row of x with a non-finite entry (len(x) if none)."""
    bad = ~np.isfinite(x).all(axis=tuple(range(1, x.ndim)))
    return int(np.argmax(bad)) if bad.any() else len(x)
