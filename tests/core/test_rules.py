"""Hebbian rules: the vectorised update against a plain scalar loop over every synapse.

The reference formulas below are written from SPEC.md, independently of
hebbian_es.core.rules.  Weights are (out, in): synapse (pre i, post j) is W[b, j, i].
"""

from __future__ import annotations

import math

import pytest
import torch

from hebbian_es.config import DistributionConfig
from hebbian_es.errors import ConfigError
from hebbian_es.core.network import NetworkSpec, PolicyPopulation, build_layout
from hebbian_es.core.rules import RULES, get_rule

B, N_IN, N_OUT = 3, 5, 4


def _core(name: str, c: dict[str, float], oi: float, oj: float) -> tuple[float, float]:
    """(part scaled by eta, part not scaled by eta) of one synapse's change."""
    hebb = c["A"] * oi * oj
    if name == "a":
        return hebb, 0.0
    if name == "ad":
        return hebb + c["D"], 0.0
    if name == "abc":
        return hebb + c["B"] * oi + c["C"] * oj, 0.0
    if name == "abcd":
        return hebb + c["B"] * oi + c["C"] * oj + c["D"], 0.0
    if name == "abcd_d_out":
        return hebb + c["B"] * oi + c["C"] * oj, c["D"]
    if name == "abcd_d_in_out":
        return hebb + c["B"] * oi + c["C"] * oj + c["D_in"], c["D_out"]
    raise AssertionError(f"no reference formula for rule {name!r}")


# Coefficient names each rule needs per synapse (besides eta), from the SPEC table.
REFERENCE_NAMES = {
    "a": {"A"},
    "ad": {"A", "D"},
    "abc": {"A", "B", "C"},
    "abcd": {"A", "B", "C", "D"},
    "abcd_d_out": {"A", "B", "C", "D"},
    "abcd_d_in_out": {"A", "B", "C", "D_in", "D_out"},
}
# Oja and BCM read the weights and a sliding threshold: tests/core/test_plasticity_extensions.py;
# abcd_trace accumulates a trace over steps: tests/core/test_plasticity_options.py
EXTENSIONS = {"oja", "bcm", "abcd_trace"}
PLASTIC = sorted(n for n, r in RULES.items() if r.plastic and n not in EXTENSIONS)


def reference_delta(name, use_eta, names, coeffs, pre, post):
    """Scalar loop: coeffs (B, K, out, in) indexed by `names`; pre (B, in); post (B, out)."""
    b_n, _, n_out, n_in = coeffs.shape
    out = [[[0.0] * n_in for _ in range(n_out)] for _ in range(b_n)]
    for b in range(b_n):
        for j in range(n_out):
            for i in range(n_in):
                c = {n: float(coeffs[b, k, j, i]) for k, n in enumerate(names)}
                oi, oj = float(pre[b, i]), float(post[b, j])
                inner, outer = _core(name, c, oi, oj)
                eta = c["eta"] if use_eta else 1.0
                out[b][j][i] = eta * inner + outer
    return torch.tensor(out, dtype=torch.float64)


def test_every_plastic_rule_has_a_reference_formula():
    assert set(PLASTIC) == set(REFERENCE_NAMES)
    assert not RULES["static"].plastic


