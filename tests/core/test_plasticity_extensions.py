"""Beyond the paper's rule (docs/plasticity.md): Oja, BCM, neuromodulation, shared rules and
weight regularisers, each against a plain scalar loop over every synapse (i, j) of every
individual of a population > 1; the quadruped's parameter counts; bad config values.

The reference formulas here are written from the docs, independently of hebbian_es.core.
Weights are (out, in): synapse (pre i, post j) of individual b is W[b, j, i].
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hebbian_es.config import DistributionConfig
from hebbian_es.core.kmeans import kmeans
from hebbian_es.core.network import NetworkSpec, PolicyPopulation, build_layout
from hebbian_es.core.plasticity import Plasticity, build_assignment
from hebbian_es.core.rules import get_rule
from hebbian_es.core.task import build_task
from hebbian_es.errors import ConfigError

B, N_IN, N_HID, N_OUT = 3, 5, 4, 3
SHAPES = [(N_HID, N_IN), (N_OUT, N_HID)]
N_SYN = sum(o * i for o, i in SHAPES)
TAU = 3.0


def _synapse_delta(rule: str, c: dict[str, float], oi: float, oj: float, w: float, theta: float) -> float:
    if rule == "abcd":
        return c["eta"] * (c["A"] * oi * oj + c["B"] * oi + c["C"] * oj + c["D"])
    if rule == "oja":
        return c["eta"] * (oi * oj - oj * oj * w)
    if rule == "bcm":
        return c["eta"] * oi * oj * (oj - theta)
    raise AssertionError(rule)


def _regularise(w: list[list[float]], mode: str) -> list[list[float]]:
    if mode == "none":
        return w
    if mode == "max_abs":
        peak = max(abs(v) for row in w for v in row)
        return [[v / peak for v in row] for row in w]
    if mode == "clip":
        return [[min(1.0, max(-1.0, v)) for v in row] for row in w]
    if mode == "tanh":
        return [[math.tanh(v) for v in row] for row in w]
    if mode == "row_var":
        out = []
        for row in w:
            mean = sum(row) / len(row)
            sd = math.sqrt(sum((v - mean) ** 2 for v in row) / len(row))
            out.append([v / (sd * math.sqrt(len(row))) for v in row])
        return out
    raise AssertionError(mode)


def _plasticity(rule_name: str, modulation: str, sharing: str, k: int = 3) -> Plasticity:
    if sharing == "none":
        return Plasticity(modulation=modulation, bcm_tau=TAU)
    loaded = np.random.default_rng(5).integers(0, k, N_SYN) if sharing == "merged" else None
    kk, assignment = build_assignment(sharing, k, SHAPES, seed=1, loaded=loaded)
    return Plasticity(modulation=modulation, sharing=sharing, k=kk, assignment=assignment, bcm_tau=TAU)


def _run_and_compare(rule_name: str, plasticity: Plasticity, regulariser: str, gen: torch.Generator, steps: int = 3) -> None:
    rule = get_rule(rule_name, eta_map="identity")  # η as evolved (oja, bcm default to sigmoid: test_plasticity_options.py)
    spec = NetworkSpec(input_shape=(N_IN,), output_size=N_OUT, hidden=(N_HID,), output_activation="tanh", normalize_weights=regulariser)
    layout = build_layout(spec, rule, coevolve_initial_weights=False, plasticity=plasticity)
    params = torch.randn(B, layout.size, generator=gen) * 0.5
    policy = PolicyPopulation(spec, rule, layout, params, DistributionConfig(kind="uniform", low=-0.5, high=0.5), plasticity)
    policy.reset([11, 12, 13])
    views = {k: v.double() for k, v in layout.views(params).items()}
    names = rule.coefficient_names
    weights = [[[[float(v) for v in row] for row in w[b]] for b in range(B)] for w in policy.weights]
    theta = [[[0.0] * o for _ in range(B)] for o, _ in SHAPES]

    def coeff(b: int, layer: int, j: int, i: int) -> dict[str, float]:
        if plasticity.sharing == "none":
            block = views[f"fc{layer}.coefficients"][b]
            return {n: float(block[k, j, i]) for k, n in enumerate(names)}
        r = int(plasticity.assignment[layer][j, i])
        return {n: float(views["shared.coefficients"][b, k, r]) for k, n in enumerate(names)}

    def modulation(b: int, layer: int, j: int, x: list[float]) -> float:
        if plasticity.modulation == "none":
            return 1.0
        v = views[f"fc{layer}.modulation"][b]
        if plasticity.modulation == "neuron":
            return math.tanh(sum(float(v[j, i]) * x[i] for i in range(len(x))))
        return math.tanh(sum(float(v[i]) * x[i] for i in range(len(x))))

    for _ in range(steps):
        x = torch.randn(B, N_IN, generator=gen)
        out = policy.forward(x)
        new_weights = [[None] * B for _ in SHAPES]
        for b in range(B):
            acts = [[float(v) for v in x[b]]]
            for layer, (o, _) in enumerate(SHAPES):  # the scalar forward pass: tanh everywhere here
                w = weights[layer][b]
                acts.append([math.tanh(sum(w[j][i] * acts[layer][i] for i in range(len(acts[layer])))) for j in range(o)])
            torch.testing.assert_close(out[b].double(), torch.tensor(acts[-1], dtype=torch.float64), rtol=1e-4, atol=1e-5)
            for layer, (o, n) in enumerate(SHAPES):
                pre, post, w = acts[layer], acts[layer + 1], weights[layer][b]
                for j in range(o):  # θ_j slides first, then Δw reads it
                    theta[layer][b][j] += (post[j] ** 2 - theta[layer][b][j]) / TAU
                updated = [
                    [
                        w[j][i] + modulation(b, layer, j, pre) * _synapse_delta(rule_name, coeff(b, layer, j, i), pre[i], post[j], w[j][i], theta[layer][b][j])
                        for i in range(n)
                    ]
                    for j in range(o)
                ]
                new_weights[layer][b] = _regularise(updated, regulariser)
        policy.update()
        weights = new_weights
        for layer in range(len(SHAPES)):
            want = torch.tensor(weights[layer], dtype=torch.float64)
            torch.testing.assert_close(policy.weights[layer].double(), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("sharing", ["none", "random", "post", "merged"])
@pytest.mark.parametrize("modulation", ["none", "neuron", "layer"])
@pytest.mark.parametrize("rule_name", ["abcd", "oja", "bcm"])
def test_population_update_equals_scalar_loop(rule_name, modulation, sharing, gen):
    _run_and_compare(rule_name, _plasticity(rule_name, modulation, sharing), "none", gen)


@pytest.mark.parametrize("regulariser", ["none", "max_abs", "clip", "tanh", "row_var"])
@pytest.mark.parametrize("rule_name,modulation", [("abcd", "none"), ("oja", "neuron")])
def test_regularisers_equal_scalar_loop(rule_name, modulation, regulariser, gen):
    _run_and_compare(rule_name, _plasticity(rule_name, modulation, "none"), regulariser, gen)


def test_boolean_normalize_weights_is_max_abs(gen):
    """true (the paper's CarRacing setting) and max_abs give the same weights, bit for bit."""
    rule = get_rule("abcd")
    out = []
    for value in (True, "max_abs"):
        spec = NetworkSpec(input_shape=(N_IN,), output_size=N_OUT, hidden=(N_HID,), normalize_weights=value)
        layout = build_layout(spec, rule, coevolve_initial_weights=False)
        params = torch.randn(B, layout.size, generator=torch.Generator().manual_seed(3))
        policy = PolicyPopulation(spec, rule, layout, params, DistributionConfig())
        policy.reset([1, 2, 3])
        for _ in range(2):
            policy.forward(torch.ones(B, N_IN))
            policy.update()
        out.append([w.clone() for w in policy.weights])
    for a, b in zip(*out):
        assert torch.equal(a, b)


# ---- the rules alone ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["oja", "bcm"])
def test_oja_and_bcm_delta_equal_scalar_loop(name, gen):
    rule = get_rule(name, eta_map="identity")
    assert rule.coefficient_names == ("eta",) and rule.coefficients_per_synapse == 1
    coeffs = torch.randn(B, 1, N_HID, N_IN, generator=gen, dtype=torch.float64)
    pre = torch.randn(B, N_IN, generator=gen, dtype=torch.float64)
    post = torch.randn(B, N_HID, generator=gen, dtype=torch.float64)
    w = torch.randn(B, N_HID, N_IN, generator=gen, dtype=torch.float64)
    theta = torch.rand(B, N_HID, generator=gen, dtype=torch.float64)
    kept = w.clone()
    got = rule.delta(coeffs, pre, post, w=w, theta=theta)
    want = torch.tensor(
        [[[_synapse_delta(name, {"eta": float(coeffs[b, 0, j, i])}, float(pre[b, i]), float(post[b, j]), float(w[b, j, i]), float(theta[b, j]))
           for i in range(N_IN)] for j in range(N_HID)] for b in range(B)],
        dtype=torch.float64,
    )  # fmt: skip
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    assert torch.equal(w, kept)  # delta never writes the weights it reads


@pytest.mark.parametrize("name", ["oja", "bcm"])
def test_eta_only_rules_refuse_use_eta_false(name):
    with pytest.raises(ConfigError, match=f"rule.use_eta=false leaves rule.name='{name}' nothing to evolve"):
        get_rule(name, use_eta=False)


# ---- assignments --------------------------------------------------------------------------


def test_random_assignment_is_balanced_and_seeded():
    k, a = build_assignment("random", 5, SHAPES, seed=7)
    flat = np.concatenate([x.numpy().reshape(-1) for x in a])
    assert k == 5 and [x.shape for x in a] == [torch.Size(s) for s in SHAPES]
    counts = np.bincount(flat, minlength=5)
    assert counts.max() - counts.min() <= 1 and counts.sum() == N_SYN
    _, again = build_assignment("random", 5, SHAPES, seed=7)
    _, other = build_assignment("random", 5, SHAPES, seed=8)
    assert all(torch.equal(x, y) for x, y in zip(a, again))
    assert not all(torch.equal(x, y) for x, y in zip(a, other))


def test_post_assignment_follows_the_post_neuron():
    k, a = build_assignment("post", 2, SHAPES)
    for layer, (o, n) in enumerate(SHAPES):
        for j in range(o):
            assert a[layer][j].tolist() == [j % 2] * n
    k, a = build_assignment("post", None, SHAPES)  # one rule per post neuron of every layer
    assert k == N_HID + N_OUT
    assert a[0][:, 0].tolist() == list(range(N_HID)) and a[1][:, 0].tolist() == list(range(N_HID, N_HID + N_OUT))


def test_merged_assignment_is_the_file_in_layer_order():
    flat = np.arange(N_SYN) % 4
    k, a = build_assignment("merged", None, SHAPES, loaded=flat)
    assert k == 4
    assert a[0].reshape(-1).tolist() == flat[: N_HID * N_IN].tolist()
    assert a[1].reshape(-1).tolist() == flat[N_HID * N_IN :].tolist()
    with pytest.raises(ConfigError, match="has 3 entries; this network has 32 plastic synapses"):
        build_assignment("merged", None, SHAPES, loaded=np.zeros(3, dtype=np.int64))
    with pytest.raises(ConfigError, match="rule.shared_k=2 allows 0..1"):
        build_assignment("merged", 2, SHAPES, loaded=flat)


@pytest.mark.parametrize("k", [0, -1, N_SYN + 1])
def test_k_outside_one_to_synapses_is_refused(k):
    for mode in ("random", "post"):
        with pytest.raises(ConfigError, match=rf"rule.shared_k={k}: must be in 1..{N_SYN}"):
            build_assignment(mode, k, SHAPES)


# ---- the quadruped's parameter counts ------------------------------------------------------

QUADRUPED = NetworkSpec(input_shape=(28,), output_size=8, hidden=(128, 64))
QUADRUPED_SHAPES = QUADRUPED.fc_shapes


def _quadruped(rule: str = "abcd", modulation: str = "none", sharing: str = "none", k: int | None = None):
    p = Plasticity(modulation=modulation)
    if sharing != "none":
        kk, a = build_assignment(sharing, k, QUADRUPED_SHAPES, seed=0)
        p = Plasticity(modulation=modulation, sharing=sharing, k=kk, assignment=a)
    return build_layout(QUADRUPED, get_rule(rule), coevolve_initial_weights=False, plasticity=p)


def test_quadruped_parameter_counts():
    assert sum(o * i for o, i in QUADRUPED_SHAPES) == 12_288
    assert _quadruped().size == 61_440  # ABCD + η per synapse
    assert _quadruped(sharing="random", k=16).size == 16 * 5 == 80
    assert _quadruped(sharing="random", k=64).size == 64 * 5 == 320
    assert _quadruped(sharing="post").size == (128 + 64 + 8) * 5 == 1_000
    assert _quadruped(modulation="neuron").size == 61_440 + 12_288  # v: one weight per synapse
    assert _quadruped(modulation="layer").size == 61_440 + 28 + 128 + 64  # v: one weight per layer input
    assert _quadruped(modulation="neuron", sharing="random", k=16).size == 80 + 12_288
    assert _quadruped(modulation="layer", sharing="random", k=16).size == 80 + 220
    assert _quadruped("oja").size == _quadruped("bcm").size == 12_288  # η per synapse
    assert _quadruped("oja", sharing="random", k=16).size == 16


def test_quadruped_task_counts_and_summary(compose_config):
    task = build_task(compose_config("env=ant_fast", "network=mlp", "rule=abcd_shared16", "rule.modulation=layer"))
    counts = task.counts()
    assert counts["plastic_synapses"] == 12_288 and counts["unshared_coefficients"] == 61_440
    assert counts["plastic_coefficients"] == 80 and counts["shared_rules"] == 16
    assert counts["modulation_weights"] == 220 and counts["evolved_total"] == 300
    assert "61,440 per-synapse coefficients -> 16 x 5 = 80" in task.plasticity_summary()
    fp = task.fingerprint()["plasticity"]
    assert fp["sharing"] == "random" and fp["k"] == 16 and len(fp["assignment_sha256"]) == 64


def test_default_fingerprint_and_counts_are_unchanged(compose_config):
    """Checkpoints of runs without the new keys keep loading: no new fingerprint or count keys."""
    task = build_task(compose_config())
    assert set(task.fingerprint()) == {"rule", "coefficients", "fc_shapes", "conv_shapes", "layout"}
    assert set(task.counts()) == {
        "plastic_coefficients", "static_conv_params", "static_fc_weights", "coevolved_initial_weights", "plastic_synapses", "evolved_total",
    }  # fmt: skip
    assert task.plasticity_summary() is None and task.policy(task.initial_center(0)[None]).extended is None


# ---- bad configuration: ConfigError naming the key and the allowed values --------------------

BAD = {
    "modulation": (["rule.modulation=dopamine"], "rule.modulation='dopamine'; allowed: ['none', 'neuron', 'layer', 'reward']"),
    "sharing": (["rule.sharing=all"], "rule.sharing='all'; allowed: ['none', 'random', 'post', 'merged']"),
    "k_zero": (["rule.sharing=random", "rule.shared_k=0"], "rule.shared_k=0: must be in 1..672"),
    "k_too_big": (["rule.sharing=random", "rule.shared_k=673"], "rule.shared_k=673: must be in 1..672"),
    "k_missing": (["rule.sharing=random"], "rule.shared_k is required with rule.sharing=random"),
    "k_without_sharing": (["rule.shared_k=4"], "rule.shared_k=4 needs rule.sharing"),
    "static_shared": (["rule=static", "rule.sharing=random", "rule.shared_k=2"], "rule.sharing='random' needs plasticity"),
    "static_modulated": (["rule=static", "rule.modulation=neuron"], "rule.modulation='neuron' needs plasticity"),
    "merged_no_file": (["rule.sharing=merged"], "rule.sharing=merged needs rule.assignment="),
    "merged_missing_file": (["rule.sharing=merged", "rule.assignment=nope.npy"], "rule.assignment='nope.npy': cannot read"),
    "regulariser": (["network.normalize_weights=l2"], "network.normalize_weights='l2'; allowed: [false, true, none, max_abs, clip, tanh, row_var]"),
    "bcm_tau": (["rule=bcm", "rule.bcm_tau=0.5"], "rule.bcm_tau=0.5: must be >= 1"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_plasticity_config_is_one_config_error(compose_config, case, tmp_path):
    overrides, message = BAD[case]
    with pytest.raises(ConfigError) as info:
        build_task(compose_config("network=small", f"run_dir={tmp_path}", *overrides))
    assert message in str(info.value) and "\n" not in str(info.value)


CLI_REFUSED = {
    "modulation": (["rule.modulation=dopamine"], "error: rule.modulation='dopamine'; allowed: ['none', 'neuron', 'layer', 'reward']"),
    "k_zero": (["rule.sharing=random", "rule.shared_k=0"], "error: rule.shared_k=0: must be in 1..8,832 (the plastic synapses)"),
}


def test_bad_plasticity_keys_stop_training_with_one_line(tmp_path: Path) -> None:
    """Through the CLI: one `error:` line naming the key and the allowed values, exit 2, nothing written."""
    procs = {
        name: subprocess.Popen([sys.executable, "-m", "hebbian_es", *overrides, f"hydra.run.dir={tmp_path / name}"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, (overrides, _) in CLI_REFUSED.items()
    }  # fmt: skip
    for name, proc in procs.items():
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 2 and stderr.strip().splitlines() == [CLI_REFUSED[name][1]], stderr
        run = tmp_path / name
        assert not run.exists() or not any(run.iterdir())


# ---- k-means ------------------------------------------------------------------------------


def test_kmeans_is_seeded_and_finds_separated_clusters():
    rng = np.random.default_rng(0)
    means = rng.normal(0, 10, (4, 5))
    x = np.concatenate([m + rng.normal(0, 0.1, (50, 5)) for m in means])
    a, b = kmeans(x, 4, seed=3), kmeans(x, 4, seed=3)
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.centers, b.centers)
    assert a.converged
    for blob in range(4):  # each blob is one cluster, centred on the blob's mean
        labels = a.labels[blob * 50 : (blob + 1) * 50]
        assert len(set(labels.tolist())) == 1
        np.testing.assert_allclose(a.centers[labels[0]], x[blob * 50 : (blob + 1) * 50].mean(axis=0))
    # converged Lloyd: every point is nearest to its own centre
    d = ((x[:, None, :] - a.centers[None]) ** 2).sum(axis=2)
    assert np.array_equal(d.argmin(axis=1), a.labels)


def test_kmeans_uses_every_cluster_even_with_duplicates():
    x = np.repeat(np.arange(6, dtype=np.float64)[:, None], 4, axis=0)  # 6 distinct points, 4 copies each
    res = kmeans(x, 6, seed=0)
    assert sorted(np.bincount(res.labels).tolist()) == [4] * 6 and res.inertia == 0.0
