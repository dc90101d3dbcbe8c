"""PGPE and SNES: one update against the papers' equations on a tiny problem, sigma decay and
floor, seeds not vectors, resume bit for bit, a sphere, bad settings."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from hebbian_es.config import OpenAIESConfig, PGPEConfig, SNESConfig
from hebbian_es.errors import ConfigError
from hebbian_es.es import OPTIMIZERS, make_optimizer
from hebbian_es.es.base import SeededPopulation, noise_from_seed
from hebbian_es.es.openai_es import OpenAIES
from hebbian_es.es.pgpe import PGPE
from hebbian_es.es.shaping import centered_ranks, nes_utilities
from hebbian_es.es.snes import SNES, paper_sigma_lr

X0 = torch.tensor([1.0, -2.0, 0.5])


def test_pgpe_update_is_sehnke_et_al_symmetric_sampling():
    # PGPE with plain SGD on the centre, so the centre's step is lr x the estimate itself
    es = PGPE(popsize=4, sigma=0.5, lr=0.3, step="sgd", sigma_lr=0.2, sigma_max_change=None)
    state, pop = es.ask(es.init(X0, seed=7))
    assert isinstance(pop, SeededPopulation) and pop.antithetic and pop.size == 4
    sigma = torch.full((3,), 0.5, dtype=torch.float64)
    eps = [sigma * noise_from_seed(int(s), 3).double() for s in pop.noise_seeds]  # eps_k ~ N(0, sigma^2)
    members = pop.params(range(4)).double()
    for k in range(2):  # symmetric pairs theta+- = mu +- eps_k
        torch.testing.assert_close(members[2 * k], X0.double() + eps[k], rtol=0, atol=1e-6)
        torch.testing.assert_close(members[2 * k + 1], X0.double() - eps[k], rtol=0, atol=1e-6)

    fitness = np.array([1.0, 3.0, 2.0, 0.5])
    r = centered_ranks(fitness)  # standardize=False by default
    b = r.mean()
    r_t = [(r[0] - r[1]) / 2, (r[2] - r[3]) / 2]  # (r+ - r-) / 2 per direction
    r_s = [(r[0] + r[1]) / 2 - b, (r[2] + r[3]) / 2 - b]  # (r+ + r-) / 2 - b
    grad_mu = sum(t * e for t, e in zip(r_t, eps)) / 2
    grad_sigma = sum(s_ * (e * e - sigma * sigma) / sigma for s_, e in zip(r_s, eps)) / 2

    new = es.tell(state, pop, fitness)
    torch.testing.assert_close(new.center.double(), X0.double() + 0.3 * grad_mu, rtol=0, atol=1e-6)
    torch.testing.assert_close(new.sigma.double(), sigma + 0.2 * grad_sigma, rtol=0, atol=1e-7)
    assert new.generation == 1 and new.lr == 0.3  # no decay by default


def test_pgpe_sigma_change_is_clipped_to_sigma_max_change():
    es = PGPE(popsize=4, sigma=0.5, lr=0.3, step="sgd", sigma_lr=1000.0, sigma_max_change=0.2)
    state, pop = es.ask(es.init(X0, seed=7))
    new = es.tell(state, pop, np.array([1.0, 3.0, 2.0, 0.5]))
    ratio = new.sigma.double() / 0.5
    assert torch.all(((ratio - 0.8).abs() < 1e-6) | ((ratio - 1.2).abs() < 1e-6)), ratio  # every sigma hit a bound


def test_pgpe_default_is_clipup_with_toklu_et_al_lr():
    es = make_optimizer(PGPEConfig())
    assert isinstance(es, PGPE) and es.step == "clipup" and es.lr is None and es.shaping == "centered_ranks"
    state = es.init(torch.zeros(900), seed=0)
    radius = 0.1 * math.sqrt(900)  # |sigma_0|
    assert state.lr == pytest.approx(radius / 15 / 2)  # max_speed = radius / 15, lr = max_speed / 2
    state, pop = es.ask(state)
    new = es.tell(state, pop, np.arange(float(pop.size)))
    # the first ClipUp velocity is lr x the unit gradient: the centre moved by exactly lr
    assert float((new.center - state.center).double().norm()) == pytest.approx(state.lr, rel=1e-5)


def test_snes_update_is_schaul_et_al():
    es = SNES(popsize=4, sigma=0.5)  # lr = eta_mu = 1, eta_sigma the paper's, NES utilities
    state, pop = es.ask(es.init(X0, seed=3))
    assert not pop.antithetic and len(pop.noise_seeds) == 4
    z = [noise_from_seed(int(s), 3).double() for s in pop.noise_seeds]
    fitness = np.array([1.0, 3.0, 2.0, 0.5])
    u = nes_utilities(fitness)
    sigma = torch.full((3,), 0.5, dtype=torch.float64)
    grad_mu = sum(ui * zi for ui, zi in zip(u, z))
    grad_sigma = sum(ui * (zi * zi - 1) for ui, zi in zip(u, z))
    eta_sigma = (3 + math.log(3)) / (5 * math.sqrt(3))
    assert paper_sigma_lr(3) == pytest.approx(eta_sigma)

    new = es.tell(state, pop, fitness)
    torch.testing.assert_close(new.center.double(), X0.double() + 1.0 * sigma * grad_mu, rtol=0, atol=1e-6)
    torch.testing.assert_close(new.sigma.double(), sigma * torch.exp(eta_sigma / 2 * grad_sigma), rtol=1e-6, atol=0)


def test_snes_with_mirrored_sampling_uses_each_noise_vector_twice():
    es = SNES(popsize=4, sigma=0.5, antithetic=True, sigma_lr=0.1)
    state, pop = es.ask(es.init(X0, seed=3))
    assert len(pop.noise_seeds) == 2
    z = [noise_from_seed(int(s), 3).double() for s in pop.noise_seeds]
    zs = [z[0], -z[0], z[1], -z[1]]
    fitness = np.array([1.0, 3.0, 2.0, 0.5])
    u = nes_utilities(fitness)
    sigma = torch.full((3,), 0.5, dtype=torch.float64)
    new = es.tell(state, pop, fitness)
    torch.testing.assert_close(new.center.double(), X0.double() + sigma * sum(ui * zi for ui, zi in zip(u, zs)), rtol=0, atol=1e-6)
    torch.testing.assert_close(new.sigma.double(), sigma * torch.exp(0.05 * sum(ui * (zi * zi - 1) for ui, zi in zip(u, zs))), rtol=1e-6, atol=0)


@pytest.mark.parametrize("cls", [PGPE, SNES])
def test_sigma_decay_and_floor_apply_after_adaptation(cls):
    kw = {"step": "sgd", "lr": 0.1} if cls is PGPE else {}
    es = cls(popsize=4, sigma=0.5, sigma_decay=0.5, sigma_floor=0.2, **kw)
    state = es.init(torch.zeros(5), seed=0)
    for _ in range(4):
        state, pop = es.ask(state)
        adapted = cls(popsize=4, sigma=0.5, **kw).estimate(state, pop, es.shaper(np.arange(4.0)))[1]
        state = es.tell(state, pop, np.arange(4.0))
        expected = torch.where(adapted.double() > 0.2, adapted.double() * 0.5, adapted.double()).clamp_min(0.2)
        torch.testing.assert_close(state.sigma.double(), expected, rtol=1e-6, atol=0)
    assert bool((state.sigma >= 0.2).all())


@pytest.mark.parametrize("name", ["pgpe", "snes"])
def test_lr_decays_until_its_floor(name):
    es = OPTIMIZERS[name](popsize=4, lr=0.4, lr_decay=0.5, lr_floor=0.1, step="sgd")
    state = es.init(torch.zeros(3), seed=0)
    lrs = []
    for _ in range(4):
        state, pop = es.ask(state)
        state = es.tell(state, pop, np.arange(4.0))
        lrs.append(state.lr)
    assert lrs == [0.2, 0.1, 0.1, 0.1]


@pytest.mark.parametrize("name", ["openai_es", "pgpe", "snes"])
def test_members_are_the_same_whichever_subset_a_worker_asks_for(name):
    es = OPTIMIZERS[name](popsize=6)
    state = es.init(torch.linspace(-1, 1, 7), seed=2)
    state, pop = es.ask(state)
    state = es.tell(state, pop, np.arange(6.0))  # a sigma per parameter, adapted
    state, pop = es.ask(state)
    everyone = pop.params(range(6))
    assert torch.equal(pop.params([5, 0, 3]), everyone[[5, 0, 3]])
    assert torch.equal(pop.params([4]), everyone[[4]])


@pytest.mark.parametrize("name", ["pgpe", "snes"])
def test_state_dict_loads_with_weights_only_and_resumes_bit_for_bit(name):
    make = lambda: OPTIMIZERS[name](popsize=8, sigma=0.3)  # noqa: E731

    def run(es, state, n):
        for _ in range(n):
            state, pop = es.ask(state)
            x = pop.params(range(pop.size)).double()
            state = es.tell(state, pop, -((x - 3.0) ** 2).sum(dim=1).numpy())
        return state

    es = make()
    straight = run(es, es.init(torch.zeros(6), seed=4), 6)
    half = run(es, es.init(torch.zeros(6), seed=4), 3)
    buf = io.BytesIO()
    torch.save(es.state_dict(half), buf)
    buf.seek(0)
    other = make()
    resumed = run(other, other.load_state_dict(torch.load(buf, weights_only=True)), 3)
    assert torch.equal(resumed.center, straight.center) and torch.equal(resumed.sigma, straight.sigma)
    assert resumed.lr == straight.lr and resumed.generation == 6
    assert all(torch.equal(resumed.step[k], straight.step[k]) for k in straight.step)


def test_a_checkpoint_of_another_algorithm_or_step_is_refused():
    saved = OpenAIES(popsize=4).state_dict(OpenAIES(popsize=4).init(X0, seed=0))
    with pytest.raises(ConfigError, match=r"the checkpoint's optimiser is 'openai_es', this config has optimizer.name=pgpe"):
        PGPE(popsize=4).load_state_dict(saved)
    with pytest.raises(ConfigError, match=r"optimizer.step=sgd, this config has optimizer.step=adam"):
        OpenAIES(popsize=4, step="adam").load_state_dict(saved)
    # a checkpoint written before the steps were components has no step entries: SGD's
    legacy = {k: saved[k] for k in ("kind", "center", "lr", "sigma", "generation", "seed")}
    state = OpenAIES(popsize=4).load_state_dict(legacy)
    assert torch.equal(state.center, X0) and state.step == {}


@pytest.mark.parametrize("es", [
    PGPE(popsize=20, sigma=1.0, lr=0.2, step="adam"),
    PGPE(popsize=20, sigma=1.0, lr=0.5, lr_decay=0.98),
    SNES(popsize=12, sigma=1.0),
    SNES(popsize=12, sigma=1.0, antithetic=True, shaping="centered_ranks", standardize=True, lr=0.5),
], ids=["pgpe_adam", "pgpe_clipup", "snes", "snes_mirrored_ranks"])  # fmt: skip
def test_optimises_a_sphere(es):
    state = es.init(torch.zeros(10), seed=0)  # maximise -|x - 3|^2 from 0: distance sqrt(90) ~ 9.5
    for _ in range(300):
        state, pop = es.ask(state)
        x = pop.params(range(pop.size)).double()
        state = es.tell(state, pop, -((x - 3.0) ** 2).sum(dim=1).numpy())
    assert float((state.center - 3.0).norm()) < 0.05


@pytest.mark.parametrize("cls, kwargs, line", [
    (PGPE, {"popsize": 5}, "optimizer.popsize=5: antithetic sampling needs an even population >= 2"),
    (PGPE, {"sigma": 0.0}, "optimizer.sigma=0.0: must be > 0"),
    (PGPE, {"lr": -0.1}, "optimizer.lr=-0.1: must be > 0"),
    (PGPE, {"step": "adam"}, "optimizer.lr=null: only step=clipup derives lr (Toklu et al.'s rule); set optimizer.lr for step=adam"),
    (PGPE, {"step": "nesterov"}, "optimizer.step='nesterov' is not known; allowed: ['sgd', 'momentum', 'adam', 'clipup']"),
    (PGPE, {"momentum": 1.0}, "optimizer.momentum=1.0: must be in [0, 1)"),
    (PGPE, {"sigma_lr": 0.0}, "optimizer.sigma_lr=0.0: must be > 0"),
    (PGPE, {"sigma_max_change": 1.0}, "optimizer.sigma_max_change=1.0: must be in (0, 1) (or null: no limit)"),
    (PGPE, {"sigma_floor": -1.0}, "optimizer.sigma_floor=-1.0: must be >= 0"),
    (SNES, {"lr": 0.0}, "optimizer.lr=0.0: must be > 0"),
    (SNES, {"sigma": -1.0}, "optimizer.sigma=-1.0: must be > 0"),
    (SNES, {"sigma_lr": -0.5}, "optimizer.sigma_lr=-0.5: must be > 0 (or null: the paper's (3 + ln d) / (5 sqrt(d)))"),
    (SNES, {"shaping": "rank"}, "optimizer.shaping='rank' is not known; allowed: ['centered_ranks', 'nes', 'raw', 'z_score']"),
    (SNES, {"step": "adam", "beta2": 1.0}, "optimizer.beta2=1.0: must be in [0, 1)"),
    (SNES, {"sigma_decay": 0.0}, "optimizer.sigma_decay=0.0: must be in (0, 1]"),
])  # fmt: skip
def test_bad_settings_are_one_line_naming_the_key(cls, kwargs, line):
    with pytest.raises(ConfigError) as info:
        cls(**kwargs)
    assert str(info.value) == line


def test_defaults_are_the_schemas():
    assert PGPE() == make_optimizer(PGPEConfig()) and SNES() == make_optimizer(SNESConfig())
    with pytest.raises(ConfigError, match=r"optimizer.name='pgpe' takes the settings of optimizer=pgpe"):
        make_optimizer(SNESConfig(name="pgpe"))


def test_scalars_log_the_spread_of_a_per_parameter_sigma():
    es = SNES(popsize=4)
    state, pop = es.ask(es.init(torch.zeros(5), seed=0))
    state = es.tell(state, pop, np.arange(4.0))
    s = state.sigma.double()
    assert es.scalars(state) == {"lr": 1.0, "sigma": float(s.mean()), "sigma_min": float(s.min()), "sigma_max": float(s.max())}


@pytest.mark.parametrize("name", ["pgpe", "snes"])
def test_nonfinite_fitness_ranks_worst_and_all_nonfinite_changes_nothing_but_the_counters(name):
    es = OPTIMIZERS[name](popsize=4)
    state, pop = es.ask(es.init(X0, seed=5))
    a = es.tell(state, pop, np.array([1.0, np.nan, 3.0, 4.0]))
    b = es.tell(state, pop, np.array([1.0, -1e9, 3.0, 4.0]))
    assert torch.equal(a.center, b.center) and torch.equal(a.sigma, b.sigma)
    none = es.tell(state, pop, np.array([np.nan, np.inf, np.nan, -np.inf]))
    assert torch.equal(none.center, state.center) and torch.equal(none.sigma, state.sigma) and none.generation == 1


def test_every_optimizer_name_has_a_schema_and_an_implementation():
    from hebbian_es.config import NEVERGRAD_NAMES, OPTIMIZER_CONFIGS
    from hebbian_es.es.nevergrad import EXPOSED

    assert set(OPTIMIZERS) == set(OPTIMIZER_CONFIGS) and set(EXPOSED) == set(NEVERGRAD_NAMES)
    assert [OPTIMIZER_CONFIGS[n] for n in ("openai_es", "pgpe", "snes")] == [OpenAIESConfig, PGPEConfig, SNESConfig]
