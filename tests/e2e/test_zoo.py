"""The zoo: trained agents shipped as run directories (zoo/<name>/), and the exporter that makes them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hebbian_es.errors import ConfigError
from hebbian_es.run import protocol
from hebbian_es.run.evaluate import EvaluateArgs, evaluate
from hebbian_es.run.rundir import RunDir
from hebbian_es.run.train import train
from hebbian_es.zoo import ZooArgs, export

ZOO = Path(__file__).resolve().parents[2] / "zoo"
ENTRIES = sorted(p for p in ZOO.glob("*") if (p / "config.yaml").exists()) if ZOO.exists() else []


@pytest.mark.slow
def test_export_ships_a_run_that_evaluates_to_its_own_table(tmp_path: Path, compose_config) -> None:
    run = tmp_path / "run"
    train(compose_config.raw("debug=default", f"run_dir={run}", "test.after_fit=false", "validation.every=0"))
    entry = export(ZooArgs(run=str(run), name="cartpole_debug", zoo=str(tmp_path / "zoo"), episodes=3, gif_every=4))
    rd = RunDir(entry)
    for path in (rd.config, rd.last, rd.metrics, rd.test_results("last"), entry / "README.md", entry / "source.json"):
        assert path.exists(), path
    assert (entry / "cartpole.gif").stat().st_size > 0
    shipped = rd.read_test("last")
    again = evaluate(EvaluateArgs(run=str(entry), episodes=3))
    assert again["envs"]["cartpole"]["returns"] == shipped["envs"]["cartpole"]["returns"]
    assert "cartpole" in (entry / "README.md").read_text()
    budget = json.loads((entry / "source.json").read_text())["budget"]  # what the shipped checkpoint cost
    assert budget["generations"] == shipped["checkpoint_generation"] and budget["env_steps"] > 0
    assert f"Training budget: {budget['generations']} generations of population" in (entry / "README.md").read_text()
    with pytest.raises(ConfigError, match="exists; pass overwrite=true"):
        export(ZooArgs(run=str(run), name="cartpole_debug", zoo=str(tmp_path / "zoo"), episodes=1, gif=False))


def test_export_refuses_bad_input_before_writing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="run=<run dir> and name=<entry name> are required"):
        export(ZooArgs(run=str(tmp_path)))
    with pytest.raises(ConfigError, match="is not a directory"):
        export(ZooArgs(run=str(tmp_path / "nope"), name="x", zoo=str(tmp_path / "zoo")))
    assert not (tmp_path / "zoo").exists()


@pytest.mark.slow
@pytest.mark.parametrize("entry", ENTRIES, ids=[p.name for p in ENTRIES])
def test_every_zoo_entry_reevaluates_to_its_shipped_lifetimes_bit_for_bit(entry: Path, tmp_path: Path) -> None:
    """The README's evaluate command, in a fresh process with nothing set by the user (no
    MKL_CBWR: the package sets what it needs), on a copy of the entry: its first lifetimes on
    every test body are the shipped ones, to the last bit."""
    import os
    import shutil
    import subprocess
    import sys

    copy = tmp_path / entry.name
    shutil.copytree(entry, copy, ignore=shutil.ignore_patterns("*.gif", "evaluations"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MKL_")}
    n = 2
    done = subprocess.run(
        [sys.executable, "-m", "hebbian_es.evaluate", f"run={copy}", f"episodes={n}", "workers=1"],
        capture_output=True, text=True, env=env, timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (written,) = (copy / "evaluations").glob(f"last_gen*_n{n}_seed*.json")
    again = json.loads(written.read_text())
    shipped = RunDir(entry).read_test("last")
    assert shipped is not None and set(shipped["envs"]) == set(again["envs"])
    for body, st in shipped["envs"].items():
        assert again["envs"][body]["returns"] == st["returns"][:n], body


@pytest.mark.slow
@pytest.mark.skipif(not (ZOO / "ant_damage_abcd" / "config.yaml").exists(), reason="needs zoo/ant_damage_abcd")
def test_an_analysis_runs_lifetime_0_as_the_test_protocol_does() -> None:
    """Asking a body's horizon must not reset the instance lifetime 0 runs on: it did, and while
    the ant's later resets differed from its first (AntBulletEnv-v0's; now reset_as_built), a
    one-body analysis's unperturbed lifetime 0 differed from the shipped test's."""
    from hebbian_es.analysis.loaded import LoadedRun

    def lifetime_0(ask_horizon: bool) -> np.ndarray:
        run = LoadedRun(ZOO / "ant_damage_abcd", bodies="standard")
        try:
            env = run.envs[0]
            if ask_horizon:
                assert run.horizon(env) == 960  # 1,000 steps less the 40 settling steps
            env_seeds, init_seeds = run.lifetimes(1)
            result, _ = run.rollout(env, run.params, env_seeds, init_seeds)
            return result.rewards
        finally:
            run.close()

    np.testing.assert_array_equal(lifetime_0(True), lifetime_0(False))
