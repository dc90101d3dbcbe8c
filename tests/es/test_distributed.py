"""evaluator=distributed: ranks split the work, gather only returns, and give the
same numbers (and the same centre after k generations) as 1 or 2 local workers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as tmp_mp
from hebbian_es import config
from hebbian_es.errors import ConfigError

SMALL = ["network=small", "env.max_episode_steps=60"]


TRACED = ("env.solved_threshold=12",)  # CartPole lifetimes of a few dozen steps: some reach it


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _compose(overrides: list[str]) -> config.TrainConfig:
    """The compose_config fixture's work, for the spawned rank processes (no fixtures there)."""
    return config.to_object(config.compose(["run_dir=unused", *SMALL, *overrides]))


def _requests(task):
    from hebbian_es.es.evaluators import Episodes
    from hebbian_es.es.base import ExplicitPopulation, PopulationWithCenter
    from hebbian_es.es.openai_es import OpenAIES
    from hebbian_es.core.task import episode_seeds

    es = OpenAIES(popsize=6)
    _, pop = es.ask(es.init(task.initial_center(0) * 0.1, seed=0))
    env_seeds, init_seeds = episode_seeds(0, 0, 0, 3)
    # traced: the drawdowns of the monotone "solved" check travel like the returns
    episodes = Episodes(np.zeros(3, dtype=np.int64), env_seeds, init_seeds, trace=True)
    return [
        (PopulationWithCenter(pop, pop.center), list(range(7)), episodes),  # 7 members over 2 ranks: 4 + 3
        (ExplicitPopulation(pop.center.unsqueeze(0)), [0], episodes),  # 1 member: episodes split 2 + 1
        (PopulationWithCenter(pop, pop.center), [5, 2], episodes.subset(np.array([1]))),  # 1 episode
    ]


def _rank_main(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    from hebbian_es.es import distributed
    from hebbian_es.es.evaluators import make_evaluator
    from hebbian_es.core.task import build_task

    cfg = _compose(["evaluator=distributed", *TRACED])
    task = build_task(cfg)
    evaluator = make_evaluator(cfg.evaluator, task)
    results = [evaluator.evaluate(*req) for req in _requests(task)]
    torch.save([(r.returns, r.mean_sq, r.env_steps, r.drawdown) for r in results], f"{out}.{rank}")
    evaluator.close()
    distributed.shutdown()


def test_two_ranks_give_the_in_process_returns(compose_config, tmp_path):
    from hebbian_es.es.evaluators import SerialEvaluator
    from hebbian_es.core.task import build_task

    cfg = compose_config(*SMALL, "evaluator=serial", *TRACED)
    task = build_task(cfg)
    serial = SerialEvaluator(task, cfg.evaluator.batch_size)
    expected = [serial.evaluate(*req) for req in _requests(task)]
    serial.close()

    out = str(tmp_path / "ranks")
    tmp_mp.start_processes(_rank_main, args=(2, _free_port(), out), nprocs=2, start_method="spawn")
    for rank in range(2):
        got = torch.load(f"{out}.{rank}", weights_only=False)
        for (returns, mean_sq, steps, drawdown), want in zip(got, expected):
            assert returns.shape == want.returns.shape
            assert np.array_equal(returns, want.returns)  # bit for bit, on every rank
            assert np.array_equal(drawdown, want.drawdown, equal_nan=True)
            assert np.array_equal(mean_sq, want.mean_sq)
            assert steps == want.env_steps


def test_a_rank_without_the_distributed_evaluator_is_refused(compose_config, monkeypatch):
    from hebbian_es.es.evaluators import make_evaluator
    from hebbian_es.core.task import build_task

    cfg = compose_config(*SMALL, "evaluator=local")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="evaluator=distributed"):
        make_evaluator(cfg.evaluator, build_task(cfg))


