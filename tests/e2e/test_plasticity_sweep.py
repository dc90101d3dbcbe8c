"""The `plasticity` sweep (conf/sweep/plasticity.yaml, docs/plasticity.md): every variant composes on
the quadruped damage task with the documented parameter counts, and one tiny job of each trains."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from hebbian_es.core.task import build_task

# variant -> (evolved parameters on the 28-128-64-8 quadruped, what they are)
VARIANTS = {
    "abcd": 61_440,  # 12,288 synapses x (A, B, C, D, η)
    "abcd_modulated": 61_440 + 12_288,  # + v: one modulatory weight per synapse
    "abcd_shared16": 16 * 5,
    "abcd_shared64": 64 * 5,
    "oja": 12_288,  # η per synapse
    "bcm": 12_288,
    "static": 12_288,  # the weights themselves
}


def test_the_sweep_covers_every_variant(compose_config):
    cfg = compose_config.raw("sweep=plasticity", return_hydra_config=True)
    assert str(cfg.hydra.sweeper.params.rule).split(",") == list(VARIANTS)
    assert cfg.sweep.compare == "rule" and cfg.env.name == "ant" and cfg.optimizer.popsize == 500
    assert list(OmegaConf.to_container(cfg.morphology.train)) == ["standard", "front_right_short"]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_each_variant_builds_with_its_parameter_count(compose_config, variant):
    # env=ant_fast: the same quadruped (observations, bodies) as the sweep's env=ant, quicker to build
    task = build_task(compose_config("sweep=plasticity", f"rule={variant}", "env=ant_fast"))
    assert task.layout.size == VARIANTS[variant]
    assert task.counts()["evolved_total"] == VARIANTS[variant]
    assert [e.name for e in task.envs] == ["standard", "front_right_short"]


@pytest.mark.slow
def test_one_tiny_job_of_each_variant_trains(tmp_path: Path):
    cmd = [
        sys.executable, "-m", "hebbian_es", "-m", "sweep=plasticity", "seed=0", "env=ant_fast", "network=small",
        "optimizer.popsize=4", "env.max_episode_steps=30", "evaluator=serial", "generations=1",
        "test.after_fit=false", "validation.every=0", "progress_bar=false", f"hydra.sweep.dir={tmp_path}",
    ]  # fmt: skip
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for variant in VARIANTS:
        run = tmp_path / variant / "s0"
        summary = json.loads((run / "summary.json").read_text())
        assert summary["generations_done"] == 1, variant
        assert json.loads((run / "status.json").read_text())["status"] == "finished"
    shared = json.loads((tmp_path / "abcd_shared16" / "s0" / "summary.json").read_text())["counts"]
    assert shared["shared_rules"] == 16 and shared["plastic_coefficients"] == 80
    assert "-> 16 x 5 = 80" in (tmp_path / "abcd_shared16" / "s0" / "train.log").read_text()
