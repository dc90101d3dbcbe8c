"""Progress of `python -m hebbian_es.analyze`: one line per batch of lifetimes with lifetimes
done/total and an ETA, on stderr (stdout keeps the results); progress=false: none."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from hebbian_es.analysis.cli import ANALYSES, main
from hebbian_es.analysis.progress import Progress
from hebbian_es.run.train import train

LINE = re.compile(r"^(\w+): (\d+)/(\d+) lifetimes done \(last batch: (\d+) on (\S+)\), \d+:\d\d:\d\d elapsed, ETA (\d+):(\d\d):(\d\d)$")
# Small arguments per analysis; batch_size=2 splits freeze's 2 x 4 lifetimes into batches.
ARGS = {
    "freeze": ["ks=[0,3,500]", "episodes=2", "batch_size=2"],
    "actuator_saturation": ["t0=2", "t1=5", "episodes=2", "smooth=3", "baseline=2"],
    "weight_zeroing": ["t=3", "after=2", "episodes=3", "smooth=3"],
    "pca": [],
    "weights": ["steps=[0,5]"],
    "video": ["every=10", "frames=2"],
    "static_vs_hebbian": ["t0=2", "t1=5", "episodes=2", "smooth=3"],
    "rules": ["max_rules=4", "points=5"],
}
LIFETIMES = {  # what each analysis runs on the one CartPole body
    "freeze": 2 + 3 * 2, "actuator_saturation": 2 * 2, "weight_zeroing": 2 * 3, "pca": 2, "weights": 1, "video": 1,
    "static_vs_hebbian": 2 * 2 * 2, "rules": 0,
}


@pytest.fixture(scope="module")
def runs(compose_config, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("progress")
    for name, rule in (("hebbian", "abcd"), ("static", "static")):
        train(compose_config.raw("debug=default", f"run_dir={root / name}", f"rule={rule}", "test.after_fit=false", "validation.every=0"))
    return SimpleNamespace(hebbian=root / "hebbian", static=root / "static")


def test_eta_is_the_mean_time_per_lifetime_times_the_lifetimes_left() -> None:
    now = [100.0]
    lines: list[str] = []
    logger = logging.getLogger("test_analysis_progress")
    logger.handlers, logger.propagate, logger.level = [], False, logging.INFO
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger.addHandler(handler)
    p = Progress("freeze", 10, clock=lambda: now[0], logger=logger)
    now[0] += 20.0
    p.advance(4, "run/cartpole")  # 5 s per lifetime so far, 6 left
    now[0] += 10.0
    p.advance(6, "run/cartpole")
    assert lines == [
        "freeze: 4/10 lifetimes done (last batch: 4 on run/cartpole), 0:00:20 elapsed, ETA 0:00:30",
        "freeze: 10/10 lifetimes done (last batch: 6 on run/cartpole), 0:00:30 elapsed, ETA 0:00:00",
    ]


@pytest.mark.parametrize("analysis", ANALYSES)
def test_one_line_per_batch_and_the_plan_is_exact(
    runs: SimpleNamespace, tmp_path: Path, analysis: str, caplog: pytest.LogCaptureFixture
) -> None:
    extra = [f"static={runs.static}"] if analysis == "static_vs_hebbian" else []
    with caplog.at_level(logging.INFO, logger="hebbian_es"):
        main([f"analysis={analysis}", f"run={runs.hebbian}", f"out={tmp_path}", *ARGS[analysis], *extra])
    found = [LINE.match(r.getMessage()) for r in caplog.records if r.getMessage().startswith(f"{analysis}: ")]
    if LIFETIMES[analysis] == 0:  # rules: no lifetime, no progress line
        assert not found, caplog.text
        return
    assert found and all(found), caplog.text
    done = [int(m.group(2)) for m in found]
    totals = {int(m.group(3)) for m in found}
    assert totals == {LIFETIMES[analysis]}, caplog.text  # the plan, known before the first batch
    assert done == sorted(done) and done[-1] == LIFETIMES[analysis]  # ... is what ran
    assert sum(int(m.group(4)) for m in found) == done[-1]
    assert found[-1].group(6, 7, 8) == ("0", "00", "00")
    if analysis == "freeze":
        assert len(found) == 1 + 3  # the never-frozen lifetimes, then 6 in batches of 2
    if analysis == "static_vs_hebbian":
        assert {m.group(5) for m in found} == {"hebbian/cartpole", "static/cartpole"}


def test_the_command_shows_progress_on_stderr_unless_asked_not_to(runs: SimpleNamespace, tmp_path: Path) -> None:
    base = [sys.executable, "-m", "hebbian_es.analyze", "analysis=freeze", f"run={runs.hebbian}", *ARGS["freeze"]]
    shown = subprocess.run([*base, f"out={tmp_path / 'a'}"], capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stderr.splitlines()
    assert len(lines) == 4 and all(LINE.match(line) for line in lines), shown.stderr
    assert "lifetimes done" not in shown.stdout and "wrote " in shown.stdout
    quiet = subprocess.run([*base, f"out={tmp_path / 'b'}", "progress=false"], capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
