"""`python -m hebbian_es.report`: the comparison report over a sweep directory.

One real sweep for the module (`python -m hebbian_es -m sweep=rule_ablation
debug=default network=small rule=abcd,static seed=0,1`: four tiny CartPole runs),
then made partly failed the way a cluster leaves it: static/s1 marked failed with
its test results and summary gone, and a job (rule=ad) that left only a
status.json saying failed.  The numbers in the report are checked against the
runs' own files.  W&B stays offline: the report spec is built and converted to
W&B's model with the API patched to fail, and nothing is ever published.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hebbian_es.errors import ConfigError
from hebbian_es.report import cli as rep
from hebbian_es.report import wandb as rep_wandb
from hebbian_es.report.aggregate import group_value
from hebbian_es.report.runs import load_run
from hebbian_es.report.wandb import PUBLISH_TIMEOUT_S, api_key_configured, build_wandb_report, wandb_decision, wandb_spec
from hebbian_es.run.rundir import read_jsonl as read_metrics

pytestmark = pytest.mark.timeout(180)

GROUPS = ("abcd", "static")


@pytest.fixture(scope="module", autouse=True)
def _wandb_offline(tmp_path_factory: pytest.TempPathFactory):
    mp = pytest.MonkeyPatch()
    mp.setenv("WANDB_MODE", "offline")
    mp.delenv("WANDB_API_KEY", raising=False)
    mp.setenv("WANDB_DIR", str(tmp_path_factory.mktemp("wandb")))
    yield
    mp.undo()


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sweep")
    d = root / "rule_ablation_cartpole"
    cmd = [
        sys.executable, "-m", "hebbian_es", "-m", "sweep=rule_ablation", "debug=default", "network=small",
        f"hydra.sweep.dir={d}", "rule=abcd,static", "seed=0,1", "test.episodes=3",
    ]
    env = {**os.environ, "WANDB_MODE": "offline"}
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=150, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # static/s1 failed late: status failed, no test results, no summary
    status = json.loads((d / "static/s1/status.json").read_text())
    (d / "static/s1/status.json").write_text(json.dumps({**status, "status": "failed", "error": "RuntimeError: node lost"}))
    (d / "static/s1/test_last.json").unlink()
    (d / "static/s1/summary.json").unlink()
    # a job that died before writing anything but its status
    (d / "ad/s0").mkdir(parents=True)
    choices = {**status["choices"], "rule": "ad"}
    (d / "ad/s0/status.json").write_text(json.dumps({
        "status": "failed", "sweep": status["sweep"], "choices": choices,
        "overrides": ["rule=ad", "seed=0"], "error": "ConfigError: bad node",
    }))
    return d


@pytest.fixture(scope="module")
def built(sweep: Path) -> Path:
    rep.main([f"sweep={sweep}"])
    return sweep / "report"


def test_files(built: Path) -> None:
    for name in ("report.html", "report.md", "report.json", "curves.png", "test_means.png", "wandb_report_spec.json"):
        assert (built / name).stat().st_size > 0, name
    for png in ("curves.png", "test_means.png"):
        assert (built / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (built / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "src=\"curves.png\"" not in page  # self-contained
    md = (built / "report.md").read_text()
    assert "![curves](curves.png)" in md and "![test_means](test_means.png)" in md
    assert "python -m hebbian_es.report sweep=" in md  # the command used
    assert "python -m hebbian_es -m sweep=rule_ablation" in md and "rule=abcd,static" in md  # the sweep's


def _test_means(run: Path) -> float:
    return json.loads((run / "test_last.json").read_text())["envs"]["cartpole"]["mean"]


def test_test_table_numbers_match_the_runs(sweep: Path, built: Path) -> None:
    md = (built / "report.md").read_text()
    page = (built / "report.html").read_text()
    data = json.loads((built / "report.json").read_text())
    assert data["by"] == "rule" and data["groups"][:2] == list(GROUPS)
    expected = {"abcd": [_test_means(sweep / "abcd/s0"), _test_means(sweep / "abcd/s1")], "static": [_test_means(sweep / "static/s0")]}
    for group, values in expected.items():
        mean, sd = float(np.mean(values)), float(np.std(values))
        entry = data["aggregates"]["test"][group]["cartpole"]
        assert entry["n"] == len(values) and entry["mean"] == pytest.approx(mean, abs=1e-12) and entry["sd"] == pytest.approx(sd, abs=1e-12)
        row = f"| cartpole | {group} | {len(values)} | {mean:.2f} ± {sd:.2f} |"
        assert row in md, row
        assert f"<td>{mean:.2f} ± {sd:.2f}</td>" in page
    assert "ad" not in data["aggregates"]["test"] or not data["aggregates"]["test"]["ad"]


def test_curves_are_mean_and_sd_over_seeds(sweep: Path, built: Path) -> None:
    data = json.loads((built / "report.json").read_text())
    curves = data["aggregates"]["curves"]["abcd"]
    rows = [read_metrics(sweep / f"abcd/s{s}/metrics.jsonl") for s in (0, 1)]
    for i, g in enumerate(curves["generation"]):
        vals = [r[g]["center_return"] for r in rows]
        assert curves["mean"][i] == pytest.approx(np.mean(vals)) and curves["sd"][i] == pytest.approx(np.std(vals))
        assert curves["n"][i] == 2
    assert curves["generation"] == [0, 1, 2]
    assert data["aggregates"]["curves"]["static"]["n"] == [1, 1, 1]  # the failed seed is left out
    val = data["aggregates"]["validation"]["abcd"]  # validation tagged g ran after generation g-1
    tags = [json.loads(line) for line in (sweep / "abcd/s0/validation.jsonl").read_text().splitlines()]
    assert val["generation"] == [t["generation"] - 1 for t in tags]


def test_failed_runs_are_marked_and_excluded(built: Path) -> None:
    data = json.loads((built / "report.json").read_text())
    runs = {r["name"]: r for r in data["runs"]}
    assert set(runs) == {"abcd/s0", "abcd/s1", "static/s0", "static/s1", "ad/s0"}
    assert [n for n, r in runs.items() if not r["included"]] == ["ad/s0", "static/s1"]
    assert "node lost" in runs["static/s1"]["excluded"] and "bad node" in runs["ad/s0"]["excluded"]
    assert runs["ad/s0"]["group"] == "ad" and runs["ad/s0"]["seed"] == 0
    md = (built / "report.md").read_text()
    assert "## Excluded runs" in md
    assert md.count("**FAILED (excluded)**") == 2
    assert "| ~~static~~ | 1 | **FAILED (excluded)** | 3/3 |" in md
    assert "Aggregates are over the 3 finished runs only" in md
    assert (built / "report.html").read_text().count('<tr class="excluded">') == 2


def test_wandb_spec_built_offline(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = json.loads((built / "wandb_report_spec.json").read_text())
    assert spec["group"] == "rule_ablation_cartpole" and spec["project"] == "hebbian_es"
    assert spec["groupby"] == ["config.rule.name"]
    grid = next(b for b in spec["blocks"] if b["type"] == "PanelGrid")
    assert grid["runset"]["filters"] == "Group == 'rule_ablation_cartpole' and JobType == 'train'"
    panels = {(p["type"], tuple(p.get("y") or p.get("metrics") or ())) for p in grid["panels"]}
    assert ("LinePlot", ("center_return",)) in panels and ("LinePlot", ("val_mean",)) in panels
    assert ("BarPlot", ("test/cartpole/mean",)) in panels and ("RunComparer", ()) in panels
    for p in grid["panels"]:
        if p["type"] != "RunComparer":
            assert p["x" if p["type"] == "LinePlot" else "groupby"] in ("generation", "config.rule.name")
            assert p["groupby"] == "config.rule.name" and p["groupby_rangefunc"] == "stddev"
    md_blocks = [b["text"] for b in spec["blocks"] if b["type"] == "MarkdownBlock"]
    assert any("FAILED (excluded)" in t for t in md_blocks)  # the runs table
    # W&B's own model of the report, built without a server
    vs = json.dumps(spec["viewspec"])
    assert '"value": "rule_ablation_cartpole"' in vs and '"name": "rule.value.name"' in vs
    assert '"metrics": ["center_return"]' in vs and '"xAxis": "generation"' in vs

    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.reports.v2.interface as interface

    def no_network():
        raise AssertionError("the W&B API was called")

    monkeypatch.setattr(interface, "_get_api", no_network)
    report = build_wandb_report(spec, entity="someone")
    assert isinstance(report, wr.Report) and report.entity == "someone" and report.project == "hebbian_es"
    (grid_obj,) = [b for b in report.blocks if isinstance(b, wr.PanelGrid)]
    assert grid_obj.runsets[0].groupby == ["config.rule.name"]
    assert [type(p).__name__ for p in grid_obj.panels] == ["LinePlot", "LinePlot", "BarPlot", "RunComparer"]
    assert report._to_model().spec.blocks  # the whole conversion is offline
    assert wandb_decision("auto", spec) == (False, "WANDB_MODE=offline")
    monkeypatch.delenv("WANDB_MODE")
    assert wandb_decision("auto", spec)[0] is False  # logged with logger=csv: nothing on W&B
    assert wandb_decision("auto", {**spec, "logged_to_wandb": True, "mode": "online"})[0] is api_key_configured()


def test_by_metric_and_wandb_off(sweep: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    rep.main([f"sweep={sweep}", f"out={out}", "by=init", "metric=pop_mean", "wandb=off"])
    data = json.loads((out / "report.json").read_text())
    assert data["groups"] == ["uniform"] and data["metric"] == "pop_mean"
    assert not (out / "wandb_report_spec.json").exists()
    assert not (sweep / "report" / "report").exists()  # out= respected, the report dir is not a run


def _error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        rep.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    return err


def test_bad_input(sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "does not exist" in _error([f"sweep={tmp_path / 'nope'}"], capsys)
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    assert "holds no runs" in _error([f"sweep={tmp_path / 'empty'}"], capsys)
    err = _error([f"sweep={sweep}", f"out={tmp_path / 'o'}", "by=seeds"], capsys)
    assert "by='seeds'" in err and "rule" in err and "init" in err  # lists the allowed groups
    assert "allowed:" in _error([f"sweep={sweep}", "metric=nope", f"out={tmp_path / 'o'}"], capsys)
    assert "wandb=" in _error([f"sweep={sweep}", "wandb=maybe"], capsys)
    assert "unknown argument" in _error([f"sweep={sweep}", "colour=red"], capsys)


def test_cli_exit_code(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "hebbian_es.report", f"sweep={tmp_path}"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("error: ")


def _ant_run(d: Path, morph: str, seed: int, shift: float, train: list[str]) -> None:
    """A finished quadruped run made from the shipped example's test results."""
    src = Path(__file__).resolve().parents[2] / "docs/results/ant_reduced/abcd_test_last.json"
    test = json.loads(src.read_text())
    for name, st in test["envs"].items():
        st["mean"] += shift
        st["seen"] = name in train
        st["solved"] = st["mean"] >= st["solved_threshold"]
    test["random_damages"]["mean_of_means"] += shift
    d.mkdir(parents=True)
    (d / "test_last.json").write_text(json.dumps(test))
    (d / "config.yaml").write_text(
        f"seed: {seed}\ngenerations: 2\nmorphology:\n  train: {train}\n  test: [standard, front_right_short, front_left_short]\n"
        "sweep:\n  name: morphology_sets_ant\n  compare: morphology\n"
        "env: {name: ant}\nrule: {name: abcd}\nnetwork: {}\noptimizer: {}\ntest: {}\n"  # the keys every config.yaml has
    )
    (d / "status.json").write_text(json.dumps({
        "status": "finished", "sweep": {"name": "morphology_sets_ant", "compare": "morphology"},
        "choices": {"morphology": morph, "rule": "abcd", "env": "ant"},
    }))
    (d / "metrics.jsonl").write_text("".join(
        json.dumps({"generation": g, "pop_mean": shift + g, "center_return": shift + 2 * g}) + "\n" for g in range(2)
    ))


