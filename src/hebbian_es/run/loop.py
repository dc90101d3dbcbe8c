"""An evolution run's loop: ask, evaluate, tell, validate — and nothing else.

`ESRun` holds the loop's state (optimiser state, best centre so far, counters) and
calls its observers at fixed points; metrics files, checkpoints, status.json and
W&B are observers (run/observers.py) attached by the caller, so this module writes
no file itself.  The Lightning module in run/lightning.py only organises the phases.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np
import torch

from hebbian_es.core.task import VALIDATION, Task
from hebbian_es.errors import ConfigError
from hebbian_es.es import distributed
from hebbian_es.es.base import ExplicitPopulation, Optimizer, PopulationWithCenter
from hebbian_es.run.protocol import episodes_of, generation_episodes


@dataclass(frozen=True)
class Generation:
    """What one generation produced, handed to every observer."""

    metrics: dict[str, Any]
    asked_state: Any  # the optimiser state the population was asked from (its centre earned `center_return`)
    center: torch.Tensor  # that centre
    new_best: bool  # center_return beat every earlier generation's


class Observer(Protocol):
    """Hooks of the loop (evotorch-style); implement any subset (see BaseObserver)."""

    def on_start(self, run: "ESRun") -> None: ...
    def on_generation(self, run: "ESRun", gen: Generation) -> None: ...
    def on_validation(self, run: "ESRun", metrics: Mapping[str, Any]) -> None: ...
    def on_end(self, run: "ESRun", status: str, error: str | None) -> None: ...


class BaseObserver:
    def on_start(self, run: "ESRun") -> None:
        pass

    def on_generation(self, run: "ESRun", gen: Generation) -> None:
        pass

    def on_validation(self, run: "ESRun", metrics: Mapping[str, Any]) -> None:
        pass

    def on_end(self, run: "ESRun", status: str, error: str | None) -> None:
        pass


class BudgetSpent(Exception):
    """The run's wall-clock budget (stop_after_minutes) is spent: it stopped at a generation boundary."""


class WallClockBudget:
    """`minutes` of this process for training; spent() is asked before each generation, and only
    after this process has done one (every start makes progress).  On a distributed run every
    rank stops at the same generation: the ranks agree through an all-reduce."""

    def __init__(self, minutes: float | None) -> None:
        self.minutes = minutes
        self.deadline = None if minutes is None else time.monotonic() + 60.0 * minutes
        self.generations_done = 0

    def spent(self) -> bool:
        if self.deadline is None:
            return False
        mine = self.generations_done > 0 and time.monotonic() >= self.deadline
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            flag = torch.tensor([1 if mine else 0], dtype=torch.int64)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            return bool(flag.item())
        return mine


