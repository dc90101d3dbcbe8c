"""OpenAI-ES: the SPEC's update on a hand-computed case, decays, validation, resume, a sphere."""

from __future__ import annotations

import io
import math
import time

import numpy as np
import pytest
import torch

from hebbian_es.errors import ConfigError
from hebbian_es.config import OpenAIESConfig
from hebbian_es.es import make_optimizer
from hebbian_es.es.base import SeededPopulation, centered_ranks, noise_from_seed
from hebbian_es.es.openai_es import OpenAIES


def test_update_equals_spec_formula_by_hand():
    es = OpenAIES(popsize=4, sigma=0.5, lr=0.3)
    x0 = torch.tensor([1.0, -2.0, 0.5])
    state = es.init(x0, seed=7)
    state, pop = es.ask(state)
    assert pop.size == 4 and len(pop.noise_seeds) == 2
    eps = [noise_from_seed(int(s), 3).double() for s in pop.noise_seeds]
    member_eps = [eps[0], -eps[0], eps[1], -eps[1]]  # antithetic pairs (+e_k, -e_k)

    fitness = np.array([1.0, 3.0, 2.0, 0.5])
    # sorted ascending: 0.5 (member 3), 1.0 (0), 2.0 (2), 3.0 (1) -> ranks 0..3 -> /3 - 0.5
    ranks = [1 / 3 - 0.5, 3 / 3 - 0.5, 2 / 3 - 0.5, 0 / 3 - 0.5]
    mean = sum(ranks) / 4
    std = math.sqrt(sum((r - mean) ** 2 for r in ranks) / 4)
    shaped = [(r - mean) / std for r in ranks]
    assert mean == pytest.approx(0.0) and std == pytest.approx(math.sqrt(5 / 36))

    step = sum(f * e for f, e in zip(shaped, member_eps))
    expected = x0.double() + 0.3 / (4 * 0.5) * step

    new = es.tell(state, pop, fitness)
    torch.testing.assert_close(new.center.double(), expected, rtol=1e-6, atol=1e-6)
    assert new.generation == 1
    assert new.lr == pytest.approx(0.3 * 0.995) and new.sigma == pytest.approx(0.5 * 0.999)
    assert not torch.equal(state.center, new.center)  # the old state is left as it was
    assert torch.equal(state.center, x0)


def test_centered_ranks_span_minus_half_to_half():
    r = centered_ranks(np.array([10.0, -3.0, 4.0, 7.0, 0.0]))
    np.testing.assert_allclose(r, [0.5, -0.5, 0.0, 0.25, -0.25])


def test_without_standardisation_the_update_uses_centred_ranks():
    es = OpenAIES(popsize=4, sigma=0.1, lr=0.2, standardize=False)
    state, pop = es.ask(es.init(torch.zeros(2), seed=3))
    eps = [noise_from_seed(int(s), 2).double() for s in pop.noise_seeds]
    ranks = [0.5, -0.5, 1 / 6, -1 / 6]  # fitness 4, 1, 3, 2
    step = ranks[0] * eps[0] - ranks[1] * eps[0] + ranks[2] * eps[1] - ranks[3] * eps[1]
    new = es.tell(state, pop, np.array([4.0, 1.0, 3.0, 2.0]))
    torch.testing.assert_close(new.center.double(), 0.2 / (4 * 0.1) * step, rtol=1e-6, atol=1e-7)


def test_seeded_population_members_are_antithetic():
    es = OpenAIES(popsize=6, sigma=0.25)
    center = torch.linspace(-1, 1, 9)
    state, pop = es.ask(es.init(center, seed=0))
    assert isinstance(pop, SeededPopulation)
    members = pop.params(range(6))
    assert members.shape == (6, 9)
    for k in range(3):
        eps = noise_from_seed(int(pop.noise_seeds[k]), 9)
        torch.testing.assert_close(members[2 * k], center + 0.25 * eps)
        torch.testing.assert_close(members[2 * k + 1], center - 0.25 * eps)
        torch.testing.assert_close((members[2 * k] + members[2 * k + 1]) / 2, center)
    # a subset in any order gives the same rows as the full population
    torch.testing.assert_close(pop.params([5, 0, 3]), members[[5, 0, 3]])
    assert len(set(int(s) for s in pop.noise_seeds)) == 3


def test_noise_differs_between_generations_and_seeds():
    es = OpenAIES(popsize=4)
    s0 = es.init(torch.zeros(5), seed=1)
    _, p0 = es.ask(s0)
    s1 = es.tell(s0, p0, np.array([1.0, 2.0, 3.0, 4.0]))
    _, p1 = es.ask(s1)
    _, q0 = es.ask(es.init(torch.zeros(5), seed=2))
    assert set(p0.noise_seeds) != set(p1.noise_seeds)
    assert set(p0.noise_seeds) != set(q0.noise_seeds)
    _, again = es.ask(es.init(torch.zeros(5), seed=1))
    assert list(again.noise_seeds) == list(p0.noise_seeds)


def test_lr_and_sigma_decay_until_their_floors():
    es = OpenAIES(popsize=4, lr=0.2, sigma=0.1)
    state = es.init(torch.zeros(3), seed=0)
    for _ in range(3):
        state, pop = es.ask(state)
        state = es.tell(state, pop, np.arange(4.0))
    assert state.lr == pytest.approx(0.2 * 0.995**3) and state.sigma == pytest.approx(0.1 * 0.999**3)
    assert es.scalars(state) == {"lr": state.lr, "sigma": state.sigma}

    fast = OpenAIES(popsize=4, lr=0.005, lr_decay=0.5, lr_floor=0.001, sigma=0.05, sigma_decay=0.5, sigma_floor=0.01)
    state = fast.init(torch.zeros(3), seed=0)
    lrs, sigmas = [], []
    for _ in range(5):
        state, pop = fast.ask(state)
        state = fast.tell(state, pop, np.arange(4.0))
        lrs.append(state.lr)
        sigmas.append(state.sigma)
    # decay while the value is above the floor: 0.005 -> 0.0025 -> 0.00125 -> 0.000625, then it stays
    assert lrs == pytest.approx([0.0025, 0.00125, 0.000625, 0.000625, 0.000625])
    assert sigmas == pytest.approx([0.025, 0.0125, 0.00625, 0.00625, 0.00625])


