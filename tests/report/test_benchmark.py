"""`python -m hebbian_es.benchmark`: bad input is one line naming the allowed values with nothing
written; the statistics are scipy's, on known data; a tiny suite runs, reports, and a rerun
skips what is finished."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from hebbian_es.report.benchmark import TaskScores, interval, performance_profile, probability_of_improvement, summarise, _iqm, _mean


def bench(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hebbian_es.benchmark", *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize(
    "args, message",
    [
        (["tasks=[cartpole_nope]"], "tasks=['cartpole_nope']: unknown task 'cartpole_nope'; allowed: ['cartpole_reversal'"),
        (["variants=[abcd,hebb9]"], "variants=['abcd', 'hebb9']: unknown variant 'hebb9'; allowed: ['static', 'a', 'ad'"),
        (["seeds=0"], "seeds=0: must be >= 1"),
        (["seeds=-2"], "seeds=-2: must be >= 1"),
        (["tasks=[cartpole_physics]", "variants=[abcd]", "extra=['variation.random.length=[0.9,0.2]']"],
         "task cartpole_physics, variant abcd: variation.random.length=[0.9, 0.2]: low is above high"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "bench"
    done = bench(*args, f"out={out}", timeout=300)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], done.stderr
    assert not out.exists()


def test_statistics_are_scipys_on_known_data() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(10.0, 1.0, size=(6, 3))
    point, low, high = interval(_iqm, x)
    assert point == pytest.approx(stats.trim_mean(x.reshape(-1), 0.25)) and low < point < high
    assert interval(_mean, x)[0] == pytest.approx(x.mean())
    assert probability_of_improvement(x + 100.0, x)[0] == 1.0
    assert probability_of_improvement(x, x)[0] == 0.5  # every pair ties within its column: half
    p, lo, hi = probability_of_improvement(x + 0.3, x)
    assert 0.5 < p < 1.0 and lo <= p <= hi
    taus = np.linspace(5, 15, 11)
    prof, plo, phi = performance_profile(x, taus)
    assert prof[0] == 1.0 and prof[-1] == 0.0 and np.all(np.diff(prof) <= 0) and np.all(plo <= prof) and np.all(prof <= phi)


def test_summary_groups_seen_and_unseen_columns() -> None:
    rng = np.random.default_rng(1)
    scores = {"static": rng.normal(0, 1, (5, 3)), "abcd": rng.normal(5, 1, (5, 3))}
    s = summarise(TaskScores("t", ("a", "b", "c"), (True, True, False), tuple(range(5)), scores), ["static", "abcd"])
    assert s["groups"]["unseen"]["tests"] == ["c"] and s["groups"]["seen"]["tests"] == ["a", "b"]
    row = s["groups"]["unseen"]["variants"]["abcd"]
    assert row["p_improve_over_static"][0] == 1.0 and "p_improve_over_abcd" not in row


@pytest.mark.slow
def test_a_tiny_suite_runs_reports_and_resumes(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "common: ['network.hidden=[4]', optimizer.popsize=4, generations=2, fitness.episodes=1, evaluator=serial,"
        " validation.every=0, test.episodes=3, progress_bar=false, env.max_episode_steps=30]\n"
        "tasks:\n  rev: {overrides: [env=cartpole, variation=cartpole_reversal]}\n"
        "baselines: [static]\n"
        "variants:\n  static: [rule=static]\n  merged: {overrides: [rule=abcd], merge: {k: 2, at: 0.5}}\n"
    )
    out = tmp_path / "bench"
    done = bench(f"suite={suite}", "seeds=2", f"out={out}")
    assert done.returncode == 0, done.stderr
    assert "4 to run" in done.stdout and (out / "report.md").is_file() and (out / "rev.png").is_file()
    report = json.loads((out / "report.json").read_text())
    assert report["runs_finished"] == 4
    unseen = report["tasks"][0]["groups"]["unseen"]
    assert unseen["tests"] == ["reversed_long_heavy"] and set(unseen["variants"]) == {"static", "merged"}
    assert (out / "runs" / "rev" / "merged" / "s1" / "run" / "merge.json").is_file()
    again = bench(f"suite={suite}", "seeds=2", f"out={out}")
    assert again.returncode == 0 and "4 finished already, 0 to run" in again.stdout
