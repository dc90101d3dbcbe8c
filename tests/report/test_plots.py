"""The run-comparison plot command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hebbian_es.report.compare import main


def write_run(d: Path, offset: float) -> None:
    d.mkdir(parents=True)
    with open(d / "metrics.jsonl", "w") as fh:
        for g in range(5):
            fh.write(json.dumps({"generation": g, "pop_mean": g + offset, "center_return": g}) + "\n")
    (d / "validation.jsonl").write_text(json.dumps({"generation": 5, "val_mean": 4.0 + offset}) + "\n")


def test_compare_writes_a_png(tmp_path: Path) -> None:
    write_run(tmp_path / "a", 0.0)
    write_run(tmp_path / "b", 1.0)
    out = tmp_path / "cmp.png"
    done = subprocess.run(
        [sys.executable, "-m", "hebbian_es.plots", str(out), f"hebbian={tmp_path / 'a'}", f"static={tmp_path / 'b'}"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_without_runs_is_one_clear_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hebbian_es.plots", str(tmp_path / "x.png"), f"a={tmp_path / 'missing'}"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and done.stderr.startswith("error:")


def test_compare_accepts_out_as_a_key(tmp_path: Path) -> None:
    write_run(tmp_path / "a", 0.0)
    out = tmp_path / "cmp.png"
    done = subprocess.run(
        [sys.executable, "-m", "hebbian_es.plots", f"out={out}", f"hebbian={tmp_path / 'a'}"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_needs_out_and_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_run(tmp_path / "a", 0.0)
    for argv, says in (([str(tmp_path / "x.png")], "NAME=RUN_DIR"), ([f"a={tmp_path / 'a'}"], "out=OUT.png is required")):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        err = capsys.readouterr().err.strip()
        assert exc.value.code == 2 and err.startswith("error: ") and len(err.splitlines()) == 1 and says in err
