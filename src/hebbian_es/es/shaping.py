"""Fitness shaping: a generation's fitness (maximised) to the weights an ES update uses.

One function per shaping, chosen by `optimizer.shaping` (SHAPINGS), then optionally
standardised (`optimizer.standardize`):

- centered_ranks: ranks scaled to [-0.5, 0.5] (Salimans et al. 2017; the paper's, standardised after);
- nes: the NES utilities u_k = max(0, ln(n/2 + 1) - ln k) / sum_j max(0, ln(n/2 + 1) - ln j) - 1/n,
  k = 1 for the best member (Wierstra et al. 2014; SNES's);
- z_score: (f - mean) / sd of the raw fitness;
- raw: the fitness itself.

NaN and ±inf rank worst; z_score and raw, which use the values, give a non-finite fitness the
lowest finite fitness of the generation.  A generation with no finite fitness is never shaped
(the ES skips its update).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from hebbian_es.errors import ConfigError

TIES = ("ordinal", "average")


def worst_for_nonfinite(fitness: np.ndarray) -> np.ndarray:
    """Maximisation convention: NaN and ±inf become -inf so they rank last."""
    f = np.asarray(fitness, dtype=np.float64).copy()
    f[~np.isfinite(f)] = -np.inf
    return f


def _ordinal_ranks(f: np.ndarray) -> np.ndarray:
    """0 for the lowest fitness .. n-1 for the highest; ties broken by position (a stable sort)."""
    ranks = np.empty(len(f), dtype=np.float64)
    ranks[np.argsort(f, kind="stable")] = np.arange(len(f))
    return ranks


def _average_over_ties(f: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each member's value replaced by the mean over the members of equal fitness."""
    _, inverse = np.unique(f, return_inverse=True)
    return (np.bincount(inverse, weights=values) / np.bincount(inverse))[inverse]


def centered_ranks(fitness: np.ndarray, ties: str = "ordinal") -> np.ndarray:
    """Ranks scaled to [-0.5, 0.5] (the lowest fitness gets -0.5); NaN ranks worst.

    ties="ordinal" breaks ties by position (stable; the reference code sorts with NumPy's unstable argsort, so its tie order is arbitrary); "average" gives tied
    members their mean rank, so identical fitness carries no (spurious) gradient."""
    f = worst_for_nonfinite(fitness)
    ranks = _ordinal_ranks(f)
    if ties == "average":
        ranks = _average_over_ties(f, ranks)
    return ranks / (len(f) - 1) - 0.5


def nes_utilities(fitness: np.ndarray, ties: str = "ordinal") -> np.ndarray:
    """The NES utilities (they sum to 0; only the better half gets a positive weight); NaN ranks worst."""
    f = worst_for_nonfinite(fitness)
    n = len(f)
    from_best = n - _ordinal_ranks(f)  # 1 for the best member .. n for the worst
    raw = np.maximum(0.0, math.log(n / 2 + 1) - np.log(np.arange(1, n + 1)))
    utilities = (raw / raw.sum() - 1.0 / n)[from_best.astype(np.int64) - 1]
    if ties == "average":
        utilities = _average_over_ties(f, utilities)
    return utilities


def _finite_values(fitness: np.ndarray) -> np.ndarray:
    f = np.asarray(fitness, dtype=np.float64).copy()
    finite = np.isfinite(f)
    if not finite.all():
        f[~finite] = f[finite].min() if finite.any() else 0.0
    return f


def z_score(fitness: np.ndarray, ties: str = "ordinal") -> np.ndarray:
    """(f - mean) / sd (sd 0: f - mean); a non-finite fitness counts as the lowest finite one."""
    return _standardized(_finite_values(fitness))


def raw(fitness: np.ndarray, ties: str = "ordinal") -> np.ndarray:
    """The fitness itself; a non-finite fitness counts as the lowest finite one."""
    return _finite_values(fitness)


def _standardized(shaped: np.ndarray) -> np.ndarray:
    std = shaped.std()
    return (shaped - shaped.mean()) / (std if std > 0 else 1.0)


SHAPINGS: dict[str, Callable[[np.ndarray, str], np.ndarray]] = {
    "centered_ranks": centered_ranks,
    "nes": nes_utilities,
    "z_score": z_score,
    "raw": raw,
}


@dataclass(frozen=True)
class Shaping:
    """`optimizer.shaping` (+ `standardize`, `ties`) as one callable: fitness -> weights (float64)."""

    name: str = "centered_ranks"
    ties: str = "ordinal"
    standardize: bool = False

    def __post_init__(self) -> None:
        if self.name not in SHAPINGS:
            raise ConfigError(f"optimizer.shaping={self.name!r} is not known; allowed: {sorted(SHAPINGS)}")
        if self.ties not in TIES:
            raise ConfigError(f"optimizer.ties={self.ties!r}; allowed: {list(TIES)}")

    def __call__(self, fitness: np.ndarray) -> np.ndarray:
        shaped = SHAPINGS[self.name](fitness, self.ties)
        return _standardized(shaped) if self.standardize else shaped
