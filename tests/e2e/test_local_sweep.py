"""`hydra/launcher=local` is sized to the machine, tells its progress and ends with a summary."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _sweep(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "hebbian_es", "-m", "hydra/launcher=local", "optimizer.popsize=8", "generations=2",
           "env.max_episode_steps=50", "fitness.episodes=1", "progress_bar=false",
           "test.after_fit=false", "validation.every=0", f"hydra.sweep.dir={tmp_path / 'sweep'}", *overrides]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)


def test_jobs_run_at_most_max_parallel_at_once_and_a_failed_one_is_named(tmp_path: Path) -> None:
    res = _sweep(tmp_path, "evaluator.workers=1", "hydra.launcher.max_parallel=2", "optimizer.popsize=8,7,10")
    lines = [line for line in res.stderr.splitlines() if line.startswith("[sweep]")]
    assert lines[0].startswith("[sweep] 3 jobs, at most 2 at a time"), res.stderr[-3000:]
    running = [int(m.group(1)) for line in lines if (m := re.search(r", (\d+) running,", line))]
    assert running and max(running) <= 2
    assert sum(" started: " in line for line in lines) == 3
    assert "[sweep] summary: 3 jobs in" in res.stderr and "2 ended, 1 failed" in res.stderr
    failed = [line for line in lines if line.startswith("[sweep]   failed #1 (optimizer.popsize=7)")]
    assert failed and "popsize=7" in failed[0], res.stderr[-3000:]
    assert f"compare them: python -m hebbian_es.report sweep={tmp_path / 'sweep'}" in res.stderr
    assert res.returncode == 1  # a failed job fails the sweep, in one line after the summary
    assert res.stderr.strip().splitlines()[-1].startswith("error: a sweep job failed: optimizer.popsize=7")
    assert "Traceback" not in res.stderr


def test_by_default_jobs_with_a_worker_per_core_run_one_at_a_time(tmp_path: Path) -> None:
    res = _sweep(tmp_path, "generations=1", "seed=0,1")  # evaluator=local, workers=auto: one per core
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"[sweep] 2 jobs, at most 1 at a time ({os.cpu_count()} cores)" in res.stderr
    assert not re.search(r", 2 running,", res.stderr)


def test_a_bad_max_parallel_is_one_line(tmp_path: Path) -> None:
    res = _sweep(tmp_path, "hydra.launcher.max_parallel=0", "seed=0,1")
    assert res.returncode == 2 and res.stderr.strip() == "error: hydra.launcher.max_parallel=0: must be >= 1 or null (auto)"
