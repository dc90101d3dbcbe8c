"""End-to-end: whole runs through the task function, the CLI and the evaluate CLI.

In-process runs compose the shipped config tree exactly as `python -m hebbian_es`
does (lightning-hydra-template style) and call `hebbian_es.run.train.train(cfg)`; there
`run_dir` is set directly, since `${hydra:runtime.output_dir}` has no value outside
a Hydra run.  CLI runs start `python -m hebbian_es` with the interpreter running the
tests and choose the run directory the documented way, `hydra.run.dir=<dir>`
(`run_dir` is Hydra's output dir).  `debug=default` keeps every run to a few
generations of a population of 8.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

import hebbian_es
from hebbian_es import config
from hebbian_es.es import evaluators as evaluation
from hebbian_es.run.train import train
from hebbian_es.run.evaluate import EvaluateArgs, evaluate
from hebbian_es.run.evaluate import main as evaluate_main
from hebbian_es.run.observers import MetricsObserver
from hebbian_es.core.task import TEST, TRAIN, VALIDATION, episode_seeds
from hebbian_es.run.loop import ESRun

REQUIRED_COLUMNS = ("generation", "pop_mean", "pop_max", "pop_min", "center_return", "lr", "sigma", "env_steps", "wall_time")
TIMING_COLUMNS = {"gen_seconds", "steps_per_s", "wall_time"}
DEBUG_GENERATIONS, DEBUG_POPSIZE, DEBUG_TEST_EPISODES = 3, 8, 3  # conf/debug/default.yaml
# CartPole-v1 (4 observations, 2 actions) through the default 128-64 MLP, all layers
# plastic, rule abcd with eta: 5 coefficients per synapse.
CARTPOLE_SYNAPSES = 4 * 128 + 128 * 64 + 64 * 2
ABCD_COEFFICIENTS = 5


# ---- helpers -----------------------------------------------------------------------------
def compose_train(run_dir: Path, *overrides: str) -> Any:
    """The composed `train` config with debug=default, as the CLI would see it."""
    return config.compose(["debug=default", f"run_dir={run_dir}", *overrides])


def train_run(run_dir: Path, *overrides: str) -> dict[str, Any]:
    return train(compose_train(run_dir, *overrides))


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def untimed(metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in TIMING_COLUMNS} for r in metrics]


def load_ckpt(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=False)


def strict_json(text: str) -> Any:
    """RFC 8259 JSON: NaN / Infinity tokens are refused."""

    def refuse(token: str) -> Any:
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


class SeedRecorder:
    """Records the env reset seeds of every lifetime, by phase (train / validation / test)."""

    def __init__(self, mp: pytest.MonkeyPatch) -> None:
        self.phase = "test"
        self.seeds: dict[str, list[int]] = {"train": [], "validation": [], "test": []}
        real_run, real_step, real_validate = evaluation.run_lifetimes, ESRun.step, ESRun.validate

        def run_lifetimes(policy, runners, env_seeds, *args, **kwargs):
            self.seeds[self.phase].extend(int(s) for s in env_seeds)
            return real_run(policy, runners, env_seeds, *args, **kwargs)

        def phased(fn, name):
            def wrapper(run, *args, **kwargs):
                self.phase = name
                try:
                    return fn(run, *args, **kwargs)
                finally:
                    self.phase = "test"

            return wrapper

        mp.setattr(evaluation, "run_lifetimes", run_lifetimes)
        mp.setattr(ESRun, "step", phased(real_step, "train"))
        mp.setattr(ESRun, "validate", phased(real_validate, "validation"))


# ---- one in-process debug run, shared ------------------------------------------------------
@pytest.fixture(scope="module")
def debug_run(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    run_dir = tmp_path_factory.mktemp("e2e") / "run"
    with pytest.MonkeyPatch.context() as mp:
        recorder = SeedRecorder(mp)
        summary = train_run(run_dir)
    return SimpleNamespace(dir=run_dir, summary=summary, seeds=recorder.seeds)


def test_in_process_run_writes_every_artefact(debug_run: SimpleNamespace) -> None:
    d = debug_run.dir
    for name in ("config.yaml", "metrics.jsonl", "metrics.csv", "validation.jsonl", "summary.json",
                 "fitness_curve.png", "test_last.json", "checkpoints/last.pt", "checkpoints/best.pt"):
        assert (d / name).is_file(), f"{name} missing from the run dir"

    cfg = OmegaConf.load(d / "config.yaml")
    assert cfg.run_dir == str(d) and cfg.generations == DEBUG_GENERATIONS and cfg.seed == 0
    assert cfg.rule.name == "abcd" and cfg.env.id == "CartPole-v1" and cfg.optimizer.popsize == DEBUG_POPSIZE
    assert "${" not in (d / "config.yaml").read_text(), "config.yaml is saved resolved"

    metrics = rows(d / "metrics.jsonl")
    assert [r["generation"] for r in metrics] == list(range(DEBUG_GENERATIONS))
    for r in metrics:
        assert set(REQUIRED_COLUMNS) <= set(r)
        assert r["pop_min"] <= r["pop_mean"] <= r["pop_max"]
        assert all(math.isfinite(r[k]) for k in REQUIRED_COLUMNS)
        assert r["nonfinite"] == 0
    assert all(a["env_steps"] < b["env_steps"] for a, b in zip(metrics, metrics[1:])), "env_steps is cumulative"
    assert all(a["wall_time"] <= b["wall_time"] for a, b in zip(metrics, metrics[1:]))
    assert metrics[0]["lr"] == cfg.optimizer.lr and metrics[0]["sigma"] == cfg.optimizer.sigma
    assert metrics[1]["lr"] < metrics[0]["lr"] and metrics[1]["sigma"] < metrics[0]["sigma"], "decays applied"

    table = csv_rows(d / "metrics.csv")
    assert len(table) == DEBUG_GENERATIONS
    assert set(REQUIRED_COLUMNS) <= set(table[0])
    for r_csv, r_json in zip(table, metrics):
        assert int(r_csv["generation"]) == r_json["generation"]
        for k in REQUIRED_COLUMNS:
            assert float(r_csv[k]) == pytest.approx(float(r_json[k]), rel=1e-12)

    val = rows(d / "validation.jsonl")  # every=2: after generation index 1's update
    assert [v["generation"] for v in val] == [2] and math.isfinite(val[0]["val_mean"])

    evolved = CARTPOLE_SYNAPSES * ABCD_COEFFICIENTS
    last = load_ckpt(d / "checkpoints" / "last.pt")
    assert last["generation"] == DEBUG_GENERATIONS and last["seed"] == 0
    assert last["params"].shape == (evolved,) and last["params"].dtype == torch.float32
    assert torch.isfinite(last["params"]).all()
    assert last["task"]["rule"] == "abcd"
    assert last["env_steps"] == metrics[-1]["env_steps"]

    summary = json.loads((d / "summary.json").read_text())
    assert summary == json.loads(json.dumps(debug_run.summary, default=str))  # the returned summary is the file
    assert summary["counts"]["plastic_synapses"] == CARTPOLE_SYNAPSES
    assert summary["counts"]["plastic_coefficients"] == summary["counts"]["evolved_total"] == evolved
    assert summary["coefficients_per_synapse"] == ABCD_COEFFICIENTS
    assert summary["versions"]["hebbian_es"] == hebbian_es.__version__
    assert summary["versions"]["torch"] == torch.__version__
    assert summary["versions"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert "gymnasium" in summary["versions"]
    assert summary["generations_done"] == summary["generations"] == DEBUG_GENERATIONS
    assert summary["env_steps"] == metrics[-1]["env_steps"]
    assert summary["nonfinite_fitness_total"] == 0
    best_gen = int(np.argmax([r["center_return"] for r in metrics]))
    assert summary["best_generation"] == best_gen
    assert summary["best_center_return"] == metrics[best_gen]["center_return"] == metrics[-1]["best_center_return"]
    assert summary["final_pop_mean"] == metrics[-1]["pop_mean"]

    best = load_ckpt(d / "checkpoints" / "best.pt")
    assert best["generation"] == best_gen, "best.pt holds the centre that earned the best return"
    assert best["best"] == {"fitness": summary["best_center_return"], "generation": best_gen}
    assert best["params"].shape == last["params"].shape

    png = (d / "fitness_curve.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000

    test = json.loads((d / "test_last.json").read_text())
    stats = test["envs"]["cartpole"]
    assert stats["env_id"] == "CartPole-v1" and stats["episodes"] == len(stats["returns"]) == DEBUG_TEST_EPISODES
    assert stats["mean"] == pytest.approx(np.mean(stats["returns"]))
    assert test["checkpoint"].endswith("last.pt") and test["checkpoint_generation"] == DEBUG_GENERATIONS
    assert summary["test"]["cartpole"]["mean"] == stats["mean"]


def test_seed_streams_of_a_run_are_disjoint(debug_run: SimpleNamespace) -> None:
    seeds = debug_run.seeds
    fit_episodes = 3  # conf/env_defaults/cartpole.yaml
    assert len(seeds["train"]) == DEBUG_GENERATIONS * (DEBUG_POPSIZE + 1) * fit_episodes
    assert len(seeds["validation"]) == 2 and len(seeds["test"]) == DEBUG_TEST_EPISODES
    # every member and the centre of one generation meet the same episodes
    assert set(seeds["train"]) == {
        int(s) for g in range(DEBUG_GENERATIONS) for s in episode_seeds(0, TRAIN, g, fit_episodes)[0]
    }
    assert not set(seeds["train"]) & set(seeds["validation"])
    assert not (set(seeds["train"]) | set(seeds["validation"])) & set(seeds["test"])


def test_same_seed_same_curve_other_seed_other_curve(debug_run: SimpleNamespace, tmp_path: Path) -> None:
    ref = rows(debug_run.dir / "metrics.jsonl")
    train_run(tmp_path / "again")
    again = rows(tmp_path / "again" / "metrics.jsonl")
    for key in ("pop_mean", "pop_max", "pop_min", "center_return", "env_steps"):
        assert [r[key] for r in again] == [r[key] for r in ref], key
    assert untimed(again) == untimed(ref)
    assert torch.equal(
        load_ckpt(tmp_path / "again" / "checkpoints" / "last.pt")["params"],
        load_ckpt(debug_run.dir / "checkpoints" / "last.pt")["params"],
    )

    train_run(tmp_path / "other", "seed=1")
    other = rows(tmp_path / "other" / "metrics.jsonl")
    assert [r["pop_mean"] for r in other] != [r["pop_mean"] for r in ref]
    assert [r["center_return"] for r in other] != [r["center_return"] for r in ref] or [
        r["pop_max"] for r in other
    ] != [r["pop_max"] for r in ref]
    assert not torch.equal(
        load_ckpt(tmp_path / "other" / "checkpoints" / "last.pt")["params"],
        load_ckpt(debug_run.dir / "checkpoints" / "last.pt")["params"],
    )


def test_evaluate_reads_the_run_back(debug_run: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.MonkeyPatch.context() as mp:
        recorder = SeedRecorder(mp)
        evaluate_main([f"run={debug_run.dir}", "episodes=4", "checkpoint=last"])
    assert "cartpole" in capsys.readouterr().out  # the printed table

    result = json.loads((debug_run.dir / "evaluations" / f"last_gen{DEBUG_GENERATIONS}_n4_seed0.json").read_text())
    assert set(result) >= {"envs", "early_stop", "seed", "checkpoint", "checkpoint_generation"}
    assert result["checkpoint"].endswith("last.pt") and result["checkpoint_generation"] == DEBUG_GENERATIONS
    assert result["early_stop"] is False and result["seed"] == 0
    stats = result["envs"]["cartpole"]
    assert stats["episodes"] == 4 and len(stats["returns"]) == 4 and stats["nonfinite"] == 0
    assert all(isinstance(r, float) and math.isfinite(r) and r >= 1 for r in stats["returns"])
    for k in ("mean", "sd", "min", "max"):
        assert math.isfinite(stats[k])
    assert stats["mean"] == pytest.approx(np.mean(stats["returns"])) and stats["sd"] == pytest.approx(np.std(stats["returns"]))
    assert stats["min"] == min(stats["returns"]) and stats["max"] == max(stats["returns"])

    # the episodes run are the test stream's, disjoint from every training and validation episode
    test_seeds = recorder.seeds["test"]
    assert len(test_seeds) == 4 and not recorder.seeds["train"]
    assert test_seeds == [int(s) for s in episode_seeds(0, TEST, 0, 4)[0]]
    assert not set(test_seeds) & (set(debug_run.seeds["train"]) | set(debug_run.seeds["validation"]))
    assert not set(test_seeds) & {int(s) for g in range(DEBUG_GENERATIONS) for s in episode_seeds(0, VALIDATION, g, 10)[0]}


def test_evaluate_refuses_bad_arguments(debug_run: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv, key in (
        ([f"run={debug_run.dir}", "checkpoint=worst"], "checkpoint="),
        ([f"run={debug_run.dir}", "episodes=0"], "episodes="),
        ([f"run={debug_run.dir}", "bogus=1"], "bogus"),
        ([f"run={tmp_path}"], "config.yaml"),
        ([f"run={debug_run.dir}", "env=nope"], "env=nope: neither a config of the env group"),
        ([f"run={debug_run.dir}", "env=pendulum"], "env=pendulum: the run's network does not fit"),
    ):
        with pytest.raises(SystemExit) as exc:
            evaluate_main(argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and key in err, (argv, err)
    assert not (debug_run.dir / "test_worst.json").exists()
    assert not list((debug_run.dir / "evaluations").glob("*env-*"))  # refused: nothing written


def test_evaluate_on_another_env_config_names_its_file(debug_run: SimpleNamespace) -> None:
    # the run's own env, named explicitly: the same lifetimes as without env=, in a file of its own
    own = evaluate(EvaluateArgs(run=str(debug_run.dir), episodes=2))
    named = evaluate(EvaluateArgs(run=str(debug_run.dir), episodes=2, env="cartpole"))
    written = json.loads((debug_run.dir / "evaluations" / f"last_gen{DEBUG_GENERATIONS}_n2_seed0_env-cartpole.json").read_text())
    assert named["envs"]["cartpole"]["returns"] == own["envs"]["cartpole"]["returns"] == written["envs"]["cartpole"]["returns"]


# ---- kill and restart ---------------------------------------------------------------------
KILL_ARGS = (
    "debug=default", "generations=40", "optimizer.popsize=8", "evaluator=serial",
    "progress_bar=false", "test.after_fit=false", "validation.every=0",
)


def _generation_of(path: Path) -> int:
    try:
        return int(load_ckpt(path)["generation"])  # the file is replaced atomically: always whole
    except FileNotFoundError:
        return -1


@pytest.mark.slow
def test_kill_and_restart_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "hebbian_es", *KILL_ARGS, f"hydra.run.dir={killed}"]
    last = killed / "checkpoints" / "last.pt"
    with open(tmp_path / "first.log", "w") as log:  # a file, not a pipe nobody drains
        proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while _generation_of(last) < 5:
            assert proc.poll() is None, "the run ended before it could be killed:\n" + (tmp_path / "first.log").read_text()
            assert time.monotonic() < deadline, "no checkpoint of generation 5 within 120 s"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    at_kill = _generation_of(last)
    assert 5 <= at_kill < 40, f"killed at generation {at_kill}: nothing left to resume"
    assert len(rows(killed / "metrics.jsonl")) < 40

    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resuming from generation" in done.stdout + done.stderr

    reference = tmp_path / "reference"  # uninterrupted, same seed, in-process
    train_run(reference, *KILL_ARGS[1:])

    a, b = load_ckpt(killed / "checkpoints" / "last.pt"), load_ckpt(reference / "checkpoints" / "last.pt")
    assert a["generation"] == b["generation"] == 40
    assert torch.equal(a["params"], b["params"]), "the resumed centre differs from the uninterrupted one"
    assert {k: v for k, v in a["optimizer"].items() if k != "center"} == {
        k: v for k, v in b["optimizer"].items() if k != "center"
    }
    assert a["best"] == b["best"] and a["env_steps"] == b["env_steps"]
    best_a, best_b = (load_ckpt(d / "checkpoints" / "best.pt") for d in (killed, reference))
    assert best_a["generation"] == best_b["generation"] and torch.equal(best_a["params"], best_b["params"])

    got, want = rows(killed / "metrics.jsonl"), rows(reference / "metrics.jsonl")
    assert [r["generation"] for r in got] == list(range(40))
    assert untimed(got) == untimed(want)
    assert untimed(csv_rows(killed / "metrics.csv")) == untimed(csv_rows(reference / "metrics.csv"))
    assert (killed / "config.yaml").read_text() == (reference / "config.yaml").read_text().replace(
        str(reference), str(killed)
    )
    log = (killed / "train.log").read_text()  # appended by both processes
    assert log.count("evolved parameters") == 2 and "resuming from generation" in log
    assert not any(tmp_path.glob("outputs")), "nothing written under the working directory"


class _Killed(BaseException):
    """Stands in for SIGKILL at a precise point of a generation (Lightning re-raises it)."""


def test_kill_between_checkpoint_and_metrics_row_loses_no_row(tmp_path: Path) -> None:
    overrides = ("generations=5", "test.after_fit=false", "validation.every=0")
    real_write = MetricsObserver.on_generation

    def write(self, run, gen):
        if gen.metrics["generation"] == 2:
            raise _Killed  # killed after generation 2's update, before its row and last.pt
        return real_write(self, run, gen)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(MetricsObserver, "on_generation", write)
        with pytest.raises(_Killed):
            train_run(tmp_path / "run", *overrides)
    assert load_ckpt(tmp_path / "run" / "checkpoints" / "last.pt")["generation"] == 2
    train_run(tmp_path / "run", *overrides)  # restart
    assert [r["generation"] for r in rows(tmp_path / "run" / "metrics.jsonl")] == list(range(5))


def test_resumed_run_validates_at_the_same_generations(tmp_path: Path) -> None:
    overrides = ("generations=6", "test.after_fit=false", "validation.every=2", "validation.episodes=1")
    train_run(tmp_path / "whole", *overrides)
    real_step = ESRun.step

    def step(self):
        if self.generation == 3:
            raise _Killed  # killed between generations 2 and 3
        return real_step(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ESRun, "step", step)
        with pytest.raises(_Killed):
            train_run(tmp_path / "resumed", *overrides)
    train_run(tmp_path / "resumed", *overrides)
    whole, resumed = rows(tmp_path / "whole" / "validation.jsonl"), rows(tmp_path / "resumed" / "validation.jsonl")
    assert [r["generation"] for r in whole] == [2, 4, 6]
    assert untimed(rows(tmp_path / "resumed" / "metrics.jsonl")) == untimed(rows(tmp_path / "whole" / "metrics.jsonl"))
    assert [r["generation"] for r in resumed] == [r["generation"] for r in whole]


# ---- bad input at the CLI -----------------------------------------------------------------
# (overrides, exit code, what stderr must say); each command gets a fresh hydra.run.dir.
BAD_INPUT = {
    "unknown_rule": (["rule=foo"], 2, ["error: rule=foo: no such rule config (allowed:", "abcd", "static"]),
    "unknown_env_group_option": (["env=Nope-v9"], 2, ["error: env=Nope-v9: neither a config", "cartpole", "gymnasium id"]),
    "unknown_init_kind": (["init.kind=foo"], 2, ["error:", "init.kind", "'foo'", "uniform"]),
    "odd_population": (["optimizer.popsize=7"], 2, ["error:", "optimizer.popsize=7", "even"]),
    "zero_sigma": (["optimizer.sigma=0"], 2, ["error:", "optimizer.sigma=0"]),
    "unknown_gymnasium_id": (["env=generic", "env.id=Nope-v9"], 2, ["error:", "env.id", "Nope-v9"]),
    "zero_generations": (["generations=0"], 2, ["error: generations=0: must be >= 1"]),
}
QUICK = ("generations=1", "test.after_fit=false", "validation.every=0")


def _files(root: Path) -> dict[Path, bytes]:
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every command at once (they mostly wait on imports); each runs in its own empty cwd."""
    base = tmp_path_factory.mktemp("cli")
    foreign = base / "foreign"
    train_run(foreign, "rule=abcd", *QUICK)
    snapshot = _files(foreign)

    cases = {name: [*over, f"hydra.run.dir={base / name}"] for name, (over, _, _) in BAD_INPUT.items()}
    cases["checkpoint_of_another_rule"] = ["rule=a", f"hydra.run.dir={foreign}"]
    procs = {}
    for name, args in cases.items():
        cwd = base / f"cwd_{name}"
        cwd.mkdir()
        procs[name] = (cwd, subprocess.Popen(
            [sys.executable, "-m", "hebbian_es", "debug=default", "progress_bar=false", *args],
            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))  # fmt: skip
    results = {}
    for name, (cwd, proc) in procs.items():
        out, err = proc.communicate(timeout=180)
        results[name] = SimpleNamespace(returncode=proc.returncode, stdout=out, stderr=err, run_dir=base / name, cwd=cwd)
    return {"results": results, "foreign": foreign, "snapshot": snapshot}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_cli_refuses_bad_input(cli_runs: dict[str, Any], case: str) -> None:
    _, code, needles = BAD_INPUT[case]
    res = cli_runs["results"][case]
    assert res.returncode == code, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr + res.stdout
    for needle in needles:
        assert needle in res.stderr, f"{needle!r} not in stderr:\n{res.stderr}"
    if code == 2:  # our ConfigError: exactly one short line
        errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and len(errors[0]) < 300, res.stderr
    # refused before anything is written: not even the output dir Hydra made is left
    assert not res.run_dir.exists(), sorted(res.run_dir.iterdir())
    assert not any(res.cwd.iterdir()), sorted(res.cwd.rglob("*"))


