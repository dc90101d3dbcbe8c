"""The benchmark scripts keep running (their timings are printed, never asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
