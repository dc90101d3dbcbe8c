"""Run directories: older ones still load, and the test protocol never doubles the worker processes."""

from __future__ import annotations

import json
import multiprocessing as mp
import shutil
from pathlib import Path

import pytest

from hebbian_es.run import protocol
from hebbian_es.run.evaluate import EvaluateArgs, evaluate
from hebbian_es.run.rundir import RunDir, Status
from hebbian_es.run.train import train

# Written by the flat-layout version (commit fc4fd63, before the package was split into
# layers): its config.yaml names hebbian_es.ant_fast:FastAnt-v0 and hebbian_es.ant.* wrappers.
LEGACY = Path(__file__).resolve().parents[1] / "data" / "legacy_run_v0"
LEGACY_OVERRIDES = (
    "env=ant_fast", "morphology=paper", "morphology.random_eval.count=1", "env.max_episode_steps=80",
    "network=small", "optimizer.popsize=4", "validation.every=0", "test.episodes=2", "evaluator=serial",
    "progress_bar=false", "test.after_fit=false",
)


def test_read_config_upgrades_the_flat_layouts_module_paths() -> None:
    cfg = RunDir(LEGACY).read_config()
    assert cfg["env"]["id"] == "hebbian_es.envs.ant:FastAnt-v0"
    assert [w["_target_"] for w in cfg["env"]["wrappers"]] == [
        "hebbian_es.envs.ant.bullet.ProgressReward", "hebbian_es.envs.ant.bullet.SettleSteps",
    ]


@pytest.mark.slow
def test_a_flat_layout_run_evaluates_without_touching_its_test_table(tmp_path: Path) -> None:
    # Its test_last.json was written under the earlier lifetime seeds (issue 17: lifetime i
    # now depends on (seed, phase, i) alone), so the bodies match, not the returns.
    run = tmp_path / "run"
    shutil.copytree(LEGACY, run)
    results = evaluate(EvaluateArgs(run=str(run), episodes=2))
    want = json.loads((LEGACY / "test_last.json").read_text())
    assert set(results["envs"]) == set(want["envs"])
    assert all(len(s["returns"]) == 2 for s in results["envs"].values())
    assert (run / "test_last.json").read_bytes() == (LEGACY / "test_last.json").read_bytes()  # the training's record
    written = json.loads((run / "evaluations" / f"last_gen{results['checkpoint_generation']}_n2_seed0.json").read_text())
    assert written["envs"] == json.loads(json.dumps(results["envs"]))
    again = evaluate(EvaluateArgs(run=str(run), episodes=3))  # more lifetimes extend fewer
    for name, stats in results["envs"].items():
        assert again["envs"][name]["returns"][:2] == stats["returns"], name


@pytest.mark.slow
def test_a_flat_layout_run_resumes_where_it_stopped(tmp_path: Path, compose_config) -> None:
    run = tmp_path / "run"
    shutil.copytree(LEGACY, run)
    train(compose_config.raw(*LEGACY_OVERRIDES, "generations=3", f"run_dir={run}"))
    rows = RunDir(run).metrics_rows()
    legacy = RunDir(LEGACY).metrics_rows()
    assert [r["generation"] for r in rows] == [0, 1, 2]
    assert rows[:2] == legacy  # the old rows are kept, generation 2 is appended
    assert RunDir(run).read_status()["status"] == Status.FINISHED.value


@pytest.mark.slow
def test_training_workers_stop_before_the_test_protocol_starts(tmp_path: Path, compose_config, monkeypatch) -> None:
    alive: list[int] = []
    real = protocol.run_protocol

    def counting(*args, **kwargs):
        alive.append(len(mp.active_children()))  # the training pool's processes, if still alive
        return real(*args, **kwargs)

    monkeypatch.setattr(protocol, "run_protocol", counting)
    train(compose_config.raw(
        "debug=default", f"run_dir={tmp_path / 'run'}", "evaluator=local", "evaluator.workers=2",
        "test.after_fit=true", "test.episodes=2", "validation.every=0",
    ))
    assert alive == [0]
