"""File writing every layer shares: JSON without NaN, files written atomically (a kill or a
full disk leaves the old file whole and no temp file), torch files read with one-line errors,
and the OSError behind a failed write."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from hebbian_es.errors import DISK_ERRNOS, ConfigError, Interrupted


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


def write_text_atomic(path: Path, text: str) -> None:
    """`text` through a temp file next to `path` and a rename: readers (and a process killed
    mid-write) never see half a file; a failed write removes the temp file and names `path`."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        _raise_naming(exc, path)


def write_json_atomic(path: Path, data: Any) -> None:
    """write_json through a temp file and a rename: readers never see half a file."""
    write_text_atomic(path, json.dumps(json_safe(data), indent=2, default=str, allow_nan=False) + "\n")


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save to a temp file in the same directory, fsync, then rename: a kill never leaves a torn file.
    A failed write (full disk) removes the temp file and raises the OSError behind it, naming `path`."""
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
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        _raise_naming(exc, path)


def _raise_naming(exc: BaseException, path: Path) -> None:
    """Re-raise a failed write: as an OSError naming `path` when the disk refused it (a full disk
    surfaces as a bare ENOSPC on close, or as torch's RuntimeError raised while handling one).
    A stop signal that arrived mid-write is re-raised as itself: the writer's own error while
    unwinding (torch's "unexpected pos" on closing the zip) is its consequence, not a failure."""
    stop = _in_chain(exc, lambda e: isinstance(e, (Interrupted, KeyboardInterrupt, SystemExit)))
    if stop is not None and stop is not exc:
        raise stop from None
    err = storage_error(exc)
    if err is None:
        raise exc
    raise OSError(err.errno, err.strerror, str(path)) from exc


def _in_chain(exc: BaseException, match: Callable[[BaseException], bool]) -> BaseException | None:
    """The first exception in exc's cause/context chain (exc itself included) that `match`es."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if match(cur):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None


def storage_error(exc: BaseException) -> OSError | None:
    """The OSError of a disk that refused (full, read-only: errors.DISK_ERRNOS) behind `exc`: itself,
    or one it was raised from or while handling; None if there is none (then it is not the disk's
    fault, and keeps its traceback)."""
    err = _in_chain(exc, lambda e: isinstance(e, OSError) and e.errno in DISK_ERRNOS)
    return err if isinstance(err, OSError) else None


def load_torch(path: Path, fix: str = "restore it from a good copy") -> Any:
    """torch.load on the CPU; a file that is not a whole torch file (truncated, overwritten,
    empty) is a one-line ConfigError naming it and `fix`, what the user can do about it."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except OSError:  # missing, unreadable: the OS's own error, not a damaged file
        raise
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError, ... for a damaged file
        detail = (str(exc).strip().splitlines() or [""])[0].split(". ")[0][:150]  # torch's first sentence says it
        detail = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
        raise ConfigError(f"{path} is damaged, not a whole checkpoint ({detail}); {fix}") from None


def probe_writable(folder: Path) -> None:
    """Make `folder` and write and remove a file in it: OSError now if the disk refuses,
    before a command spends its work on results it could not save."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, probe = tempfile.mkstemp(dir=folder, prefix=".probe")
    os.close(fd)
    os.unlink(probe)


def remove_partial_writes(directory: Path) -> None:
    """Temp files of an atomic_save that was killed mid-write (the real files were never touched)."""
    for tmp in Path(directory).glob(".*.pt.*"):
        tmp.unlink(missing_ok=True)
