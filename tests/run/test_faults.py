"""Faults a run meets, each with its outcome: the run continues exactly, or one `error:` line names
the file and what to do (exit 2); never a traceback, never a silently wrong resume.

  kill -9 at random moments and during checkpoint writes   slow: scripts/faults/kill_loop.py, few trials
  SIGTERM / SIGINT mid-generation, then continued          slow: bit-identical to an uninterrupted run
                                                           (stopping itself: test_interrupt.py)
  a second writer on the same run directory                test_lock.py
  a full disk (a small tmpfs)                              last.pt intact, one line, continues once freed
  a read-only run directory                                one line from train, evaluate and analyze
  a truncated, garbage, empty or foreign last.pt           one line; nothing is written
  an empty, cut, unparsable or missing config.yaml         evaluate: one line with the command that
                                                           rewrites it; resuming rewrites it
  a torn last metrics line (killed mid-row)                skipped; the resumed run has one row per generation
  a kill between a checkpoint and its validation           the resumed run validates there first

docs/reliability.md has the figures and what the user sees.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import pytest
import torch

from hebbian_es.analysis.cli import main as analyze_main
from hebbian_es.errors import ConfigError, Interrupted
import hebbian_es.files as files_module
from hebbian_es.files import atomic_save, json_safe
from hebbian_es.run.evaluate import main as evaluate_main
from hebbian_es.run.loop import ESRun
from hebbian_es.run.observers import MetricsObserver
from hebbian_es.run.rundir import RunDir, RunDirUnwritable, Status
from hebbian_es.run.train import train

ROOT = Path(__file__).resolve().parents[2]
RUN = ("debug=default", "generations=4", "validation.every=2", "validation.episodes=2", "test.after_fit=false")
TIMING = ("gen_seconds", "steps_per_s", "wall_time")


def untimed(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def temp_files(rd: RunDir) -> list[Path]:
    return sorted([*rd.path.glob("checkpoints/.*.pt.*"), *rd.path.rglob("*.tmp")])


def files(rd: RunDir) -> dict[str, bytes]:
    """Every file of a run directory but the appended log and the lock (which a refused run may open)."""
    return {str(p.relative_to(rd.path)): p.read_bytes() for p in sorted(rd.path.rglob("*")) if p.is_file() and p.name not in (".lock", "train.log")}


def same_as(rd: RunDir, ref: RunDir) -> None:
    """rd ended where the uninterrupted run did: same centre and optimiser state, one row per generation, same rows."""
    a, b = (torch.load(r.last, weights_only=False) for r in (rd, ref))
    assert a["generation"] == b["generation"] and torch.equal(a["params"], b["params"])
    assert {k: v for k, v in a["optimizer"].items() if k != "center"} == {k: v for k, v in b["optimizer"].items() if k != "center"}
    assert torch.equal(a["optimizer"]["center"], b["optimizer"]["center"])
    assert a["best"] == b["best"] and a["env_steps"] == b["env_steps"]
    assert [r["generation"] for r in rd.metrics_rows()] == list(range(b["generation"]))
    assert untimed(rd.metrics_rows()) == untimed(ref.metrics_rows())
    assert rd.validation_rows() == ref.validation_rows()
    assert not temp_files(rd)


def error_line(capsys: pytest.CaptureFixture[str], main: Callable[[list[str]], Any], argv: list[str]) -> str:
    """The one `error:` line a command prints (exit 2, no traceback)."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def cli(run_dir: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hebbian_es", *RUN, *overrides, f"hydra.run.dir={run_dir}"],
        capture_output=True, text=True, timeout=300,
    )


