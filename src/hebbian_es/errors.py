"""The one error type users see for bad input, and the `main` every key=value command shares."""

from __future__ import annotations

import errno
import sys
from typing import Callable, Sequence


class ConfigError(ValueError):
    """A bad configuration value: the message names the key and the allowed values."""


class Interrupted(Exception):
    """SIGINT (Ctrl-C) or SIGTERM during a run, named by the signal: it stops at once, resumable
    from checkpoints/last.pt.  (Not a KeyboardInterrupt: Lightning re-raises it instead of exiting.)"""


# What the user can do when the file system refuses (the OSError's errno).
_DISK_FIXES = {
    errno.ENOSPC: "free space on that disk",
    errno.EDQUOT: "free space within your disk quota",
    errno.EFBIG: "free space or raise the file size limit",
    errno.EROFS: "make it writable, or work on a writable copy",
    errno.EACCES: "make it writable for this user, or work on a writable copy",
    errno.EPERM: "make it writable for this user, or work on a writable copy",
    errno.EIO: "check the disk (an input/output error)",
}
DISK_ERRNOS = frozenset(_DISK_FIXES)  # the file system will not take the write: the user fixes the disk


def disk_fix(err: OSError) -> str | None:
    """What the user can do about a disk that refused (None: not a disk's refusal)."""
    return _DISK_FIXES.get(err.errno) if err.errno is not None else None


def os_error_line(err: OSError) -> str:
    """One line for an OSError: the file, what the system said and, for a disk that refuses, what to do."""
    where = f"{err.filename}: " if err.filename else ""
    fix = disk_fix(err)
    return f"{where}{err.strerror or err}" + (f"; {fix}" if fix else "")


def run_command(doc: str, argv: Sequence[str] | None, command: Callable[[list[str]], None], *, needs_args: bool = False) -> None:
    """`--help` prints `doc`; no arguments where some are needed prints it and exits 2;
    a ConfigError or an OSError (read-only or full disk) is one `error:` line and exit 2."""
    args = sys.argv[1:] if argv is None else list(argv)
    if any(a in ("-h", "--help") for a in args) or (needs_args and not args):
        print(doc)
        if not args:
            sys.exit(2)
        return
    try:
        command(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:  # a read-only or full output folder, a file gone: the system's reason, no traceback
        print(f"error: {os_error_line(exc)}", file=sys.stderr)
        sys.exit(2)