@pytest.mark.parametrize("use_eta", [True, False], ids=["eta", "no_eta"])
@pytest.mark.parametrize("name", PLASTIC)
def test_delta_equals_scalar_loop(name, use_eta, gen):
    rule = get_rule(name, use_eta)
    names = rule.coefficient_names
    expected_names = REFERENCE_NAMES[name] | ({"eta"} if use_eta else set())
    assert set(names) == expected_names and len(names) == len(expected_names)
    coeffs = torch.randn(B, len(names), N_OUT, N_IN, generator=gen, dtype=torch.float64)
    pre = torch.randn(B, N_IN, generator=gen, dtype=torch.float64)
    post = torch.randn(B, N_OUT, generator=gen, dtype=torch.float64)
    before = coeffs.clone(), pre.clone(), post.clone()
    got = rule.delta(coeffs, pre, post)
    want = reference_delta(name, use_eta, names, coeffs, pre, post)
    assert got.shape == (B, N_OUT, N_IN)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    # the update must not write into its inputs (coefficients are views of the evolved vector)
    for a, b in zip(before, (coeffs, pre, post)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("use_eta", [True, False], ids=["eta", "no_eta"])
def test_abcd_with_zero_bcd_equals_rule_a(use_eta, gen):
    abcd, a = get_rule("abcd", use_eta), get_rule("a", use_eta)
    A = torch.randn(B, N_OUT, N_IN, generator=gen)
    eta = torch.rand(B, N_OUT, N_IN, generator=gen)
    pre = torch.randn(B, N_IN, generator=gen)
    post = torch.randn(B, N_OUT, generator=gen)

    def pack(rule):
        parts = {"A": A, "eta": eta}
        return torch.stack([parts.get(n, torch.zeros_like(A)) for n in rule.coefficient_names], dim=1)

    got = abcd.delta(pack(abcd), pre, post)
    torch.testing.assert_close(got, a.delta(pack(a), pre, post))
    assert got.abs().max() > 0  # a non-trivial case


@pytest.mark.parametrize(
    "name,count",
    [("a", 2), ("ad", 3), ("abc", 4), ("abcd", 5), ("abcd_d_out", 5), ("abcd_d_in_out", 6), ("static", 0)],
)
def test_coefficients_per_synapse(name, count):
    assert get_rule(name).coefficients_per_synapse == count
    assert get_rule(name, use_eta=False).coefficients_per_synapse == max(count - 1, 0)
    assert "eta" not in get_rule(name, use_eta=False).coefficient_names


def test_static_rule_is_not_plastic():
    for use_eta in (True, False):
        rule = get_rule("static", use_eta)
        assert not rule.plastic and rule.coefficient_names == ()


@pytest.mark.parametrize("bad", ["abcde", "ABCD", "", "hebb"])
def test_unknown_rule_raises_config_error_naming_allowed(bad):
    with pytest.raises(ConfigError) as info:
        get_rule(bad)
    msg = str(info.value)
    assert "rule.name" in msg and repr(bad) in msg
    for allowed in RULES:
        assert allowed in msg


# ---- the update over a whole network -------------------------------------------------


def _matvec(w, x):
    return [sum(w[j][i] * x[i] for i in range(len(x))) for j in range(len(w))]


@pytest.mark.parametrize("normalize", [False, True], ids=["raw", "normalized"])
@pytest.mark.parametrize("output_activation", ["identity", "tanh"])
@pytest.mark.parametrize("name,use_eta", [("abcd", True), ("abcd_d_in_out", True), ("abc", False)])
def test_population_update_equals_scalar_loop_per_layer(name, use_eta, output_activation, normalize, gen):
    rule = get_rule(name, use_eta)
    spec = NetworkSpec(
        input_shape=(N_IN,),
        output_size=3,
        hidden=(N_OUT,),
        output_activation=output_activation,
        normalize_weights=normalize,
    )
    layout = build_layout(spec, rule, coevolve_initial_weights=False)
    params = torch.randn(B, layout.size, generator=gen) * 0.5
    policy = PolicyPopulation(spec, rule, layout, params, DistributionConfig(kind="uniform", low=-0.5, high=0.5))
    policy.reset([11, 12, 13])
    weights = [w.clone().double() for w in policy.weights]  # (B, out, in) per layer
    coeffs = [layout.views(params.double())[f"fc{l}.coefficients"] for l in range(2)]
    out_act = math.tanh if output_activation == "tanh" else (lambda v: v)

    for _ in range(3):  # several lifetime steps: each forward sees the previous update
        x = torch.randn(B, N_IN, generator=gen)
        out = policy.forward(x)
        hidden, output = [], []
        for b in range(B):  # the forward pass, scalar: tanh hidden units, then the output activation
            xb = [float(v) for v in x[b]]
            hidden.append([math.tanh(v) for v in _matvec(weights[0][b].tolist(), xb)])
            output.append([out_act(v) for v in _matvec(weights[1][b].tolist(), hidden[b])])
        acts = [x.double(), torch.tensor(hidden, dtype=torch.float64), torch.tensor(output, dtype=torch.float64)]
        torch.testing.assert_close(out.double(), acts[2], rtol=1e-5, atol=1e-6)
        # the scalar rule per layer with this step's activations: layer 0 sees the input as pre
        new_weights = []
        for layer in range(2):
            w = weights[layer] + reference_delta(
                name, use_eta, rule.coefficient_names, coeffs[layer], acts[layer], acts[layer + 1]
            )
            if normalize:
                for b in range(B):
                    w[b] = w[b] / max(abs(float(v)) for v in w[b].flatten())
            new_weights.append(w)
        policy.update()
        weights = new_weights
        for layer in range(2):
            torch.testing.assert_close(policy.weights[layer].double(), weights[layer], rtol=1e-4, atol=1e-5)
            if normalize:
                peak = policy.weights[layer].abs().amax(dim=(1, 2))
                torch.testing.assert_close(peak, torch.ones(B))
