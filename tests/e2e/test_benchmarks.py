"""The benchmark scripts keep running (their timings are printed, never asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_step_benchmark_prints_its_table() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_step.py"), "--envs", "cartpole", "--batch", "2", "--steps", "20", "--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    header, row = done.stdout.strip().splitlines()[-2:]
    assert header.split()[:3] == ["env", "baseline", "env"] and row.split()[0] == "cartpole"
    assert len(row.split()) == len(header.split())


def _run(*args: str) -> list[str]:
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()


def test_es_benchmark_prints_its_table() -> None:
    header, row = _run(str(ROOT / "benchmarks" / "bench_es.py"), "--dim", "1000", "--popsize", "10", "--repeats", "1")[-2:]
    assert "ask+tell" in header and len(row.split()) == 4


def test_worker_benchmark_prints_its_table() -> None:
    out = _run(
        str(ROOT / "benchmarks" / "bench_workers.py"),
        "--env", "cartpole", "--popsize", "4", "--steps", "20", "--workers", "2", "--ranks", "2", "--repeats", "1",
    )  # fmt: skip
    assert out[-3].startswith("1 process") and out[-2].startswith("2 workers") and out[-1].startswith("2 ranks")


def test_vector_benchmark_prints_its_table_and_the_same_centre() -> None:
    out = _run(str(ROOT / "benchmarks" / "bench_vector.py"), "--generations", "1", "--phases", "small_full", "--workers", "1")
    header, per_env, vector = out[-3:]
    assert header.split()[:2] == ["phase", "path"]
    assert per_env.split()[:2] == ["small_full", "per-env"] and vector.split()[:2] == ["small_full", "vector"]
    assert per_env.split()[2] == vector.split()[2] and vector.endswith("yes")  # same env steps, same centre
