"""Progress of an analysis: one line per batch of lifetimes, with done/total lifetimes and an ETA.

In the style of training's ProgressObserver (run/observers.py): plain lines through the
`hebbian_es` logger at INFO, so code that calls an analysis as a library stays quiet unless
it configures logging; `python -m hebbian_es.analyze` shows them on stderr (stdout keeps
the results) unless progress=false.  Every lifetime batch goes through LoadedRun.rollout,
which reports it here; `planned_lifetimes` says how many lifetimes each analysis runs.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from typing import Any, Callable, Iterator

from hebbian_es.run.observers import duration

log = logging.getLogger("hebbian_es")


class Progress:
    """Counts lifetimes against the planned total and logs a line after every batch."""

    def __init__(self, name: str, total: int, clock: Callable[[], float] = time.monotonic, logger: logging.Logger = log) -> None:
        self.name, self.total, self.done = name, int(total), 0
        self.clock, self.log = clock, logger
        self.started = clock()

    def advance(self, lifetimes: int, what: str) -> None:
        self.done += int(lifetimes)
        total = max(self.total, self.done)  # a plan that fell short never shows more done than planned
        elapsed = self.clock() - self.started
        eta = elapsed / self.done * (total - self.done) if self.done else 0.0
        self.log.info(
            "%s: %d/%d lifetimes done (last batch: %d on %s), %s elapsed, ETA %s",
            self.name, self.done, total, lifetimes, what, duration(elapsed), duration(eta),
        )


_current: Progress | None = None  # the analysis running now (one at a time per process)


def advance(lifetimes: int, what: str) -> None:
    """Report a finished batch of lifetimes to the analysis running now, if it tracks progress."""
    if _current is not None:
        _current.advance(lifetimes, what)


@contextlib.contextmanager
def tracking(progress: Progress | None) -> Iterator[Progress | None]:
    """Batches of lifetimes inside count for `progress` (None: for nothing)."""
    global _current
    previous, _current = _current, progress
    try:
        yield progress
    finally:
        _current = previous


@contextlib.contextmanager
def shown_on_stderr() -> Iterator[None]:
    """The `hebbian_es` logger's INFO lines on stderr while inside, unless logging is configured
    already (a handler on it or above: those show them instead)."""
    handler = None
    level = log.level
    if not log.hasHandlers():
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    if log.getEffectiveLevel() > logging.INFO:
        log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.setLevel(level)
        if handler is not None:
            log.removeHandler(handler)


def planned_lifetimes(name: str, run: Any, a: Any) -> int:
    """How many lifetimes `analysis=name` runs on `run` with arguments `a` (for the ETA): the
    per-body rollouts each analysis module makes, summed over the analysed bodies."""
    bodies = len(run.envs)
    if name == "freeze":  # the never-frozen lifetimes, then every k for every lifetime
        from hebbian_es.analysis.freeze import default_ks

        ks = a.ks if a.ks is not None else default_ks(min(run.horizon(e) for e in run.envs))
        return bodies * a.episodes * (1 + len(ks))
    if name in ("actuator_saturation", "weight_zeroing"):  # the same lifetimes with and without
        return bodies * 2 * a.episodes
    if name == "static_vs_hebbian":  # both of those, on the Hebbian and the static run
        return bodies * 4 * a.episodes
    if name == "pca":  # one lifetime with the evolved and one with random coefficients
        return bodies * 2
    if name == "rules":  # the rules alone: no lifetime
        return 0
    return bodies  # weights, video: one lifetime per body
