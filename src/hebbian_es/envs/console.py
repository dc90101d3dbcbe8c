"""Native libraries that talk on the console: silenced at the file-descriptor level."""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from typing import Iterator


@contextlib.contextmanager
def native_output_silenced() -> Iterator[None]:
    """Discard what native code writes to file descriptors 1 and 2 inside the block (pybullet's
    "pybullet build time" banner on import and its "argv[0]=" lines on connect).  Python's
    own streams are flushed before, C's stdio buffers before the descriptors come back."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved = (os.dup(1), os.dup(2))
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        ctypes.CDLL(None).fflush(None)
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)
