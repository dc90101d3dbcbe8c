"""Plasticity, second pass (docs/plasticity.md): η maps, BCM on rates, eligibility traces, the reward
as a third factor, the plasticity clock (activities averaged over M steps, an update every P steps).

Each is checked against a plain scalar loop over every synapse (i, j) of every individual of a
population > 1, written from the docs independently of hebbian_es.core; each is batch invariant
(a lifetime's weights do not depend on the other lifetimes in its batch); each rule with η ≥ 0
stays finite and bounded over 1,000 steps at the quadruped's observation scale.
Weights are (out, in): synapse (pre i, post j) of individual b is W[b, j, i].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from hebbian_es.config import DistributionConfig
from hebbian_es.core.network import NetworkSpec, PolicyPopulation, build_layout
from hebbian_es.core.plasticity import Plasticity, build_assignment
from hebbian_es.core.rules import RULES, get_rule
from hebbian_es.core.task import build_task
from hebbian_es.errors import ConfigError

B, N_IN, N_HID, N_OUT = 3, 5, 4, 3
SHAPES = [(N_HID, N_IN), (N_OUT, N_HID)]
BCM_TAU = 3.0
CONF_RULES = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "conf" / "rule").glob("*.yaml"))


def _softplus(h: float) -> float:
    return math.log1p(math.exp(h)) if h < 20 else h


def _sigmoid(h: float) -> float:
    return 1.0 / (1.0 + math.exp(-h))


MAPS = {"identity": lambda h: h, "softplus": _softplus, "exp": math.exp, "sigmoid": _sigmoid}
RATE = {"tanh": lambda y: (y + 1.0) / 2.0}


@dataclass(frozen=True)
class Case:
    rule: str
    eta_map: str | None = None  # None: the rule's own
    eta_scale: float | None = None
    trace_tau: float | None = None  # trace rules: None = evolved per synapse
    modulation: str = "none"
    bcm_rates: bool = False
    average_steps: int = 1
    update_every: int = 1
    sharing: str = "none"
    extra: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        parts = [self.rule]
        for key in ("eta_map", "eta_scale", "trace_tau"):
            if getattr(self, key) is not None:
                parts.append(f"{key}={getattr(self, key)}")
        for key, default in (("modulation", "none"), ("bcm_rates", False), ("average_steps", 1), ("update_every", 1), ("sharing", "none")):
            if getattr(self, key) != default:
                parts.append(f"{key}={getattr(self, key)}")
        return ",".join(parts)


CASES = [
    Case("oja"),  # η = sigmoid(h), the rule's default
    Case("bcm"),
    Case("bcm", bcm_rates=True),
    Case("abcd", eta_map="softplus"),
    Case("abcd", eta_map="exp", eta_scale=0.5),
    Case("oja", eta_map="identity"),  # the raw η of before
    Case("abcd_trace"),  # τ evolved per synapse
    Case("abcd_trace", trace_tau=3.0),
    Case("abcd", modulation="reward"),
    Case("abcd_trace", modulation="reward"),
    Case("abcd", average_steps=3, update_every=2),
    Case("abcd", average_steps=1, update_every=3),
    Case("bcm", bcm_rates=True, average_steps=2, update_every=2),
    Case("abcd_trace", modulation="neuron", average_steps=2),
    Case("abcd_trace", sharing="random"),  # evolved τ gathered from shared rules
]


def _rule(case: Case):
    return get_rule(case.rule, eta_map=case.eta_map, eta_scale=case.eta_scale, trace_tau=case.trace_tau)


def _plasticity(case: Case) -> Plasticity:
    common = dict(
        modulation=case.modulation, bcm_tau=BCM_TAU, bcm_rates=case.bcm_rates, average_steps=case.average_steps,
        update_every=case.update_every,
    )
    if case.sharing == "none":
        return Plasticity(**common)
    k, assignment = build_assignment(case.sharing, 3, SHAPES, seed=1)
    return Plasticity(sharing=case.sharing, k=k, assignment=assignment, **common)


def _policy(case: Case, gen: torch.Generator, batch: int = B) -> tuple[PolicyPopulation, torch.Tensor]:
    rule, plasticity = _rule(case), _plasticity(case)
    spec = NetworkSpec(input_shape=(N_IN,), output_size=N_OUT, hidden=(N_HID,), output_activation="tanh")
    layout = build_layout(spec, rule, coevolve_initial_weights=False, plasticity=plasticity)
    params = torch.randn(batch, layout.size, generator=gen) * 0.5
    return PolicyPopulation(spec, rule, layout, params, DistributionConfig(kind="uniform", low=-0.5, high=0.5), plasticity), params


def _delta(rule_name: str, c: dict[str, float], eta: float, oi: float, oj: float, w: float, theta: float) -> float:
    """One synapse's Δw(rule), η included (the docs' table)."""
    if rule_name in ("abcd", "abcd_trace"):
        return eta * (c["A"] * oi * oj + c["B"] * oi + c["C"] * oj + c["D"])
    if rule_name == "oja":
        return eta * (oi * oj - oj * oj * w)
    if rule_name == "bcm":
        return eta * oi * oj * (oj - theta)
    raise AssertionError(rule_name)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_population_update_equals_scalar_loop(case: Case, gen: torch.Generator) -> None:
    policy, params = _policy(case, gen)
    policy.reset([11, 12, 13])
    rule = policy.rule
    names = rule.coefficient_names
    views = {k: v.double() for k, v in policy.layout.views(params).items()}
    assignment = _plasticity(case).assignment
    eta_map = MAPS[case.eta_map or RULES[case.rule].eta_map]
    eta_scale = case.eta_scale or 1.0
    weights = [[[[float(v) for v in row] for row in w[b]] for b in range(B)] for w in policy.weights]
    theta = [[[0.0] * o for _ in range(B)] for o, _ in SHAPES]
    trace = [[[[0.0] * n for _ in range(o)] for _ in range(B)] for o, n in SHAPES]
    history: list[list[list[list[float]]]] = []  # per step: per individual: every layer's activities

    def coeff(b: int, layer: int, j: int, i: int) -> dict[str, float]:
        if case.sharing == "none":
            block = views[f"fc{layer}.coefficients"][b]
            return {n: float(block[k, j, i]) for k, n in enumerate(names)}
        r = int(assignment[layer][j, i])
        return {n: float(views["shared.coefficients"][b, k, r]) for k, n in enumerate(names)}

    def modulation(b: int, layer: int, j: int, x: list[float], reward: float) -> float:
        v = views.get(f"fc{layer}.modulation")
        if case.modulation == "none":
            return 1.0
        if case.modulation == "reward":  # m_j = tanh(g_j r + b_j)
            return math.tanh(float(v[b, 0, j]) * reward + float(v[b, 1, j]))
        return math.tanh(sum(float(v[b, j, i]) * x[i] for i in range(len(x))))  # neuron

    for step in range(1, 8):
        x = torch.randn(B, N_IN, generator=gen) * 2
        rewards = torch.randn(B, generator=gen)
        out = policy.forward(x)
        acts_now = []
        for b in range(B):
            acts = [[float(v) for v in x[b]]]
            for layer, (o, _) in enumerate(SHAPES):
                w = weights[layer][b]
                acts.append([math.tanh(sum(w[j][i] * acts[layer][i] for i in range(len(acts[layer])))) for j in range(o)])
            torch.testing.assert_close(out[b].double(), torch.tensor(acts[-1], dtype=torch.float64), rtol=1e-4, atol=1e-5)
            acts_now.append(acts)
        history.append(acts_now)
        policy.update(rewards)
        if step % case.update_every == 0:  # a plasticity tick: the mean of the last M steps' activities
            window = history[-case.average_steps :]
            for b in range(B):
                mean = [[sum(h[b][a][u] for h in window) / len(window) for u in range(len(window[0][b][a]))] for a in range(3)]
                for layer, (o, n) in enumerate(SHAPES):
                    pre, post, w = mean[layer], mean[layer + 1], weights[layer][b]
                    if case.bcm_rates:
                        post = [RATE["tanh"](y) for y in post]
                    for j in range(o):
                        theta[layer][b][j] += (post[j] ** 2 - theta[layer][b][j]) / BCM_TAU
                    new = [row[:] for row in w]
                    for j in range(o):
                        m = modulation(b, layer, j, pre, float(rewards[b]))
                        for i in range(n):
                            c = coeff(b, layer, j, i)
                            eta = eta_scale * eta_map(c["eta"])
                            d = _delta(case.rule, c, eta, pre[i], post[j], w[j][i], theta[layer][b][j])
                            if rule.trace:
                                lam = 1.0 - 1.0 / case.trace_tau if case.trace_tau else _sigmoid(c["tau"])
                                trace[layer][b][j][i] = lam * trace[layer][b][j][i] + d
                                d = trace[layer][b][j][i]
                            new[j][i] = w[j][i] + m * d
                    weights[layer][b] = new
        for layer in range(len(SHAPES)):
            want = torch.tensor(weights[layer], dtype=torch.float64)
            torch.testing.assert_close(policy.weights[layer].double(), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_update_is_batch_invariant(case: Case) -> None:
    """A lifetime's weights are the same bits whether it runs alone or in a batch of 5 (given the
    same activities: the forward pass's own batch invariance is core/network.py's)."""
    together, params = _policy(case, torch.Generator().manual_seed(7), batch=5)
    together.reset([1, 2, 3, 4, 5])
    alone = []
    for b in range(5):
        p = PolicyPopulation(together.spec, together.rule, together.layout, params[b : b + 1].clone(), together.weight_init, together.extended.p if together.extended else _plasticity(case))
        p.reset([b + 1])
        alone.append(p)
    gen = torch.Generator().manual_seed(8)
    for _ in range(6):
        acts = [torch.randn(5, n, generator=gen).tanh() for n in (N_IN, N_HID, N_OUT)]
        reward = torch.randn(5, generator=gen)
        together.activations = acts
        together.update(reward)
        for b, p in enumerate(alone):
            p.activations = [a[b : b + 1].clone() for a in acts]
            p.update(reward[b : b + 1].clone())
    for b, p in enumerate(alone):
        for layer in range(2):
            assert torch.equal(together.weights[layer][b], p.weights[layer][0]), (case.id, b, layer)


def test_trace_with_tau_one_is_the_rule_without_trace(gen: torch.Generator) -> None:
    """τ = 1: λ = 0, the trace holds this step's Δw alone: abcd_trace is ABCD."""
    trace, params = _policy(Case("abcd_trace", trace_tau=1.0), gen)
    plain = PolicyPopulation(trace.spec, get_rule("abcd"), trace.layout, params, trace.weight_init, Plasticity())
    for p in (trace, plain):
        p.reset([1, 2, 3])
    for _ in range(4):
        x = torch.randn(B, N_IN, generator=gen)
        for p in (trace, plain):
            p.forward(x)
            p.update()
    for a, b in zip(trace.weights, plain.weights):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_bcm_on_rates_depresses_below_the_threshold() -> None:
    """Signed BCM: y (y − θ) > 0 for every y < 0, so a negative post activity never depresses a
    synapse with positive pre activity; on rates it does, whenever the rate is below θ."""
    rule = get_rule("bcm")
    eta = torch.full((1, 1, 1, 1), 2.0)  # h = 2: η = sigmoid(2) > 0
    pre, y, theta = torch.ones(1, 1), torch.full((1, 1), -0.5), torch.full((1, 1), 0.2)
    assert rule.delta(eta, pre, y, theta=theta).item() > 0  # potentiation at y = −0.5: never LTD
    rate = (y + 1) / 2  # 0.25: above θ = 0.2 potentiates, below it depresses
    assert rule.delta(eta, pre, rate, theta=theta).item() > 0
    assert rule.delta(eta, pre, rate, theta=torch.full((1, 1), 0.5)).item() < 0


