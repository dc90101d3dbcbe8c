"""One writer per run directory: a second process on a locked directory refuses in one line."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from hebbian_es.run.rundir import RunDir, RunDirLocked
from hebbian_es.run.train import train


def test_a_second_lock_on_the_same_directory_is_refused_naming_the_holder(tmp_path: Path) -> None:
    rd = RunDir(tmp_path)
    held = rd.lock()
    with pytest.raises(RunDirLocked, match=r"is in use by pid \d+ on .+ since \d{4}-\d\d-\d\d"):
        rd.lock()
    held.release()
    rd.lock().release()  # free again once released


def test_the_lock_dies_with_its_process(tmp_path: Path) -> None:
    code = f"from hebbian_es.run.rundir import RunDir; RunDir({str(tmp_path)!r}).lock(); import os; os._exit(0)"
    subprocess.run([sys.executable, "-c", code], check=True)
    RunDir(tmp_path).lock().release()  # the holder exited without releasing: the OS did


def test_a_requeued_job_waits_for_its_predecessor_to_release_the_lock(tmp_path: Path) -> None:
    # The predecessor holds the lock for 1.5 s, as a pre-empted job still exiting would.
    code = f"from hebbian_es.run.rundir import RunDir; import time; held = RunDir({str(tmp_path)!r}).lock(); time.sleep(1.5)"
    holder = subprocess.Popen([sys.executable, "-c", code])
    try:
        rd = RunDir(tmp_path)
        deadline = time.monotonic() + 30
        while not (rd.lock_file.exists() and rd.lock_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(RunDirLocked):
            rd.lock(wait_s=0.0)
        rd.lock(wait_s=30.0).release()  # taken once the holder exits, well before 30 s
        assert holder.wait(timeout=30) == 0
    finally:
        holder.kill()


def test_training_into_a_locked_directory_writes_nothing(tmp_path: Path, compose_config) -> None:
    rd = RunDir(tmp_path / "run")
    rd.path.mkdir()
    held = rd.lock()
    try:
        with pytest.raises(RunDirLocked):
            train(compose_config.raw("debug=default", f"run_dir={rd.path}"))
        assert sorted(p.name for p in rd.path.iterdir()) == [".lock"]
    finally:
        held.release()


def test_cli_refuses_a_locked_directory_in_one_line(tmp_path: Path) -> None:
    rd = RunDir(tmp_path / "run")
    rd.path.mkdir()
    held = rd.lock()
    try:
        res = subprocess.run(
            [sys.executable, "-m", "hebbian_es", "debug=default", f"hydra.run.dir={rd.path}"],
            capture_output=True, text=True, timeout=120,
        )
    finally:
        held.release()
    assert res.returncode == 2
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "is in use by pid" in errors[0], res.stderr
    assert sorted(p.name for p in rd.path.iterdir()) == [".lock"]


@pytest.mark.slow
def test_a_sweep_job_whose_directory_is_locked_runs_elsewhere_not_failed(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    (sweep / "0").mkdir(parents=True)
    held = RunDir(sweep / "0").lock()
    try:
        res = subprocess.run(
            [sys.executable, "-m", "hebbian_es", "-m", "debug=default", "seed=0,1", "test.after_fit=false",
             f"hydra.sweep.dir={sweep}"],
            capture_output=True, text=True, timeout=300,
        )
    finally:
        held.release()
    assert res.returncode == 0, res.stderr[-2000:]
    assert "running elsewhere: run_dir=" in res.stderr
    assert sorted(p.name for p in (sweep / "0").iterdir()) == [".lock"]  # job 0 touched nothing
    assert RunDir(sweep / "1").read_status()["status"] == "finished"
