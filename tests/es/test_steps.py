"""Update steps (es/steps.py) against their papers' equations, computed by hand; their state
checkpoints (weights_only=True) and resumes bit for bit."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from hebbian_es.errors import ConfigError
from hebbian_es.es.openai_es import OpenAIES
from hebbian_es.es.steps import STEPS, Adam, ClipUp, Gradient, Momentum, SGD, make_step

X0 = torch.tensor([1.0, -2.0, 0.5])
G1 = torch.tensor([0.3, -0.4, 1.2], dtype=torch.float64)
G2 = torch.tensor([-1.0, 0.5, 0.25], dtype=torch.float64)


def _two_steps(step, lr=0.1):
    x1, s1 = step.apply(X0, Gradient(G1), lr, step.init(X0))
    x2, s2 = step.apply(x1, Gradient(G2), lr, s1)
    return x1, x2, s2


def test_sgd_is_x_plus_lr_over_divisor_times_direction():
    x, state = SGD().apply(X0, Gradient(G1, 4.0), 0.2, {})
    assert state == {} and x.dtype == torch.float32
    assert torch.equal(x, (X0.double() + (0.2 / 4.0) * G1).float())


def test_momentum_by_hand():
    x1, x2, state = _two_steps(Momentum(0.9))
    v1 = G1  # torch starts the buffer at the first gradient
    v2 = 0.9 * v1 + G2
    torch.testing.assert_close(x1.double(), X0.double() + 0.1 * v1, rtol=0, atol=1e-7)
    torch.testing.assert_close(x2.double(), x1.double() + 0.1 * v2, rtol=0, atol=1e-7)
    # torch keeps the buffer of the loss's gradient (maximize=True negates g): -v
    torch.testing.assert_close(state["momentum_buffer"], -v2, rtol=0, atol=1e-15)


def test_adam_by_hand():
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, 0.1
    x1, x2, state = _two_steps(Adam(b1, b2, eps), lr)
    m, v, x = torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64), X0.double()
    for t, (g, got) in enumerate(((G1, x1), (G2, x2)), start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        x = x + lr * m_hat / (v_hat.sqrt() + eps)  # ascent: the fitness gradient is followed
        torch.testing.assert_close(got.double(), x, rtol=0, atol=1e-6)
        x = got.double()  # the centre is kept in float32
    torch.testing.assert_close(state["exp_avg"], -m, rtol=1e-12, atol=0)  # of the loss's gradient -g
    torch.testing.assert_close(state["exp_avg_sq"], v, rtol=1e-12, atol=0)
    assert float(state["step"]) == 2.0


def test_clipup_by_hand_unclipped_then_clipped():
    step = ClipUp(momentum=0.5, max_speed=0.3)
    # v1 = 0.5 * 0 + 0.1 * g1/|g1|: norm 0.1 <= 0.3, not clipped
    x1, s1 = step.apply(X0, Gradient(G1), 0.1, step.init(X0))
    v1 = 0.1 * G1 / G1.norm()
    torch.testing.assert_close(s1["velocity"], v1, rtol=0, atol=1e-15)
    torch.testing.assert_close(x1, (X0.double() + v1).float())
    # a large step size: v' = 0.5 v1 + 1.0 g2/|g2| has norm > 0.3, so v = 0.3 v'/|v'|
    x2, s2 = step.apply(x1, Gradient(G2), 1.0, s1)
    v_prime = 0.5 * v1 + G2 / G2.norm()
    assert float(v_prime.norm()) > 0.3
    torch.testing.assert_close(s2["velocity"], 0.3 * v_prime / v_prime.norm(), rtol=0, atol=1e-15)
    assert float(s2["velocity"].norm()) == pytest.approx(0.3)
    torch.testing.assert_close(x2, (x1.double() + s2["velocity"]).float())


def test_clipup_max_speed_defaults_to_twice_lr_and_a_zero_gradient_only_coasts():
    step = ClipUp(momentum=0.9)  # max_speed None: 2 x lr
    state = {"velocity": torch.tensor([10.0, 0.0, 0.0], dtype=torch.float64)}
    x, s = step.apply(X0, Gradient(torch.zeros(3, dtype=torch.float64)), 0.1, state)
    torch.testing.assert_close(s["velocity"], torch.tensor([0.2, 0.0, 0.0], dtype=torch.float64))  # 9.0 clipped to 0.2
    assert torch.isfinite(x).all()


def test_the_direction_scale_only_matters_to_sgd_momentum_and_adam_not_clipup():
    a, _ = ClipUp().apply(X0, Gradient(G1), 0.1, ClipUp().init(X0))
    b, _ = ClipUp().apply(X0, Gradient(G1 * 1000.0, 1000.0 / 3.0), 0.1, ClipUp().init(X0))
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name", STEPS)
def test_step_state_checkpoints_with_weights_only_and_resumes_bit_for_bit(name):
    es = OpenAIES(popsize=8, sigma=0.3, lr=0.05, step=name)

    def run(state, n):
        for _ in range(n):
            state, pop = es.ask(state)
            x = pop.params(range(pop.size)).double()
            state = es.tell(state, pop, -((x - 3.0) ** 2).sum(dim=1).numpy())
        return state

    straight = run(es.init(torch.zeros(6), seed=11), 6)
    half = run(es.init(torch.zeros(6), seed=11), 3)
    buf = io.BytesIO()
    torch.save(es.state_dict(half), buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    assert saved["step_name"] == name
    resumed = run(OpenAIES(popsize=8, sigma=0.3, lr=0.05, step=name).load_state_dict(saved), 3)
    assert torch.equal(resumed.center, straight.center) and resumed.lr == straight.lr and resumed.sigma == straight.sigma
    assert resumed.step.keys() == straight.step.keys()
    for key in straight.step:
        assert torch.equal(resumed.step[key], straight.step[key]), key
    assert not torch.equal(half.center, straight.center)


@pytest.mark.parametrize("kwargs, line", [
    ({"step": "rmsprop"}, "optimizer.step='rmsprop' is not known; allowed: ['sgd', 'momentum', 'adam', 'clipup']"),
    ({"step": "momentum", "momentum": 1.0}, "optimizer.momentum=1.0: must be in [0, 1)"),
    ({"step": "clipup", "momentum": -0.1}, "optimizer.momentum=-0.1: must be in [0, 1)"),
    ({"step": "adam", "beta1": 1.0}, "optimizer.beta1=1.0: must be in [0, 1)"),
    ({"step": "adam", "beta2": 1.5}, "optimizer.beta2=1.5: must be in [0, 1)"),
    ({"step": "adam", "eps": 0.0}, "optimizer.eps=0.0: must be > 0"),
    ({"step": "clipup", "max_speed": 0.0}, "optimizer.max_speed=0.0: must be > 0 (or null: 2 x lr)"),
    ({"lr": 0.0}, "optimizer.lr=0.0: must be > 0"),
    ({"lr": -1.0, "step": "adam"}, "optimizer.lr=-1.0: must be > 0"),
    ({"sigma": 0.0}, "optimizer.sigma=0.0: must be > 0"),
    ({"weight_decay": -0.1}, "optimizer.weight_decay=-0.1: must be >= 0"),
])  # fmt: skip
def test_bad_step_settings_are_one_line_naming_the_key(kwargs, line):
    with pytest.raises(ConfigError) as info:
        OpenAIES(popsize=4, **kwargs)
    assert str(info.value) == line


def test_betas_of_an_unused_step_are_not_checked():
    OpenAIES(popsize=4, step="sgd", beta1=5.0, momentum=2.0)  # only the chosen step's keys matter


def test_make_step_names():
    kw = dict(momentum=0.9, beta1=0.9, beta2=0.999, eps=1e-8, max_speed=None)
    assert [make_step(n, **kw).name for n in STEPS] == list(STEPS)


def test_weight_decay_pulls_the_centre_towards_zero():
    es = OpenAIES(popsize=4, sigma=0.1, lr=0.5, weight_decay=0.2)
    state, pop = es.ask(es.init(torch.full((3,), 2.0), seed=0))
    plain = OpenAIES(popsize=4, sigma=0.1, lr=0.5)
    fitness = np.array([1.0, 2.0, 3.0, 4.0])
    got = es.tell(state, pop, fitness).center.double()
    without = plain.tell(state, pop, fitness).center.double()
    torch.testing.assert_close(got, without - 0.5 * 0.2 * torch.full((3,), 2.0, dtype=torch.float64), rtol=0, atol=1e-6)


def test_the_default_step_is_the_papers_and_bit_identical_to_the_formula():
    es = OpenAIES(popsize=4, sigma=0.5, lr=0.3)
    assert es.step == "sgd" and es.shaping == "centered_ranks" and es.standardize
    state, pop = es.ask(es.init(X0, seed=7))
    fitness = np.array([1.0, 3.0, 2.0, 0.5])
    ranks = np.array([1 / 3 - 0.5, 0.5, 2 / 3 - 0.5, -0.5])
    shaped = (ranks - ranks.mean()) / ranks.std()
    grad = torch.zeros(3, dtype=torch.float64)
    for k in range(2):  # the loop OpenAI-ES always ran: one weight per noise vector, float64
        grad.add_(pop.noise(k), alpha=float(shaped[2 * k] - shaped[2 * k + 1]))
    expected = (X0.double() + 0.3 / (4 * 0.5) * grad).float()
    assert torch.equal(es.tell(state, pop, fitness).center, expected)
    assert math.isclose(es.tell(state, pop, fitness).lr, 0.3 * 0.995)