def test_reward_reaches_the_update_only_where_the_rule_reads_it(compose_config) -> None:
    """core/rollout.py hands the step's reward to the update of a three-factor rule: the same
    lifetime with the reward's gain zeroed learns differently (a reward-free rule ignores it)."""
    from hebbian_es.core.rollout import run_lifetimes
    from hebbian_es.envs.runner import EnvPool
    from hebbian_es.envs.spec import ActionMapper, ObservationBatcher

    task = build_task(compose_config("rule=abcd_reward", "network=small", "env.max_episode_steps=20"))
    center = task.initial_center(0)
    gainless = center.clone()
    for name, v in task.layout.views(gainless[None]).items():
        if name.endswith(".modulation"):
            v[0, 0].zero_()  # g = 0: m_j = tanh(b_j), the reward no longer matters
    spec, pool = task.envs[0], EnvPool()
    try:
        finals = []
        for params in (center, gainless):
            policy = task.policy(params[None].repeat(2, 1))
            run_lifetimes(policy, pool.get(spec, 2), [5, 6], [1, 2], ObservationBatcher(spec.observation), ActionMapper(spec.action), 20)
            finals.append([w.clone() for w in policy.weights])
            assert policy.needs_reward
    finally:
        pool.close()
    assert any(not torch.equal(a, b) for a, b in zip(*finals))
    assert not task.policy(center[None]).needs_reward or task.plasticity.modulation == "reward"


