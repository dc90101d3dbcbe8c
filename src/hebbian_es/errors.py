"""The one error type users see for bad input, and the `main` every key=value command shares."""

from __future__ import annotations

import sys
from typing import Callable, Sequence


class ConfigError(ValueError):
    """A bad configuration value: the message names the key and the allowed values."""


def run_command(doc: str, argv: Sequence[str] | None, command: Callable[[list[str]], None], *, needs_args: bool = False) -> None:
    """`--help` prints `doc`; no arguments where some are needed prints it and exits 2;
    a ConfigError is one `error:` line and exit 2."""
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
