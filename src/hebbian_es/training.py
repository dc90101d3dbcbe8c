"""An evolution run: generations, validation, checkpoints, metrics and the test protocol.

`ESRun` holds the loop's state and does the work; the Lightning module in
`lightning_module.py` only organises its phases.  Nothing here imports Lightning.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from hebbian_es import checkpoint, distributed
from hebbian_es.errors import ConfigError
from hebbian_es.evaluation import Episodes, make_evaluator
from hebbian_es.loggers import MetricsFile
from hebbian_es.optim import make_optimizer
from hebbian_es.optim.base import ExplicitPopulation, PopulationWithCenter
from hebbian_es.task import TEST, TRAIN, VALIDATION, Task, build_task, episode_seeds

RESUME_MODES = ("auto", "never")


def _episodes(seed: int, stream: int, index: int, n: int, n_envs: int = 1) -> Episodes:
    """n episodes on each of n_envs envs; every env meets the same seeds."""
    env_seeds, init_seeds = episode_seeds(seed, stream, index, n)
    return Episodes(np.repeat(np.arange(n_envs), n), np.tile(env_seeds, n_envs), np.tile(init_seeds, n_envs))


def without_early_stop(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The same task config with the env's early-stop rule switched off (test protocol)."""
    out = json.loads(json.dumps(cfg))
    out["env"]["early_stop"] = {"patience": None, "min_steps": 0}
    return out


