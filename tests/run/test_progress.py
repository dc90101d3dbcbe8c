"""Progress speaks of generations, validation and the test protocol, never of epochs or dataloaders."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_progress_lines_in_the_fields_terms(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "hebbian_es", "debug=default", "generations=3", "progress_bar=true", "validation.every=2",
         "validation.episodes=2", "test.episodes=2", f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 0, res.stderr
    console = res.stdout + res.stderr
    for k in (1, 2, 3):
        assert f"generation {k}/3: population mean" in console
    assert "ETA" in console and "env steps/s" in console
    assert "validation after generation 2: centre" in console
    assert "test protocol: cartpole done (1/1 envs, 2 lifetimes each)" in console
    for lightning_word in ("Epoch", "DataLoader", "Training:", "it/s"):
        assert lightning_word not in console, lightning_word
    log = (tmp_path / "run" / "train.log").read_text()
    assert "generation 3/3" in log  # the same lines in the run's log


def test_online_wandb_without_credentials_fails_fast_in_one_line(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(HOME=str(tmp_path), NETRC=str(tmp_path / "no-netrc"))
    res = subprocess.run(
        [sys.executable, "-m", "hebbian_es", "debug=default", "logger=wandb", "logger.wandb.mode=online",
         f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL,
    )
    assert res.returncode == 2, res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: logger.wandb.mode=online: no W&B credentials: run `wandb login` or set WANDB_API_KEY "
                      "(or use logger.wandb.mode=offline)"], res.stderr
    run = tmp_path / "run"
    assert not run.exists() or not any(run.iterdir())  # Hydra makes the directory; nothing is written
