"""The transfer check of issue 15: an agent trained on env=carracing_fast (the lean renderer)
is tested on the real CarRacing-v3 with `python -m hebbian_es.evaluate run=<dir> env=carracing`,
the same lifetimes (seeds, initial weights) on the other env, written beside the run's own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hebbian_es.run.evaluate import EvaluateArgs, evaluate
from hebbian_es.run.train import train

pytestmark = pytest.mark.slow


def test_a_carracing_fast_agent_is_tested_on_the_real_carracing(tmp_path: Path, compose_config) -> None:
    run = tmp_path / "run"
    train(compose_config.raw(
        "experiment=carracing_paper", "env=carracing_fast", f"run_dir={run}", "generations=1", "optimizer.popsize=2",
        "evaluator=serial", "validation.every=0", "test.after_fit=false", "progress_bar=false",
    ))  # fmt: skip
    fast = evaluate(EvaluateArgs(run=str(run), episodes=1))
    real = evaluate(EvaluateArgs(run=str(run), episodes=1, env="carracing"))
    assert set(fast["envs"]) == {"carracing_fast"} and set(real["envs"]) == {"carracing"}
    assert real["seed"] == fast["seed"] and real["checkpoint_generation"] == fast["checkpoint_generation"] == 1
    written = json.loads((run / "evaluations" / "last_gen1_n1_seed0_env-carracing.json").read_text())
    assert written["envs"]["carracing"]["returns"] == real["envs"]["carracing"]["returns"]
    assert real["envs"]["carracing"]["env_id"] == "CarRacing-v3"
    assert fast["envs"]["carracing_fast"]["env_id"].endswith("CarRacingFast-v0")
