"""k-means with k-means++ seeding, in NumPy: seeded, deterministic, no sklearn.

Used to cluster a run's per-synapse rules into K shared rules (Pedersen & Risi 2021):
by `python -m hebbian_es.merge` and by merging during evolution (core/merging.py).  Same data, k and seed give
the same centres and labels on every machine that runs the same NumPy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class KMeansResult:
    centers: np.ndarray  # (k, d) float64
    labels: np.ndarray  # (n,) int64, each point's centre
    inertia: float  # sum of squared distances of the points to their centres
    iterations: int  # Lloyd iterations run
    converged: bool  # the labels stopped changing before max_iter


BLOCK_ENTRIES = 1 << 24  # the most (point, centre) distances held at once: 128 MB of float64


def _rows_per_chunk(k: int) -> int:
    """Rows of x per distance block: 65,536 (as before) unless k centres would make the block large."""
    return max(1, min(65_536, BLOCK_ENTRIES // max(1, k)))


def nearest(x: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each point's nearest centre and its squared distance to it, in blocks of rows (bounded memory
    also for thousands of centres: a merge of 12,288 rules into 3,072)."""
    labels = np.empty(len(x), dtype=np.int64)
    own = np.empty(len(x))
    chunk = _rows_per_chunk(len(centers))
    for start in range(0, len(x), chunk):
        d = sq_distances(x[start : start + chunk], centers, chunk)
        labels[start : start + chunk] = d.argmin(axis=1)
        own[start : start + chunk] = d[np.arange(len(d)), labels[start : start + chunk]]
    return labels, own


def _own_distances(x: np.ndarray, centers: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Squared distance of every point to its own centre (the same arithmetic as `nearest`)."""
    own = np.empty(len(x))
    chunk = _rows_per_chunk(len(centers))
    for start in range(0, len(x), chunk):
        d = sq_distances(x[start : start + chunk], centers, chunk)
        own[start : start + chunk] = d[np.arange(len(d)), labels[start : start + chunk]]
    return own


def sq_distances(x: np.ndarray, centers: np.ndarray, chunk: int = 65_536) -> np.ndarray:
    """(n, k) squared Euclidean distances, in chunks of rows (bounded memory), clipped at 0."""
    out = np.empty((len(x), len(centers)))
    c2 = (centers * centers).sum(axis=1)
    for start in range(0, len(x), chunk):
        xs = x[start : start + chunk]
        d = (xs * xs).sum(axis=1)[:, None] - 2.0 * xs @ centers.T + c2[None, :]
        out[start : start + chunk] = np.maximum(d, 0.0)
    return out


def kmeans_plus_plus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k initial centres (Arthur & Vassilvitskii 2007): the first uniformly at random, each next
    one drawn with probability proportional to its squared distance to the nearest centre so far."""
    n = len(x)
    centers = np.empty((k, x.shape[1]))
    centers[0] = x[rng.integers(n)]
    d2 = sq_distances(x, centers[:1])[:, 0]
    for c in range(1, k):
        total = d2.sum()
        if not total > 0:
            raise ValueError(f"k={k} exceeds the {c} distinct points found")
        centers[c] = x[rng.choice(n, p=d2 / total)]
        d2 = np.minimum(d2, sq_distances(x, centers[c : c + 1])[:, 0])
    return centers


def kmeans(x: np.ndarray, k: int, seed: int = 0, n_init: int = 4, max_iter: int = 300) -> KMeansResult:
    """The best (lowest inertia) of `n_init` k-means runs, each from its own k-means++ start
    (one seeded generator drives them all: a bad start, e.g. two centres in one blob, is common)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or not 1 <= k <= len(x):
        raise ValueError(f"k={k} for {len(x)} points of shape {x.shape}: need 1 <= k <= n")
    rng = np.random.default_rng(int(seed))
    best: KMeansResult | None = None
    for _ in range(max(1, int(n_init))):
        result = _lloyd(x, kmeans_plus_plus(x, k, rng), max_iter)
        if best is None or result.inertia < best.inertia:  # ties: the earlier run
            best = result
    assert best is not None
    return best


def _lloyd(x: np.ndarray, centers: np.ndarray, max_iter: int) -> KMeansResult:
    """Lloyd's iterations until the labels stop changing.  A cluster that empties takes the point
    farthest from its own centre, so all k centres are used (x must hold at least k distinct rows)."""
    k = len(centers)
    labels = np.full(len(x), -1, dtype=np.int64)
    converged, it = False, 0
    for it in range(1, max_iter + 1):
        new, own = nearest(x, centers)
        counts = np.bincount(new, minlength=k)
        taken: set[int] = set()
        for c in np.flatnonzero(counts == 0):  # an empty cluster takes the worst-fitting point
            order = np.argsort(-own, kind="stable")
            far = next(int(i) for i in order if int(i) not in taken and counts[new[i]] > 1)
            taken.add(far)
            counts[new[far]] -= 1
            new[far], own[far] = c, 0.0
            counts[c] = 1
        if np.array_equal(new, labels):
            converged = True
            break
        labels = new
        sizes = np.bincount(labels, minlength=k)[:, None]
        centers = np.stack([np.bincount(labels, weights=x[:, j], minlength=k) for j in range(x.shape[1])], axis=1) / sizes
    inertia = float(_own_distances(x, centers, labels).sum())
    return KMeansResult(centers, labels, inertia, it, converged)