# ---- stability over a lifetime at the quadruped's observation scale ---------------------------------

# The conf/rule/<name>.yaml with η ≥ 0 (a positive η map, the default for oja and bcm); the test
# below checks that this is all of them
POSITIVE = ["abcd_softplus", "bcm", "bcm_rates", "oja"]


def _positive_eta(compose_config, name: str) -> bool:
    rule = build_task(compose_config(f"rule={name}", "env=ant_fast", "network=mlp")).rule
    return rule.plastic and rule.use_eta and rule.eta_map != "identity"


def _lifetime_peak(task, params: torch.Tensor, steps: int = 1_000) -> torch.Tensor:
    """max|w| of each lifetime over `steps` steps of observations uniform in [−5, 5] (the quadruped's
    clip), and a reward in [−1, 1] every step; NaN where it went non-finite."""
    gen = torch.Generator().manual_seed(0)
    policy = task.policy(params)
    policy.reset(list(range(params.shape[0])))
    peak = torch.zeros(params.shape[0])
    for _ in range(steps):
        policy.forward((torch.rand(params.shape[0], 28, generator=gen) * 2 - 1) * 5)
        policy.update(torch.rand(params.shape[0], generator=gen) * 2 - 1)
        peak = torch.maximum(peak, torch.stack([w.abs().amax(dim=(1, 2)) for w in policy.weights]).amax(dim=0))
    return peak


