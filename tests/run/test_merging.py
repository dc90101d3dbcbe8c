"""Merging during evolution (rule.merge.*, docs/plasticity.md; Pedersen & Risi 2021): rules clustered
by what they do, a lossless merge when K = the number of distinct rules, the optimiser recentred,
resume bit for bit across merges, and bad schedules refused with one line before anything is written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hebbian_es.core.merging import apply_saved_merges, merge_rules, merged_params, per_synapse_coefficients, rule_features
from hebbian_es.core.rollout import run_lifetimes
from hebbian_es.core.task import build_task
from hebbian_es.envs.runner import EnvPool
from hebbian_es.envs.spec import ActionMapper, ObservationBatcher
from hebbian_es.errors import ConfigError
from hebbian_es.es import make_optimizer
from hebbian_es.files import load_torch
from hebbian_es.run.merging import RuleMerger, plan_merges
from hebbian_es.run.rundir import RunDir
from hebbian_es.run.train import build_run, train

SMALL = ("network=small", "env.max_episode_steps=40")
SYNAPSES = 4 * 32 + 32 * 16 + 16 * 2  # cartpole, network=small: 672
TIMING = ("gen_seconds", "steps_per_s", "wall_time")


def _lifetimes(task, params: torch.Tensor, n: int = 3) -> tuple[np.ndarray, list[torch.Tensor]]:
    """Returns and final plastic weights of n lifetimes of `params` (one batch)."""
    spec, pool = task.envs[0], EnvPool()
    try:
        policy = task.policy(params.reshape(1, -1).repeat(n, 1))
        res = run_lifetimes(policy, pool.get(spec, n), list(range(7, 7 + n)), list(range(n)),
                            ObservationBatcher(spec.observation), ActionMapper(spec.action), 40)  # fmt: skip
        return res.returns, [w.clone() for w in policy.plastic_weights()]
    finally:
        pool.close()


@pytest.mark.parametrize(
    "overrides,k",
    [
        (("rule.sharing=random", "rule.shared_k=5"), 5),  # 5 distinct rules over 672 synapses
        (("rule=abcd_trace", "rule.sharing=post"), 32 + 16 + 2),  # one rule per post neuron, τ evolved
        (("rule=oja",), SYNAPSES),  # every synapse its own rule (η = sigmoid(h))
    ],
    ids=["shared5", "trace_post", "oja_per_synapse"],
)
def test_merge_into_the_distinct_rules_is_lossless(compose_config, overrides, k) -> None:
    """K = the number of distinct rules: every synapse keeps its own rule, bit for bit, so the merged
    centre's lifetimes are the source centre's exactly (returns and every final weight)."""
    task = build_task(compose_config(*SMALL, *overrides))
    center = task.initial_center(3)
    result = merge_rules(task, center, k, seed=0)
    assert len(result.rules) == k == result.distinct
    merged = task.with_shared_rules(k, result.labels)
    new_center = merged_params(task, merged, center, result.rules)
    others = sum(b.size for b in task.layout.blocks if not b.name.endswith("coefficients"))  # modulatory, conv, ... weights
    assert new_center.numel() == merged.layout.size == k * task.rule.coefficients_per_synapse + others
    assert np.array_equal(per_synapse_coefficients(merged, new_center), per_synapse_coefficients(task, center))
    (r0, w0), (r1, w1) = _lifetimes(task, center), _lifetimes(merged, new_center)
    assert np.array_equal(r0, r1) and all(torch.equal(a, b) for a, b in zip(w0, w1))


def test_rules_are_clustered_by_what_they_do(compose_config) -> None:
    """η = 1, A = 1 and η = −1, A = −1 change a weight alike: the same features, one cluster, though
    their coefficients are far apart; the merged rule is one of the members (a medoid)."""
    task = build_task(compose_config("network=small", "rule=a"))
    center = torch.zeros(task.layout.size)
    views = task.layout.views(center[None])
    a, eta = task.rule.coefficient_names.index("A"), task.rule.coefficient_names.index("eta")
    for name, v in views.items():  # half the synapses (1, 1), half (−1, −1); one (2, 3): another rule
        v[0, a], v[0, eta] = 1.0, 1.0
        v[0, a, ::2], v[0, eta, ::2] = -1.0, -1.0
    views["fc0.coefficients"][0, a, 0, 0], views["fc0.coefficients"][0, eta, 0, 0] = 2.0, 3.0
    coeffs = per_synapse_coefficients(task, center)
    features = rule_features(task, coeffs)
    assert len(np.unique(coeffs, axis=0)) == 3 and len(np.unique(features, axis=0)) == 2
    result = merge_rules(task, center, 2, seed=0)
    assert result.distinct == 2 and len(set(result.labels[1:].tolist())) == 1 and result.labels[0] != result.labels[1]
    assert {tuple(r) for r in result.rules.tolist()} <= {tuple(c) for c in coeffs.tolist()}  # medoids: members
    raw = merge_rules(task, center, 2, seed=0, features="coefficients")  # the raw coefficients split (1,1) from (−1,−1)
    assert len(set(raw.labels[1:].tolist())) == 2


def test_the_optimiser_continues_from_the_merged_centre(compose_config, tmp_path: Path) -> None:
    """OpenAI-ES after a merge: the merged centre (another dimension), the same lr, σ, generation and seed."""
    run = build_run(compose_config(*SMALL, "debug=default", "generations=5", "rule.merge.k=[100]", "rule.merge.every=3",
                                   f"run_dir={tmp_path}"), RunDir(tmp_path))  # fmt: skip
    run.evaluator = None
    run.state = run.optimizer.tell(*run.optimizer.ask(run.state), np.arange(8.0))
    run.state = type(run.state)(run.state.center, run.state.lr, run.state.sigma, 3, run.state.seed)
    before = run.state
    run.merger.before_generation(run)
    after = run.state
    assert (after.lr, after.sigma, after.generation, after.seed) == (before.lr, before.sigma, 3, before.seed)
    assert after.center.numel() == run.task.layout.size == 100 * 5 and run.task.plasticity.k == 100
    assert run.merger.state()["done"] == 1 and run.state_dict()["merges"]["k"] == 100
    assert apply_saved_merges(build_task(compose_config(*SMALL)), run.state_dict()).fingerprint() == run.task.fingerprint()


@pytest.mark.parametrize("optimizer", [["optimizer=pgpe"], ["optimizer=snes"], ["optimizer.step=adam"]], ids=["pgpe", "snes", "adam"])
def test_per_parameter_optimiser_state_follows_its_parameter(compose_config, tmp_path: Path, optimizer) -> None:
    """A per-parameter sigma (PGPE, SNES) and the step's moments (Adam) go with their parameter: a shared
    rule's coefficient takes its representative synapse's; the step's counter carries over."""
    from hebbian_es.core.merging import merged_sources

    cfg = compose_config(*SMALL, "debug=default", *optimizer, "generations=5", "rule.merge.k=[50]", "rule.merge.every=2",
                         "rule.modulation=layer", f"run_dir={tmp_path}")  # fmt: skip
    run = build_run(cfg, RunDir(tmp_path))
    run.evaluator = None
    for _ in range(2):  # two tells: a state with adapted sigmas / moments
        run.state = run.optimizer.tell(*run.optimizer.ask(run.state), np.random.default_rng(0).normal(size=run.optimizer.popsize))
    before, task = run.state, run.task
    run.merger.before_generation(run)
    after = run.state
    result = merge_rules(task, before.center, 50, int(np.random.SeedSequence([0, 0, 0x3E26E]).generate_state(1)[0]), n_init=1, max_iter=100)
    sources = merged_sources(task, run.task, result.representatives)
    assert torch.equal(after.center, before.center[sources])  # the medoids' coefficients and the modulatory weights, as they were
    per_parameter = [(a, b) for a, b in [(after.sigma, before.sigma), *((after.step[k], before.step[k]) for k in before.step)]
                     if isinstance(b, torch.Tensor) and b.dim() == 1]  # fmt: skip
    assert per_parameter, "the case has per-parameter state"
    for new, old in per_parameter:
        assert new.shape == (run.task.layout.size,) and torch.equal(new, old[sources])
    for k, v in before.step.items():
        if isinstance(v, torch.Tensor) and v.dim() == 0:  # Adam's step counter
            assert torch.equal(after.step[k], v)


