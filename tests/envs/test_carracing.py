"""A short real CarRacing run from the command line: the pixel path end to end.

Frames 96x96 RGB -> 84x84 in [0, 1] -> the paper's two evolved conv layers -> plastic
FC layers 648-128-64-3 (rule abcd with eta) -> (steer, gas, brake).  20 env steps per
lifetime keep the run to seconds; the counts are the paper's.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

PLASTIC_COEFFICIENTS = 456_640  # (648*128 + 128*64 + 64*3) synapses x 5 (A, B, C, D, eta)
CONV_PARAMS = 1_362  # 3*6*3*3 + 6*8*5*5, bias-free


@pytest.mark.slow
def test_carracing_from_pixels(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "hebbian_es",
        "env=carracing", "debug=default", "optimizer.popsize=2", "generations=1",
        "env.max_episode_steps=20", "validation.episodes=0", "test.episodes=2", "evaluator=serial",
        "progress_bar=false", f"hydra.run.dir={run_dir}",
    ]  # fmt: skip
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "456,640" in done.stdout + done.stderr  # the counts are logged at start
    assert "456,640" in (run_dir / "train.log").read_text()

    summary = json.loads((run_dir / "summary.json").read_text())
    counts = summary["counts"]
    assert counts["plastic_coefficients"] == PLASTIC_COEFFICIENTS
    assert counts["static_conv_params"] == CONV_PARAMS
    assert counts["plastic_synapses"] == PLASTIC_COEFFICIENTS // 5
    assert counts["evolved_total"] == PLASTIC_COEFFICIENTS + CONV_PARAMS
    assert summary["env"] == "CarRacing-v3" and summary["rule"] == "abcd"
    assert summary["generations_done"] == 1 and summary["nonfinite_fitness_total"] == 0
    # 3 lifetimes (2 members + centre) of at most 20 steps
    assert 0 < summary["env_steps"] <= 3 * 20

    (row,) = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    for key in ("pop_mean", "pop_max", "pop_min", "center_return"):
        assert isinstance(row[key], float) and math.isfinite(row[key]), (key, row[key])
    assert not (run_dir / "validation.jsonl").read_text().strip(), "validation.episodes=0: no validation rows"

    test = json.loads((run_dir / "test_last.json").read_text())["envs"]["carracing"]
    assert test["env_id"] == "CarRacing-v3" and test["episodes"] == 2 and test["nonfinite"] == 0
    assert len(test["returns"]) == 2 and all(math.isfinite(r) for r in test["returns"])
    assert math.isfinite(test["mean"]) and math.isfinite(test["sd"])

    last = torch.load(run_dir / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
    assert last["params"].shape == (PLASTIC_COEFFICIENTS + CONV_PARAMS,)
    assert torch.isfinite(last["params"]).all()
    assert last["task"]["conv_shapes"] == [[6, 3, 3, 3], [8, 6, 5, 5]]
    assert last["task"]["fc_shapes"] == [[128, 648], [64, 128], [3, 64]]
