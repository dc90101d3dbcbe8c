"""Worker processes give the same returns as in-process evaluation, however the work is split."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hebbian_es.es.evaluators import Episodes, ProcessEvaluator, SerialEvaluator
from hebbian_es.es.base import ExplicitPopulation
from hebbian_es.es.openai_es import OpenAIES
from hebbian_es.core.task import build_task, episode_seeds


@pytest.fixture(scope="module")
def setup(compose_config):
    task = build_task(compose_config("network=small", "env.max_episode_steps=60"))
    es = OpenAIES(popsize=6)
    state, pop = es.ask(es.init(task.initial_center(0) * 0.1, seed=0))
    env_seeds, init_seeds = episode_seeds(0, 0, 0, 3)
    episodes = Episodes(np.zeros(3, dtype=np.int64), env_seeds, init_seeds)
    serial = SerialEvaluator(task, batch_size=4)
    workers = ProcessEvaluator(task, workers=2, batch_size=5, threads=1)  # the task goes to the workers pickled
    yield pop, episodes, serial, workers
    serial.close()
    workers.close()


def test_members_split_across_workers_match_in_process(setup):
    pop, episodes, serial, workers = setup
    a = serial.evaluate(pop, range(pop.size), episodes)
    b = workers.evaluate(pop, range(pop.size), episodes)
    assert np.array_equal(a.returns, b.returns) and a.env_steps == b.env_steps
    assert np.allclose(a.mean_sq, b.mean_sq)


def test_episodes_split_across_workers_for_a_single_member(setup):
    pop, episodes, serial, workers = setup
    center = ExplicitPopulation(pop.center.unsqueeze(0))
    a = serial.evaluate(center, [0], episodes)
    b = workers.evaluate(center, [0], episodes)
    assert b.returns.shape == (1, 3) and np.array_equal(a.returns, b.returns)


@pytest.mark.slow
def test_same_seed_same_centre_with_1_and_2_workers(compose_config, tmp_path):
    from hebbian_es.run.train import train

    centres = []
    for i, evaluator in enumerate((["evaluator=serial"], ["evaluator=local", "evaluator.workers=2"])):
        cfg = compose_config.raw(
            f"run_dir={tmp_path / str(i)}", "network=small", "optimizer.popsize=8", "generations=4",
            "fitness.episodes=2", "validation.every=0", "test.after_fit=false", "progress_bar=false",
            *evaluator,
        )  # fmt: skip
        train(cfg)
        centres.append(torch.load(tmp_path / str(i) / "checkpoints" / "last.pt", weights_only=False)["params"])
    assert torch.equal(centres[0], centres[1])
