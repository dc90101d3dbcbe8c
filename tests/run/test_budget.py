"""A run stopped by its wall-clock budget and continued equals an uninterrupted run, bit for bit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hebbian_es.run.rundir import RunDir, Status
from hebbian_es.run.train import train

TIMING = ("gen_seconds", "steps_per_s", "wall_time")
RUN = ("debug=default", "generations=4", "validation.every=2", "validation.episodes=2", "test.episodes=2")


def untimed(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


@pytest.mark.slow
def test_budget_stops_at_generation_boundaries_and_the_same_command_continues(tmp_path: Path, compose_config) -> None:
    whole = RunDir(tmp_path / "whole")
    train(compose_config.raw(*RUN, f"run_dir={whole.path}"))
    pieces = RunDir(tmp_path / "pieces")
    statuses = []
    for _ in range(10):  # a tiny budget: every start does one generation, then stops
        train(compose_config.raw(*RUN, f"run_dir={pieces.path}", "stop_after_minutes=0.00001"))
        statuses.append(pieces.read_status()["status"])
        if statuses[-1] == Status.FINISHED.value:
            break
    assert statuses == [Status.STOPPED.value] * 3 + [Status.FINISHED.value]
    assert untimed(pieces.metrics_rows()) == untimed(whole.metrics_rows())
    assert pieces.validation_rows() == whole.validation_rows()
    a, b = (torch.load(r.last, weights_only=False) for r in (whole, pieces))
    assert torch.equal(a["params"], b["params"]) and a["generation"] == b["generation"] == 4
    assert pieces.read_test("last")["envs"] == whole.read_test("last")["envs"]


def test_a_stopped_run_says_why(tmp_path: Path, compose_config) -> None:
    rd = RunDir(tmp_path / "run")
    train(compose_config.raw(*RUN, f"run_dir={rd.path}", "stop_after_minutes=0.00001"))
    status = rd.read_status()
    assert status["status"] == Status.STOPPED.value
    assert "stop_after_minutes=1e-05 spent after generation 0" in status["error"]
    assert not rd.test_results("last").exists()  # no test protocol on a stopped run


def test_the_cli_exit_code_tells_stopped_from_finished(tmp_path: Path) -> None:
    import subprocess
    import sys

    from hebbian_es.__main__ import EXIT_STOPPED

    cmd = [sys.executable, "-m", "hebbian_es", *RUN, "progress_bar=false", f"hydra.run.dir={tmp_path / 'run'}"]
    stopped = subprocess.run([*cmd, "stop_after_minutes=0.00001"], capture_output=True, text=True, timeout=300)
    assert stopped.returncode == EXIT_STOPPED == 3, stopped.stderr[-2000:]
    assert RunDir(tmp_path / "run").read_status()["status"] == Status.STOPPED.value
    finished = subprocess.run(cmd, capture_output=True, text=True, timeout=300)  # continues to the end
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert RunDir(tmp_path / "run").read_status()["status"] == Status.FINISHED.value


@pytest.mark.slow
def test_a_quadruped_run_continued_on_fresh_env_instances_equals_an_uninterrupted_one(tmp_path: Path, compose_config) -> None:
    """A continued run builds new env instances.  AntBulletEnv-v0 reuses its world, and its first
    reset differs from later ones (the floor joins body_xyz's parts), so with reused-instance
    resets the fitness after a resume differed in the 6th digit; every reset is now a first one."""
    run = ("debug=default", "env=ant_fast", "optimizer.popsize=4", "generations=3", "env.max_episode_steps=60",
           "validation.every=0", "test.after_fit=false")  # fmt: skip
    whole = RunDir(tmp_path / "whole")
    train(compose_config.raw(*run, f"run_dir={whole.path}"))
    pieces = RunDir(tmp_path / "pieces")
    for _ in range(3):
        train(compose_config.raw(*run, f"run_dir={pieces.path}", "stop_after_minutes=0.00001"))
    assert pieces.read_status()["status"] == Status.FINISHED.value
    assert untimed(pieces.metrics_rows()) == untimed(whole.metrics_rows())
    a, b = (torch.load(r.last, weights_only=False) for r in (whole, pieces))
    assert torch.equal(a["params"], b["params"])