def test_cli_refuses_a_checkpoint_of_another_rule(cli_runs: dict[str, Any]) -> None:
    res = cli_runs["results"]["checkpoint_of_another_rule"]
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, res.stderr
    assert "rule=abcd" in errors[0] and "rule=a" in errors[0] and "last.pt" in errors[0]
    foreign, snapshot = cli_runs["foreign"], cli_runs["snapshot"]
    for rel in ("config.yaml", "metrics.jsonl", "metrics.csv", "checkpoints/last.pt", "checkpoints/best.pt"):
        assert Path(rel) in snapshot
    after = _files(foreign)
    assert snapshot.keys() <= after.keys(), "files vanished"
    assert set(after) - set(snapshot) <= {Path("train.log")}, "only the appended log may appear"
    for rel in snapshot:
        assert after[rel] == snapshot[rel], f"{rel} was modified"


BAD_SWEEPS = {
    "unknown_sweep": (["sweep=nope"], 2, ["error: sweep=nope: no such sweep config (allowed:", "rule_ablation"]),
    "slurm_without_partition": (["hydra/launcher=slurm"], 2, ["error:", "hydra.launcher.partition", "sinfo"]),
    "ranks_without_distributed": (
        ["hydra/launcher=slurm", "hydra.launcher.partition=any", "hydra.launcher.tasks_per_node=2"],
        2, ["error:", "tasks_per_node=2", "evaluator=distributed"],
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def sweep_refusals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("bad_sweeps")
    procs = {}
    for name, (over, _, _) in BAD_SWEEPS.items():
        cwd = base / f"cwd_{name}"
        cwd.mkdir()
        cmd = [sys.executable, "-m", "hebbian_es", "-m", *over, f"hydra.sweep.dir={base / name}"]
        procs[name] = (cwd, subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = {}
    for name, (cwd, proc) in procs.items():
        out, err = proc.communicate(timeout=180)
        results[name] = SimpleNamespace(returncode=proc.returncode, stdout=out, stderr=err, sweep_dir=base / name, cwd=cwd)
    return results


@pytest.mark.parametrize("case", sorted(BAD_SWEEPS))
def test_multirun_refuses_bad_sweeps_before_submitting(sweep_refusals: dict[str, Any], case: str) -> None:
    _, code, needles = BAD_SWEEPS[case]
    res = sweep_refusals[case]
    assert res.returncode == code, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr + res.stdout
    for needle in needles:
        assert needle in res.stderr, f"{needle!r} not in stderr:\n{res.stderr}"
    if code == 2:
        assert res.stderr.count("\n") == 1 and res.stderr.startswith("error: "), res.stderr
    assert not res.sweep_dir.exists(), "nothing submitted, no sweep dir"
    assert not any(res.cwd.iterdir())


@pytest.mark.slow
def test_cli_run_dir_override_is_refused_with_the_right_key(tmp_path: Path) -> None:
    # run_dir is Hydra's output dir; overriding it alone would split the log from the artefacts.
    run_dir, cwd = tmp_path / "run", tmp_path / "cwd"
    cwd.mkdir()
    cmd = [sys.executable, "-m", "hebbian_es", "debug=default", "progress_bar=false", *QUICK, f"run_dir={run_dir}"]
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=180)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error:") and "hydra.run.dir" in done.stderr
    assert not run_dir.exists()
    assert not [p for p in cwd.rglob("*") if p.is_file()], "nothing written"


# ---- nonfinite fitness --------------------------------------------------------------------
def test_some_members_blow_up_and_the_run_goes_on(tmp_path: Path) -> None:
    # An unbounded output layer with all-ones initial weights: the positive feedback of the
    # Hebbian update drives some members' weights to inf/NaN within a CartPole episode.
    d = tmp_path / "run"
    summary = train_run(d, "network.output_activation=identity", "init=ones", "validation.every=0")
    metrics = rows(d / "metrics.jsonl")
    assert len(metrics) == DEBUG_GENERATIONS
    counts = [r["nonfinite"] for r in metrics]
    assert sum(counts) > 0, counts
    assert summary["nonfinite_fitness_total"] == sum(counts)
    partial = [r for r in metrics if 0 < r["nonfinite"] < DEBUG_POPSIZE]
    assert partial, counts
    for r in partial:  # statistics over the members that stayed finite
        assert math.isfinite(r["pop_mean"]) and r["pop_min"] <= r["pop_mean"] <= r["pop_max"]
    assert torch.isfinite(load_ckpt(d / "checkpoints" / "last.pt")["params"]).all()
    assert (d / "fitness_curve.png").is_file() and (d / "test_last.json").is_file()
    assert strict_json((d / "summary.json").read_text())["nonfinite_fitness_total"] == sum(counts)


@pytest.fixture(scope="module")
def all_blown_up(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    d = tmp_path_factory.mktemp("nan") / "run"
    summary = train_run(
        d, "env=pendulum", "network.output_activation=identity", "init=ones",
        "coefficient_init.low=50", "coefficient_init.high=100",
    )
    return SimpleNamespace(dir=d, summary=summary)


def test_every_member_blown_up_still_finishes(all_blown_up: SimpleNamespace) -> None:
    d, summary = all_blown_up.dir, all_blown_up.summary
    metrics = rows(d / "metrics.jsonl")
    assert [r["generation"] for r in metrics] == list(range(DEBUG_GENERATIONS))
    assert [r["nonfinite"] for r in metrics] == [DEBUG_POPSIZE] * DEBUG_GENERATIONS
    assert all(r["pop_mean"] is None and r["center_return"] is None for r in metrics), "NaN is logged as null"
    assert all(r["best_center_return"] == "-inf" for r in metrics)
    assert len(csv_rows(d / "metrics.csv")) == DEBUG_GENERATIONS
    assert summary["nonfinite_fitness_total"] == DEBUG_POPSIZE * DEBUG_GENERATIONS
    assert summary["final_pop_mean"] is None and summary["best_generation"] == -1
    last = load_ckpt(d / "checkpoints" / "last.pt")
    assert last["generation"] == DEBUG_GENERATIONS and last["nonfinite_total"] == DEBUG_POPSIZE * DEBUG_GENERATIONS
    assert not (d / "checkpoints" / "best.pt").exists(), "no finite centre return: nothing is best"
    test = json.loads((d / "test_last.json").read_text())
    assert test["checkpoint"].endswith("last.pt")
    stats = test["envs"]["pendulum"]
    assert stats["nonfinite"] == DEBUG_TEST_EPISODES and stats["returns"] == [None] * DEBUG_TEST_EPISODES
    assert (d / "fitness_curve.png").is_file()


def test_blown_up_run_writes_strict_json(all_blown_up: SimpleNamespace) -> None:
    for name in ("summary.json", "test_last.json"):
        strict_json((all_blown_up.dir / name).read_text())


def test_centre_stays_put_when_no_member_has_a_finite_fitness(all_blown_up: SimpleNamespace) -> None:
    from hebbian_es.core.task import build_task

    cfg = config.load(all_blown_up.dir / "config.yaml")
    start = build_task(cfg).initial_center(cfg.seed)
    last = load_ckpt(all_blown_up.dir / "checkpoints" / "last.pt")
    assert torch.equal(last["params"], start), f"moved by {(last['params'] - start).norm():.3g}"


# ---- W&B, offline, no account -------------------------------------------------------------
@pytest.mark.slow
def test_wandb_offline_run_is_written_locally(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_home"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    d = tmp_path / "run"
    train_run(d, "logger=wandb", "test.episodes=2", "sweep.name=my_sweep")
    offline = list((d / "wandb").glob("offline-run-*"))
    assert len(offline) == 1, list(d.iterdir())
    files = list(offline[0].rglob("*.wandb"))
    assert files and files[0].stat().st_size > 0, "the run's history was written locally"
    written = files[0].read_bytes()
    for key in (b"center_return", b"val_mean", b"test_table", b"fitness_curve", b"my_sweep"):
        assert key in written, key  # metrics, the test table, the plot, and the sweep as W&B group
    assert offline[0].name.endswith(hashlib.sha256(str(d.resolve()).encode()).hexdigest()[:16])  # id from run dir
    sync = subprocess.run(
        [sys.executable, "-m", "wandb", "sync", "--dry-run", str(offline[0])], capture_output=True, text=True, timeout=120
    )
    assert sync.returncode == 0, sync.stderr


@pytest.mark.slow
def test_a_failing_sweep_job_does_not_stop_the_others(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "hebbian_es", "-m", "debug=default", "progress_bar=false", "optimizer.popsize=7,8",
           f"hydra.sweep.dir={sweep}"]  # fmt: skip
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "optimizer.popsize=7" in done.stderr  # the sweep reports its failed job...
    assert not any((sweep / "0").iterdir())  # ...which wrote nothing
    status = json.loads((sweep / "1" / "status.json").read_text())  # ...and the next job still ran to the end
    assert status["status"] == "finished" and "optimizer.popsize=8" in status["overrides"]
    assert (sweep / "1" / "test_last.json").exists()