class ESRun:
    """One evolution run: task, optimiser and evaluator objects in, generations out; resumable
    from the state a checkpoint observer saved (`restore`)."""

    def __init__(
        self,
        task: Task,
        optimizer: Optimizer,
        make_evaluator: Callable[[], Any],
        *,
        seed: int,
        generations: int,
        episodes_per_eval: int,
        l2_penalty: float,
        draws: str = "common",
        observers: Sequence[Observer] = (),
        run_id: str = "",
        merger: Any = None,
    ) -> None:
        self.task = task
        self.optimizer = optimizer
        self._make_evaluator = make_evaluator  # called at start(): joins the process group, spawns workers
        self.seed = seed
        self.generations = generations
        self.episodes_per_eval = episodes_per_eval
        self.l2_penalty = l2_penalty
        self.draws = draws  # which lifetimes the members meet (run/protocol.py generation_episodes)
        self.observers: list[Observer] = list(observers)
        self.run_id = run_id  # ranks of a distributed run must agree on it (the run directory)
        self.state = optimizer.init(task.initial_center(seed), seed)
        self.best: dict[str, Any] = {"fitness": -math.inf, "generation": -1}
        self.env_steps = 0
        self.wall_time = 0.0
        self.nonfinite_total = 0
        self.resumed_from: int | None = None
        self.evaluator: Any = None
        self.started = False  # start() completed: the loop may run
        self.is_main = distributed.rank_info().is_main  # rank 0 alone attaches writing observers
        self.merger = merger  # run/merging.RuleMerger: merges the rules during evolution (rule.merge.*)

    @property
    def generation(self) -> int:
        return int(self.state.generation)

    # ---- state a checkpoint keeps --------------------------------------------------------
    def state_dict(self, state: Any = None) -> dict[str, Any]:
        """Everything resuming needs, for optimiser state `state` (default: the current one)."""
        state = self.state if state is None else state
        return {
            "task": self.task.fingerprint(),
            "seed": self.seed,
            "optimizer": self.optimizer.state_dict(state),
            "generation": int(state.generation),
            "best": self.best,
            "env_steps": self.env_steps,
            "wall_time": self.wall_time,
            "nonfinite_total": self.nonfinite_total,
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": np.random.get_state(),
            # a run that merged its rules: the assignment the task is rebuilt with (core/merging.py)
            **({"merges": self.merger.state()} if self.merger is not None and self.merger.done else {}),
        }

    def adopt_checkpoint(self, saved: Mapping[str, Any]) -> None:
        """Before a checkpoint's fingerprint is checked: the task it was written under (merged rules)."""
        from hebbian_es.core.merging import apply_saved_merges

        self.task = apply_saved_merges(self.task, saved)
        if self.merger is not None:
            self.merger.adopt(saved)

    def restore(self, saved: Mapping[str, Any]) -> None:
        self.state = self.optimizer.load_state_dict(saved["optimizer"])
        self.best = dict(saved["best"])
        self.env_steps = int(saved["env_steps"])
        self.wall_time = float(saved["wall_time"])
        self.nonfinite_total = int(saved.get("nonfinite_total", 0))
        self.resumed_from = self.generation

    # ---- lifecycle -----------------------------------------------------------------------
    def start(self, saved: Mapping[str, Any] | None = None) -> None:
        """Restore `saved` (a checkpoint's payload; None: a new run), open the evaluator, tell observers."""
        if saved is not None:
            self.restore(saved)
        # First: joining a process group waits for every rank, so no rank has read
        # `last` after rank 0 starts writing the next one.
        self.evaluator = self._make_evaluator()
        self._check_ranks_agree()
        for obs in self.observers:
            obs.on_start(self)
        self.started = True

    def end(self, status: str, error: str | None = None) -> None:
        """Close the evaluator (at once unless the run finished) and tell the observers how it ended."""
        self.close_evaluator(abort=status != "finished")
        for obs in self.observers:
            obs.on_end(self, status, error)

    def reopen_evaluator(self) -> None:
        """A new evaluator for a changed task (a merge): the workers receive the task when they start."""
        if self.evaluator is not None:
            self.evaluator.close()
            self.evaluator = self._make_evaluator()

    def close_evaluator(self, abort: bool = False) -> None:
        """Stop the training workers (before the test protocol opens its own; abort: now)."""
        if self.evaluator is not None:
            self.evaluator.close(abort)
            self.evaluator = None

    def _check_ranks_agree(self) -> None:
        """Every rank must run the same task from the same generation in the same directory."""
        import torch.distributed as dist

        if not dist.is_initialized() or dist.get_world_size() == 1:
            return
        mine = json.dumps([self.task.fingerprint(), self.seed, self.generation, self.run_id], sort_keys=True, default=str)
        digest = torch.tensor(list(hashlib.sha256(mine.encode()).digest()[:8]), dtype=torch.int64)
        everyone = [torch.empty_like(digest) for _ in range(dist.get_world_size())]
        dist.all_gather(everyone, digest)
        if any(not torch.equal(everyone[0], d) for d in everyone):
            raise ConfigError(
                f"ranks disagree on the run (config, seed, resumed generation or run_dir; rank {dist.get_rank()}: "
                f"generation {self.generation}, run_dir {self.run_id!r}); with torchrun pass the same hydra.run.dir to every rank"
            )

    # ---- one generation ------------------------------------------------------------------
    def step(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        if self.merger is not None:  # a merge due before this generation changes task and centre
            self.merger.before_generation(self)
        gen = self.generation
        state, population = self.optimizer.ask(self.state)
        center = self.optimizer.center(state)
        n = population.size
        episodes = generation_episodes(self.seed, gen, self.episodes_per_eval, len(self.task.envs), n + 1, self.draws)
        result = self.evaluator.evaluate(PopulationWithCenter(population, center), range(n + 1), episodes)
        returns = result.returns.mean(axis=1)
        fitness = returns[:n] - self.l2_penalty * result.mean_sq[:n]
        center_return = float(returns[n])
        nonfinite = int((~np.isfinite(fitness)).sum())
        self.nonfinite_total += nonfinite
        self.state = self.optimizer.tell(state, population, fitness)
        self.env_steps += result.env_steps
        seconds = time.perf_counter() - t0
        self.wall_time += seconds
        finite = returns[:n][np.isfinite(returns[:n])]
        metrics = {
            "generation": gen,
            "pop_mean": float(finite.mean()) if len(finite) else float("nan"),
            "pop_max": float(finite.max()) if len(finite) else float("nan"),
            "pop_min": float(finite.min()) if len(finite) else float("nan"),
            "fitness_mean": float(np.nanmean(np.where(np.isfinite(fitness), fitness, np.nan))) if len(finite) else float("nan"),
            "center_return": center_return,
            **self.optimizer.scalars(state),
            "nonfinite": nonfinite,
            "env_steps": self.env_steps,
            "gen_seconds": seconds,
            "steps_per_s": result.env_steps / seconds if seconds > 0 else 0.0,
            "wall_time": self.wall_time,
        }
        new_best = math.isfinite(center_return) and center_return > self.best["fitness"]
        if new_best:
            self.best = {"fitness": center_return, "generation": gen}
        metrics["best_center_return"] = self.best["fitness"]
        event = Generation(metrics, state, center, new_best)
        for obs in self.observers:
            obs.on_generation(self, event)
        return metrics

    def validation_due(self, every: int) -> bool:
        """Validation runs after generations g with (g + 1) % every == 0, counted from 0, resumed or not."""
        return every > 0 and self.generation > 0 and self.generation % every == 0

    def validate(self, episodes: int) -> dict[str, float]:
        center = self.optimizer.center(self.state)
        res = self.evaluator.evaluate(
            ExplicitPopulation(center.unsqueeze(0)),
            [0],
            episodes_of(self.seed, VALIDATION, self.generation, episodes, len(self.task.envs)),
        )
        r = res.returns[0]
        metrics = {"val_mean": float(np.mean(r)), "val_std": float(np.std(r)), "generation": self.generation}
        for obs in self.observers:
            obs.on_validation(self, metrics)
        return metrics
