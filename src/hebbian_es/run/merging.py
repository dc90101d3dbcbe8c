"""Merging during evolution (Pedersen & Risi 2021; docs/plasticity.md): rule.merge.*.

Before generation g of the schedule, the centre's rules are clustered into K shared rules by what
they do (core/merging.py: each rule's Δw on a grid of activities, medoids as the shared rules) and
the run continues with them (rule.sharing=merged, the assignment kept in every checkpoint).

What happens to the optimiser: it continues from the merged centre.  The centre changes dimension
(every per-synapse coefficient block becomes one (C, K) block of shared rules; modulatory, conv and
co-evolved weights are carried over as they are).  A seed-based ES (`SeededES.recenter`: OpenAI-ES,
PGPE, SNES) keeps its learning rate, a single σ, generation counter, seed and its step's counters,
so generation g's noise is drawn, from the same seeds as ever, in the new dimension; every
per-parameter quantity (PGPE's and SNES's σ, momentum, Adam's moments) follows its parameter: a
shared rule's coefficient takes the one of its representative synapse (the medoid), every other
entry its own.  An optimiser without `recenter` (Nevergrad, whose state is sized to the old
dimension) is refused before the run starts.

Resuming is bit for bit: a merge is a function of the centre, the current assignment and
(seed, merge index) alone, run at the start of generation g; a checkpoint written before it resumes
into the same merge, one written after it holds the assignment it made ("merges").
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch

from hebbian_es.core.merging import FEATURES, merge_rules, merged_params, merged_sources
from hebbian_es.core.task import Task
from hebbian_es.errors import ConfigError

log = logging.getLogger("hebbian_es")


@dataclass(frozen=True)
class MergePlan:
    steps: tuple[tuple[int, int], ...]  # (g, K): before generation g, merge into K rules
    features: str = "update"
    n_init: int = 1
    max_iter: int = 100


def plan_merges(conf: Any, task: Task, optimizer: Any) -> MergePlan | None:
    """rule.merge.* checked against the run (ConfigError naming the key); None: no merging."""
    m, generations = conf.rule.merge, conf.generations
    if m.every < 0:
        raise ConfigError(f"rule.merge.every={m.every}: must be >= 0 (generations between merges; 0: never)")
    if m.every == 0:
        for key, value in (("k", list(m.k)), ("start", m.start)):
            if value not in ([], None):
                raise ConfigError(f"rule.merge.{key}={value} needs rule.merge.every >= 1 (0: never merge)")
        return None
    if m.features not in FEATURES:
        raise ConfigError(f"rule.merge.features={m.features!r}; allowed: {list(FEATURES)}")
    for key in ("n_init", "max_iter"):
        if getattr(m, key) < 1:
            raise ConfigError(f"rule.merge.{key}={getattr(m, key)}: must be >= 1")
    if not task.network.plastic_indices(task.rule):
        raise ConfigError(f"rule.merge.every={m.every} needs plasticity; rule.name={task.rule.name!r} has no plastic synapses")
    if not hasattr(optimizer, "recenter"):
        raise ConfigError(
            f"rule.merge.every={m.every} needs an optimiser that continues from the merged centre; "
            f"optimizer.name={getattr(conf.optimizer, 'name', '?')!r} cannot (allowed: openai_es, pgpe, snes)"
        )
    synapses = task.counts()["plastic_synapses"]
    rules = task.plasticity.k if task.plasticity.sharing != "none" else synapses
    what = f"the run's {rules:,} rules" + ("" if rules != synapses else " (one per plastic synapse)")
    start = m.every if m.start is None else m.start
    start_key = "rule.merge.every" if m.start is None else "rule.merge.start"
    if not 1 <= start <= generations - 1:
        raise ConfigError(
            f"{start_key}={start}: the first merge runs before generation {start}, beyond the run's "
            f"generations={generations}; allowed: 1..{generations - 1}"
        )
    if m.k:
        ks = [int(k) for k in m.k]
        bad = [k for k in ks if not 1 <= k <= rules]
        if bad:
            raise ConfigError(f"rule.merge.k={ks}: each K must be in 1..{rules:,} ({what})")
        if any(b > a for a, b in zip(ks, ks[1:])):
            raise ConfigError(f"rule.merge.k={ks}: must not increase (a merge cannot make more rules than there are)")
        last = start + (len(ks) - 1) * m.every
        if last > generations - 1:
            raise ConfigError(
                f"rule.merge.k={ks}: {len(ks)} merges every {m.every} generations from generation {start} reach "
                f"generation {last}, beyond the run's generations={generations} (allowed: merges before generations 1..{generations - 1})"
            )
    else:
        if not m.factor > 1:
            raise ConfigError(f"rule.merge.factor={m.factor}: must be > 1 (each merge divides the number of rules by it)")
        if not 1 <= m.k_min <= rules:
            raise ConfigError(f"rule.merge.k_min={m.k_min}: must be in 1..{rules:,} ({what})")
        if m.k_min == rules:
            raise ConfigError(f"rule.merge.k_min={m.k_min} leaves nothing to merge: the run has {rules:,} rules; allowed: 1..{rules - 1:,}")
        ks, current = [], rules
        while current > m.k_min:
            current = max(m.k_min, math.ceil(current / m.factor))
            ks.append(current)
    steps = tuple((start + i * m.every, k) for i, k in enumerate(ks) if start + i * m.every <= generations - 1)
    return MergePlan(steps, m.features, int(m.n_init), int(m.max_iter))


class RuleMerger:
    """Runs a MergePlan inside an ESRun (run/loop.py calls `before_generation`) and keeps what a
    checkpoint needs to rebuild the merged task: `state()`, restored by `adopt`."""

    def __init__(self, plan: MergePlan, seed: int) -> None:
        self.plan = plan
        self.seed = int(seed)
        self.done = 0  # merges run so far
        self.k: int | None = None
        self.assignment: np.ndarray | None = None
        self.history: list[dict[str, Any]] = []

    def describe(self) -> str:
        return ", ".join(f"K={k} before generation {g}" for g, k in self.plan.steps) or "no merge within the run"

    def state(self) -> dict[str, Any] | None:
        """What a checkpoint keeps (plain tensors, ints, floats, lists, dicts); None before the first merge."""
        if not self.done:
            return None
        assert self.assignment is not None and self.k is not None
        return {"done": self.done, "k": self.k, "assignment": torch.from_numpy(self.assignment.copy()), "history": list(self.history)}

    def adopt(self, saved: Mapping[str, Any]) -> None:
        merges = saved.get("merges")
        if not merges:
            return
        self.done, self.k = int(merges["done"]), int(merges["k"])
        a = merges["assignment"]
        self.assignment = (a.numpy() if isinstance(a, torch.Tensor) else np.asarray(a)).astype(np.int64)
        self.history = [dict(h) for h in merges.get("history", [])]

    def due(self, generation: int) -> int | None:
        """K of the merge to run before `generation`, if one is due."""
        if self.done < len(self.plan.steps) and generation >= self.plan.steps[self.done][0]:
            return self.plan.steps[self.done][1]
        return None

    def before_generation(self, run: Any) -> None:
        k = self.due(run.generation)
        if k is None:
            return
        task: Task = run.task
        center = run.optimizer.center(run.state)
        seed = int(np.random.SeedSequence([self.seed, self.done, 0x3E26E]).generate_state(1)[0])
        result = merge_rules(task, center, k, seed, features=self.plan.features, n_init=self.plan.n_init, max_iter=self.plan.max_iter)
        k = len(result.rules)  # fewer where fewer distinct rules were left
        merged = task.with_shared_rules(k, result.labels)
        new_center = merged_params(task, merged, center, result.rules)
        run.state = run.optimizer.recenter(run.state, new_center, merged_sources(task, merged, result.representatives))
        run.task = merged
        before = task.plasticity.k if task.plasticity.sharing != "none" else task.counts()["plastic_synapses"]
        self.done += 1
        self.k, self.assignment = k, result.labels
        self.history.append({"generation": run.generation, "rules_before": int(before), "k": int(k), "distinct_before": int(result.distinct),
                             "inertia": float(result.inertia), "iterations": int(result.iterations)})  # fmt: skip
        log.info(
            "merge %d before generation %d: %s rules -> %d (%s features; k-means inertia %.4g, %d iterations); evolved parameters %s -> %s",
            self.done, run.generation, f"{before:,}", k, self.plan.features, result.inertia, result.iterations,
            f"{task.layout.size:,}", f"{merged.layout.size:,}",
        )  # fmt: skip
        run.reopen_evaluator()  # its workers hold the old task
