"""Nevergrad behind the ask/tell contract: sphere, sign and NaN, scale, seeds, checkpoint and
resume, refusals and warnings, and a real in-process training run (docs/optimizers.md)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from hebbian_es.config import NevergradConfig
from hebbian_es.errors import ConfigError
from hebbian_es.es import OPTIMIZERS, make_optimizer
from hebbian_es.es.nevergrad import (
    DIAGONAL_CMA_WARN_DIM,
    FULL_COVARIANCE_MAX_DIM,
    LARGE_SCALE,
    NO_FINITE_LOSS_YET,
    NevergradES,
    NevergradWarning,
    to_losses,
)

SMALL = ("TwoPointsDE", "TBPSA", "DiagonalCMA", "CMA")  # CMA: full covariance, fine at this size


def sphere(x: torch.Tensor) -> np.ndarray:
    """Fitness (maximised): minus the squared distance to (1, ..., 1)."""
    return -((x.double() - 1.0) ** 2).sum(dim=1).numpy()


def run(opt: Any, state: Any, generations: int, nan_members: tuple[int, ...] = ()) -> Any:
    for _ in range(generations):
        state, pop = opt.ask(state)
        fitness = sphere(pop.params(range(pop.size)))
        fitness[list(nan_members)] = np.nan
        state = opt.tell(state, pop, fitness)
    return state


def roundtrip(data: dict[str, Any]) -> dict[str, Any]:
    """Through torch.save/load, as last.pt is."""
    buf = io.BytesIO()
    torch.save(data, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=False)


def center_fitness(state: Any) -> float:
    return float(sphere(state.center.unsqueeze(0))[0])


# ---- each exposed optimiser improves a sphere ------------------------------------------------------
@pytest.mark.parametrize("name", SMALL)
def test_each_exposed_optimiser_improves_a_sphere(name: str) -> None:
    opt = make_optimizer(NevergradConfig(name=name, popsize=16, sigma=0.3))
    state = opt.init(torch.zeros(20), seed=0)
    start = center_fitness(state)
    state = run(opt, state, 30)
    assert state.generation == 30
    assert center_fitness(state) > 0.5 * start  # 20 -> below 10 within 480 evaluations


def test_ngopt_warns_with_its_pick_and_needs_a_budget() -> None:
    opt = make_optimizer(NevergradConfig(name="NGOpt", popsize=8, budget=8 * 40))
    with pytest.warns(NevergradWarning, match=r"NGOpt picked MetaModel for n=50, .*pin it"):
        state = opt.init(torch.zeros(50), seed=0)  # (at n=10 its MetaModel pick crashes in nevergrad 1.0.12)
    start = center_fitness(state)
    assert center_fitness(run(opt, state, 20)) > start
    with pytest.raises(ConfigError, match=r"optimizer.name=NGOpt needs optimizer.budget"):
        make_optimizer(NevergradConfig(name="NGOpt", popsize=8)).init(torch.zeros(10), seed=0)


# ---- refusals and warnings ------------------------------------------------------------------------
def test_full_cma_is_refused_above_the_threshold_with_the_allowed_names() -> None:
    make_optimizer(NevergradConfig(name="CMA", popsize=8)).init(torch.zeros(FULL_COVARIANCE_MAX_DIM), seed=0)  # at it: fine
    with pytest.raises(ConfigError) as err:
        make_optimizer(NevergradConfig(name="CMA", popsize=8)).init(torch.zeros(61_440), seed=0)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("optimizer.name=CMA")
    assert f"{FULL_COVARIANCE_MAX_DIM:,}" in msg and str(sorted(LARGE_SCALE)) in msg


def test_ngopt_is_refused_where_its_pick_is_not_usable_at_the_size() -> None:
    with pytest.raises(ConfigError, match=r"optimizer.name=NGOpt picks DE at n=61,440, .*allowed at n=61,440: \['DiagonalCMA', 'TBPSA', 'TwoPointsDE'\]"):
        make_optimizer(NevergradConfig(name="NGOpt", popsize=64, budget=64 * 100)).init(torch.zeros(61_440), seed=0)


def test_diagonal_cma_warns_at_large_sizes_only() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", NevergradWarning)
        make_optimizer(NevergradConfig(name="DiagonalCMA", popsize=8)).init(torch.zeros(1000), seed=0)
    with pytest.warns(NevergradWarning, match=r"DiagonalCMA at n=100,001"):
        make_optimizer(NevergradConfig(name="DiagonalCMA", popsize=8)).init(torch.zeros(DIAGONAL_CMA_WARN_DIM + 1), seed=0)


@pytest.mark.parametrize(
    ("cfg", "words"),
    [
        ({"name": "PSO"}, ["optimizer.name='PSO' is not known", "TwoPointsDE", "openai_es"]),
        ({"name": "TBPSA", "popsize": 2}, ["optimizer.popsize=2", ">= 4"]),
        ({"name": "TBPSA", "sigma": 0}, ["optimizer.sigma=0"]),
        ({"name": "TBPSA", "checkpoint_every": 0}, ["optimizer.checkpoint_every=0"]),
        ({"name": "TBPSA", "archive_min_len": 8, "archive_max_len": 8}, ["optimizer.archive_min_len=8"]),
        ({"name": "TBPSA", "center": "mean"}, ["optimizer.center='mean'", "recommendation"]),
        ({"name": "openai_es"}, ["optimizer.name='openai_es'", "optimizer=openai_es"]),  # openai_es with Nevergrad's keys
    ],
)
def test_bad_settings_are_one_line_config_errors(cfg: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        make_optimizer(NevergradConfig(**cfg))
    assert "\n" not in str(err.value)
    for w in words:
        assert w in str(err.value)


def test_every_exposed_name_is_registered_by_name() -> None:
    assert {"TwoPointsDE", "TBPSA", "DiagonalCMA", "CMA", "NGOpt"} <= set(OPTIMIZERS)
    with pytest.raises(ConfigError, match="not an exposed Nevergrad optimiser"):
        NevergradES("OnePlusOne")


# ---- sign, NaN, scale, seeds, memory ---------------------------------------------------------------
def test_losses_are_minus_fitness_and_nonfinite_ranks_worst() -> None:
    losses, worst = to_losses(np.array([3.0, np.nan, -2.0, np.inf, -np.inf]), -np.inf)
    assert losses[0] == -3.0 and losses[2] == 2.0 and worst == 2.0
    assert losses[1] == losses[3] == losses[4] > 2.0 and np.isfinite(losses).all()
    losses, worst = to_losses(np.array([1.0, np.nan]), 50.0)  # worse than every loss told before
    assert losses[1] > 50.0 and worst == 50.0
    losses, _ = to_losses(np.array([np.nan, np.nan]), -np.inf)  # nothing finite yet
    assert (losses == NO_FINITE_LOSS_YET).all()


@pytest.mark.parametrize("name", ["TwoPointsDE", "TBPSA"])
def test_nan_members_never_win(name: str) -> None:
    """Members told NaN would be the best of every generation if NaN ranked as a good loss."""
    opt = make_optimizer(NevergradConfig(name=name, popsize=16, sigma=0.3))
    state = opt.init(torch.zeros(10), seed=1)
    for _ in range(15):
        state, pop = opt.ask(state)
        x = pop.params(range(pop.size))
        fitness = sphere(x)
        best = int(np.argmax(fitness))
        fitness[best] = np.nan  # the best member of each generation blows up
        state = opt.tell(state, pop, fitness)
        assert not any(torch.equal(state.center, row) for row in x[[best]])
    assert state.live.worst_finite < NO_FINITE_LOSS_YET


@pytest.mark.parametrize("name", ["TwoPointsDE", "TBPSA", "DiagonalCMA"])
def test_first_candidates_are_the_initial_centre_plus_sigma_noise(name: str) -> None:
    x0 = torch.rand(4000, generator=torch.Generator().manual_seed(0))  # U[0, 1], as coefficient_init
    opt = make_optimizer(NevergradConfig(name=name, popsize=16, sigma=0.05))
    state = opt.init(x0, seed=0)
    assert torch.equal(state.center, x0)  # the centre before any tell is the task's initial centre
    _, pop = opt.ask(state)
    noise = pop.params(range(pop.size)) - x0
    assert noise.mean().abs() < 0.005 and noise.std().item() == pytest.approx(0.05, rel=0.1)


def test_same_seed_same_run_other_seed_other_run() -> None:
    def centre(seed: int) -> torch.Tensor:
        opt = make_optimizer(NevergradConfig(name="TwoPointsDE", popsize=8))
        return run(opt, opt.init(torch.zeros(12), seed=seed), 6).center

    assert torch.equal(centre(3), centre(3))
    assert not torch.equal(centre(3), centre(4))


def test_archive_stays_capped() -> None:
    opt = make_optimizer(NevergradConfig(name="TwoPointsDE", popsize=16, archive_min_len=2, archive_max_len=10))
    state = run(opt, opt.init(torch.zeros(8), seed=0), 10)
    assert len(state.live.opt.archive) <= 10


def test_tbpsa_population_growth_is_capped() -> None:
    opt = make_optimizer(NevergradConfig(name="TBPSA", popsize=8, max_popsize_growth=2))
    state = opt.init(torch.zeros(6), seed=0)
    for _ in range(60):  # pure noise: TBPSA's test keeps asking for a larger population
        state, pop = opt.ask(state)
        state = opt.tell(state, pop, np.random.default_rng(state.generation).normal(size=pop.size))
    assert state.live.opt.popsize.llambda <= 16


def test_asking_twice_gives_the_same_candidates_and_old_states_are_refused() -> None:
    opt = make_optimizer(NevergradConfig(name="TBPSA", popsize=8))
    state = opt.init(torch.zeros(5), seed=0)
    state, pop = opt.ask(state)
    assert opt.ask(state)[1] is pop
    new = opt.tell(state, pop, sphere(pop.params(range(8))))
    with pytest.raises(RuntimeError, match="stale"):
        opt.ask(state)
    assert opt.state_dict(state)["resumable"] is False  # what best.pt keeps: a record
    with pytest.raises(ConfigError, match="not a resumable state"):
        make_optimizer(NevergradConfig(name="TBPSA", popsize=8)).load_state_dict(opt.state_dict(state))
    assert opt.state_dict(new)["resumable"] is True


# ---- checkpoint -> resume ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", SMALL)
@pytest.mark.parametrize("on_disk", [False, True], ids=["inline", "dump-files"])
def test_resume_continues_identically(name: str, on_disk: bool, tmp_path: Path) -> None:
    cfg = {"name": name, "popsize": 8, "sigma": 0.3, "checkpoint_every": 4}

    def make(directory: Path) -> Any:
        opt = make_optimizer(NevergradConfig(**cfg))
        if on_disk:
            opt.use_checkpoint_dir(directory)
        return opt

    whole = make(tmp_path / "whole")
    reference = run(whole, whole.init(torch.zeros(16), seed=5), 13, nan_members=(3,))

    first = make(tmp_path / "killed")
    state = first.init(torch.zeros(16), seed=5)
    for _ in range(10):  # then "killed": only what state_dict wrote survives
        state = run(first, state, 1, nan_members=(3,))
        saved = roundtrip(first.state_dict(state))
    assert saved["dump_generation"] == 8 and len(saved["replay"]) == 2  # resumes by replaying 2 generations
    assert ("dump" in saved) != on_disk
    if on_disk:  # the dump last.pt needs, and no other
        assert sorted(p.name for p in (tmp_path / "killed").glob("*.pt")) == ["nevergrad_g000008.pt"]
    resumed = make(tmp_path / "killed")
    state = resumed.load_state_dict(saved)
    assert state.generation == 10
    state = run(resumed, state, 3, nan_members=(3,))
    assert torch.equal(state.center, reference.center)
    assert resumed.state_dict(state)["replay"][0].tolist() == whole.state_dict(reference)["replay"][0].tolist()


def test_resume_refuses_another_popsize_or_a_missing_dump(tmp_path: Path) -> None:
    opt = make_optimizer(NevergradConfig(name="TBPSA", popsize=8))
    opt.use_checkpoint_dir(tmp_path)
    saved = roundtrip(opt.state_dict(run(opt, opt.init(torch.zeros(4), seed=0), 2)))
    with pytest.raises(ConfigError, match="optimizer.popsize=8, this config has optimizer.popsize=16"):
        make_optimizer(NevergradConfig(name="TBPSA", popsize=16)).load_state_dict(saved)
    with pytest.raises(ConfigError, match="optimizer.name=TBPSA, this config has optimizer.name=TwoPointsDE"):
        make_optimizer(NevergradConfig(name="TwoPointsDE", popsize=8)).load_state_dict(saved)
    (tmp_path / saved["dump_file"]).unlink()
    other = make_optimizer(NevergradConfig(name="TBPSA", popsize=8))
    other.use_checkpoint_dir(tmp_path)
    with pytest.raises(ConfigError, match="missing"):
        other.load_state_dict(saved)


# ---- through the real task function -------------------------------------------------------------------
class _Killed(BaseException):
    """Stands in for SIGKILL between two generations (Lightning re-raises it)."""


NG_RUN = ("optimizer=nevergrad", "optimizer.name=TBPSA", "network=small", "generations=5",
          "optimizer.checkpoint_every=2", "test.after_fit=false", "validation.every=2", "validation.episodes=1")  # fmt: skip


def test_training_run_with_nevergrad_resumes_like_an_uninterrupted_one(tmp_path: Path) -> None:
    from e2e.test_e2e import load_ckpt, rows, train_run, untimed

    from hebbian_es.run.loop import ESRun

    summary = train_run(tmp_path / "whole", *NG_RUN)
    assert summary["generations_done"] == 5 and summary["nonfinite_fitness_total"] == 0
    whole = tmp_path / "whole"
    metrics = rows(whole / "metrics.jsonl")
    assert [r["generation"] for r in metrics] == list(range(5)) and all("sigma" in r for r in metrics)
    last = load_ckpt(whole / "checkpoints" / "last.pt")
    assert last["optimizer"]["kind"] == "nevergrad" and last["optimizer"]["dump_file"] == "nevergrad_g000004.pt"
    assert torch.equal(last["params"], last["optimizer"]["center"])
    assert sorted(p.name for p in (whole / "checkpoints").iterdir()) == ["best.pt", "last.pt", "nevergrad_g000004.pt", "validation"]
    assert sorted(p.name for p in (whole / "checkpoints" / "validation").iterdir()) == ["gen00002.pt", "gen00004.pt"]

    real_step = ESRun.step

    def step(self: ESRun) -> Any:
        if self.generation == 3:
            raise _Killed  # after generation 2: last.pt refers to the dump of generation 2 and replays 1
        return real_step(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ESRun, "step", step)
        with pytest.raises(_Killed):
            train_run(tmp_path / "resumed", *NG_RUN)
    killed = load_ckpt(tmp_path / "resumed" / "checkpoints" / "last.pt")
    assert killed["generation"] == 3 and killed["optimizer"]["dump_generation"] == 2
    train_run(tmp_path / "resumed", *NG_RUN)
    resumed = tmp_path / "resumed"
    assert torch.equal(load_ckpt(resumed / "checkpoints" / "last.pt")["params"], last["params"])
    assert untimed(rows(resumed / "metrics.jsonl")) == untimed(metrics)
    assert rows(resumed / "validation.jsonl") == rows(whole / "validation.jsonl")


def test_training_refuses_full_cma_on_the_default_network(tmp_path: Path) -> None:
    from e2e.test_e2e import train_run

    with pytest.raises(ConfigError, match=r"optimizer.name=CMA: full-covariance CMA .* n=44,160"):
        train_run(tmp_path / "run", "optimizer=nevergrad", "optimizer.name=CMA")
    assert not (tmp_path / "run").exists()  # refused before anything was written
