"""The one place that knows a run directory's files and status values.

Training writes through it, and evaluate, analyze, report and plots read through it:

  config.yaml            the composed, resolved config (written once, after validation)
  status.json            running | finished | failed | stopped, choices, overrides, error
  metrics.jsonl/.csv     one row per generation
  validation.jsonl       the centre on fresh lifetimes every k generations
  checkpoints/last.pt    every generation, atomically; checkpoints/best.pt: best centre
  checkpoints/validation/gen<g>.pt  the centre validated at generation g (validation.keep_checkpoints)
  summary.json           counts, budget, versions, test means
  selection.json         the checkpoint selected by validation after training (run/selection.py)
  test_<last|best>.json  the test protocol run at the end of training
  fitness_curve.png, train.log, train.rank<k>.log, analysis/, wandb/
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Iterable

from hebbian_es.errors import DISK_ERRNOS, ConfigError, os_error_line
from hebbian_es.files import json_safe, write_json_atomic


class Status(str, Enum):
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    STOPPED = "stopped"  # interrupted (SIGTERM, SLURM requeue, Ctrl-C): resumable from last.pt


# checkpoint names a command takes: these, or gen<g> (the centre kept at validation g)
CHECKPOINTS = ("last", "best", "selected")
# Top-level keys every version's config.yaml has ("test" is written last): one missing means the
# file was cut or edited, and the run's settings cannot be read back from it.
CONFIG_KEYS = ("env", "rule", "network", "optimizer", "seed", "test")

# Module paths of run directories written before the package was split into layers:
# their config.yaml still names them (env ids, wrapper targets).
LEGACY_MODULES = {
    "hebbian_es.ant_fast:": "hebbian_es.envs.ant:",
    "hebbian_es.ant:": "hebbian_es.envs.ant:",
    "hebbian_es.ant.": "hebbian_es.envs.ant.bullet.",
    "hebbian_es.ant_fast.": "hebbian_es.envs.ant.fast.",
}


def upgrade_legacy(value: Any) -> Any:
    if isinstance(value, str):
        for old, new in LEGACY_MODULES.items():
            if value.startswith(old):
                return new + value[len(old):]
        return value
    if isinstance(value, dict):
        return {k: upgrade_legacy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [upgrade_legacy(v) for v in value]
    return value


class RunDirLocked(ConfigError):
    """Another process holds the run directory's lock: it is running there now."""


class RunDirUnwritable(ConfigError):
    """The run directory's disk refuses writes (read-only, not this user's, full): one line, exit 2."""


