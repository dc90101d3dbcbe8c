"""Checkpoints: what a run saves every generation to resume exactly, and the checks on loading one."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from hebbian_es.errors import ConfigError

FORMAT = 1


def check_compatible(saved: Mapping[str, Any], expected: Mapping[str, Any], path: Path) -> None:
    """A checkpoint from another rule or network is refused with the first difference."""
    for key, want in expected.items():
        got = saved.get(key)
        if got != want:
            raise ConfigError(
                f"checkpoint {path} was made with {key}={_short(got)}, this config has {key}={_short(want)}; "
                "use the run's own config or another run_dir"
            )


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) < 120 else text[:117] + "..."
