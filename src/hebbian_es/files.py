"""File writing every layer shares: JSON without NaN, torch files written atomically."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any


def json_safe(value: Any) -> Any:
    """JSON has no NaN/inf: NaN becomes null, ±inf the strings "inf"/"-inf"; recurses into containers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_json(path: Path, data: Any) -> None:
    """Indented JSON of `data` through json_safe (so never a bare NaN or Infinity)."""
    Path(path).write_text(json.dumps(json_safe(data), indent=2, default=str, allow_nan=False) + "\n")


def write_json_atomic(path: Path, data: Any) -> None:
    """write_json through a temp file and a rename: readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    write_json(tmp, data)
    tmp.replace(path)


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save to a temp file in the same directory, fsync, then rename: a kill never leaves a torn file."""
    import torch

    path = Path(path)
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


def load_torch(path: Path) -> Any:
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


def remove_partial_writes(directory: Path) -> None:
    """Temp files of an atomic_save that was killed mid-write (the real files were never touched)."""
    for tmp in Path(directory).glob(".*.pt.*"):
        tmp.unlink(missing_ok=True)