def _tell(es, seed, fitness, dim=4):
    state, pop = es.ask(es.init(torch.zeros(dim), seed=seed))
    return es.tell(state, pop, np.asarray(fitness, dtype=float)).center


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [0, 1, 3])
def test_nonfinite_fitness_ranks_worst(bad, where):
    es = OpenAIES(popsize=4)
    fitness = [1.0, 2.0, 3.0, 4.0]
    fitness[where] = bad
    worst = list(fitness)
    worst[where] = -1e9
    got = _tell(es, 5, fitness)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, _tell(es, 5, worst))
    ranks = centered_ranks(np.array(fitness))
    assert ranks[where] == -0.5


def test_all_nonfinite_still_gives_a_finite_update():
    es = OpenAIES(popsize=4)
    got = _tell(es, 5, [np.nan, np.inf, np.nan, -np.inf])
    assert torch.isfinite(got).all()


def test_fitness_of_the_wrong_length_is_refused():
    es = OpenAIES(popsize=4)
    state, pop = es.ask(es.init(torch.zeros(2), seed=0))
    with pytest.raises(ValueError):
        es.tell(state, pop, np.zeros(3))


@pytest.mark.parametrize(
    "kwargs,key",
    [
        ({"popsize": 7}, "optimizer.popsize"),
        ({"popsize": 0}, "optimizer.popsize"),
        ({"popsize": 1}, "optimizer.popsize"),
        ({"popsize": -2}, "optimizer.popsize"),
        ({"popsize": 1, "antithetic": False}, "optimizer.popsize"),
        ({"sigma": 0.0}, "optimizer.sigma"),
        ({"sigma": -0.1}, "optimizer.sigma"),
        ({"lr": 0.0}, "optimizer.lr"),
        ({"lr_decay": 1.5}, "optimizer.lr_decay"),
        ({"sigma_decay": 0.0}, "optimizer.sigma_decay"),
    ],
)
def test_bad_settings_raise_config_error(kwargs, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        OpenAIES(**kwargs)


def test_odd_popsize_is_fine_without_antithetic_sampling():
    es = OpenAIES(popsize=5, antithetic=False)
    state, pop = es.ask(es.init(torch.zeros(3), seed=0))
    assert pop.size == 5 and len(pop.noise_seeds) == 5
    members = pop.params(range(5))
    for k in range(5):
        torch.testing.assert_close(members[k], 0.1 * noise_from_seed(int(pop.noise_seeds[k]), 3))
    es.tell(state, pop, np.arange(5.0))


def test_make_optimizer():
    es = make_optimizer(OpenAIESConfig(popsize=6, sigma=0.2))
    assert isinstance(es, OpenAIES) and es.popsize == 6 and es.sigma == 0.2
    with pytest.raises(ConfigError, match=r"optimizer\.name") as info:
        make_optimizer(OpenAIESConfig(name="cma_es", popsize=6))
    assert "openai_es" in str(info.value)
    # an unknown key (momentum) is the schema's to refuse, at compose time: tests/config/test_schema.py


def test_defaults_are_the_schemas():
    assert OpenAIES() == make_optimizer(OpenAIESConfig())


def _objective(x: torch.Tensor) -> np.ndarray:
    return -((x.double() - 3.0) ** 2).sum(dim=1).numpy()


def test_state_dict_round_trip_resumes_identically():
    es = OpenAIES(popsize=8, sigma=0.3, lr=0.1)

    def run(state, n):
        for _ in range(n):
            state, pop = es.ask(state)
            state = es.tell(state, pop, _objective(pop.params(range(pop.size))))
        return state

    straight = run(es.init(torch.zeros(6), seed=11), 6)

    half = run(es.init(torch.zeros(6), seed=11), 3)
    buf = io.BytesIO()
    torch.save(es.state_dict(half), buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    resumed = run(OpenAIES(popsize=8, sigma=0.3, lr=0.1).load_state_dict(loaded), 3)

    assert resumed.generation == straight.generation == 6
    assert torch.equal(resumed.center, straight.center)
    assert (resumed.lr, resumed.sigma, resumed.seed) == (straight.lr, straight.sigma, straight.seed)
    assert not torch.equal(half.center, straight.center)


def test_optimises_a_sphere():
    start = time.perf_counter()
    # maximise -|x - 3|^2 in D=10 from x=0 (distance sqrt(90) ~ 9.5); the paper's lr/sigma,
    # with a faster lr decay so the step shrinks below the target tolerance in 300 generations
    es = OpenAIES(popsize=50, sigma=0.1, lr=0.2, lr_decay=0.99)
    state = es.init(torch.zeros(10), seed=0)
    for _ in range(300):
        state, pop = es.ask(state)
        state = es.tell(state, pop, _objective(pop.params(range(pop.size))))
    distance = float((state.center - 3.0).norm())
    assert distance < 0.05, distance
    assert time.perf_counter() - start < 2.0


def test_negative_seed_is_refused_up_front():
    # SeedSequence needs non-negative entries: refuse at init, not at the first ask().
    with pytest.raises(ConfigError, match="seed"):
        OpenAIES(popsize=4).init(torch.zeros(3), seed=-1)
