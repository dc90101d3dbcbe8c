"""`python -m hebbian_es.merge` (evolve, then merge): a trained run's per-synapse rules clustered into
K shared rules, written as a new run at generation 0 that the training command continues."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from hebbian_es import config
from hebbian_es.core.task import build_task
from hebbian_es.errors import ConfigError
from hebbian_es.files import load_torch
from hebbian_es.run import protocol
from hebbian_es.run.merge import ASSIGNMENT_FILE, MergeArgs, merge, per_synapse_coefficients
from hebbian_es.run.train import train

TINY = ["network=small", "optimizer.popsize=4", "generations=1", "evaluator=serial", "test.after_fit=false",
        "validation.every=0", "env.max_episode_steps=30", "progress_bar=false", "rule.modulation=layer"]  # fmt: skip
SYNAPSES = 4 * 32 + 32 * 16 + 16 * 2  # cartpole, network=small


def _config_only_run(path: Path, compose_config, *overrides: str) -> Path:
    """A run directory with a config.yaml (no training)."""
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(OmegaConf.to_yaml(compose_config.raw(*overrides, f"run_dir={path}"), resolve=True))
    return path


def test_merge_refuses_a_run_without_checkpoint_or_plasticity(tmp_path: Path, compose_config) -> None:
    bare = _config_only_run(tmp_path / "bare", compose_config)
    with pytest.raises(ConfigError, match=r"has no checkpoints/last.pt: nothing to merge"):
        merge(MergeArgs(run=str(bare), k=4))
    static = _config_only_run(tmp_path / "static", compose_config, "rule=static")
    (static / "checkpoints").mkdir()
    (static / "checkpoints" / "last.pt").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"rule.name='static': no plasticity rules to merge; allowed: a run of \["):
        merge(MergeArgs(run=str(static), k=4))
    with pytest.raises(ConfigError, match="run=<run dir> and k=<number of rules> are required"):
        merge(MergeArgs(run=str(bare)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bare", "static"]  # nothing written


def test_merge_cli_is_one_error_line_and_exit_2(tmp_path: Path, compose_config) -> None:
    static = _config_only_run(tmp_path / "static", compose_config, "rule=static")
    (static / "checkpoints").mkdir()
    (static / "checkpoints" / "last.pt").write_bytes(b"")
    cases = {"static": [f"run={static}", "k=2"], "unknown_key": [f"run={static}", "clusters=2"], "help": ["--help"]}
    procs = {n: subprocess.Popen([sys.executable, "-m", "hebbian_es.merge", *a], cwd=tmp_path, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for n, a in cases.items()}  # fmt: skip
    out = {n: (p.communicate(timeout=120), p.returncode) for n, p in procs.items()}
    for name in ("static", "unknown_key"):
        (stdout, stderr), rc = out[name]
        assert rc == 2 and stderr.startswith("error: ") and len(stderr.strip().splitlines()) == 1, stderr
    assert "rule.name='static'" in out["static"][0][1] and "allowed: run=, k=, out=" in out["unknown_key"][0][1]
    (stdout, _), rc = out["help"]
    assert rc == 0 and "k=" in stdout and "rule_assignment.npy" in stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["static"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("merge") / "run"
    train(config.compose([*TINY, f"run_dir={run}"]))
    return run


@pytest.mark.slow
def test_merge_writes_a_run_at_generation_zero_that_training_continues(trained: Path, tmp_path: Path) -> None:
    for k in (0, SYNAPSES + 1):
        with pytest.raises(ConfigError, match=rf"k={k}: must be in 1..{SYNAPSES}"):
            merge(MergeArgs(run=str(trained), k=k, out=str(tmp_path / "bad")))
    assert not (tmp_path / "bad").exists()

    # features=coefficients: k-means on the raw coefficients, the centroids as rules (the first pass's merge)
    out = merge(MergeArgs(run=str(trained), k=4, out=str(tmp_path / "merged"), features="coefficients"))
    info = json.loads((out / "merge.json").read_text())
    assert info["k"] == 4 and info["source_run"] == str(trained)
    assert sum(info["assignment_counts"]) == SYNAPSES and min(info["assignment_counts"]) > 0
    assert info["counts"]["source"]["plastic_coefficients"] == 5 * SYNAPSES
    assert info["counts"]["merged"]["plastic_coefficients"] == 4 * 5 and info["counts"]["merged"]["shared_rules"] == 4
    assert "rule.sharing=merged rule.shared_k=4 rule.assignment=rule_assignment.npy" in info["command"]
    cfg = config.load(out / "config.yaml")
    assert (cfg.rule.sharing, cfg.rule.shared_k, cfg.rule.assignment) == ("merged", 4, ASSIGNMENT_FILE)

    # the checkpoint: generation 0, the centroids, and the modulatory weights as trained
    saved = load_torch(out / "checkpoints" / "last.pt")
    source = load_torch(trained / "checkpoints" / "last.pt")
    assert saved["generation"] == 0 and saved["task"]["plasticity"]["sharing"] == "merged"
    src_task = build_task(config.load(trained / "config.yaml"))
    new_task = build_task(config.load(out / "config.yaml"))
    new_views, src_views = new_task.layout.views(saved["params"][None]), src_task.layout.views(source["params"][None])
    for name in ("fc0.modulation", "fc1.modulation", "fc2.modulation"):
        assert torch.equal(new_views[name], src_views[name])
    # every synapse's trained rule is nearest to the centroid it was assigned (converged k-means)
    coeffs = per_synapse_coefficients(src_task, source["params"])
    centroids = new_views["shared.coefficients"][0].double().numpy().T  # (K, C)
    labels = np.load(out / ASSIGNMENT_FILE)
    d = ((coeffs[:, None, :] - centroids[None]) ** 2).sum(axis=2)
    assert np.array_equal(d.argmin(axis=1), labels)

    again = merge(MergeArgs(run=str(trained), k=4, out=str(tmp_path / "again"), features="coefficients"))  # deterministic
    assert np.array_equal(np.load(again / ASSIGNMENT_FILE), labels)
    assert torch.equal(load_torch(again / "checkpoints" / "last.pt")["params"], saved["params"])
    with pytest.raises(ConfigError, match="exists and is not empty"):
        merge(MergeArgs(run=str(trained), k=4, out=str(out)))

    # features=update (the default): clustered by Δw on the activity grid; each rule is a member of its cluster
    by_update = merge(MergeArgs(run=str(trained), k=4, out=str(tmp_path / "by_update")))
    assert json.loads((by_update / "merge.json").read_text())["features"] == "update"
    shared = build_task(config.load(by_update / "config.yaml")).layout.views(load_torch(by_update / "checkpoints" / "last.pt")["params"][None])
    rules = shared["shared.coefficients"][0].double().numpy().T  # (K, C)
    update_labels = np.load(by_update / ASSIGNMENT_FILE)
    for r, rule in enumerate(rules):
        members = coeffs[update_labels == r]
        assert len(members) and (members == rule.astype(np.float32).astype(np.float64)).all(axis=1).any()

    # the training command continues the merged run, evolving the 4 rules only
    summary = train(config.compose([*TINY, "rule.sharing=merged", "rule.shared_k=4", f"rule.assignment={ASSIGNMENT_FILE}", f"run_dir={out}"]))
    assert summary["generations_done"] == 1 and summary["counts"]["evolved_total"] == 20 + info["counts"]["merged"]["modulation_weights"]
    agent = protocol.load_agent(out)
    assert agent.generation == 1 and agent.task.plasticity.k == 4
    # another assignment is refused by the checkpoint's fingerprint
    np.save(tmp_path / "other.npy", np.roll(labels, 1))
    with pytest.raises(ConfigError, match="plasticity"):
        train(config.compose([*TINY, "rule.sharing=merged", "rule.shared_k=4", f"rule.assignment={tmp_path / 'other.npy'}", f"run_dir={out}"]))
