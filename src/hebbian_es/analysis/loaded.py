"""A run loaded for analysis: the test protocol's agent, the bodies analysed and the lifetimes run.

Loading goes through the one test protocol (`hebbian_es.run.protocol.load_agent`): the
same checks, the same test-phase task (early stop off unless asked), the same lifetimes
(`test_lifetimes`: lifetime i here is lifetime i of `python -m hebbian_es.evaluate`).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from hebbian_es.analysis import progress
from hebbian_es.core.rollout import LifetimeResult, RecordSpec, run_lifetimes
from hebbian_es.core.task import Task
from hebbian_es.envs.runner import EnvPool, EnvRunner
from hebbian_es.envs.spec import ActionMapper, EnvSpec, ObservationBatcher
from hebbian_es.errors import ConfigError
from hebbian_es.run.protocol import load_agent, test_lifetimes
from hebbian_es.run.rundir import RunDir

DEFAULT_BATCH_SIZE = 64  # lifetimes per rollout batch when the run's evaluator names none


class LoadedRun:
    """A run directory's test-phase task (test bodies), checkpoint and the lifetimes the analyses run."""

    def __init__(
        self, run: str | Path, which: str = "last", seed: int | None = None, early_stop: bool = False,
        bodies: Any = None, batch_size: int | None = None, key: str = "run",
    ) -> None:
        self.agent = load_agent(run, which, seed=seed, early_stop=early_stop, key=key)
        self.rundir: RunDir = self.agent.run
        self.dir: Path = self.rundir.path
        self.cfg = self.agent.cfg
        self.task: Task = self.agent.task
        self.params: torch.Tensor = self.agent.params
        self.checkpoint: Path = self.agent.checkpoint
        self.generation: int = self.agent.generation
        self.seed: int = self.agent.seed
        self.batch_size = int(batch_size or self.setting("evaluator", "batch_size") or DEFAULT_BATCH_SIZE)
        self.envs = select_bodies(self.task.envs, bodies)
        self.pool = EnvPool(max_specs=1)  # analyses go body by body; 29 MB per pybullet instance
        self.horizons: dict[str, int] = {}  # steps each body's episode can last, where an analysis asked

    # ---- the run's settings ------------------------------------------------------------------
    def setting(self, *path: str, default: Any = None) -> Any:
        """A value of the run's config (a dict or typed config object), `default` where absent."""
        node: Any = self.cfg
        for name in path:
            node = node.get(name) if isinstance(node, Mapping) else getattr(node, name, None)
            if node is None:
                return default
        return node

    def section(self, *path: str) -> dict[str, Any] | None:
        """A config section as a plain dict (None where absent)."""
        node = self.setting(*path)
        if node is None:
            return None
        return dataclasses.asdict(node) if dataclasses.is_dataclass(node) else dict(node)

    @property
    def name(self) -> str:
        return self.rundir.name

    @property
    def rule(self) -> str:
        return self.task.rule.name

    @property
    def plastic(self) -> bool:
        return self.task.rule.plastic and bool(self.task.network.plastic_indices(self.task.rule))

    @property
    def reward_label(self) -> str:
        """The y-axis name of a per-step reward: env.reward_label in the run's config, else 'reward'."""
        return str(self.setting("env", "reward_label") or "reward")

    def title(self, what: str) -> str:
        """A figure title: env, rule, run and generation over `what`."""
        return f"{self.setting('env', 'name')} · rule={self.rule} · {self.name} (generation {self.generation})\n{what}"

    def describe(self) -> dict[str, Any]:
        return self.agent.describe()

    # ---- lifetimes -------------------------------------------------------------------------------
    def perturbed_layers(self) -> list[int]:
        """The plastic FC layers; every FC layer of a static network."""
        plastic = self.task.network.plastic_indices(self.task.rule)
        return list(plastic) if plastic else list(range(len(self.task.network.fc_shapes)))

    def lifetimes(self, n: int, first: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(env seeds, init seeds) of test lifetimes first..first+n-1, as evaluate runs them."""
        return test_lifetimes(self.seed, n, first)

    def horizon(self, env: EnvSpec) -> int:
        """Steps an episode can last: what the env's time limit leaves after reset (the ant's
        settling steps count inside its limit), capped by env.step_limit."""
        if env.name not in self.horizons:
            # A throwaway instance: a pooled one, once reset, would start lifetime 0 from a
            # later reset than the test protocol's fresh instance, which matters for any env
            # whose reset depends on its history (the ant's did: reset_as_built=false).
            runner = EnvRunner(env)
            try:
                runner.reset(int(self.lifetimes(1)[0][0]))
                self.horizons[env.name] = min(self.task.max_steps, steps_left(runner.env))
            finally:
                runner.close()
        return self.horizons[env.name]

    def rollout(
        self,
        env: EnvSpec,
        params: torch.Tensor,
        env_seeds: Sequence[int],
        init_seeds: Sequence[int],
        hooks: Sequence[Any] = (),
        record: RecordSpec = RecordSpec(rewards=True),
        runners: Sequence[EnvRunner] | None = None,
    ) -> tuple[LifetimeResult, Any]:
        """One batch of lifetimes (row b: params[b]) through the one rollout loop."""
        rows = params if params.dim() == 2 else params.unsqueeze(0).repeat(len(env_seeds), 1)
        policy = self.task.policy(rows.contiguous())
        runners = list(runners) if runners is not None else self.pool.get(env, len(env_seeds))
        result = run_lifetimes(
            policy, runners, [int(s) for s in env_seeds], [int(s) for s in init_seeds],
            ObservationBatcher(env.observation), ActionMapper(env.action), self.task.max_steps, hooks, record,
        )
        progress.advance(len(env_seeds), f"{self.name}/{env.name}")  # the analysis's progress line
        return result, policy

    def close(self) -> None:
        self.pool.close()


def steps_left(env: Any) -> int:
    """Steps the innermost gymnasium TimeLimit allows after the reset just done (a huge number if none)."""
    import gymnasium as gym

    left = sys.maxsize
    while env is not None:
        if isinstance(env, gym.wrappers.TimeLimit):
            left = min(left, int(env._max_episode_steps) - int(env._elapsed_steps))
        env = getattr(env, "env", None) if isinstance(env, gym.Wrapper) else None
    return left


def select_bodies(envs: Sequence[EnvSpec], bodies: Any) -> list[EnvSpec]:
    """Default: the named test bodies (morphology.test), not the fixed random damages."""
    names = [e.name for e in envs]
    if bodies is None:
        chosen = [e for e in envs if not e.random_eval]
        return chosen or list(envs)
    if bodies == "all":
        return list(envs)
    wanted = [bodies] if isinstance(bodies, str) else bodies
    if not isinstance(wanted, list) or not wanted or not all(isinstance(b, str) for b in wanted):
        raise ConfigError(f"bodies={bodies!r}: give a body name, a list [a,b] or all; allowed names: {', '.join(names)}")
    unknown = [b for b in wanted if b not in names]
    if unknown:
        raise ConfigError(f"bodies={unknown} not among this run's test envs; allowed: {', '.join(names)}, all")
    return [e for e in envs if e.name in wanted]
