"""Checkpoints: a dump of the optimiser state plus what resuming needs, written atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from hebbian_es.errors import ConfigError

LAST, BEST = "last.pt", "best.pt"


def atomic_save(obj: Any, path: Path) -> None:
    """Write to a temp file in the same directory, fsync, then rename: a kill never leaves a torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def remove_partial_writes(directory: Path) -> None:
    """Temp files of a save that was killed mid-write (the real files were never touched)."""
    for tmp in Path(directory).glob(".*.pt.*"):
        tmp.unlink(missing_ok=True)


def load(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=False)


def check_compatible(saved: dict[str, Any], expected: dict[str, Any], path: Path) -> None:
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


def find_checkpoint(run_dir: Path, which: str = "best") -> Path:
    allowed = ("best", "last")
    if which not in allowed:
        raise ConfigError(f"checkpoint={which!r}; allowed: {list(allowed)}")
    path = run_dir / "checkpoints" / (BEST if which == "best" else LAST)
    if not path.exists():
        other = run_dir / "checkpoints" / (LAST if which == "best" else BEST)
        if other.exists():
            return other
        raise ConfigError(f"run={str(run_dir)!r} has no checkpoints/{BEST} or {LAST}")
    return path


def open_run(run: str, which: str, key: str = "run") -> tuple[Path, dict[str, Any], Path]:
    """A saved run directory: (its resolved path, its resolved config, the `which` checkpoint),
    with one-line errors for a missing directory, config or checkpoint, before anything heavy."""
    from omegaconf import OmegaConf

    run_dir = Path(run).resolve()
    if not run_dir.is_dir():
        raise ConfigError(f"{key}={run!r} is not a directory")
    config = run_dir / "config.yaml"
    if not config.exists():
        raise ConfigError(f"{key}={run!r} has no config.yaml: not a hebbian_es run directory")
    path = find_checkpoint(run_dir, which)
    cfg: dict[str, Any] = OmegaConf.to_container(OmegaConf.load(config), resolve=True)  # type: ignore[assignment]
    return run_dir, cfg, path
