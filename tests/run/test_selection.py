"""Checkpoints kept at every validation, the selection rule on them, and the draws option."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hebbian_es.errors import ConfigError
from hebbian_es.run import protocol
from hebbian_es.run.rundir import RunDir
from hebbian_es.run.selection import SelectArgs, select

SMALL = ("network=small", "optimizer.popsize=6", "fitness.episodes=1", "validation.episodes=3",
         "test.after_fit=false", "progress_bar=false", "evaluator=serial", "env.max_episode_steps=60")  # fmt: skip


@pytest.fixture(scope="module")
def trained(compose_config, tmp_path_factory) -> Path:
    from hebbian_es.run.train import train

    run = tmp_path_factory.mktemp("sel") / "run"
    train(compose_config.raw(f"run_dir={run}", "generations=6", "validation.every=2", *SMALL))
    return run


def test_every_validation_keeps_the_centre_it_validated(trained: Path) -> None:
    rd = RunDir(trained)
    kept = rd.validation_checkpoints()
    assert list(kept) == [r["generation"] for r in rd.validation_rows()] == [2, 4, 6]
    last = torch.load(rd.last, weights_only=False)
    at6 = torch.load(kept[6], weights_only=False)
    assert at6["generation"] == 6 and torch.equal(at6["params"], last["params"])  # the last validation is after the last generation
    assert not torch.equal(torch.load(kept[2], weights_only=False)["params"], at6["params"])


def test_the_selection_rule_revalidates_the_top_k_on_fresh_selection_lifetimes(trained: Path, capsys) -> None:
    rd = RunDir(trained)
    result = select(SelectArgs(run=str(trained), top_k=2, episodes=4))
    by_training = sorted(rd.validation_rows(), key=lambda r: (r["val_mean"], r["generation"]), reverse=True)
    assert [c["generation"] for c in result["candidates"]] == [r["generation"] for r in by_training[:2]]
    best = max(result["candidates"], key=lambda c: (c["selection_mean"], c["generation"]))
    assert result["selected"]["generation"] == best["generation"]
    assert json.loads(rd.selection.read_text())["selected"] == result["selected"]
    # selection lifetimes are neither validation nor test lifetimes
    sel_seeds = protocol.episodes_of(0, 3, 0, 4).env_seeds
    assert not set(sel_seeds) & set(protocol.plan(0, 100, 1).env_seeds)
    assert not set(sel_seeds) & set(protocol.episodes_of(0, 1, 2, 100).env_seeds)
    assert rd.checkpoint("selected") == rd.validation_checkpoint(best["generation"])
    assert "<- selected" in capsys.readouterr().out


def test_evaluate_names_the_file_after_the_selected_generation(trained: Path) -> None:
    from hebbian_es.run.evaluate import EvaluateArgs, evaluate

    select(SelectArgs(run=str(trained), top_k=1, episodes=2))
    chosen = json.loads(RunDir(trained).selection.read_text())["selected"]["generation"]
    evaluate(EvaluateArgs(run=str(trained), checkpoint="selected", episodes=2))
    assert (trained / "evaluations" / f"selected_gen{chosen}_n2_seed0.json").exists()


def test_a_rule_the_run_cannot_satisfy_is_one_line_and_writes_nothing(compose_config, tmp_path: Path) -> None:
    from hebbian_es.run.train import train

    never = tmp_path / "never"
    train(compose_config.raw(f"run_dir={never}", "generations=2", "validation.every=0", *SMALL))
    with pytest.raises(ConfigError, match="has no validation rows"):
        select(SelectArgs(run=str(never)))
    unkept = tmp_path / "unkept"
    train(compose_config.raw(f"run_dir={unkept}", "generations=2", "validation.every=1", "validation.keep_checkpoints=false", *SMALL))
    with pytest.raises(ConfigError, match="kept no validated centres"):
        select(SelectArgs(run=str(unkept)))
    with pytest.raises(ConfigError, match="has no selection.json; select one first"):
        RunDir(unkept).checkpoint("selected")
    with pytest.raises(ConfigError, match="kept no centre at validation 5"):
        RunDir(unkept).checkpoint("gen5")
    assert not RunDir(never).selection.exists() and not RunDir(unkept).selection.exists()
    done = subprocess.run([sys.executable, "-m", "hebbian_es.select", f"run={never}"], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and done.stderr.startswith("error: ")


def test_per_candidate_draws_give_every_member_its_own_lifetimes() -> None:
    common = protocol.generation_episodes(0, 5, 2, 1, members=4, draws="common")
    own = protocol.generation_episodes(0, 5, 2, 1, members=4, draws="per_candidate")
    assert common.env_seeds.shape == (2,) and own.env_seeds.shape == (4, 2)
    assert len(set(own.env_seeds.ravel())) == 8 and len(set(own.init_seeds.ravel())) == 8
    assert own.seeds(3, 1) == (int(own.env_seeds[3, 1]), int(own.init_seeds[3, 1]))
    bodies = protocol.generation_episodes(0, 5, 2, 3, members=4, draws="per_candidate")  # each body meets a member's lifetimes
    assert bodies.env_seeds.shape == (4, 6) and np.array_equal(bodies.env_seeds[:, :2], bodies.env_seeds[:, 4:])
    with pytest.raises(ConfigError, match=r"fitness.draws='x'; allowed: \['common', 'per_candidate'\]"):
        protocol.generation_episodes(0, 5, 2, 1, members=4, draws="x")


def test_per_candidate_draws_are_the_same_centre_with_1_and_2_workers(compose_config, tmp_path: Path) -> None:
    from hebbian_es.run.train import train

    centres = []
    for i, evaluator in enumerate((["evaluator=serial"], ["evaluator=local", "evaluator.workers=2", "evaluator.batch_size=2"])):
        overrides = [o for o in SMALL if not o.startswith("evaluator")]
        train(compose_config.raw(f"run_dir={tmp_path / str(i)}", "generations=3", "validation.every=0", "fitness.draws=per_candidate",
                                 *overrides, *evaluator))  # fmt: skip
        centres.append(torch.load(tmp_path / str(i) / "checkpoints" / "last.pt", weights_only=False)["params"])
    assert torch.equal(centres[0], centres[1])
    rows = [json.loads(line) for line in (tmp_path / "0" / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["pop_min"] < rows[0]["pop_max"]


def test_an_unknown_draw_mode_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    run = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "hebbian_es", "fitness.draws=reference", f"hydra.run.dir={run}", "generations=1"],
        capture_output=True, text=True,
    )
    assert done.returncode == 2, done.stderr
    assert "fitness.draws='reference'; allowed: ['common', 'per_candidate']" in done.stderr
    assert done.stderr.strip().count("\n") == 0 and not run.exists()
