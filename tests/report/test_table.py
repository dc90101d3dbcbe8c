"""The side-by-side test table (python -m hebbian_es.report.table)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hebbian_es.report.table import markdown


def body(mean: float, sd: float, seen: bool, solved: bool = False, n: int = 100) -> dict:
    return {"mean": mean, "sd": sd, "episodes": n, "seen": seen, "solved": solved}


def quadruped(offset: float) -> dict:
    envs = {
        "standard": body(500 + offset, 50, True, True),
        "front_right_short": body(400 + offset, 40, True, True),
        "front_left_short": body(120 + offset, 30, False, offset == 0),
        "random_00": body(10, 1, False),
    }
    rd = {"count": 1, "mean_of_means": 10.0, "sd_of_means": 0.0, "min": 10.0, "median": 10.0, "max": 10.0, "solved_fraction": 0.0}
    return {"envs": envs, "random_damages": rd}


def test_runs_side_by_side_with_the_papers_table_1() -> None:
    text = markdown({"hebbian": quadruped(0), "static": quadruped(-100)}, "quadruped")
    lines = text.splitlines()
    assert lines[0] == "| body | seen? | hebbian (n) | static (n) | paper: Hebbian ABCD | paper: static |"
    assert lines[4] == (
        "| front_left_short | unseen | 120.0 ± 30.0, solved (100) | 20.0 ± 30.0, not solved (100) "
        "| 452 ± 95, solved | 68 ± 56, not solved |"
    )
    assert lines[2].startswith("| standard | seen | 500.0 ± 50.0, solved (100) | 400.0 ± 50.0, solved (100) | 1051 ± 113 |")
    assert not any(line.startswith("| random_00") for line in lines)  # folded into the distribution row
    assert lines[-1].startswith("| random damages: mean of means ± sd (bodies) | unseen | 10.0 ± 0.0 (1), solved 0% |")


def test_single_env_results_share_one_row_with_the_papers_whatever_the_envs_names() -> None:
    res = {"envs": {"carracing_fast": {"mean": 300.0, "sd": 90.0, "episodes": 100}}}
    real = {"envs": {"carracing": {"mean": 290.0, "sd": 80.0, "episodes": 100}}}  # the same agent on CarRacing-v3
    lines = markdown({"abcd": res, "on CarRacing-v3": real}, "carracing").splitlines()
    assert lines[0] == "| env | seen? | abcd (n) | on CarRacing-v3 (n) | paper: Hebbian ABCD | paper: static |"
    assert lines[2] == "| carracing_fast / carracing |  | 300.0 ± 90.0 (100) | 290.0 ± 80.0 (100) | 872 ± 11 | 711 ± 16 |"
    assert lines[4] == "on CarRacing-v3 − abcd: -10.0 (within one sd of abcd, 90.0)"  # the transfer check
    far = {"envs": {"carracing": {"mean": 150.0, "sd": 80.0, "episodes": 100}}}
    assert markdown({"abcd": res, "real": far}).splitlines()[-1] == "real − abcd: -150.0 (beyond one sd of abcd, 90.0)"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hebbian_es.report.table", *args], capture_output=True, text=True)


def test_the_command_reads_a_run_directory_or_a_results_file_and_writes_markdown(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "test_last.json").write_text(json.dumps(quadruped(0)))
    (tmp_path / "eval.json").write_text(json.dumps(quadruped(5)))
    done = _run(f"a={tmp_path / 'run'}", f"b={tmp_path / 'eval.json'}", f"out={tmp_path / 'out' / 't.md'}")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "t.md").read_text() == done.stdout
    assert "| 500.0 ± 50.0, solved (100) | 505.0 ± 50.0, solved (100) |" in done.stdout


def test_bad_input_is_one_line_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    missing = _run(f"a={tmp_path / 'run'}")
    assert missing.returncode == 2 and missing.stderr.strip().count("\n") == 0
    assert "no test_last.json" in missing.stderr and "hebbian_es.evaluate" in missing.stderr
    (tmp_path / "run" / "test_last.json").write_text(json.dumps(quadruped(0)))
    paper = _run(f"a={tmp_path / 'run'}", "paper=ant")
    assert paper.returncode == 2 and "paper='ant'; allowed: ['quadruped', 'carracing']" in paper.stderr
    none = _run()  # no arguments: the usage, and a failure exit
    assert none.returncode == 2 and "NAME=RESULTS" in none.stdout