def _population(task, eta_rows: bool = True) -> torch.Tensor:
    """The initial centre + σε (σ = 0.1, the ES's) for 6 members, and 2 with every η coefficient at
    +8 and −8 (the top and bottom of a bounded map's range)."""
    center = task.initial_center(0)
    params = center + 0.1 * torch.randn(8, center.numel(), generator=torch.Generator().manual_seed(1))
    names = task.rule.coefficient_names
    if eta_rows:
        for name, v in task.layout.views(params).items():
            if name.endswith("coefficients"):
                v[6, names.index("eta")] = 8.0
                v[7, names.index("eta")] = -8.0
    return params


# max|w| allowed over 1,000 steps.  Oja: measured at most 6.0 with η = sigmoid(h) < 1 (tanh units,
# |o_j| < 1, so η o_j² < 1: the forgetting term never overshoots).  The other rules' Δw does not
# grow with w (|Δw| <= η (5|A| + 5|B| + |C| + |D|) for ABCD, η·5·2 for BCM): they grow at most
# linearly; the bound catches exponential growth (measured: bcm 83, bcm_rates 653).
BOUNDS = {"oja": 10.0, "bcm": 10.0 * 1_000, "bcm_rates": 5.0 * 1_000}


@pytest.mark.parametrize("name", POSITIVE)
def test_rules_with_positive_eta_stay_bounded_for_1000_steps(compose_config, name: str) -> None:
    task = build_task(compose_config(f"rule={name}", "env=ant_fast", "network=mlp"))
    assert [s for s in task.network.fc_shapes] == [(128, 28), (64, 128), (8, 64)]
    peak = _lifetime_peak(task, _population(task))
    assert torch.isfinite(peak).all(), (name, peak)
    assert float(peak.max()) <= BOUNDS.get(name, float("inf")), (name, peak)