class ESRun:
    """One evolution run in one directory; resumable from `checkpoints/last.pt`."""

    def __init__(self, cfg: Mapping[str, Any], run_dir: Path) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.seed = int(cfg["seed"])
        if self.seed < 0:
            raise ConfigError(f"seed={self.seed}: must be a non-negative integer")
        self.generations = int(cfg["generations"])
        if self.generations < 0:
            raise ConfigError(f"generations={self.generations}: must be >= 0")
        fit = cfg["fitness"]
        self.episodes_per_eval = int(fit.get("episodes", 1))
        if self.episodes_per_eval < 1:
            raise ConfigError(f"fitness.episodes={self.episodes_per_eval}: must be >= 1")
        self.l2_penalty = float(fit.get("l2_penalty", 0.0))
        if cfg.get("resume", "auto") not in RESUME_MODES:
            raise ConfigError(f"resume={cfg.get('resume')!r}; allowed: {list(RESUME_MODES)}")
        self.task: Task = build_task(cfg)
        self.optimizer = make_optimizer(cfg["optimizer"])
        # An optimiser whose full state is too large to rewrite into every last.pt (Nevergrad)
        # keeps it in files of its own next to it, written every k generations.
        if hasattr(self.optimizer, "use_checkpoint_dir"):
            self.optimizer.use_checkpoint_dir(self.ckpt_dir)
        self.state = self.optimizer.init(self.task.initial_center(self.seed), self.seed)
        self.best: dict[str, Any] = {"fitness": -math.inf, "generation": -1}
        self.env_steps = 0
        self.wall_time = 0.0
        self.nonfinite_total = 0
        self.resumed_from: int | None = None
        self.evaluator: Any = None
        self.metrics: MetricsFile | None = None
        # Distributed runs: every rank runs this loop; rank 0 alone writes.
        self.is_main = distributed.rank_info().is_main

    # ---- state ---------------------------------------------------------------------------
    @property
    def generation(self) -> int:
        return int(self.state.generation)

    @property
    def ckpt_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    def check_resumable(self) -> dict[str, Any] | None:
        """Load `last.pt` if resuming; refuse a checkpoint from another task before anything is written."""
        path = self.ckpt_dir / checkpoint.LAST
        if self.cfg.get("resume", "auto") == "never" or not path.exists():
            if path.exists():
                raise ConfigError(
                    f"run_dir={str(self.run_dir)!r} already holds a run and resume=never; choose another run_dir"
                )
            return None
        saved = checkpoint.load(path)
        checkpoint.check_compatible(saved["task"], self.task.fingerprint(), path)
        checkpoint.check_compatible({"seed": saved["seed"]}, {"seed": self.seed}, path)
        return saved

    def restore(self, saved: Mapping[str, Any]) -> None:
        self.state = self.optimizer.load_state_dict(saved["optimizer"])
        self.best = dict(saved["best"])
        self.env_steps = int(saved["env_steps"])
        self.wall_time = float(saved["wall_time"])
        self.nonfinite_total = int(saved.get("nonfinite_total", 0))
        self.resumed_from = self.generation

    def _checkpoint_payload(self, state: Any) -> dict[str, Any]:
        return {
            "format": 1,
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
        }

    # ---- lifecycle -----------------------------------------------------------------------
    def start(self, saved: Mapping[str, Any] | None = None) -> None:
        """Open metrics and workers; `saved` is what check_resumable() returned (None: a new run)."""
        if saved is not None:
            self.restore(saved)
        # First: joining a process group waits for every rank, so no rank has read
        # `last` after rank 0 starts writing the next one.
        self.evaluator = make_evaluator(self.cfg["evaluator"], self.task, self.cfg)
        self._check_ranks_agree()
        if self.is_main:
            checkpoint.remove_partial_writes(self.ckpt_dir)
            self.metrics = MetricsFile(self.run_dir, keep_below=self.generation)

    def _check_ranks_agree(self) -> None:
        """Every rank must run the same task from the same generation in the same directory."""
        import hashlib

        import torch.distributed as dist

        if not dist.is_initialized() or dist.get_world_size() == 1:
            return
        mine = json.dumps([self.task.fingerprint(), self.seed, self.generation, str(self.run_dir)], sort_keys=True, default=str)
        digest = torch.tensor(list(hashlib.sha256(mine.encode()).digest()[:8]), dtype=torch.int64)
        everyone = [torch.empty_like(digest) for _ in range(dist.get_world_size())]
        dist.all_gather(everyone, digest)
        if any(not torch.equal(everyone[0], d) for d in everyone):
            raise ConfigError(
                f"ranks disagree on the run (config, seed, resumed generation or run_dir; rank {dist.get_rank()}: "
                f"generation {self.generation}, run_dir {str(self.run_dir)!r}); with torchrun pass the same hydra.run.dir to every rank"
            )

    def close(self) -> None:
        if self.evaluator is not None:
            self.evaluator.close()
            self.evaluator = None
        if self.metrics is not None:
            self.metrics.close()

    # ---- one generation ------------------------------------------------------------------
    def step(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        gen = self.generation
        state, population = self.optimizer.ask(self.state)
        center = self.optimizer.center(state)
        request = PopulationWithCenter(population, center)
        n = population.size
        episodes = _episodes(self.seed, TRAIN, gen, self.episodes_per_eval, len(self.task.envs))
        result = self.evaluator.evaluate(request, range(n + 1), episodes)
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
        if math.isfinite(center_return) and center_return > self.best["fitness"]:
            self.best = {"fitness": center_return, "generation": gen}
            if self.is_main:
                payload = self._checkpoint_payload(state)  # the centre that earned it, before `tell`
                payload["params"] = center.clone()
                checkpoint.atomic_save(payload, self.ckpt_dir / checkpoint.BEST)
        metrics["best_center_return"] = self.best["fitness"]
        if self.is_main:
            assert self.metrics is not None
            # The row first: a kill before `last` is saved replays generation g and rewrites its row.
            self.metrics.write(metrics)
            last = self._checkpoint_payload(self.state)
            last["params"] = self.optimizer.center(self.state).clone()
            checkpoint.atomic_save(last, self.ckpt_dir / checkpoint.LAST)
        return metrics

    def validation_due(self, every: int) -> bool:
        """Validation runs after generations g with (g + 1) % every == 0, counted from 0, resumed or not."""
        return every > 0 and self.generation > 0 and self.generation % every == 0

    def validate(self, episodes: int) -> dict[str, float]:
        center = self.optimizer.center(self.state)
        res = self.evaluator.evaluate(
            ExplicitPopulation(center.unsqueeze(0)),
            [0],
            _episodes(self.seed, VALIDATION, self.generation, episodes, len(self.task.envs)),
        )
        r = res.returns[0]
        return {"val_mean": float(np.mean(r)), "val_std": float(np.std(r)), "generation": self.generation}


def test_protocol(
    cfg: Mapping[str, Any],
    params: torch.Tensor,
    episodes: int,
    seed: int,
    early_stop: bool = False,
) -> dict[str, Any]:
    """The paper's test protocol: `episodes` lifetimes on every test env (every test
    body for envs with morphologies), each from fresh random initial weights, on env
    seeds disjoint from training and validation; no early stop unless asked."""
    task_cfg = cfg if early_stop else without_early_stop(cfg)
    task = build_task(task_cfg, phase="test")
    evaluator = make_evaluator(cfg["evaluator"], task, task_cfg, phase="test")
    try:
        plan = _episodes(seed, TEST, 0, episodes, len(task.envs))
        res = evaluator.evaluate(ExplicitPopulation(params.unsqueeze(0)), [0], plan)
    finally:
        evaluator.close()
    envs = {}
    for k, env in enumerate(task.envs):
        envs[env.name] = env_stats(env, res.returns[0][plan.env_index == k])
    out: dict[str, Any] = {"envs": envs, "early_stop": bool(early_stop), "seed": int(seed)}
    randoms = [envs[env.name] for env in task.envs if env.random_eval]
    if randoms:
        means = np.array([s["mean"] for s in randoms], dtype=np.float64)
        out["random_damages"] = {
            "count": len(randoms),
            "mean_of_means": float(np.nanmean(means)),
            "sd_of_means": float(np.nanstd(means)),
            "min": float(np.nanmin(means)),
            "median": float(np.nanmedian(means)),
            "max": float(np.nanmax(means)),
            "solved_fraction": float(np.mean([bool(s.get("solved")) for s in randoms])),
        }
    return out


def env_stats(env: Any, r: np.ndarray) -> dict[str, Any]:
    ok = r[np.isfinite(r)]  # a lifetime whose weights or simulator blew up has no return: counted apart
    stat = (lambda fn: float(fn(ok))) if len(ok) else (lambda fn: float("nan"))
    stats: dict[str, Any] = {
        "env_id": env.id,
        "episodes": int(len(r)),
        "mean": stat(np.mean),
        "sd": stat(np.std),
        "min": stat(np.min),
        "max": stat(np.max),
        "nonfinite": int(len(r) - len(ok)),
        "returns": [float(x) if np.isfinite(x) else None for x in r],
    }
    if env.seen is not None:
        stats["seen"] = bool(env.seen)
        damages = env.make_kwargs.get(env.morphology_kwarg) if env.morphology_kwarg else None
        stats["damages"] = damages or []
    if env.solved_threshold is not None:
        stats["solved_threshold"] = env.solved_threshold
        stats["solved"] = bool(len(ok)) and stats["mean"] >= env.solved_threshold
    return stats
