"""Lifetime i is the same bits whatever shares its batch and however many workers run it
(README, "Same bits"): lifetimes 0-1 alone and inside batches of 8 and 40, on a pixel env and on
vector envs, through the rollout loop and through the evaluators.  The batch of 40 matters: torch
runs the last numel % 32 elements of an elementwise op in a scalar loop, so with 3 or fewer
outputs per lifetime a batch of 8 is all tail, like a batch of 2; in a batch of 40 lifetimes 0-1
take the vector path (hebbian_es/numerics.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hebbian_es.core.rollout import RecordSpec, run_lifetimes
from hebbian_es.core.task import build_task
from hebbian_es.envs.runner import EnvRunner
from hebbian_es.envs.spec import ActionMapper, ObservationBatcher
from hebbian_es.es.base import ExplicitPopulation
from hebbian_es.es.evaluators import ProcessEvaluator, SerialEvaluator
from hebbian_es.run import protocol

ENVS = {
    # the paper's CarRacing network on pixels: conv features, W/max|W|, tanh and sigmoid action squashing
    "pixels": ("env=carracing_fast", "env.max_episode_steps=25"),
    # a sigmoid output layer on a continuous-action vector env: every step's output through the tail-prone path
    "vector": ("env=pendulum", "network=small", "network.output_activation=sigmoid"),
    "quadruped": ("env=ant_fast", "network=small", "env.max_episode_steps=60"),
}


def _agent(compose_config, overrides):
    task = build_task(compose_config(*overrides))
    params = task.initial_center(7)
    params[task.layout.kinds()] *= 0.3  # coefficients of a moderate size: the net moves, nothing saturates at once
    return task, params


def _trace(task, params, rows, steps=25):
    spec = task.envs[0]
    env_seeds, init_seeds = protocol.test_lifetimes(0, 40)
    policy = task.policy(params.unsqueeze(0).repeat(len(rows), 1))
    result = run_lifetimes(
        policy, [EnvRunner(spec) for _ in rows], env_seeds[rows], init_seeds[rows], ObservationBatcher(spec.observation),
        ActionMapper(spec.action), steps, record=RecordSpec(rewards=True, actions=True, weights=True, activations=True),
    )
    return result


@pytest.mark.parametrize("kind", ["pixels", "vector", "quadruped"])
def test_a_lifetime_is_the_same_alone_and_inside_batches_of_8_and_40(compose_config, kind) -> None:
    task, params = _agent(compose_config, ENVS[kind])
    pair = _trace(task, params, [0, 1])
    for n in (8, 40):
        batch = _trace(task, params, list(range(n)))
        assert np.array_equal(pair.returns, batch.returns[:2]), n
        assert np.array_equal(pair.rewards, batch.rewards[:2, : pair.rewards.shape[1]], equal_nan=True), n
        assert np.array_equal(pair.actions, batch.actions[:2, : pair.actions.shape[1]], equal_nan=True), n
        for a, b in zip(pair.activations, batch.activations):  # every layer's activity, the output's included
            assert np.array_equal(a, b[:, :2]), n
        for a, b in zip(pair.weights, batch.weights):
            assert np.array_equal(a, b[:, :2]), n


@pytest.mark.parametrize("kind", ["pixels", "vector"])
def test_evaluators_give_lifetime_returns_that_do_not_depend_on_batch_size_or_workers(compose_config, kind) -> None:
    task, params = _agent(compose_config, ENVS[kind])
    agent = ExplicitPopulation(params.unsqueeze(0))
    many = protocol.plan(0, 40, 1)
    returns = {}
    for name, evaluator, lifetimes in (
        ("serial, batch 2, 2 lifetimes", SerialEvaluator(task, batch_size=2), protocol.plan(0, 2, 1)),
        ("serial, batch 8, 8 lifetimes", SerialEvaluator(task, batch_size=8), protocol.plan(0, 8, 1)),
        ("serial, batch 40", SerialEvaluator(task, batch_size=40), many),
        ("serial, batch 3", SerialEvaluator(task, batch_size=3), many),
        ("2 workers, batch 40", ProcessEvaluator(task, workers=2, batch_size=40, threads=1), many),
    ):
        try:
            returns[name] = evaluator.evaluate(agent, [0], lifetimes).returns[0]
        finally:
            evaluator.close()
    ref = returns["serial, batch 40"]
    assert len(set(np.round(ref, 6))) > 1  # lifetimes differ from each other: the comparison means something
    for name, r in returns.items():
        assert np.array_equal(r, ref[: len(r)]), name
