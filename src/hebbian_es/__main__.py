"""`python -m hebbian_es [overrides]`: evolve a Hebbian rule (Hydra app)."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from hebbian_es.errors import ConfigError

# Exit codes (README "Exit codes"): 0 finished, 1 failed, 2 bad input or a locked run
# directory (nothing written), 3 stopped by stop_after_minutes, 130 Ctrl-C, 143 SIGTERM
# (both stopped; the same command continues).
EXIT_STOPPED = 3
_STARTED = time.time()  # before Hydra creates the run's output dir


@hydra.main(version_base="1.3", config_path="pkg://hebbian_es.conf", config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    from hebbian_es.run.train import train

    from hebbian_es.run.rundir import RunDirLocked

    try:
        summary = train(cfg)
    except RunDirLocked as exc:
        if HydraConfig.get().mode == RunMode.MULTIRUN:  # not a failure: that job runs elsewhere
            print(f"running elsewhere: {exc}", file=sys.stderr)
            return None
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except ConfigError as exc:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # a failed job, recorded by Hydra: the sweep's other jobs still run
        _remove_if_created_empty(Path(HydraConfig.get().runtime.output_dir))
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    if summary.get("stopped"):  # stop_after_minutes: not finished, the same command continues
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            print(f"stopped: {summary['stopped']}; rerun the sweep command to continue", file=sys.stderr)
        else:
            sys.exit(EXIT_STOPPED)
    best = summary.get("best_center_return")
    return float(best) if best is not None else None  # the value a sweeper optimises


def _remove_if_created_empty(run_dir: Path) -> None:
    """A refused run leaves no trace: Hydra made its output dir before the task ran; remove
    it if this process made it (created after start) and nothing was written into it."""
    try:
        if run_dir.is_dir() and not any(run_dir.iterdir()) and run_dir.stat().st_mtime >= _STARTED - 1e-3:
            run_dir.rmdir()
    except OSError:
        pass  # best effort: never turn a clear refusal into a traceback


def _register_launcher() -> None:
    # Hydra finds plugins by walking hydra_plugins' directories, which misses an
    # editable install's; registering is a no-op when the scan already found it.
    from hydra.core.plugins import Plugins
    from hydra_plugins.hebbian_es_launcher.local import LocalLauncher
    from hydra_plugins.hebbian_es_launcher.slurm import SlurmLauncher

    Plugins.instance().register(SlurmLauncher)
    Plugins.instance().register(LocalLauncher)


def _run_and_report(hydra_run_and_report: Callable[[Callable[[], Any]], Any], func: Callable[[], Any]) -> Any:
    """Hydra's run_and_report, except that a config the schema refuses while Hydra composes
    (`optimizer.popsize=abc`, `optimizer.popsiz=10`) is one `error:` line and exit 2, as
    every other bad-input error of this app; anything else is Hydra's to report."""
    from hydra.errors import ConfigCompositionException

    from hebbian_es.config import error_line

    def guarded() -> Any:
        try:
            return func()
        except ConfigCompositionException as exc:
            line = None if os.environ.get("HYDRA_FULL_ERROR") == "1" else error_line(exc)
            if line is None:
                raise
            print(f"error: {line}", file=sys.stderr)
            sys.exit(2)
        except ConfigError as exc:  # a sweep job refused its config (single runs exit in _hydra_main)
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            print(f"error: a sweep job failed: {exc}", file=sys.stderr)
            sys.exit(1)

    return hydra_run_and_report(guarded)


@contextlib.contextmanager
def _schema_errors_in_one_line() -> Iterator[None]:
    # hydra.main reports composition errors through hydra._internal.utils.run_and_report,
    # looked up as a module global at each call: wrap it for the duration of main().
    from hydra._internal import utils

    original = utils.run_and_report
    utils.run_and_report = lambda func: _run_and_report(original, func)
    try:
        yield
    finally:
        utils.run_and_report = original


def main() -> None:
    _register_launcher()
    with _schema_errors_in_one_line():
        _hydra_main()


if __name__ == "__main__":
    main()
