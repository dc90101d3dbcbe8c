"""Runs launched on the real local SLURM cluster (scripts/slurm/start-cluster.sh) through
Hydra's submitit launcher: a 2-task distributed run, a tiny sweep, and a requeue."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hebbian_es import config

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

TINY = [
    "network=small", "optimizer.popsize=8", "fitness.episodes=2", "validation.every=2", "validation.episodes=3",
    "test.episodes=3", "progress_bar=false", "env.max_episode_steps=100",
]  # fmt: skip


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for var in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    env["WANDB_MODE"] = "offline"
    return env


def _launch(cluster, sweep_dir: Path, *overrides: str, timeout: float = 420, wait: bool = True):
    cmd = [
        sys.executable, "-m", "hebbian_es", "-m", "hydra/launcher=slurm", "hydra.launcher.timeout_min=10",
        f"hydra.launcher.partition={cluster.partition}", f"hydra.sweep.dir={sweep_dir}", *overrides,
    ]  # fmt: skip
    if not wait:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env())
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env())


def _centre(run_dir: Path) -> torch.Tensor:
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)["params"]


def _serial(run_dir: Path, *overrides: str) -> Path:
    from hebbian_es.run.train import train

    train(config.compose([f"run_dir={run_dir}", "evaluator=serial", *overrides]))
    return run_dir


def test_two_slurm_tasks_are_two_ranks_with_the_serial_centre(slurm_cluster, tmp_path):
    run = [*TINY, "generations=3"]
    serial = _serial(tmp_path / "serial", *run)
    sweep = tmp_path / "sweep"
    proc = _launch(slurm_cluster, sweep, "evaluator=distributed", "hydra.launcher.tasks_per_node=2", *run)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    job = sweep / "0"
    assert torch.equal(_centre(job), _centre(serial))  # bit for bit across scale
    assert len((job / "metrics.jsonl").read_text().splitlines()) == 3  # rank 0 alone wrote rows
    assert (job / "train.log").exists() and (job / "train.rank1.log").exists()
    logs = "".join(p.read_text() for p in (sweep / ".submitit").rglob("*_log.out"))
    assert json.loads((job / "status.json").read_text())["status"] == "finished", logs[-2000:]


def test_tiny_rule_sweep_runs_as_a_job_array(slurm_cluster, tmp_path):
    sweep = tmp_path / "sweep"
    proc = _launch(slurm_cluster, sweep, "sweep=rule_ablation", "rule=abcd,static", "seed=0", "generations=2", *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for rule in ("abcd", "static"):
        run = sweep / rule / "s0"
        status = json.loads((run / "status.json").read_text())
        assert status["status"] == "finished" and status["choices"]["rule"] == rule
        summary = json.loads((run / "summary.json").read_text())
        assert summary["rule"] == rule and summary["generations_done"] == 2 and "test" in summary
        assert (run / "checkpoints" / "last.pt").exists() and (run / "fitness_curve.png").exists()
    # one array: both jobs share the array's id
    ids = {p.name.split("_")[0] for p in (sweep / ".submitit").rglob("*_log.out")}
    assert len(ids) == 1, ids


def _job_id(sweep: Path, deadline: float) -> str:
    while time.time() < deadline:
        for p in (sweep / ".submitit").rglob("*_0_log.out") if (sweep / ".submitit").exists() else []:
            return p.name.split("_")[0]
        time.sleep(0.5)
    raise AssertionError("the job never started")


def _generation(run: Path) -> int:
    try:
        return int(torch.load(run / "checkpoints" / "last.pt", weights_only=False)["generation"])
    except Exception:  # not there yet, or being replaced
        return -1


GENS = 40


def test_a_preempted_job_is_requeued_and_resumes_from_its_checkpoint(slurm_cluster, tmp_path):
    # Pendulum: fixed 200-step lifetimes, so generations take long enough to interrupt one.
    run = [*TINY, "env=pendulum", f"generations={GENS}", "validation.every=0", "env.max_episode_steps=200"]
    serial = _serial(tmp_path / "serial", *run)
    sweep = tmp_path / "sweep"
    proc = _launch(slurm_cluster, sweep, *run, wait=False)
    try:
        deadline = time.time() + 240
        job_id = _job_id(sweep, deadline)
        job = sweep / "0"
        while _generation(job) < 3 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert 3 <= _generation(job) < GENS, "the run ended before it could be pre-empted"
        # What SLURM does on pre-emption (submitit's own test helper does the same): TERM, then USR2.
        subprocess.check_call(["scancel", job_id, "--signal", "SIGTERM"])
        subprocess.check_call(["scancel", job_id, "--signal", "USR2"])  # submitit's requeue signal (--signal=USR2@90)
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            subprocess.call(["scancel", _job_id(sweep, time.time() + 1)])
    assert proc.returncode == 0, out[-3000:]
    logs = "".join(p.read_text() for p in (sweep / ".submitit").rglob("*_log.*"))
    assert "requeued" in logs.lower() or "preempted" in logs.lower(), logs[-2000:]
    assert "resuming from generation" in (job / "train.log").read_text()
    assert torch.equal(_centre(job), _centre(serial))  # same centre as the uninterrupted run
    gens = [json.loads(line)["generation"] for line in (job / "metrics.jsonl").read_text().splitlines()]
    assert gens == list(range(GENS))  # every generation exactly once