def test_quadruped_seen_unseen_table(tmp_path: Path) -> None:
    sweep = tmp_path / "morphology_sets_ant"
    shifts = {("paper", 0): 0.0, ("paper", 1): 80.0, ("standard_only", 0): 10.0, ("standard_only", 1): 20.0}
    for (morph, seed), shift in shifts.items():
        train = ["standard", "front_right_short"] if morph == "paper" else ["standard"]
        _ant_run(sweep / morph / f"s{seed}", morph, seed, shift, train)
    rep.main([f"sweep={sweep}", "wandb=off"])
    md = (sweep / "report/report.md").read_text()
    base = json.loads((Path(__file__).resolve().parents[2] / "docs/results/ant_reduced/abcd_test_last.json").read_text())
    fr = base["envs"]["front_right_short"]["mean"]
    paper = [fr, fr + 80.0]  # 43.35 (not solved) and 123.35 (solved, threshold 100)
    assert f"| front_right_short | seen | paper | 2 | {np.mean(paper):.2f} ± {np.std(paper):.2f} | 1/2 |" in md
    only = [fr + 10.0, fr + 20.0]
    assert f"| front_right_short | unseen | standard_only | 2 | {np.mean(only):.2f} ± {np.std(only):.2f} | 0/2 |" in md
    rd = base["random_damages"]["mean_of_means"]
    assert f"| 20 random damages (mean over bodies) | unseen | paper | 2 | {np.mean([rd, rd + 80]):.2f} ± {np.std([rd, rd + 80]):.2f} |" in md
    assert "random_03" not in md.split("## Runs")[0]  # random bodies only as their distribution
    data = json.loads((sweep / "report/report.json").read_text())
    assert data["by"] == "morphology" and data["groups"] == ["paper", "standard_only"]
    runs = [load_run(sweep / m / f"s{s}", sweep) for m, s in shifts]
    for r in runs:
        r.group = group_value(r, "morphology")
    spec = wandb_spec(runs, data["groups"], "morphology", "center_return", data["aggregates"], "morphology_sets_ant", "t", None, "")
    assert spec["groupby"] == ["config.morphology.train"]  # morphology has no name: the key that tells them apart


