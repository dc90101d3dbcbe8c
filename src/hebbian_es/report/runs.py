"""The runs of a sweep directory, as far as their files tell (read through RunDir)."""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from hebbian_es.errors import ConfigError
from hebbian_es.run.rundir import CHECKPOINTS, RunDir, Status, find_runs, read_json_checked

# Directories below a sweep that are never runs (a run's own subdirectories, the report's output).
SKIP_DIRS = ("report", "checkpoints", "wandb", ".hydra", "analysis", "__pycache__")
MULTIRUN = "multirun.yaml"  # what Hydra writes into the sweep directory (not a run's file)
UNKNOWN = "unknown"  # the status of a run without a readable status file
FILES = RunDir(Path("<run>"))  # the names of a run directory's files, for messages


def num(x: Any) -> Optional[float]:
    """A JSON number (or "inf"/"-inf", as files.json_safe writes them) as a float; None otherwise."""
    if isinstance(x, bool) or x is None:
        return None
    if isinstance(x, (int, float)):
        return float(x)
    if x in ("inf", "-inf"):
        return float(x)
    return None


def finite(x: Any) -> Optional[float]:
    """num(x) when finite, else None."""
    v = num(x)
    return v if v is not None and math.isfinite(v) else None


@dataclass
class Run:
    """One run directory of the sweep."""

    rundir: RunDir
    name: str  # relative to the sweep dir
    status: str  # a Status value, or UNKNOWN
    error: Optional[str] = None
    config: dict[str, Any] = field(default_factory=dict)
    choices: dict[str, Any] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    sweep: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    test: Optional[dict[str, Any]] = None
    seed: Optional[int] = None
    group: str = "?"
    excluded: Optional[str] = None  # why the run is left out of every aggregate; None: included
    notes: list[str] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return self.rundir.path

    @property
    def generations(self) -> Optional[int]:
        g = self.config.get("generations")
        return int(g) if isinstance(g, (int, float)) else None

    @property
    def generations_done(self) -> int:
        if isinstance(self.summary.get("generations_done"), int):
            return int(self.summary["generations_done"])
        gens = [int(r["generation"]) for r in self.rows if "pop_mean" in r]
        return max(gens) + 1 if gens else 0

    @property
    def best_center_return(self) -> Optional[float]:
        if self.summary.get("best_center_return") is not None:
            return num(self.summary["best_center_return"])
        vals = [v for v in (num(r.get("center_return")) for r in self.rows) if v is not None]
        return max(vals) if vals else None

    @property
    def included(self) -> bool:
        return self.excluded is None


def find_run_dirs(sweep: Path, skip: Optional[Path] = None) -> list[RunDir]:
    """The runs below the sweep (not the sweep itself, nor runs nested in a run, nor anything
    under `skip` or a hidden directory), in path order."""
    skip = skip.resolve() if skip is not None else None
    found = []
    for rd in find_runs(sweep, SKIP_DIRS):
        rel = rd.path.relative_to(sweep).parts
        where = rd.path.resolve()
        if rel and not any(p.startswith(".") for p in rel) and not (skip is not None and (where == skip or skip in where.parents)):
            found.append(rd)
    paths = {rd.path for rd in found}
    return sorted((rd for rd in found if not paths.intersection(rd.path.parents)), key=lambda rd: rd.path)


def load_run(path: Path, sweep: Path) -> Run:
    rd = RunDir(path)
    run = Run(rundir=rd, name=str(rd.path.relative_to(sweep)), status=UNKNOWN)
    status, problem = read_json_checked(rd.status_file)
    if problem:
        run.notes.append(problem)
    if isinstance(status, dict):
        run.status = str(status.get("status", UNKNOWN))
        run.error = status.get("error")
        run.choices = {k: v for k, v in (status.get("choices") or {}).items() if not str(k).startswith("hydra/")}
        run.overrides = [str(o) for o in status.get("overrides") or []]
        run.sweep = dict(status.get("sweep") or {})
    if rd.config.exists():
        try:
            run.config = rd.read_config()
        except Exception as exc:  # a torn or hand-edited file: report it, keep going
            run.notes.append(f"{rd.config.name} unreadable ({type(exc).__name__})")
    if not run.sweep and isinstance(run.config.get("sweep"), dict):
        run.sweep = dict(run.config["sweep"])
    run.rows = rd.merged_metrics()
    summary, problem = read_json_checked(rd.summary)
    run.summary = summary if isinstance(summary, dict) else {}
    if problem:
        run.notes.append(problem)
    which = str((run.config.get("test") or {}).get("checkpoint") or "last")
    for each in dict.fromkeys([which, *CHECKPOINTS]):
        test, problem = read_json_checked(rd.test_results(each))
        if problem:
            run.notes.append(problem)
        if isinstance(test, dict) and isinstance(test.get("envs"), dict):
            run.test = test
            if each != which:
                run.notes.append(f"test results from {rd.test_results(each).name}")
            break
    run.seed = _seed(run)
    run.excluded = _exclusion(run)
    return run