def test_the_schedule(compose_config) -> None:
    opt = make_optimizer(compose_config().optimizer)

    def steps(*overrides: str):
        cfg = compose_config(*SMALL, *overrides)
        return plan_merges(cfg, build_task(cfg), opt).steps

    assert steps("generations=100", "rule.merge.every=20", "rule.merge.factor=4", "rule.merge.k_min=16") == (
        (20, 168), (40, 42), (60, 16),
    )  # fmt: skip
    assert steps("generations=50", "rule.merge.every=20", "rule.merge.factor=4", "rule.merge.k_min=16") == ((20, 168), (40, 42))
    assert steps("generations=30", "rule.merge.every=5", "rule.merge.start=10", "rule.merge.k=[300,100,100]") == (
        (10, 300), (15, 100), (20, 100),
    )  # fmt: skip
    assert plan_merges(compose_config(), build_task(compose_config()), opt) is None  # rule.merge.every=0: never


BAD = {
    "beyond_generations": (["generations=10", "rule.merge.every=10"], "rule.merge.every=10: the first merge runs before generation 10, beyond the run's generations=10; allowed: 1..9"),
    "start_beyond": (["generations=10", "rule.merge.every=2", "rule.merge.start=12"], "rule.merge.start=12: the first merge runs before generation 12"),
    "list_beyond": (["generations=10", "rule.merge.every=4", "rule.merge.k=[300,100,50]"], "rule.merge.k=[300, 100, 50]: 3 merges every 4 generations from generation 4 reach generation 12, beyond the run's generations=10"),
    "k_too_large": (["generations=10", "rule.merge.every=2", f"rule.merge.k=[{SYNAPSES + 1}]"], f"rule.merge.k=[{SYNAPSES + 1}]: each K must be in 1..{SYNAPSES}"),
    "k_zero": (["generations=10", "rule.merge.every=2", "rule.merge.k=[0]"], "rule.merge.k=[0]: each K must be in 1..672"),
    "k_increasing": (["generations=10", "rule.merge.every=2", "rule.merge.k=[10,20]"], "rule.merge.k=[10, 20]: must not increase"),
    "k_min_too_large": (["generations=10", "rule.merge.every=2", f"rule.merge.k_min={SYNAPSES + 1}"], f"rule.merge.k_min={SYNAPSES + 1}: must be in 1..672"),
    "factor": (["generations=10", "rule.merge.every=2", "rule.merge.factor=1"], "rule.merge.factor=1.0: must be > 1"),
    "k_without_every": (["rule.merge.k=[10]"], "rule.merge.k=[10] needs rule.merge.every >= 1"),
    "negative_every": (["rule.merge.every=-1"], "rule.merge.every=-1: must be >= 0"),
    "features": (["generations=10", "rule.merge.every=2", "rule.merge.features=weights"], "rule.merge.features='weights'; allowed: ['update', 'coefficients']"),
    "static": (["rule=static", "generations=10", "rule.merge.every=2"], "rule.merge.every=2 needs plasticity"),
    "nevergrad": (["optimizer=nevergrad", "generations=10", "rule.merge.every=2"], "rule.merge.every=2 needs an optimiser that continues from the merged centre"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_merge_schedule_is_one_config_error(compose_config, case: str, tmp_path: Path) -> None:
    overrides, message = BAD[case]
    with pytest.raises(ConfigError) as info:
        build_run(compose_config(*SMALL, *overrides, f"run_dir={tmp_path / 'run'}"), RunDir(tmp_path / "run"))
    assert message in str(info.value) and "\n" not in str(info.value), str(info.value)
    assert not (tmp_path / "run").exists()


def test_bad_merge_schedule_through_the_cli_writes_nothing(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "hebbian_es", "generations=10", "rule.merge.every=10", f"hydra.run.dir={tmp_path / 'run'}"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "error: rule.merge.every=10: the first merge runs before generation 10, beyond the run's generations=10; allowed: 1..9"
    ], proc.stderr
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


RUN = ("debug=default", *SMALL, "generations=5", "validation.every=2", "test.episodes=2")


def _rows(rd: RunDir) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rd.metrics_rows()]


@pytest.mark.slow
def test_merging_during_evolution_resumes_bit_for_bit_and_is_lossless_at_k_distinct(compose_config, tmp_path: Path) -> None:
    """A run stopped after every generation (before and after each merge) and continued equals the
    uninterrupted run bit for bit; a merge into K = 672 (every synapse's own rule) leaves the centre's
    return of that generation unchanged; the merged run is tested and evaluated from its checkpoint."""
    merging = ("rule.merge.every=2", "rule.merge.k=[672,100]")
    whole, pieces, plain = (RunDir(tmp_path / n) for n in ("whole", "pieces", "plain"))
    summary = train(compose_config.raw(*RUN, *merging, f"run_dir={whole.path}"))
    assert [(m["generation"], m["k"]) for m in summary["merges"]] == [(2, 672), (4, 100)]
    for _ in range(10):  # a tiny budget: every start does one generation, then stops
        train(compose_config.raw(*RUN, *merging, f"run_dir={pieces.path}", "stop_after_minutes=0.00001"))
        if pieces.read_status()["status"] == "finished":
            break
    assert _rows(pieces) == _rows(whole) and pieces.validation_rows() == whole.validation_rows()
    a, b = load_torch(whole.last), load_torch(pieces.last)
    assert torch.equal(a["params"], b["params"]) and a["generation"] == b["generation"] == 5
    assert torch.equal(a["merges"]["assignment"], b["merges"]["assignment"]) and a["merges"]["k"] == 100
    assert a["params"].numel() == 100 * 5 and pieces.read_test("last")["envs"] == whole.read_test("last")["envs"]

    train(compose_config.raw(*RUN, f"run_dir={plain.path}"))  # the same run without merging
    merged_rows, plain_rows = _rows(whole), _rows(plain)
    assert merged_rows[:2] == plain_rows[:2]  # generations 0 and 1: before the merge
    # generation 2 after the lossless merge: the same centre return; its population differs (noise in 672 x 5
    # dimensions drawn as one rule per synapse's shared block: the same seeds, another layout)
    assert merged_rows[2]["center_return"] == plain_rows[2]["center_return"]

    from hebbian_es.run import protocol

    agent = protocol.load_agent(whole.path)  # evaluate, analyses and the zoo load it like any run
    assert agent.task.plasticity.sharing == "merged" and agent.task.plasticity.k == 100

    from hebbian_es.analysis.cli import main as analyze

    analyze(["analysis=rules", f"run={whole.path}", f"out={tmp_path / 'rules'}", "max_rules=100", "points=9"])
    plotted = json.loads((tmp_path / "rules" / "rules.json").read_text())["results"]
    assert plotted["rules"] == plotted["shown"] == 100 and plotted["synapses"] == SYNAPSES
    assert (tmp_path / "rules" / "rules.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_merge_command_lossless_at_k_distinct(tmp_path: Path, compose_config) -> None:
    """python -m hebbian_es.merge with K = the run's distinct rules: the merged run's centre gives the
    source run's test lifetimes exactly."""
    from hebbian_es.run import protocol
    from hebbian_es.run.merge import MergeArgs, merge

    run = tmp_path / "run"
    train(compose_config.raw(*RUN, "rule.sharing=random", "rule.shared_k=6", "generations=2", "test.after_fit=false", f"run_dir={run}"))
    out = merge(MergeArgs(run=str(run), k=6, out=str(tmp_path / "merged")))
    assert json.loads((out / "merge.json").read_text())["features"] == "update"
    source, merged = protocol.load_agent(run), protocol.load_agent(out)
    results = [protocol.run_protocol(a.cfg.evaluator, a.task, a.params, 4, 0, False) for a in (source, merged)]
    assert results[0]["envs"] == results[1]["envs"]
    with pytest.raises(ConfigError, match="has only 6 distinct per-synapse rules"):
        merge(MergeArgs(run=str(run), k=7, out=str(tmp_path / "seven")))
    assert not (tmp_path / "seven").exists()


def test_merger_state_is_plain_data(compose_config, tmp_path: Path) -> None:
    """What a checkpoint keeps of the merges loads with weights_only=True (plain tensors, ints, lists, dicts)."""
    merger = RuleMerger(plan_merges(*(lambda c: (c, build_task(c), make_optimizer(c.optimizer)))(
        compose_config(*SMALL, "generations=10", "rule.merge.every=2"))), seed=0)  # fmt: skip
    merger.done, merger.k, merger.assignment = 1, 3, np.arange(SYNAPSES) % 3
    merger.history = [{"generation": 2, "k": 3, "inertia": 1.5}]
    path = tmp_path / "m.pt"
    torch.save({"merges": merger.state()}, path)
    loaded = torch.load(path, weights_only=True)
    again = RuleMerger(merger.plan, 0)
    again.adopt(loaded)
    assert again.done == 1 and again.k == 3 and np.array_equal(again.assignment, merger.assignment)


def test_a_first_pass_oja_checkpoint_says_how_to_load_it(compose_config, tmp_path: Path) -> None:
    """Oja's η is sigmoid(h) since issue 29: a checkpoint of η as evolved is refused with the fix."""
    from hebbian_es.run.checkpoint import check_compatible

    old = build_task(compose_config("rule=oja", "rule.eta_map=identity")).fingerprint()
    with pytest.raises(ConfigError, match="add rule.eta_map=identity"):
        check_compatible(old, build_task(compose_config("rule=oja")).fingerprint(), tmp_path / "last.pt")