def test_single_run_dir_and_failed_publish(sweep: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert "single run's directory" in _error([f"sweep={sweep / 'abcd/s0'}"], capsys)

    def unreachable(spec, timeout=PUBLISH_TIMEOUT_S):
        raise ConfigError("publishing the W&B report failed: no network")

    monkeypatch.setattr(rep_wandb, "publish", unreachable)  # wandb=on never reaches the server in tests
    out = tmp_path / "on"
    with pytest.raises(SystemExit) as exc:
        rep.main([f"sweep={sweep}", f"out={out}", "wandb=on"])
    assert exc.value.code == 1  # the local report is there; only publishing failed
    assert capsys.readouterr().err.strip() == "error: publishing the W&B report failed: no network"
    assert (out / "report.html").exists() and (out / "wandb_report_spec.json").exists()
    assert "W&B report not published: publishing the W&B report failed" in (out / "report.md").read_text()


def test_wandb_on_without_a_key_never_prompts(sweep: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for var in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no_netrc"))  # not the machine's own ~/.netrc
    assert not api_key_configured()
    out = tmp_path / "on"
    err = _error([f"sweep={sweep}", f"out={out}", "wandb=on"], capsys)  # exit 2, one line, before wandb is touched
    assert "wandb=on needs a W&B API key" in err
    assert (out / "report.html").exists() and (out / "wandb_report_spec.json").exists()  # the local report is written
