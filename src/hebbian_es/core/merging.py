"""Merging rules (Pedersen & Risi 2021): a centre's per-synapse rules clustered into K shared rules.

Rules are clustered by what they do, not by their raw coefficients: each synapse's Δw is evaluated,
with its own rule and through the same code as a lifetime's update (η's map included), on a grid of
pre- and post-synaptic activities (`rule_features`).  Two rules that change a weight alike are close
however their coefficients differ (η·A = 1 from η = 1, A = 1 or from η = −1, A = −1), which
k-means on the coefficients would keep apart.

Each cluster's shared rule is its medoid: the member rule whose Δw is nearest the cluster's mean Δw,
copied as it is.  A mean of coefficient vectors can do something no member does (the mean of the
two rules above is η = 0, A = 0: no plasticity), and the medoid makes a merge with K = the number
of distinct rules lossless: every synapse keeps its own rule, bit for bit.
(`features="coefficients"`: k-means on the raw coefficients and the centroids as rules, the first
pass's evolve-then-merge.)

Used by `python -m hebbian_es.merge` (once, after training) and by merging during evolution
(run/merging.py: every k generations).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch

from hebbian_es.core.kmeans import kmeans
from hebbian_es.core.plasticity import RATES, PlasticState
from hebbian_es.core.task import Task

FEATURES = ("update", "coefficients")
GRID = np.linspace(-1.0, 1.0, 5)  # the activities Δw is evaluated at (tanh units' range), pre × post
W_PROBE = 0.5  # the weight a weight-dependent term (Oja's) reads
THETA_PROBE = 0.25  # BCM's threshold
TRACE_STEPS = (1, 10)  # a trace rule: its update after n steps of constant activity, e_n = Δw·(1 − λⁿ)/(1 − λ)


def per_synapse_coefficients(task: Task, params: torch.Tensor) -> np.ndarray:
    """(plastic synapses, coefficients per synapse), float64: each synapse's rule, layer by layer,
    (out, in) row-major (a run with shared rules gives each synapse its rule's coefficients)."""
    blocks = task.layout.views(params.reshape(1, -1).to(torch.float64))
    plastic = task.network.plastic_indices(task.rule)
    state = PlasticState(task.rule, task.plasticity, blocks, plastic)
    rows = [state.coefficients(blocks, l)[0].reshape(task.rule.coefficients_per_synapse, -1).T for l in sorted(plastic)]
    return torch.cat(rows).numpy()


def delta_grid(
    task: Task, coeffs: np.ndarray, pre: np.ndarray, post: np.ndarray, steps: tuple[int, ...] = (1,),
) -> np.ndarray:
    """(n, len(steps), len(pre), len(post)): each rule's Δw at every (pre, post) activity pair, in
    float64, through the rule's own update code (its η map, Oja's term at w = W_PROBE, BCM's at
    θ = THETA_PROBE, on rates where rule.bcm_rates reads them: post given as the unit's activity).
    A trace rule's entry for step n is its update after n steps of constant activity,
    e_n = Δw·(1 − λⁿ)/(1 − λ); a rule without a trace gives Δw for every n."""
    rule = task.rule
    n, c = coeffs.shape
    pre_t = torch.from_numpy(np.repeat(np.asarray(pre, dtype=np.float64), len(post)))[:, None]  # (G, 1): one input per probe
    post_t = torch.from_numpy(np.tile(np.asarray(post, dtype=np.float64), len(pre)))[:, None].expand(-1, n)  # (G, n)
    if task.plasticity.bcm_rates and rule.needs_threshold:
        post_t = RATES["tanh"](post_t)
    g = len(pre_t)
    per = torch.from_numpy(np.ascontiguousarray(coeffs.T)).reshape(1, c, n, 1).expand(g, -1, -1, -1)
    w = torch.full((g, n, 1), W_PROBE, dtype=torch.float64)
    theta = torch.full((g, n), THETA_PROBE, dtype=torch.float64)
    delta = rule.delta(per, pre_t, post_t, w=w, theta=theta)[:, :, 0].T  # (n, G)
    if not rule.trace:
        out = [delta] * len(steps)
    else:
        decay = rule.trace_decay(per[:1])  # a number, or (1, n, 1) for τ evolved per synapse
        lam = decay if isinstance(decay, float) else decay.reshape(-1, 1)
        out, e = [], torch.zeros_like(delta)
        for step in range(1, max(steps) + 1):
            e = lam * e + delta
            if step in steps:
                out.append(e.clone())
    return torch.stack(out, dim=1).reshape(n, len(steps), len(pre), len(post)).numpy()


def rule_features(task: Task, coeffs: np.ndarray) -> np.ndarray:
    """(n, F): every synapse's Δw on the GRID of (pre, post) activities (delta_grid); a trace rule's
    after each of TRACE_STEPS steps.  What merges cluster."""
    steps = TRACE_STEPS if task.rule.trace else (1,)
    return delta_grid(task, coeffs, GRID, GRID, steps).reshape(len(coeffs), -1)


@dataclass(frozen=True)
class MergeResult:
    labels: np.ndarray  # (n,) int64: every plastic synapse's rule, layer by layer, (out, in) row-major
    rules: np.ndarray  # (K, C) float64: the shared rules' coefficients (medoids, or centroids)
    inertia: float
    iterations: int
    converged: bool
    distinct: int  # distinct rules (by the clustered features) before the merge
    representatives: np.ndarray  # (K,) the synapse whose rule each shared rule is (or, for centroids, is nearest)


def distinct_rules(task: Task, params: torch.Tensor, features: str = "update") -> int:
    """How many distinct rules the centre has, by what they do (or by their coefficients)."""
    coeffs = per_synapse_coefficients(task, params)
    return len(np.unique(rule_features(task, coeffs) if features == "update" else coeffs, axis=0))


def merge_rules(
    task: Task, params: torch.Tensor, k: int, seed: int = 0, *, features: str = "update", n_init: int = 4, max_iter: int = 300,
) -> MergeResult:
    """Cluster the centre `params`' per-synapse rules into k (k <= the distinct rules; the caller checks)."""
    if features not in FEATURES:
        raise ValueError(f"features={features!r}; allowed: {FEATURES}")
    coeffs = per_synapse_coefficients(task, params)
    x = rule_features(task, coeffs) if features == "update" else coeffs
    distinct = len(np.unique(x, axis=0))
    result = kmeans(x, k, seed=seed, n_init=n_init, max_iter=max_iter)
    # each cluster's representative: the member nearest the cluster's mean (its medoid)
    d = ((x - result.centers[result.labels]) ** 2).sum(axis=1)
    order = np.lexsort((d, result.labels))  # by cluster, then distance (ties: the lower synapse index)
    first = np.ones(len(order), dtype=bool)
    first[1:] = result.labels[order[1:]] != result.labels[order[:-1]]
    medoid = np.empty(k, dtype=np.int64)
    medoid[result.labels[order[first]]] = order[first]
    # update: the medoid's rule, as it is; coefficients: the centroid (the first pass's merge)
    rules = coeffs[medoid] if features == "update" else result.centers
    return MergeResult(result.labels.astype(np.int64), rules, result.inertia, result.iterations, result.converged, distinct, medoid)


def merged_params(task: Task, merged: Task, params: torch.Tensor, rules: np.ndarray) -> torch.Tensor:
    """The merged task's parameter vector: the K rules as `shared.coefficients` (C, K); every other
    block (modulatory, conv, co-evolved and static weights) copied from `params` as it is."""
    old = task.layout.views(params.reshape(1, -1))
    parts = []
    for block in merged.layout.blocks:
        if block.name == "shared.coefficients":
            parts.append(torch.from_numpy(np.ascontiguousarray(rules.T)).to(params.dtype).reshape(-1))
        else:
            parts.append(old[block.name][0].reshape(-1).clone())
    return torch.cat(parts)


def merged_sources(task: Task, merged: Task, representatives: np.ndarray) -> torch.Tensor:
    """(D',) int64: for every entry of the merged task's parameter vector, the entry of the old one it
    comes from: a shared rule's coefficient c, rule k: coefficient c of synapse representatives[k]'s
    rule; every other block: the same entry.  What an optimiser's per-parameter state follows."""
    positions = torch.arange(task.layout.size, dtype=torch.float64)  # exact below 2^53
    per_synapse = per_synapse_coefficients(task, positions)  # (n, C): each coefficient's old position
    old = task.layout.views(positions.reshape(1, -1))
    parts = []
    for block in merged.layout.blocks:
        if block.name == "shared.coefficients":
            parts.append(torch.from_numpy(np.ascontiguousarray(per_synapse[representatives].T)).reshape(-1))
        else:
            parts.append(old[block.name][0].reshape(-1))
    return torch.cat(parts).to(torch.int64)


def apply_saved_merges(task: Task, saved: Mapping[str, Any]) -> Task:
    """The task a checkpoint was written under: a run that merged during evolution keeps its last
    assignment in the checkpoint ("merges"); any other checkpoint leaves `task` as it is."""
    merges = saved.get("merges") if isinstance(saved, Mapping) else None
    if not merges or not merges.get("done"):
        return task
    assignment = merges["assignment"]
    flat = assignment.numpy() if isinstance(assignment, torch.Tensor) else np.asarray(assignment)
    return task.with_shared_rules(int(merges["k"]), flat.astype(np.int64))
