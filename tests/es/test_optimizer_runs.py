"""Whole training runs with each seed-based ES: the same centre with the serial evaluator and
with 2 worker processes; a killed run resumes bit for bit; saved configs read back as their
own optimizer's schema; bad settings are one line, exit 2, nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import OmegaConf

from hebbian_es import config
from hebbian_es.errors import ConfigError

# (name, overrides) of each seed-based ES and a step other than its default
ALGORITHMS = {
    "pgpe": ["optimizer=pgpe"],
    "snes": ["optimizer=snes", "optimizer.antithetic=true"],
    "openai_es_adam": ["optimizer.step=adam", "optimizer.lr=0.05"],
    "pgpe_momentum_z_score": ["optimizer=pgpe", "optimizer.step=momentum", "optimizer.lr=0.1", "optimizer.shaping=z_score"],
}
RUN = ("network=small", "generations=4", "fitness.episodes=2", "test.after_fit=false", "validation.every=2", "validation.episodes=1", "progress_bar=false")


class _Killed(Exception):
    pass


def _state(run_dir: Path) -> dict[str, Any]:
    return torch.load(run_dir / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_the_same_run_with_any_evaluator_and_after_a_kill(name: str, tmp_path: Path) -> None:
    from e2e.test_e2e import rows, train_run, untimed

    from hebbian_es.run.loop import ESRun

    overrides = (*ALGORITHMS[name], *RUN)
    train_run(tmp_path / "serial", *overrides, "evaluator=serial")
    train_run(tmp_path / "workers", *overrides, "evaluator=local", "evaluator.workers=2")
    serial, workers = _state(tmp_path / "serial"), _state(tmp_path / "workers")
    assert serial["generation"] == 4 and torch.equal(serial["params"], workers["params"])
    assert untimed(rows(tmp_path / "serial" / "metrics.jsonl")) == untimed(rows(tmp_path / "workers" / "metrics.jsonl"))
    kind = name.split("_")[0] if not name.startswith("openai_es") else "openai_es"
    assert serial["optimizer"]["kind"] == kind

    real_step = ESRun.step

    def step(self: ESRun) -> Any:
        if self.generation == 2:
            raise _Killed
        return real_step(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ESRun, "step", step)
        with pytest.raises(_Killed):
            train_run(tmp_path / "resumed", *overrides, "evaluator=serial")
    assert _state(tmp_path / "resumed")["generation"] == 2
    train_run(tmp_path / "resumed", *overrides, "evaluator=serial")
    resumed = _state(tmp_path / "resumed")
    assert torch.equal(resumed["params"], serial["params"])
    for key, value in serial["optimizer"].items():
        got = resumed["optimizer"][key]
        if isinstance(value, dict):
            assert value.keys() == got.keys() and all(torch.equal(value[k], got[k]) for k in value), key
        else:
            assert torch.equal(got, value) if isinstance(value, torch.Tensor) else got == value, key
    assert untimed(rows(tmp_path / "resumed" / "metrics.jsonl")) == untimed(rows(tmp_path / "serial" / "metrics.jsonl"))
    # the optimiser's entry loads with weights_only=True (plain tensors, numbers and strings)
    torch.save(serial["optimizer"], tmp_path / "optimizer.pt")
    assert torch.load(tmp_path / "optimizer.pt", weights_only=True)["kind"] == kind
    # the run's config.yaml reads back as its own optimizer's schema
    typed = config.load(tmp_path / "serial" / "config.yaml")
    assert type(typed.optimizer) is config.OPTIMIZER_CONFIGS[kind]


def test_saved_configs_read_back_as_their_own_optimizers_schema(compose_config) -> None:
    for overrides, schema in ((["optimizer=pgpe"], config.PGPEConfig), (["optimizer=snes"], config.SNESConfig),
                              ([], config.OpenAIESConfig), (["optimizer=nevergrad", "optimizer.name=TBPSA"], config.NevergradConfig)):  # fmt: skip
        raw = compose_config.raw(*overrides)
        data = config.to_object(raw)
        assert type(data.optimizer) is schema
        assert config.from_container(OmegaConf.to_container(raw, resolve=True)) == data
    with pytest.raises(ConfigError) as info:
        config.from_container({**OmegaConf.to_container(compose_config.raw(), resolve=True), "optimizer": {"name": "cmaes"}})
    assert str(info.value).startswith("optimizer.name='cmaes' is not known; allowed: ['CMA', 'DiagonalCMA', 'NGOpt', 'TBPSA', 'TwoPointsDE', 'openai_es', 'pgpe', 'snes']")


# (overrides, the one stderr line) of `python -m hebbian_es`: refused before anything is written
REFUSED = {
    "unknown_step": (["optimizer=pgpe", "optimizer.step=rmsprop"], "error: optimizer.step='rmsprop' is not known; allowed: ['sgd', 'momentum', 'adam', 'clipup']"),
    "unknown_algorithm": (["optimizer.name=cmaes"], "error: optimizer.name='cmaes' is not known; allowed: ['CMA', 'DiagonalCMA', 'NGOpt', 'TBPSA', 'TwoPointsDE', 'openai_es', 'pgpe', 'snes']"),
    "unknown_shaping": (["optimizer=snes", "optimizer.shaping=ranks"], "error: optimizer.shaping='ranks' is not known; allowed: ['centered_ranks', 'nes', 'raw', 'z_score']"),
    "beta_one": (["optimizer.step=adam", "optimizer.beta1=1.0"], "error: optimizer.beta1=1.0: must be in [0, 1)"),
    "momentum_negative": (["optimizer=pgpe", "optimizer.momentum=-0.5"], "error: optimizer.momentum=-0.5: must be in [0, 1)"),
    "lr_zero": (["optimizer=pgpe", "optimizer.lr=0"], "error: optimizer.lr=0.0: must be > 0"),
    "sigma_negative": (["optimizer=snes", "optimizer.sigma=-0.1"], "error: optimizer.sigma=-0.1: must be > 0"),
}


@pytest.mark.slow
def test_bad_optimizer_settings_are_one_line_exit_2_nothing_written(tmp_path: Path) -> None:
    procs = {}
    for name, (overrides, _) in REFUSED.items():
        cwd = tmp_path / f"cwd_{name}"
        cwd.mkdir()
        cmd = [sys.executable, "-m", "hebbian_es", "env=cartpole", *overrides, f"hydra.run.dir={tmp_path / name}"]
        procs[name] = (cwd, subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for name, (cwd, proc) in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 2, (name, stderr[-2000:])
        assert stderr.count("\n") == 1 and stderr.strip() == REFUSED[name][1], (name, stderr)
        assert "Traceback" not in stdout + stderr
        assert not (tmp_path / name).exists() and not any(cwd.iterdir()), name
