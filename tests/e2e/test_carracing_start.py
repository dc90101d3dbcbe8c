"""CarRacing gives a learning signal from generation 0 (issue 17, item 6).

With all-positive initial coefficients (the paper's text: U[0, 1]) every candidate's
outputs saturate within a few steps at steer = gas = brake = 1: the brake locks the
wheels, no candidate moves, and all score the same until the 20-step early stop.  The
default N(0, 1) (the reference code's) gives candidates that differ."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hebbian_es import config
from hebbian_es.core.rollout import run_lifetimes
from hebbian_es.core.task import TRAIN, build_task, episode_seeds
from hebbian_es.envs.runner import EnvRunner
from hebbian_es.envs.spec import ActionMapper, ObservationBatcher

pytestmark = pytest.mark.slow
POPULATION = 6


def _generation_zero(*overrides: str) -> tuple[np.ndarray, np.ndarray]:
    """Returns and last actions of POPULATION candidates around the initial centre (sigma 0.1)."""
    cfg = config.to_object(config.compose(["env=carracing", "rule=abcd", "run_dir=unused", *overrides]))
    task = build_task(cfg)
    spec = task.envs[0]
    centre = task.initial_center(cfg.seed)
    noise = torch.randn((POPULATION, centre.numel()), generator=torch.Generator().manual_seed(1))
    policy = task.policy(centre + 0.1 * noise)
    env_seeds, init_seeds = episode_seeds(cfg.seed, TRAIN, 0, 1)
    actions: list[np.ndarray] = []

    class LastActions:
        def on_actions(self, t: int, a: np.ndarray) -> np.ndarray:
            actions.append(np.asarray(a))
            return a

    result = run_lifetimes(
        policy, [EnvRunner(spec) for _ in range(POPULATION)], [int(env_seeds[0])] * POPULATION,
        [int(init_seeds[0])] * POPULATION, ObservationBatcher(spec.observation), ActionMapper(spec.action), 200,
        hooks=[LastActions()],
    )  # fmt: skip
    return result.returns, actions[min(10, len(actions) - 1)]


def test_default_coefficients_give_distinct_candidates_at_generation_zero() -> None:
    torch.set_num_threads(1)
    returns, _ = _generation_zero()
    assert np.isfinite(returns).all()
    assert returns.max() > returns.min(), returns  # the ES has something to rank


def test_all_positive_coefficients_lock_every_car_alike() -> None:
    torch.set_num_threads(1)
    returns, actions = _generation_zero("coefficient_init.kind=uniform", "coefficient_init.low=0", "coefficient_init.high=1")
    assert returns.max() == returns.min(), returns
    assert (actions[:, 2] > 0.9).mean() >= 0.5  # brake >= 0.9 locks the wheels (gymnasium car_dynamics)
