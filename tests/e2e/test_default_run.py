"""The README's default-run curve (docs/results/default_cartpole_abcd_validation.jsonl) is what
the code gives: its first 20 generations re-run here must reproduce the shipped validation
rows exactly (scripts/default_run.sh regenerates the whole run and the figures)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hebbian_es.run.train import train

pytestmark = pytest.mark.slow
SHIPPED = Path(__file__).resolve().parents[2] / "docs" / "results" / "default_cartpole_abcd_validation.jsonl"


def test_the_first_20_generations_reproduce_the_shipped_curve(tmp_path: Path, compose_config) -> None:
    # evaluator.workers=2: worker count does not change results (seeds are sent, not drawn)
    train(compose_config.raw(f"run_dir={tmp_path}", "generations=20", "test.after_fit=false", "progress_bar=false",
                             "evaluator.workers=2"))  # fmt: skip
    got = [json.loads(line) for line in (tmp_path / "validation.jsonl").read_text().splitlines() if line.strip()]
    shipped = [json.loads(line) for line in SHIPPED.read_text().splitlines() if line.strip()][: len(got)]
    assert [r["generation"] for r in got] == [10, 20]
    assert got == shipped, "the shipped default-run curve no longer matches the code: run scripts/default_run.sh"