def test_the_stability_check_catches_oja_with_a_raw_eta(compose_config) -> None:
    """The same check fails for Oja's rule with η of either sign (the first pass's rule.eta_map=identity)."""
    task = build_task(compose_config("rule=oja", "rule.eta_map=identity", "env=ant_fast", "network=mlp"))
    peak = _lifetime_peak(task, _population(task, eta_rows=False), steps=300)
    assert not torch.isfinite(peak).all() or float(peak.max()) > 1e6


def test_the_stability_test_covers_every_rule_with_positive_eta(compose_config) -> None:
    assert [n for n in CONF_RULES if n != "static" and _positive_eta(compose_config, n)] == POSITIVE


# ---- bad input: one line naming the key ------------------------------------------------------------

BAD = {
    "trace_tau_zero": (["rule=abcd_trace", "rule.trace_tau=0"], "rule.trace_tau=0.0: must be >= 1"),
    "trace_tau_negative": (["rule=abcd_trace", "rule.trace_tau=-2"], "rule.trace_tau=-2.0: must be >= 1"),
    "trace_tau_without_trace": (["rule=abcd", "rule.trace_tau=5"], "rule.trace_tau=5.0 needs a rule with an eligibility trace"),
    "average_steps": (["rule.average_steps=0"], "rule.average_steps=0: must be >= 1"),
    "update_every": (["rule.update_every=0"], "rule.update_every=0: must be >= 1"),
    "eta_map": (["rule.eta_map=square"], "rule.eta_map='square'; allowed: ['identity', 'softplus', 'exp', 'sigmoid']"),
    "eta_scale": (["rule.eta_scale=0"], "rule.eta_scale=0.0: must be a positive number"),
    "bcm_rates": (["rule=oja", "rule.bcm_rates=true"], "rule.bcm_rates=true needs a rule with BCM's threshold"),
    "modulation": (["rule.modulation=dopamine"], "rule.modulation='dopamine'; allowed: ['none', 'neuron', 'layer', 'reward']"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_option_is_one_config_error(compose_config, case: str) -> None:
    overrides, message = BAD[case]
    with pytest.raises(ConfigError) as info:
        build_task(compose_config("network=small", *overrides))
    assert message in str(info.value) and "\n" not in str(info.value)


# ---- checkpoints and counts ------------------------------------------------------------------------


def test_options_are_in_the_fingerprint_and_defaults_are_not(compose_config) -> None:
    assert "rule_options" not in build_task(compose_config("rule=abcd")).fingerprint()
    oja = build_task(compose_config("rule=oja")).fingerprint()
    assert oja["rule_options"] == {"eta_map": "sigmoid", "eta_scale": 1.0}
    assert "rule_options" not in build_task(compose_config("rule=oja", "rule.eta_map=identity")).fingerprint()  # the first pass's
    assert build_task(compose_config("rule=abcd_trace")).fingerprint()["rule_options"] == {"trace_tau": "evolved"}
    clock = build_task(compose_config("rule=abcd_clock4")).fingerprint()["plasticity"]
    assert clock["average_steps"] == 4 and clock["update_every"] == 4


def test_quadruped_counts_of_the_new_rules(compose_config) -> None:
    def evolved(*overrides: str) -> int:
        return build_task(compose_config(*overrides, "env=ant_fast", "network=mlp")).counts()["evolved_total"]

    assert evolved("rule=abcd_trace") == 12_288 * 6  # A, B, C, D, η, τ per synapse
    assert evolved("rule=abcd_trace", "rule.trace_tau=20") == 12_288 * 5
    assert evolved("rule=abcd_reward") == 61_440 + 2 * (128 + 64 + 8)  # a gain and a bias per post neuron
    assert evolved("rule=abcd_trace_reward") == 73_728 + 400
    assert evolved("rule=bcm_rates") == evolved("rule=oja") == 12_288
    assert evolved("rule=abcd_clock4") == evolved("rule=abcd_softplus") == 61_440
