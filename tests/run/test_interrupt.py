"""The first Ctrl-C stops a run at once: workers terminated without tracebacks, status stopped,
last.pt intact, one line with the command that continues it; that command does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hebbian_es.run.rundir import RunDir, Status

RUN = ["network=small", "optimizer.popsize=8", "generations=200", "evaluator=local", "evaluator.workers=2",
       "validation.every=0", "test.after_fit=false", "progress_bar=false"]


def _wait_for_rows(rd: RunDir, n: int, proc: subprocess.Popen, limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if rd.metrics.exists() and len(rd.metrics_rows()) >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    raise AssertionError("the run wrote no metrics rows in time")


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_at_once_and_the_printed_command_continues(tmp_path: Path, sig: int, code: int) -> None:
    rd = RunDir(tmp_path / "run")
    cmd = [sys.executable, "-m", "hebbian_es", *RUN, f"hydra.run.dir={rd.path}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    _wait_for_rows(rd, 2, proc)
    sent = time.monotonic()
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)  # what a terminal's Ctrl-C does: the whole process group
    else:
        proc.send_signal(sig)  # kill <pid>: the main process alone
    out, err = proc.communicate(timeout=60)
    took = time.monotonic() - sent
    assert proc.returncode == code, err
    assert took < 10, f"took {took:.1f} s to stop"
    assert "Traceback" not in err and "KeyboardInterrupt" not in err and "SIGTERMException" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("stopped at generation")]
    assert len(lines) == 1, err
    assert rd.read_status()["status"] == Status.STOPPED.value
    saved = torch.load(rd.last, weights_only=False)  # intact
    # the row of a generation is written just before its last.pt: a stop between the two
    # leaves one row more, which the continued run rewrites
    assert saved["generation"] in (len(rd.metrics_rows()), len(rd.metrics_rows()) - 1)
    continue_with = lines[0].split("continue with: ", 1)[1]
    assert continue_with.startswith("python -m hebbian_es ") and f"hydra.run.dir={rd.path}" in continue_with
    again = subprocess.run(
        [sys.executable, "-m", "hebbian_es", *continue_with.split()[3:], "generations=4"],
        capture_output=True, text=True, timeout=300,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert rd.read_status()["status"] == Status.FINISHED.value
    assert [r["generation"] for r in rd.metrics_rows()] == list(range(max(4, saved["generation"])))