def test_rank_comes_from_the_launcher_environment(monkeypatch):
    from hebbian_es.config import rank_suffix
    from hebbian_es.es.distributed import rank_info

    for var in ("RANK", "WORLD_SIZE", "SLURM_STEP_NUM_TASKS", "SLURM_PROCID"):
        monkeypatch.delenv(var, raising=False)
    assert (rank_info().rank, rank_info().world_size, rank_suffix()) == (0, 1, "")
    monkeypatch.setenv("SLURM_PROCID", "1")
    monkeypatch.setenv("SLURM_NTASKS", "2")  # an allocation, but no job step: a single process
    assert rank_info().world_size == 1
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "2")  # a task of a 2-task step (srun/submitit)
    assert (rank_info().rank, rank_info().world_size, rank_suffix()) == (1, 2, ".rank1")


def test_unknown_backend_is_refused():
    from hebbian_es.es.distributed import init_process_group

    with pytest.raises(ConfigError, match="evaluator.backend='mpi'; allowed: \\['gloo'\\]"):
        init_process_group("mpi")


def _disagreeing_rank(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    from hebbian_es.es import distributed
    from hebbian_es.run.rundir import RunDir
    from hebbian_es.run.train import build_run

    cfg = _compose(["evaluator=distributed", f"seed={rank}"])  # each rank another seed
    run = build_run(cfg, RunDir(Path(out)))
    try:
        run.start(None)
    except ConfigError as exc:
        Path(f"{out}.{rank}").write_text(str(exc))
    finally:
        run.close_evaluator()
        distributed.shutdown()


def test_ranks_that_disagree_on_the_run_all_stop_with_an_error(tmp_path):
    out = str(tmp_path / "run")
    tmp_mp.start_processes(_disagreeing_rank, args=(2, _free_port(), out), nprocs=2, start_method="spawn")
    for rank in range(2):
        assert "ranks disagree on the run" in Path(f"{out}.{rank}").read_text()
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


K_GENERATIONS = 3
RUN = [
    "network=small", "optimizer.popsize=8", f"generations={K_GENERATIONS}", "fitness.episodes=2",
    "validation.every=2", "validation.episodes=3", "test.episodes=3", "progress_bar=false", "env.max_episode_steps=100",
]  # fmt: skip


def _centre(run_dir: Path) -> torch.Tensor:
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)["params"]


def _cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    return env


@pytest.fixture(scope="module")
def serial_run(compose_config, tmp_path_factory) -> Path:
    from hebbian_es.run.train import train

    run_dir = tmp_path_factory.mktemp("serial")
    train(compose_config.raw(f"run_dir={run_dir}", "evaluator=serial", *RUN))
    return run_dir


@pytest.mark.slow
def test_same_centre_with_1_worker_2_workers_and_2_ranks(compose_config, serial_run, tmp_path):
    from hebbian_es.run.train import train

    train(compose_config.raw(f"run_dir={tmp_path / 'workers'}", "evaluator=local", "evaluator.workers=2", *RUN))
    ranks_dir = tmp_path / "ranks"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(_free_port()),
        "-m", "hebbian_es", "evaluator=distributed", f"hydra.run.dir={ranks_dir}", *RUN,
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_cli_env())
    assert proc.returncode == 0, proc.stderr[-3000:]

    centre = _centre(serial_run)
    assert torch.equal(centre, _centre(tmp_path / "workers"))
    assert torch.equal(centre, _centre(ranks_dir))
    # Rank 0 alone wrote: one metrics row per generation, the same validation and test numbers.
    rows = (ranks_dir / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == K_GENERATIONS
    assert (ranks_dir / "validation.jsonl").read_text() == (serial_run / "validation.jsonl").read_text()
    import json

    test_ranks = json.loads((ranks_dir / "test_last.json").read_text())["envs"]
    test_serial = json.loads((serial_run / "test_last.json").read_text())["envs"]
    assert test_ranks["cartpole"]["returns"] == test_serial["cartpole"]["returns"]
    assert (ranks_dir / "train.log").exists() and (ranks_dir / "train.rank1.log").exists()
    assert proc.stdout.count("episodes") == 1  # the test table is printed once, by rank 0
