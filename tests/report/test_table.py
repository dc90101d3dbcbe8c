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
    assert lines[5].startswith("| random damages: mean of means ± sd (bodies) | unseen | 10.0 ± 0.0 [10.0, 10.0] (1), solved 0% |")
    assert lines[7].startswith("95 % intervals: bootstrap over test lifetimes")


def test_every_mean_gets_its_bootstrap_interval_from_the_lifetimes() -> None:
    import numpy as np
    from scipy.stats import bootstrap

    returns = np.random.default_rng(3).normal(200.0, 40.0, 50)
    st = {"mean": float(returns.mean()), "sd": float(returns.std()), "episodes": 50, "returns": returns.tolist()}
    line = markdown({"a": {"envs": {"cartpole": st}}}).splitlines()[2]
    ref = bootstrap((returns,), np.mean, n_resamples=10_000, method="percentile", random_state=np.random.default_rng(0))
    lo, hi = ref.confidence_interval
    assert f"[{lo:.1f}, {hi:.1f}]" in line and lo < st["mean"] < hi


def _seeded_run(root: Path, name: str, test_mean: float, val_mean: float, generation: int = 30) -> Path:
    run = root / name
    (run / "evaluations").mkdir(parents=True)
    res = quadruped(test_mean - 500)
    res["checkpoint_generation"] = generation
    (run / "test_last.json").write_text(json.dumps(res))
    rows = [{"generation": g, "val_mean": val_mean if g == generation else 0.0, "val_std": 1.0} for g in (10, 20, 30)]
    (run / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


def test_several_seeds_of_a_setting_give_best_of_k_by_validation_and_the_mean_over_runs(tmp_path: Path) -> None:
    from hebbian_es.report.table import TableArgs, table

    # the run with the best validation is not the one with the best test: best of k follows validation
    a = _seeded_run(tmp_path, "s0", test_mean=600.0, val_mean=100.0)
    b = _seeded_run(tmp_path, "s1", test_mean=500.0, val_mean=300.0)
    c = _seeded_run(tmp_path, "s2", test_mean=400.0, val_mean=200.0)
    text = table(TableArgs(results={"hebbian": f"{a},{b},{c}"}))
    lines = text.splitlines()
    assert lines[0] == "| body | seen? | hebbian: best of 3 by validation (n) | hebbian: mean of 3 runs (n) |"
    best, mean = lines[2].split(" | ")[2:4]
    assert best.startswith("500.0 ± 50.0")  # s1's test, chosen by its validation 300
    assert mean.startswith("500.0 ± 81.6 [400.0, 600.0], solved in 3 of 3 runs (3 runs)")
    assert f"best of 3 runs = {b}" in text and "validation during training" in text
    assert "over runs (training seeds)" in text


def test_best_of_k_prefers_the_selection_score_when_the_run_made_one(tmp_path: Path) -> None:
    from hebbian_es.report.table import validation_score

    run = _seeded_run(tmp_path, "s0", test_mean=600.0, val_mean=100.0)
    sel = {"candidates": [{"generation": 30, "selection_mean": 123.0}, {"generation": 20, "selection_mean": 999.0}]}
    (run / "selection.json").write_text(json.dumps(sel))
    res = json.loads((run / "test_last.json").read_text())
    assert validation_score(str(run), res) == (123.0, "selection lifetimes (python -m hebbian_es.select)")
    assert validation_score(str(run / "evaluations" / "x.json"), res)[0] == 123.0  # a results file inside the run


def test_single_env_results_share_one_row_with_the_papers_whatever_the_envs_names() -> None:
    res = {"envs": {"carracing_fast": {"mean": 300.0, "sd": 90.0, "episodes": 100}}}
    real = {"envs": {"carracing": {"mean": 290.0, "sd": 80.0, "episodes": 100}}}  # the same agent on CarRacing-v3
    lines = markdown({"abcd": res, "on CarRacing-v3": real}, "carracing").splitlines()
    assert lines[0] == "| env | seen? | abcd (n) | on CarRacing-v3 (n) | paper: Hebbian ABCD | paper: static |"
    assert lines[2] == "| carracing_fast / carracing |  | 300.0 ± 90.0 (100) | 290.0 ± 80.0 (100) | 872 ± 11 | 711 ± 16 |"
    assert lines[-1] == "on CarRacing-v3 − abcd: -10.0 (within one sd of abcd, 90.0)"  # the transfer check
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
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "test_last.json").write_text(json.dumps(quadruped(0)))  # no checkpoint_generation, no validation
    (tmp_path / "run" / "test_last.json").write_text(json.dumps(quadruped(0)))
    unscored = _run(f"a={tmp_path / 'run'},{tmp_path / 'other'}")
    assert unscored.returncode == 2 and unscored.stderr.strip().count("\n") == 0 and "best of 2 runs needs a validation score" in unscored.stderr
    (tmp_path / "run" / "test_last.json").unlink()
    assert "no test_last.json" in missing.stderr and "hebbian_es.evaluate" in missing.stderr
    (tmp_path / "run" / "test_last.json").write_text(json.dumps(quadruped(0)))
    paper = _run(f"a={tmp_path / 'run'}", "paper=ant")
    assert paper.returncode == 2 and "paper='ant'; allowed: ['quadruped', 'carracing']" in paper.stderr
    none = _run()  # no arguments: the usage, and a failure exit
    assert none.returncode == 2 and "NAME=RESULTS" in none.stdout