class RunLock:
    """The one-writer lock of a run directory: an OS file lock (flock) on `.lock`, held
    for the life of the run and released by any exit, SIGKILL included.  The file names
    the holder (host, pid, since when) for the one-line refusal of a second process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fh: Any = None

    def acquire(self, wait_s: float = 0.0) -> "RunLock":
        """Take the lock; wait_s: keep trying this long before refusing (a requeued job may
        start while its pre-empted predecessor is still exiting)."""
        try:
            fh = open(self.path, "a+")
        except OSError as exc:
            if exc.errno not in DISK_ERRNOS:
                raise
            raise RunDirUnwritable(
                f"run_dir={str(self.path.parent)!r} cannot be written ({os_error_line(exc)}); a run keeps its lock, "
                "checkpoints and metrics there"
            ) from None
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() < deadline:
                    time.sleep(0.5)
                    continue
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                fh.close()
                raise RunDirLocked(
                    f"run_dir={str(self.path.parent)!r} is in use by {holder}; wait for it to end, or stop it, "
                    "or choose another run_dir"
                ) from None
        self.fh = fh
        return self

    def announce(self) -> None:
        """Name this process as the holder (after the run's checks: a refused run changes nothing)."""
        assert self.fh is not None
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        self.fh.flush()

    def release(self) -> None:
        if self.fh is not None:
            self.fh.close()  # closing the descriptor releases the flock
            self.fh = None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a .jsonl file; a torn last line (killed mid-write) is skipped."""
    rows: list[dict[str, Any]] = []
    if not Path(path).exists():
        return rows
    with open(path) as fh:
        for line in fh:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


@dataclass(frozen=True)
class RunDir:
    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    # ---- file names -------------------------------------------------------------------------
    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def status_file(self) -> Path:
        return self.path / "status.json"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def metrics_csv(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def validation(self) -> Path:
        return self.path / "validation.jsonl"

    @property
    def summary(self) -> Path:
        return self.path / "summary.json"

    @property
    def fitness_curve(self) -> Path:
        return self.path / "fitness_curve.png"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last(self) -> Path:
        return self.checkpoints / "last.pt"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.pt"

    @property
    def selection(self) -> Path:
        return self.path / "selection.json"

    @property
    def validation_checkpoints_dir(self) -> Path:
        return self.checkpoints / "validation"

    def validation_checkpoint(self, generation: int) -> Path:
        """The checkpoint of the centre validated at `generation` (tagged as in validation.jsonl)."""
        return self.validation_checkpoints_dir / f"gen{int(generation):05d}.pt"

    def validation_checkpoints(self) -> dict[int, Path]:
        """generation -> checkpoint of every validation whose centre was kept, in generation order."""
        found = {}
        for path in sorted(self.validation_checkpoints_dir.glob("gen*.pt")):
            digits = path.stem[3:]
            if digits.isdigit():
                found[int(digits)] = path
        return dict(sorted(found.items()))

    @property
    def analysis(self) -> Path:
        return self.path / "analysis"

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def lock_file(self) -> Path:
        return self.path / ".lock"

    def lock(self, announce: bool = True, wait_s: float = 0.0) -> RunLock:
        """Take the run directory's one-writer lock (RunDirLocked if another process still has
        it after wait_s); announce: write this process into it at once (else `announce()` later)."""
        lock = RunLock(self.lock_file).acquire(wait_s)
        if announce:
            lock.announce()
        return lock

    def test_results(self, which: str) -> Path:
        """What the training's own test protocol wrote (test.after_fit)."""
        return self.path / f"test_{which}.json"

    def evaluation(
        self, checkpoint: str, generation: int, episodes: int, seed: int, early_stop: bool, env: str | None = None
    ) -> Path:
        """What `python -m hebbian_es.evaluate` wrote: one file per question asked, never
        over the training's test_<which>.json (the sweep report reads that one); `env`: the
        env config it was tested on instead of the run's own."""
        stop = "_early_stop" if early_stop else ""
        other = f"_env-{env}" if env else ""
        return self.path / "evaluations" / f"{checkpoint}_gen{generation}_n{episodes}_seed{seed}{stop}{other}.json"

    # ---- reading ----------------------------------------------------------------------------
    def checkpoint(self, which: str = "last") -> Path:
        """checkpoints/<which>.pt, or the other one if only that exists; ConfigError if neither.
        selected: the one selection.json names; gen<g>: the centre kept at validation g."""
        if which == "selected":
            return self.selected_checkpoint()
        if which.startswith("gen") and which[3:].isdigit():
            path = self.validation_checkpoint(int(which[3:]))
            if not path.exists():
                kept = ", ".join(f"gen{g}" for g in self.validation_checkpoints()) or "none"
                raise ConfigError(f"checkpoint={which}: run={str(self.path)!r} kept no centre at validation {int(which[3:])}; kept: {kept}")
            return path
        if which not in CHECKPOINTS:
            raise ConfigError(f"checkpoint={which!r}; allowed: {', '.join(CHECKPOINTS)}, or gen<g> (a validated centre)")
        want, other = (self.last, self.best) if which == "last" else (self.best, self.last)
        if want.exists():
            return want
        if other.exists():
            return other
        raise ConfigError(f"run={str(self.path)!r} has no checkpoints/{self.best.name} or {self.last.name}")

    def selected_checkpoint(self) -> Path:
        """The validation checkpoint selection.json names; one line if the selection was not made."""
        data = _read_json(self.selection)
        if data is None:
            raise ConfigError(
                f"checkpoint=selected: run={str(self.path)!r} has no {self.selection.name}; select one first: "
                f"python -m hebbian_es.select run={self.path}"
            )
        path = self.path / str(data["selected"]["checkpoint"])
        if not path.exists():
            raise ConfigError(f"checkpoint=selected: {self.selection.name} names {path}, which is missing; run the selection again")
        return path

    def read_config(self) -> dict[str, Any]:
        """config.yaml as plain data (module paths of older versions upgraded); an empty, cut or
        unparsable file is a one-line ConfigError that says how to write it anew."""
        from omegaconf import OmegaConf

        try:
            data = OmegaConf.to_container(OmegaConf.load(self.config), resolve=True)
        except OSError:
            raise
        except Exception as exc:  # YAML syntax, a bad interpolation: the first line says where
            raise ConfigError(f"{self.config} is damaged ({_first_line(exc)}); {self.config_fix()}") from None
        if not isinstance(data, dict) or not data:
            raise ConfigError(f"{self.config} is empty; {self.config_fix()}")
        missing = [k for k in CONFIG_KEYS if k not in data]
        if missing:
            raise ConfigError(f"{self.config} is incomplete (no {', '.join(missing)}); {self.config_fix()}")
        return upgrade_legacy(data)

    def config_fix(self) -> str:
        """What rewrites config.yaml: the run's own training command (status.json keeps its overrides),
        which continues from checkpoints/last.pt and writes config.yaml anew."""
        status = self.read_status() or {}
        overrides = status.get("overrides") if isinstance(status.get("overrides"), list) else None
        if overrides is None:
            return f"run the run's training command again with hydra.run.dir={self.path}: it writes config.yaml anew"
        import shlex

        words = [o for o in map(str, overrides) if not o.startswith("hydra.run.dir=")] + [f"hydra.run.dir={self.path}"]
        return f"write it anew by running the run's command again: python -m hebbian_es {' '.join(map(shlex.quote, words))}"

    def read_status(self) -> dict[str, Any] | None:
        return _read_json(self.status_file)

    def read_test(self, which: str = "last") -> dict[str, Any] | None:
        return _read_json(self.test_results(which))

    def metrics_rows(self) -> list[dict[str, Any]]:
        return read_jsonl(self.metrics)

    def validation_rows(self) -> list[dict[str, Any]]:
        return read_jsonl(self.validation)

    def merged_metrics(self) -> list[dict[str, Any]]:
        """metrics.jsonl rows with validation.jsonl's val_mean folded in: validation tagged g ran
        after generation g - 1's update.  Rows without a generation (foreign files) are kept as they are."""
        rows = self.metrics_rows()
        by_gen = {int(r["generation"]): r for r in rows if isinstance(r.get("generation"), (int, float))}
        for v in self.validation_rows():
            g = int(v.get("generation", -1)) - 1
            if g in by_gen:
                by_gen[g]["val_mean"] = v.get("val_mean")
        return rows

    # ---- writing ----------------------------------------------------------------------------
    def write_status(self, status: Status, info: dict[str, Any] | None = None, error: str | None = None) -> None:
        """status.json: where a run stands (for reports over sweeps) and which config choices made it."""
        data: dict[str, Any] = {"status": Status(status).value, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
        data.update(info or {})
        if error:
            data["error"] = error
        try:
            write_json_atomic(self.status_file, json_safe(data))
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or not self.status_file.exists():
                raise
            # A full disk has no room for a temp copy, but the old file's own blocks take the
            # new status (a few hundred bytes), so the run's end is still recorded.
            with open(self.status_file, "r+") as fh:
                fh.write(json.dumps(json_safe(data), indent=2, default=str) + "\n")
                fh.truncate()

    # ---- opening ----------------------------------------------------------------------------
    @classmethod
    def open(cls, run: str | Path, key: str = "run") -> "RunDir":
        """An existing run directory, with one-line errors for a missing directory or config."""
        rd = cls(Path(run).resolve())
        if not rd.path.is_dir():
            raise ConfigError(f"{key}={str(run)!r} is not a directory")
        if not rd.config.exists():
            if rd.last.exists() or rd.best.exists():  # a run whose config.yaml was lost
                raise ConfigError(f"{key}={str(run)!r} has checkpoints but no config.yaml; {rd.config_fix()}")
            raise ConfigError(f"{key}={str(run)!r} has no config.yaml: not a hebbian_es run directory")
        return rd


def find_runs(root: Path, skip: Iterable[str] = ()) -> list[RunDir]:
    """Run directories at or below root (a sweep directory), in path order."""
    skip = set(skip)
    found = []
    for cfg in sorted(Path(root).rglob("*")):
        if cfg.name not in ("config.yaml", "status.json") or any(part in skip for part in cfg.relative_to(root).parts[:-1]):
            continue
        rd = RunDir(cfg.parent)
        if rd not in found:
            found.append(rd)
    return found


def read_json_checked(path: Path) -> tuple[Any, str | None]:
    """(data, None); (None, None) when the file is absent; (None, "<name> unreadable (<error>)") when it
    is torn or unreadable: for readers that report a damaged file rather than skip it (report)."""
    path = Path(path)
    if not path.exists():
        return None, None
    try:
        return json.loads(path.read_text()), None
    except (OSError, json.JSONDecodeError) as exc:
        return None, f"{path.name} unreadable ({type(exc).__name__})"


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0][:150]}" if lines else type(exc).__name__


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None
