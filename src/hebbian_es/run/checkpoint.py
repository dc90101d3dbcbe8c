"""Checkpoints: what a run saves every generation to resume exactly, and the checks on loading one."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from hebbian_es.errors import ConfigError
from hebbian_es.files import load_torch

FORMAT = 1
# What resuming reads from last.pt (run/loop.py ESRun.state_dict, plus the centre's params).
RESUME_KEYS = ("task", "seed", "optimizer", "generation", "best", "env_steps", "wall_time", "params")


def load_checkpoint(path: Path, fix: str) -> dict[str, Any]:
    """A checkpoint's payload; a damaged file (truncated, garbage, empty) or one that is not a run's
    checkpoint is a one-line ConfigError naming it and `fix`, what the user can do about it."""
    saved = load_torch(path, fix)
    missing = [k for k in RESUME_KEYS if k not in saved] if isinstance(saved, dict) else list(RESUME_KEYS)
    if missing:
        raise ConfigError(f"{path} is not a hebbian_es checkpoint (it has no {', '.join(missing)}); {fix}")
    return saved


def check_compatible(saved: Mapping[str, Any], expected: Mapping[str, Any], path: Path) -> None:
    """A checkpoint from another rule or network is refused with the first difference."""
    for key, want in expected.items():
        got = saved.get(key)
        if got != want:
            fix = "use the run's own config or another run_dir"
            if key == "rule_options" and got is None and isinstance(want, dict) and "eta_map" in want:
                # oja and bcm read η through sigmoid since issue 29; their earlier checkpoints hold η itself
                fix = "a checkpoint from before η maps (η as evolved): add rule.eta_map=identity (in its config.yaml: rule: eta_map: identity)"
            raise ConfigError(f"checkpoint {path} was made with {key}={_short(got)}, this config has {key}={_short(want)}; {fix}")


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) < 120 else text[:117] + "..."
