"""Perturbations of a lifetime as hooks on the one rollout loop.

Hooks (see `hebbian_es.core.rollout` for when each method is called):

- `FreezePlasticity(k)`: the Hebbian update after step t runs only while t < k
  (k may differ per lifetime), so k updates happen in all.
- `ClampOutputs(t0, t1, value)`: the output layer's activity is `value` during
  steps [t0, t1): the action comes from it and the last layer's Hebbian update
  sees it.  `ClampActions` overwrites only the env action.
- `ZeroWeights(t, masks)`: before the forward pass of step t, the given entries of
  each layer's weights are set to 0 (`zero_mask` draws them: a contiguous band
  or a random subset, an exact fraction of each layer).
- `WeightSnapshots(steps)`: copies of the weights the forward pass uses at given steps.

What the analyses measure on the lifetimes (recovery time, PCA, ...) is in
`hebbian_es.analysis.measures`.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

import numpy as np
import torch

from hebbian_es.core.network import PolicyPopulation

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

    def on_weights(self, t: int, policy: PolicyPopulation) -> None:
        if t != self.t:
            return
        for layer, idx in self.masks.items():
            w = policy.weights[layer]
            if layer not in policy.plastic:
                w = w.clone()
                policy.weights[layer] = w
            w.view(w.shape[0], -1)[:, idx] = 0.0


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