def _seed(run: Run) -> Optional[int]:
    if isinstance(run.config.get("seed"), int):
        return int(run.config["seed"])
    for o in run.overrides:
        if o.startswith("seed=") and o[5:].lstrip("-").isdigit():
            return int(o[5:])
    m = re.fullmatch(r"s(\d+)", run.path.name)
    return int(m.group(1)) if m else None


def _exclusion(run: Run) -> Optional[str]:
    done = run.generations_done
    of = f"{done} of {run.generations}" if run.generations is not None else str(done)
    if run.status == Status.FAILED:
        return f"failed at generation {of}: {run.error or 'no error recorded'}"
    if run.status == Status.STOPPED:
        return f"stopped at generation {of} (resumable: run the sweep command again); {run.error or ''}".rstrip("; ")
    if run.status == Status.RUNNING:
        return f"not finished: status {Status.RUNNING.value!r} at generation {of} (still running, or killed)"
    if run.status != Status.FINISHED:
        return f"no usable {FILES.status_file.name} (status {run.status!r}) at generation {of}"
    if not run.rows:
        return f"finished, but {FILES.metrics.name} has no rows"
    return None


def load_runs(sweep: Path, out: Path) -> list[Run]:
    if not sweep.exists():
        raise ConfigError(f"sweep={str(sweep)!r} does not exist")
    if not sweep.is_dir():
        raise ConfigError(f"sweep={str(sweep)!r} is not a directory")
    dirs = find_run_dirs(sweep, skip=out)
    if not dirs and RunDir(sweep).config.exists():
        raise ConfigError(f"sweep={str(sweep)!r} is a single run's directory, not a sweep; pass the directory above its runs")
    if not dirs:
        raise ConfigError(
            f"sweep={str(sweep)!r} holds no runs (no directory with a {FILES.config.name} or {FILES.status_file.name} "
            "below it); point it at outputs/sweeps/<sweep name>"
        )
    return [load_run(rd.path, sweep) for rd in dirs]


def read_multirun(sweep: Path) -> Any:
    """The sweep's multirun.yaml (Hydra's record of the sweep command) as a DictConfig, or None."""
    path = sweep / MULTIRUN
    if not path.exists():
        return None
    try:
        from omegaconf import OmegaConf

        return OmegaConf.load(path)
    except Exception:  # an unreadable multirun.yaml only loses the command and the group order
        return None


def sweep_command(sweep: Path) -> Optional[str]:
    """The multirun command that made the sweep, from multirun.yaml (when Hydra wrote one)."""
    cfg = read_multirun(sweep)
    if cfg is None:
        return None
    from omegaconf import OmegaConf

    try:
        task = list(OmegaConf.select(cfg, "hydra.overrides.task", default=[]) or [])
        hyd = [o for o in OmegaConf.select(cfg, "hydra.overrides.hydra", default=[]) or [] if o != "hydra.mode=MULTIRUN"]
    except Exception:
        return None
    return "python -m hebbian_es -m " + " ".join(shlex.quote(str(o)) for o in [*task, *hyd])


def sweep_name(runs: list[Run], sweep: Path) -> str:
    """The sweep's name (sweep.name) when its runs agree on one, else the directory's."""
    names = {r.sweep.get("name") for r in runs if r.sweep.get("name")}
    return str(names.pop()) if len(names) == 1 else sweep.resolve().name
