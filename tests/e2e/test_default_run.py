"""The README's default-run curve (docs/results/default_cartpole_abcd_validation.jsonl) is what
the code gives: its first 20 generations re-run here must reproduce the shipped validation
rows exactly (scripts/default_run.sh regenerates the whole run and the figures).  Both run
with MKL_CBWR=COMPATIBLE, MKL's same-bits-on-every-CPU mode: without it an AVX-512 FP16
machine and an AVX2 one give different last bits, and 10 generations of ES turn those into
a different curve (tests/golden/cases.py has the story)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
SHIPPED = Path(__file__).resolve().parents[2] / "docs" / "results" / "default_cartpole_abcd_validation.jsonl"


def test_the_first_20_generations_reproduce_the_shipped_curve(tmp_path: Path) -> None:
    # evaluator.workers=2: worker count does not change results (seeds are sent, not drawn)
    cmd = [sys.executable, "-m", "hebbian_es", f"hydra.run.dir={tmp_path}", "generations=20", "test.after_fit=false",
           "progress_bar=false", "evaluator.workers=2"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env={**os.environ, "MKL_CBWR": "COMPATIBLE"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = [json.loads(line) for line in (tmp_path / "validation.jsonl").read_text().splitlines() if line.strip()]
    shipped = [json.loads(line) for line in SHIPPED.read_text().splitlines() if line.strip()][: len(got)]
    assert [r["generation"] for r in got] == [10, 20]
    assert got == shipped, "the shipped default-run curve no longer matches the code: run scripts/default_run.sh"
