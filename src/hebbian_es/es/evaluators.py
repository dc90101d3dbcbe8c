"""Evaluating population members: in-process, or across long-lived worker processes.

A request names members of a population (which each worker materialises from
seeds, EvoTorch-style) and the episodes to run; the reply is a returns matrix.
Workers import torch and gymnasium only: never Lightning.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from hebbian_es.config import DistributedEvaluatorConfig, LocalEvaluatorConfig
from hebbian_es.envs.runner import EnvPool
from hebbian_es.envs.spec import ActionMapper, ObservationBatcher
from hebbian_es.errors import ConfigError
from hebbian_es.es.base import Population
from hebbian_es.core.memory import limit_heap_fragmentation
from hebbian_es.core.rollout import RecordSpec, drawdown_after, run_lifetimes
from hebbian_es.core.task import Task


@dataclass(frozen=True)
class Episodes:
    """Episodes every member runs: env index (into task.envs), env reset seed, init seed.

    The seeds are one row (k,) that every member meets (common random numbers), or one row per
    member of the population, (members, k), indexed by the member's population index (the
    reference code's draws: each candidate its own tracks and initial weights).
    trace=True also measures each lifetime's drawdown after it first reaches its env's
    solved_threshold (core.rollout.drawdown_after; the test protocol's monotone check)."""

    env_index: np.ndarray
    env_seeds: np.ndarray
    init_seeds: np.ndarray
    trace: bool = False

    def __len__(self) -> int:
        return int(self.env_seeds.shape[-1])

    @property
    def per_member(self) -> bool:
        return self.env_seeds.ndim == 2

    def seeds(self, member: int, column: int) -> tuple[int, int]:
        """(env seed, init seed) of episode `column` for population member `member`."""
        if self.per_member:
            return int(self.env_seeds[member, column]), int(self.init_seeds[member, column])
        return int(self.env_seeds[column]), int(self.init_seeds[column])

    def subset(self, columns: np.ndarray) -> "Episodes":
        return Episodes(self.env_index[columns], self.env_seeds[..., columns], self.init_seeds[..., columns], self.trace)


@dataclass
class EvalResult:
    returns: np.ndarray  # (members, episodes)
    mean_sq: np.ndarray  # (members,) mean squared parameter, for the L2 penalty
    env_steps: int
    drawdown: np.ndarray | None = None  # (members, episodes) when the request traced; NaN: threshold never reached


class _Workspace:
    """Per-process state: the task and its env instances, kept alive across generations."""

    def __init__(self, task: Task, max_specs: int | None = None) -> None:
        limit_heap_fragmentation()  # before the first batch: large per-step tensors fragment glibc's heap
        self.task = task
        self.pool = EnvPool(max_specs)
        self.observe = [ObservationBatcher(e.observation) for e in task.envs]
        self.act = [ActionMapper(e.action) for e in task.envs]
        # The L2 term's entries: every parameter, or only the rule coefficients (reference code).
        self.penalised = task.layout.kinds() if task.l2_coefficients_only else None

    def _mean_sq(self, params: torch.Tensor) -> np.ndarray:
        """mean(h^2) per member over the penalised entries (0 where there are none: a static run)."""
        if self.penalised is None:
            return params.pow(2).mean(dim=1).numpy().astype(np.float64)
        if not bool(self.penalised.any()):
            return np.zeros(params.shape[0])
        return params[:, self.penalised].pow(2).mean(dim=1).numpy().astype(np.float64)

    def evaluate(
        self, population: Population, indices: Sequence[int], episodes: Episodes, batch_size: int
    ) -> EvalResult:
        indices = list(indices)
        params = population.params(indices) if indices else torch.zeros((0, 0))
        mean_sq = self._mean_sq(params) if indices else np.zeros(0)
        returns = np.zeros((len(indices), len(episodes)))
        drawdown = np.full_like(returns, np.nan) if episodes.trace else None
        steps = 0
        # One lifetime per (member, episode), grouped by env so a batch shares obs/action handling.
        for env_idx in np.unique(episodes.env_index):
            cols = np.flatnonzero(episodes.env_index == env_idx)
            rows = [(m, c) for m in range(len(indices)) for c in cols]
            for start in range(0, len(rows), max(1, batch_size)):
                chunk = rows[start : start + max(1, batch_size)]
                member_rows = torch.as_tensor([m for m, _ in chunk])
                policy = self.task.policy(params.index_select(0, member_rows))
                spec = self.task.envs[env_idx]
                trace = drawdown is not None and spec.solved_threshold is not None
                seeds = [episodes.seeds(indices[m], c) for m, c in chunk]
                result = run_lifetimes(
                    policy,
                    self.pool.get(spec, len(chunk)),
                    [env_seed for env_seed, _ in seeds],
                    [init_seed for _, init_seed in seeds],
                    self.observe[env_idx],
                    self.act[env_idx],
                    self.task.max_steps,
                    record=RecordSpec(rewards=trace),
                )
                for (m, c), r in zip(chunk, result.returns):
                    returns[m, c] = r
                if trace:
                    assert drawdown is not None and result.rewards is not None and spec.solved_threshold is not None
                    for (m, c), d in zip(chunk, drawdown_after(result.rewards, spec.solved_threshold)):
                        drawdown[m, c] = d
                steps += int(result.steps.sum())
        return EvalResult(returns, mean_sq, steps, drawdown)


class SerialEvaluator:
    """Evaluates in the calling process."""

    def __init__(self, task: Task, batch_size: int, max_specs: int | None = None) -> None:
        self.workspace = _Workspace(task, max_specs)
        self.batch_size = batch_size
        self.workers = 1

    def evaluate(self, population: Population, indices: Sequence[int], episodes: Episodes) -> EvalResult:
        return self.workspace.evaluate(population, indices, episodes, self.batch_size)

    def close(self, abort: bool = False) -> None:
        self.workspace.pool.close()


_WORKER: _Workspace | None = None


def _init_worker(task: Task, threads: int, max_specs: int | None) -> None:
    global _WORKER
    # Ctrl-C reaches the whole process group: the main process decides (and terminates the pool).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)
    _WORKER = _Workspace(task, max_specs)


def _work(args: tuple[Population, list[int], Episodes, int]) -> EvalResult:
    assert _WORKER is not None
    return _WORKER.evaluate(*args)


class ProcessEvaluator:
    """Splits the members into one chunk per worker; a chunk carries seeds, not vectors.

    Each worker receives the built task (pickled) once, when it starts: it neither reads
    the config nor builds an env to look at its spaces."""

    def __init__(self, task: Task, workers: int, batch_size: int, threads: int, max_specs: int | None = None) -> None:
        self.workers = workers
        self.batch_size = batch_size
        ctx = mp.get_context("spawn")
        self.pool = ctx.Pool(workers, initializer=_init_worker, initargs=(task, threads, max_specs))

    def evaluate(self, population: Population, indices: Sequence[int], episodes: Episodes) -> EvalResult:
        indices = list(indices)
        if len(indices) < self.workers and len(episodes) > 1:
            return self._evaluate_by_episodes(population, indices, episodes)
        chunks = [c.tolist() for c in np.array_split(np.asarray(indices, dtype=np.int64), self.workers) if len(c)]
        parts = self.pool.map(_work, [(population, c, episodes, self.batch_size) for c in chunks])
        return EvalResult(
            np.concatenate([p.returns for p in parts]) if parts else np.zeros((0, len(episodes))),
            np.concatenate([p.mean_sq for p in parts]) if parts else np.zeros(0),
            sum(p.env_steps for p in parts),
            np.concatenate([p.drawdown for p in parts]) if parts and episodes.trace else None,  # type: ignore[misc]
        )

    def _evaluate_by_episodes(self, population: Population, indices: list[int], episodes: Episodes) -> EvalResult:
        """Few members, many episodes (validation, the test protocol): split the episodes instead."""
        cols = [c for c in np.array_split(np.arange(len(episodes)), self.workers) if len(c)]
        jobs = [(population, indices, episodes.subset(c), self.batch_size) for c in cols]
        parts = self.pool.map(_work, jobs)
        returns = np.zeros((len(indices), len(episodes)))
        drawdown = np.full_like(returns, np.nan) if episodes.trace else None
        for c, p in zip(cols, parts):
            returns[:, c] = p.returns
            if drawdown is not None:
                drawdown[:, c] = p.drawdown
        return EvalResult(returns, parts[0].mean_sq, sum(p.env_steps for p in parts), drawdown)

    def close(self, abort: bool = False) -> None:
        """abort: stop the workers now (an interrupted run), not after their current lifetimes."""
        if abort:
            self.pool.terminate()
        else:
            self.pool.close()
        self.pool.join()


class DistributedEvaluator:
    """One share of every request per torch.distributed rank; only returns travel.

    Every rank calls `evaluate` with the same request (it holds the same optimiser
    state and materialises the same population from seeds); each evaluates its share
    with its local evaluator (in-process, or its own worker processes) and an
    all-gather of the fixed-size returns assembles the whole matrix on every rank.
    The split is the one ProcessEvaluator uses: members, or episodes when there are
    fewer members than ranks (validation, the test protocol).
    """

    def __init__(self, local: "SerialEvaluator | ProcessEvaluator", rank: int, world_size: int) -> None:
        self.local = local
        self.rank = rank
        self.world_size = world_size
        self.workers = world_size * local.workers

    def evaluate(self, population: Population, indices: Sequence[int], episodes: Episodes) -> EvalResult:
        import torch.distributed as dist

        if self.world_size == 1:  # no launcher: a world of one
            return self.local.evaluate(population, indices, episodes)
        indices = list(indices)
        by_episodes = len(indices) < self.world_size and len(episodes) > 1
        if by_episodes:
            shares = np.array_split(np.arange(len(episodes)), self.world_size)
            mine = self.local.evaluate(population, indices, episodes.subset(shares[self.rank]))
            block = mine.returns.T  # (episodes in my share, members)
            width = len(indices)
        else:
            shares = np.array_split(np.arange(len(indices)), self.world_size)
            mine = self.local.evaluate(population, [indices[i] for i in shares[self.rank]], episodes)
            block = mine.returns
            width = len(episodes)
        rows = max(len(s) for s in shares)
        n_sq = len(indices) if by_episodes else rows
        # One float64 buffer per rank: returns (padded to the longest share), mean_sq, env steps.
        buf = torch.full((rows * width + n_sq + 1,), float("nan"), dtype=torch.float64)
        buf[: block.size] = torch.from_numpy(np.ascontiguousarray(block, dtype=np.float64)).reshape(-1)
        buf[rows * width : rows * width + len(mine.mean_sq)] = torch.from_numpy(np.asarray(mine.mean_sq, dtype=np.float64))
        buf[-1] = float(mine.env_steps)
        gathered = [torch.empty_like(buf) for _ in range(self.world_size)]
        dist.all_gather(gathered, buf)
        steps = int(sum(int(g[-1].item()) for g in gathered))
        blocks = [g[: rows * width].numpy().reshape(rows, width)[: len(share)] for share, g in zip(shares, gathered)]
        if by_episodes:
            returns = np.zeros((len(indices), len(episodes)))
            for share, b in zip(shares, blocks):
                returns[:, share] = b.T
            mean_sq = gathered[0][rows * width : rows * width + n_sq].numpy().copy()
            return EvalResult(returns, mean_sq, steps, self._gather_drawdown(mine, shares, by_episodes, episodes, len(indices)))
        returns = np.concatenate(blocks).reshape(len(indices), len(episodes))
        mean_sq = np.concatenate([g[rows * width : rows * width + len(s)].numpy() for s, g in zip(shares, gathered)])
        return EvalResult(returns, mean_sq, steps, self._gather_drawdown(mine, shares, by_episodes, episodes, len(indices)))

    def _gather_drawdown(
        self, mine: EvalResult, shares: list[np.ndarray], by_episodes: bool, episodes: Episodes, members: int
    ) -> np.ndarray | None:
        """The traced drawdowns of every rank's share (a second all-gather; only when the request traced)."""
        import torch.distributed as dist

        if not episodes.trace:
            return None
        assert mine.drawdown is not None
        block = mine.drawdown.T if by_episodes else mine.drawdown
        rows, width = max(len(s) for s in shares), (members if by_episodes else len(episodes))
        buf = torch.full((rows * width,), float("nan"), dtype=torch.float64)
        buf[: block.size] = torch.from_numpy(np.ascontiguousarray(block, dtype=np.float64)).reshape(-1)
        gathered = [torch.empty_like(buf) for _ in range(self.world_size)]
        dist.all_gather(gathered, buf)
        blocks = [g.numpy().reshape(rows, width)[: len(share)] for share, g in zip(shares, gathered)]
        if not by_episodes:
            return np.concatenate(blocks).reshape(members, len(episodes))
        out = np.full((members, len(episodes)), np.nan)
        for share, b in zip(shares, blocks):
            out[:, share] = b.T
        return out

    def close(self, abort: bool = False) -> None:
        self.local.close(abort)


def _workers(value: Any) -> int:
    """evaluator.workers: an integer >= 1, or auto (one per core)."""
    if value in (None, "auto", 0):
        return os.cpu_count() or 1
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
        raise ConfigError(f"evaluator.workers={value!r}: must be an integer >= 1 or auto")
    return int(value)


def _local_evaluator(
    workers: int, batch_size: int, threads: int, task: Task, max_specs: int | None = None
) -> SerialEvaluator | ProcessEvaluator:
    if workers <= 1:
        return SerialEvaluator(task, batch_size, max_specs)
    return ProcessEvaluator(task, workers, batch_size, threads, max_specs)


def make_evaluator(
    cfg: LocalEvaluatorConfig | DistributedEvaluatorConfig, task: Task, phase: str = "train"
) -> SerialEvaluator | ProcessEvaluator | DistributedEvaluator:
    """The evaluator `cfg` describes, for the built `task` (of `phase`: its envs are the
    phase's already; workers receive the task itself). Training keeps every body's envs
    alive across generations; the test phase, which runs one body after another, keeps only
    the current body's (EnvPool.max_specs)."""
    from hebbian_es.es import distributed

    max_specs = 1 if phase == "test" else None
    if isinstance(cfg, DistributedEvaluatorConfig) and cfg.distributed:
        info = distributed.init_process_group(cfg.backend, cfg.timeout_s)
        local = _local_evaluator(cfg.workers_per_rank, cfg.batch_size, cfg.threads_per_worker, task, max_specs)
        return DistributedEvaluator(local, info.rank, info.world_size)
    info = distributed.rank_info()
    if info.world_size > 1:
        raise ConfigError(
            f"this process is rank {info.rank} of {info.world_size} (torchrun or a multi-task SLURM job) but "
            "evaluator is not distributed; set evaluator=distributed"
        )
    # evaluator=distributed with distributed=false: this process's own share only, a world of one
    workers = _workers(cfg.workers) if isinstance(cfg, LocalEvaluatorConfig) else cfg.workers_per_rank
    return _local_evaluator(workers, cfg.batch_size, cfg.threads_per_worker, task, max_specs)
