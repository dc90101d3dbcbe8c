"""Disks that refuse writes, for the fault tests: a small tmpfs that fills up, a read-only directory.

Both need mount(8) as root (CI runs as root on a fresh machine); where mounting is not
permitted the tests that use them skip with the reason.  A non-root user gets a read-only
directory from the permission bits instead (root ignores those).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Callable, Iterator

import pytest


def _mount(*args: str) -> str:
    """'' when `mount args` worked, else why not."""
    if shutil.which("mount") is None:
        return "mount(8) is not installed"
    res = subprocess.run(["mount", *args], capture_output=True, text=True)
    return "" if res.returncode == 0 else (res.stderr.strip() or f"mount exited {res.returncode}")


def _umount(path: Path) -> None:
    if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)  # busy: detach now, free later


@pytest.fixture
def tmpfs() -> Iterator[Callable[[Path, str], Path]]:
    """`tmpfs(path, "4m")`: a tmpfs of that size mounted on path (made if absent); unmounted after the test."""
    mounted: list[Path] = []

    def mount(path: Path, size: str) -> Path:
        if os.geteuid() != 0:
            pytest.skip("a small tmpfs (a disk that fills up) needs root to mount")
        path.mkdir(parents=True, exist_ok=True)
        why = _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
        if why:
            pytest.skip(f"cannot mount a tmpfs here: {why}")
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        _umount(path)


@pytest.fixture
def read_only() -> Iterator[Callable[[Path], str]]:
    """`read_only(path)`: path (a directory) becomes read-only until the test ends: as root a
    read-only bind mount of it on itself, else its permission bits.  Returns the error text
    writes there get (the system's strerror)."""
    mounted: list[Path] = []
    chmodded: list[tuple[Path, int]] = []

    def make(path: Path) -> str:
        if os.geteuid() == 0:
            why = _mount("--bind", str(path), str(path))
            if why:
                pytest.skip(f"cannot bind-mount a read-only directory here: {why}")
            mounted.append(path)
            why = _mount("-o", "remount,ro,bind", str(path))
            if why:
                pytest.skip(f"cannot remount a bind mount read-only here: {why}")
            return "Read-only file system"
        for p in [path, *path.rglob("*")]:  # an unprivileged user: the permission bits hold
            chmodded.append((p, p.stat().st_mode))
            p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        return "Permission denied"

    yield make
    for path in reversed(mounted):
        _umount(path)
    for p, mode in reversed(chmodded):
        p.chmod(mode)