def one_cli_error(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode == 2, res.stderr[-3000:]
    assert "Traceback" not in res.stderr + res.stdout, res.stderr[-3000:]
    lines = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, res.stderr
    return lines[0]


@pytest.fixture(scope="module")
def whole(compose_config, tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    """An uninterrupted, finished run: what every continued run must equal."""
    rd = RunDir(tmp_path_factory.mktemp("faults") / "whole")
    train(compose_config.raw(*RUN, f"run_dir={rd.path}"))
    return rd


def copy_of(rd: RunDir, dest: Path) -> RunDir:
    shutil.copytree(rd.path, dest)
    return RunDir(dest)


# ---- a damaged checkpoint -------------------------------------------------------------------------
def _truncated(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _garbage(p: Path) -> None:
    p.write_bytes(os.urandom(4096))


def _empty(p: Path) -> None:
    p.write_bytes(b"")


def _foreign(p: Path) -> None:
    torch.save({"weights": torch.zeros(3)}, p)  # a whole torch file, but not a run's checkpoint


DAMAGES = {"truncated": _truncated, "garbage": _garbage, "empty": _empty, "foreign": _foreign}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_last_checkpoint_is_one_line_and_nothing_is_written(
    whole: RunDir, tmp_path: Path, compose_config, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    rd = copy_of(whole, tmp_path / "run")
    DAMAGES[damage](rd.last)
    before = files(rd)
    with pytest.raises(ConfigError) as exc:
        train(compose_config.raw(*RUN, "generations=6", f"run_dir={rd.path}"))
    message = str(exc.value)
    assert "\n" not in message and str(rd.last) in message
    assert ("is not a hebbian_es checkpoint" if damage == "foreign" else "is damaged, not a whole checkpoint") in message
    assert f"move it away (mv {rd.last} {rd.last}.damaged)" in message
    assert files(rd) == before  # refused before anything was written
    # evaluate reads it through the test protocol (run/protocol.py): the same one line
    line = error_line(capsys, evaluate_main, [f"run={rd.path}", "episodes=2"])
    assert str(rd.last) in line and ("is not a hebbian_es checkpoint" if damage == "foreign" else "is damaged") in line


def test_the_command_line_says_so_in_one_line(whole: RunDir, tmp_path: Path) -> None:
    rd = copy_of(whole, tmp_path / "run")
    _truncated(rd.last)
    line = one_cli_error(cli(rd.path, "generations=6"))
    assert line.startswith(f"error: {rd.last} is damaged, not a whole checkpoint (RuntimeError: ")
    assert RunDir(rd.path).read_status()["status"] == Status.FINISHED.value  # untouched


# ---- a damaged or missing config.yaml ---------------------------------------------------------------
def _cut(p: Path) -> None:
    text = p.read_text()
    p.write_text(text[: text.index("\nnetwork:") + 1])  # cut at a line: the YAML still parses


CONFIG_DAMAGES: dict[str, tuple[Callable[[Path], None], str]] = {
    "empty": (lambda p: p.write_text(""), "config.yaml is empty"),
    "cut": (_cut, "config.yaml is incomplete (no network, optimizer, seed, test)"),
    "unparsable": (lambda p: p.write_text("env: [1, 2\n"), "config.yaml is damaged (ParserError"),
    "missing": (lambda p: p.unlink(), "has checkpoints but no config.yaml"),
}


@pytest.mark.parametrize("damage", sorted(CONFIG_DAMAGES))
def test_a_damaged_config_is_one_line_and_resuming_writes_it_anew(
    whole: RunDir, tmp_path: Path, compose_config, capsys: pytest.CaptureFixture[str], damage: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rd = copy_of(whole, tmp_path / "run")
    spoil, says = CONFIG_DAMAGES[damage]
    spoil(rd.config)
    line = error_line(capsys, evaluate_main, [f"run={rd.path}", "episodes=2"])
    assert says in line and f"hydra.run.dir={rd.path}" in line, line  # and the command that rewrites it
    line = error_line(capsys, analyze_main, ["analysis=weights", f"run={rd.path}"])
    assert says in line
    with caplog.at_level("WARNING", logger="hebbian_es"):
        train(compose_config.raw(*RUN, f"run_dir={rd.path}"))  # the run's own command: continues, rewrites it
    assert "writing it anew from this command's config" in caplog.text
    assert rd.read_config() == {**whole.read_config(), "run_dir": str(rd.path)}
    assert rd.read_status()["status"] == Status.FINISHED.value
    same_as(rd, whole)


# ---- a torn last metrics line ------------------------------------------------------------------------
class _Killed(BaseException):
    """Stands in for SIGKILL at a precise point (Lightning re-raises it)."""


def test_a_torn_last_metrics_line_is_skipped_and_rewritten(whole: RunDir, tmp_path: Path, compose_config) -> None:
    rd = RunDir(tmp_path / "run")
    real = MetricsObserver.on_generation

    def killed_mid_row(self: MetricsObserver, run: Any, gen: Any) -> None:
        if gen.metrics["generation"] == 2:  # half of generation 2's row, then the kill (before its last.pt)
            with open(self.rd.metrics, "a") as fh:
                fh.write(json.dumps(json_safe(dict(gen.metrics)))[:40])
            raise _Killed
        real(self, run, gen)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(MetricsObserver, "on_generation", killed_mid_row)
        with pytest.raises(_Killed):
            train(compose_config.raw(*RUN, f"run_dir={rd.path}"))
    assert not rd.metrics.read_text().endswith("\n")  # the torn line is there ...
    assert [r["generation"] for r in rd.metrics_rows()] == [0, 1]  # ... and readers skip it
    assert rd.merged_metrics()[-1]["generation"] == 1
    train(compose_config.raw(*RUN, f"run_dir={rd.path}"))
    same_as(rd, whole)
    assert rd.metrics_csv.read_text().count("\n") == 1 + 4  # header and one row per generation


def test_a_kill_between_a_checkpoint_and_its_validation_loses_no_validation(
    whole: RunDir, tmp_path: Path, compose_config
) -> None:
    # Found by the kill loop: validation runs after a generation's last.pt, so a run killed in
    # between resumed past it and its validation.jsonl lacked that generation's row.
    rd = RunDir(tmp_path / "run")
    real = ESRun.validate

    def killed_before(self: ESRun, episodes: int) -> Any:
        if self.generation == 2:
            raise _Killed  # last.pt says generation 2; its validation never ran
        return real(self, episodes)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ESRun, "validate", killed_before)
        with pytest.raises(_Killed):
            train(compose_config.raw(*RUN, f"run_dir={rd.path}"))
    assert torch.load(rd.last, weights_only=False)["generation"] == 2 and rd.validation_rows() == []
    train(compose_config.raw(*RUN, f"run_dir={rd.path}"))
    assert [r["generation"] for r in rd.validation_rows()] == [2, 4]
    same_as(rd, whole)


# ---- a full disk -------------------------------------------------------------------------------------
def fill(directory: Path) -> Path:
    """A file that takes every free byte of the disk `directory` is on."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_keeps_the_last_checkpoint_and_the_run_continues_once_freed(
    whole: RunDir, tmp_path: Path, compose_config, tmpfs: Callable[[Path, str], Path]
) -> None:
    disk = tmpfs(tmp_path / "disk", "4m")
    rd = RunDir(disk / "run")
    real = MetricsObserver.on_generation
    fillers: list[Path] = []

    def row_then_full(self: MetricsObserver, run: Any, gen: Any) -> None:
        real(self, run, gen)
        if gen.metrics["generation"] == 1:  # generation 1's checkpoint write meets a full disk
            fillers.append(fill(disk))

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(MetricsObserver, "on_generation", row_then_full)
        with pytest.raises(RunDirUnwritable) as exc:
            train(compose_config.raw(*RUN, f"run_dir={rd.path}"))
    message = str(exc.value)
    assert "\n" not in message and message.startswith(f"cannot write {rd.checkpoints}/")
    assert "No space left on device" in message and "free space on that disk, then run the same command to continue" in message
    assert "checkpoints/last.pt is intact (the run continues at generation 1)" in message
    assert torch.load(rd.last, weights_only=False)["generation"] == 1  # the last good checkpoint, whole
    assert not temp_files(rd)
    status = rd.read_status()  # recorded in the old status file's own space
    assert status["status"] == Status.FAILED.value and "No space left on device" in status["error"]
    fillers[0].unlink()
    train(compose_config.raw(*RUN, f"run_dir={rd.path}"))  # the same command, once there is space
    same_as(rd, whole)


class _StoppedMidWrite(io.RawIOBase):
    """A checkpoint file whose `n`-th write is where a Ctrl-C or SIGTERM lands (its handler raises)."""

    def __init__(self, fh: Any, n: int) -> None:
        self.fh, self.n = fh, n

    def write(self, data: Any) -> int:
        self.n -= 1
        if self.n == 0:
            raise Interrupted("SIGTERM")
        return self.fh.write(data)

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        self.fh.flush()

    def fileno(self) -> int:
        return self.fh.fileno()

    def close(self) -> None:
        self.fh.close()


@pytest.mark.parametrize("n", [1, 2, 5])
def test_a_stop_signal_during_a_checkpoint_write_is_the_stop_not_a_torch_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n: int
) -> None:
    # torch's zip writer, unwinding from the signal's exception, raises "unexpected pos ..." of its
    # own (CI saw it: exit 1 with that traceback); the run must see the stop (exit 143, status stopped).
    path = tmp_path / "checkpoints" / "last.pt"
    atomic_save({"generation": 1}, path)
    real = os.fdopen
    monkeypatch.setattr(files_module.os, "fdopen", lambda fd, mode: _StoppedMidWrite(real(fd, mode), n))
    with pytest.raises(Interrupted, match="SIGTERM"):
        atomic_save({"centre": torch.zeros(4096), "generation": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=False) == {"generation": 1}  # the old file, whole
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]  # no temp file


def test_a_stop_that_an_import_turns_into_another_error_is_still_the_stop(
    tmp_path: Path, compose_config, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # CI saw it: SIGINT landed while matplotlib's ft2font initialised (imported by Lightning on the
    # first generation); the C extension turned the stop's exception into ImportError("initialization
    # failed"), and the run exited 1 with a traceback instead of stopping (exit 130, status stopped).
    import hebbian_es.run.train as train_module

    def fit_interrupted_inside_an_import(run: ESRun, conf: Any) -> None:
        try:
            os.kill(os.getpid(), signal.SIGINT)  # the run's handler raises Interrupted here
        except Interrupted:
            raise ImportError("initialization failed") from None

    monkeypatch.setattr(train_module, "_fit", fit_interrupted_inside_an_import)
    rd = RunDir(tmp_path / "run")
    with pytest.raises(SystemExit) as exc:
        train(compose_config.raw(*RUN, f"run_dir={rd.path}"))
    assert exc.value.code == 128 + signal.SIGINT
    err = capsys.readouterr().err
    assert "stopped at generation 0 by SIGINT (status stopped); continue with: " in err, err
    assert rd.read_status()["status"] == Status.STOPPED.value


@pytest.mark.slow
def test_a_full_disk_on_the_command_line_is_one_line(tmp_path: Path, tmpfs: Callable[[Path, str], Path]) -> None:
    import time

    disk = tmpfs(tmp_path / "disk", "4m")
    rd = RunDir(disk / "run")
    def cmd(generations: int) -> list[str]:
        return [sys.executable, "-m", "hebbian_es", *RUN, f"generations={generations}", "validation.every=0", f"hydra.run.dir={rd.path}"]

    proc = subprocess.Popen(cmd(400), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(rd.metrics_rows()) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    filler = fill(disk)
    out, err = proc.communicate(timeout=120)
    line = one_cli_error(subprocess.CompletedProcess(cmd(400), proc.returncode, out, err))
    assert "No space left on device" in line and "checkpoints/last.pt is intact" in line
    done = int(torch.load(rd.last, weights_only=False)["generation"])
    assert done >= 2 and not temp_files(rd)
    filler.unlink()
    again = subprocess.run(cmd(done + 2), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert [r["generation"] for r in rd.metrics_rows()] == list(range(done + 2))


# ---- a read-only run directory -----------------------------------------------------------------------
def test_a_read_only_run_directory_is_one_line_from_every_command(
    whole: RunDir, tmp_path: Path, compose_config, capsys: pytest.CaptureFixture[str], read_only: Callable[[Path], str]
) -> None:
    rd = copy_of(whole, tmp_path / "ro" / "run")
    before = files(rd)
    reason = read_only(rd.path)
    with pytest.raises(RunDirUnwritable) as exc:
        train(compose_config.raw(*RUN, "generations=6", f"run_dir={rd.path}"))
    message = str(exc.value)
    assert message.startswith(f"run_dir={str(rd.path)!r} cannot be written ({rd.lock_file}: {reason}; make it writable")
    line = error_line(capsys, analyze_main, ["analysis=weights", f"run={rd.path}"])
    assert f"out={str(rd.analysis)!r} cannot be written" in line and reason in line and "out=<dir>" in line
    line = error_line(capsys, evaluate_main, [f"run={rd.path}", "episodes=2"])  # before any lifetime runs
    assert line == f"error: cannot write the evaluation into {rd.path}/evaluations: {reason}; make the run directory writable", line
    res = cli(rd.path, "generations=6")
    assert one_cli_error(res) == f"error: {message}"
    assert files(rd) == before


# ---- kill -9, SIGTERM and SIGINT at random moments -----------------------------------------------
def kill_loop() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kill_loop", ROOT / "scripts" / "faults" / "kill_loop.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["kill_loop"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


KILL_GENERATIONS = 20


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """The kill loop's uninterrupted run (its command, KILL_GENERATIONS generations) and its training time."""
    return kill_loop().reference(tmp_path_factory.mktemp("kill_loop"), KILL_GENERATIONS)


@pytest.mark.slow
def test_kill_9_at_random_moments_resumes_bit_identical(tmp_path: Path, uninterrupted: tuple[Path, float]) -> None:
    trials = int(os.environ.get("HEBBIAN_ES_KILL_TRIALS", "3"))
    loop = kill_loop()
    results, figure = loop.run_trials(tmp_path, trials, generations=KILL_GENERATIONS, ref=uninterrupted, echo=False)
    report = "\n".join(loop.describe(t, signal.SIGKILL, trials) for t in results)
    assert all(t.ok for t in results), report
    hit = sum(any(launch.signalled for launch in t.launches) for t in results)
    assert hit >= 1 and figure.startswith(f"kill -9: {hit}/{hit} interrupted runs resumed bit-identical"), figure
    if trials >= 2:  # the odd trials aim at a checkpoint write: at least one kill lands inside one
        assert sum(any(launch.during_write for launch in t.launches) for t in results) >= 1, report


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stopped_and_continued_run_equals_an_uninterrupted_one(tmp_path: Path, uninterrupted: tuple[Path, float], sig: int) -> None:
    loop = kill_loop()  # two trials: at a random moment, and in the middle of a checkpoint write
    results, figure = loop.run_trials(tmp_path, 2, sig=sig, generations=KILL_GENERATIONS, ref=uninterrupted, echo=False, seed=1)
    report = "\n".join(loop.describe(t, sig, 2) for t in results)
    assert all(t.ok for t in results) and results[1].launches[0].signalled, report
