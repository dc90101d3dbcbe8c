"""The rollout loop on a batched env (env.vector) gives the returns of one gymnasium env per
lifetime, bit for bit, whatever the batch size and worker count; with hidden variation too."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hebbian_es import config
from hebbian_es.core.task import build_task
from hebbian_es.es.base import ExplicitPopulation
from hebbian_es.es.evaluators import ProcessEvaluator, SerialEvaluator
from hebbian_es.run.protocol import episodes_of

pytestmark = pytest.mark.filterwarnings("ignore:.*step\\(\\)' even though this environment has already returned terminated")


def returns(overrides: list[str], batch: int, workers: int = 1) -> np.ndarray:
    task = build_task(config.to_object(config.compose(["run_dir=unused", "network=small", *overrides])))
    center = task.initial_center(0)
    gen = torch.Generator().manual_seed(1)
    params = center + 0.5 * torch.randn((6, center.numel()), generator=gen)
    episodes = episodes_of(0, 0, 0, 3, len(task.envs))
    ev = SerialEvaluator(task, batch) if workers == 1 else ProcessEvaluator(task, workers, batch, 1)
    try:
        res = ev.evaluate(ExplicitPopulation(params), range(6), episodes)
    finally:
        ev.close()
    assert res.env_steps > 6 * len(episodes)
    return res.returns


@pytest.mark.parametrize("env", ["cartpole", "pendulum", "acrobot"])
def test_vector_path_equals_per_env_path_whatever_the_batch(env: str) -> None:
    ref = returns([f"env={env}", "env.vector=null"], 64)
    for batch in (1, 5, 64):
        assert np.array_equal(returns([f"env={env}"], batch), ref), batch


def test_variation_returns_do_not_depend_on_batch_or_workers() -> None:
    over = ["variation=cartpole_physics", "rule=abc"]
    ref = returns(over, 64)
    assert np.array_equal(returns(over, 4), ref)
    assert np.array_equal(returns(over, 7, workers=2), ref)
