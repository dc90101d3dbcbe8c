"""The seed-based Gaussian ES base (evosax's shape): OpenAI-ES, PGPE and SNES are its subclasses.

The base owns what every seed-based ES shares:
- the noise: generation g's noise seeds derive from (seed, g), member i is
  centre + sign_i * sigma * eps_k(i) with eps_k regenerated from its seed wherever it is needed
  (`SeededPopulation`), so workers receive seeds, never perturbation vectors, and a state holds
  no RNG;
- the explicit, immutable state (`ESState`: centre, lr, sigma, generation, seed, the step's state);
- the ask/tell contract (base.Optimizer), the lr/sigma decays and floors, weight decay;
- the checkpoint state: a dict of plain tensors, numbers and strings (loads with
  torch.load(weights_only=True)); a checkpoint of another algorithm or step is refused.

An algorithm supplies two things: its initial sigma (a number, or one per parameter) and
`estimate`: from the shaped fitness, the centre's gradient estimate and the new sigma.  The
fitness shaping (es/shaping.py) and the update step (es/steps.py) are components chosen by name
in the config (`optimizer.shaping`, `optimizer.step`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, ClassVar, Mapping

import numpy as np
import torch

from hebbian_es.errors import ConfigError
from hebbian_es.es.base import SeededPopulation
from hebbian_es.es.shaping import Shaping
from hebbian_es.es.steps import Gradient, Step, make_step

NOISE_TAG = 0xE5  # the noise seeds' SeedSequence tag (every seed-based ES draws the same noise)


@dataclass(frozen=True)
class ESState:
    center: torch.Tensor  # (D,) float32
    lr: float
    sigma: float | torch.Tensor  # one sigma (OpenAI-ES), or (D,) float32, one per parameter (PGPE, SNES)
    generation: int
    seed: int
    step: Mapping[str, torch.Tensor] = field(default_factory=dict)  # the update step's state (es/steps.py)


@dataclass(frozen=True)
class NoiseSums:
    """sum_k a_k eps_k and sum_k b_k eps_k^2 over a population's noise vectors (float64)."""

    linear: torch.Tensor
    square: torch.Tensor | None


class SeededES:
    """Base of the seed-based ES.  Subclasses are frozen dataclasses with the settings of their
    schema (popsize, sigma, lr, lr_decay, lr_floor, sigma_decay, sigma_floor, standardize, ties,
    shaping, step, momentum, beta1, beta2, eps, max_speed, weight_decay) and define KIND,
    `initial_sigma` and `estimate`."""

    KIND: ClassVar[str]
    ADAPTS_SIGMA: ClassVar[bool] = False  # sigma per parameter, adapted by the algorithm
    antithetic: bool

    # ---- settings --------------------------------------------------------------------------
    def check(self) -> None:
        """The settings every seed-based ES shares; one ConfigError line naming the key."""
        if self.antithetic and (self.popsize < 2 or self.popsize % 2):
            raise ConfigError(f"optimizer.popsize={self.popsize}: antithetic sampling needs an even population >= 2")
        if self.popsize < 2:
            raise ConfigError(f"optimizer.popsize={self.popsize}: must be >= 2")
        if not self.sigma > 0:
            raise ConfigError(f"optimizer.sigma={self.sigma}: must be > 0")
        if self.lr is not None and not self.lr > 0:
            raise ConfigError(f"optimizer.lr={self.lr}: must be > 0")
        for key in ("lr_decay", "sigma_decay"):
            if not 0 < getattr(self, key) <= 1:
                raise ConfigError(f"optimizer.{key}={getattr(self, key)}: must be in (0, 1]")
        for key in ("lr_floor", "sigma_floor", "weight_decay"):
            if not getattr(self, key) >= 0:
                raise ConfigError(f"optimizer.{key}={getattr(self, key)}: must be >= 0")
        self.shaper  # noqa: B018  (builds the components: an unknown name is refused here)
        self.updater  # noqa: B018

    @cached_property
    def shaper(self) -> Shaping:
        return Shaping(self.shaping, self.ties, self.standardize)

    @cached_property
    def updater(self) -> Step:
        return make_step(self.step, momentum=self.momentum, beta1=self.beta1, beta2=self.beta2, eps=self.eps, max_speed=self.max_speed)

    # ---- what an algorithm defines ---------------------------------------------------------
    def initial_sigma(self, dim: int) -> float | torch.Tensor:
        return float(self.sigma)

    def initial_lr(self, dim: int) -> float:
        assert self.lr is not None
        return float(self.lr)

    def estimate(self, state: ESState, population: SeededPopulation, shaped: np.ndarray) -> tuple[Gradient, float | torch.Tensor]:
        """The centre's gradient estimate and the new sigma (before the decay), from the shaped fitness."""
        raise NotImplementedError

    # ---- the noise -------------------------------------------------------------------------
    def noise_seeds(self, state: ESState) -> np.ndarray:
        n = self.popsize // 2 if self.antithetic else self.popsize
        return np.random.SeedSequence([state.seed, state.generation, NOISE_TAG]).generate_state(n, dtype=np.uint32)

    @staticmethod
    def noise_sums(population: SeededPopulation, linear: np.ndarray, square: np.ndarray | None = None) -> NoiseSums:
        """sum_k linear[k] eps_k (and sum_k square[k] eps_k^2), each eps_k regenerated once; zero weights skipped."""
        lin = torch.zeros(population.center.numel(), dtype=torch.float64)
        sq = None if square is None else torch.zeros_like(lin)
        for k in range(len(population.noise_seeds)):
            w = float(linear[k])
            s = 0.0 if square is None else float(square[k])
            if w == 0.0 and s == 0.0:
                continue
            eps = population.noise(k)
            if w != 0.0:
                lin.add_(eps, alpha=w)
            if s != 0.0:
                e = eps.to(torch.float64)
                sq.add_(e * e, alpha=s)  # type: ignore[union-attr]
        return NoiseSums(lin, sq)

    def per_noise(self, population: SeededPopulation, shaped: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(sum of sign * F, sum of F) over the members of each noise vector."""
        signed = np.zeros(len(population.noise_seeds))
        total = np.zeros(len(population.noise_seeds))
        for i, f in enumerate(shaped):
            k, sign = population.member_noise(i)
            signed[k] += sign * f
            total[k] += f
        return signed, total

    # ---- ask / tell ------------------------------------------------------------------------
    def init(self, x0: torch.Tensor, seed: int) -> ESState:
        if int(seed) < 0:
            raise ConfigError(f"seed={seed}: must be a non-negative integer")
        center = x0.detach().to(torch.float32).clone()
        dim = center.numel()
        return ESState(center, self.initial_lr(dim), self.initial_sigma(dim), 0, int(seed), self.updater.init(center))

    def ask(self, state: ESState) -> tuple[ESState, SeededPopulation]:
        return state, SeededPopulation(state.center, state.sigma, self.noise_seeds(state), self.antithetic)

    def decayed(self, sigma: float | torch.Tensor) -> float | torch.Tensor:
        """sigma *= sigma_decay while above sigma_floor; a per-parameter sigma also never falls below the floor."""
        if not isinstance(sigma, torch.Tensor):
            return sigma * self.sigma_decay if sigma > self.sigma_floor else sigma
        s = sigma.to(torch.float64)
        if self.sigma_decay != 1.0:
            s = torch.where(s > self.sigma_floor, s * self.sigma_decay, s)
        return s.clamp_min(self.sigma_floor).to(torch.float32)

    def tell(self, state: ESState, population: SeededPopulation, fitness: np.ndarray) -> ESState:
        fitness = np.asarray(fitness, dtype=np.float64)
        if fitness.shape != (population.size,):
            raise ValueError(f"fitness has shape {fitness.shape}, expected ({population.size},)")
        lr = state.lr * self.lr_decay if state.lr > self.lr_floor else state.lr
        if not np.isfinite(fitness).any():  # no member is comparable to another: nothing to learn from
            return replace(state, lr=lr, sigma=self.decayed(state.sigma), generation=state.generation + 1)
        grad, sigma = self.estimate(state, population, self.shaper(fitness))
        if self.weight_decay > 0:
            grad = grad.minus(self.weight_decay * state.center.to(torch.float64))
        center, step_state = self.updater.apply(state.center, grad, state.lr, state.step)
        return ESState(center, lr, self.decayed(sigma), state.generation + 1, state.seed, step_state)

    def center(self, state: ESState) -> torch.Tensor:
        return state.center

    def recenter(self, state: ESState, center: torch.Tensor, sources: torch.Tensor) -> ESState:
        """Continue from another centre, of another dimension (a merge of rules: run/merging.py).
        sources[i]: the old parameter new parameter i comes from (a shared rule's coefficient: its
        representative synapse's).  Every per-parameter quantity of the state follows its parameter
        (a per-parameter sigma, the step's momentum and Adam moments); lr, a single sigma, the step's
        counters, generation and seed carry over, so the next noise comes from the same seeds."""
        dim = state.center.numel()
        sources = sources.to(torch.int64)

        def follow(x: Any) -> Any:
            return x[sources].clone() if isinstance(x, torch.Tensor) and x.dim() == 1 and x.numel() == dim else x

        step = {k: follow(v) for k, v in state.step.items()}
        return ESState(center.detach().to(torch.float32).clone(), state.lr, follow(state.sigma), state.generation, state.seed, step)

    def scalars(self, state: ESState) -> dict[str, float]:
        if not isinstance(state.sigma, torch.Tensor):
            return {"lr": state.lr, "sigma": state.sigma}
        s = state.sigma.to(torch.float64)
        return {"lr": state.lr, "sigma": float(s.mean()), "sigma_min": float(s.min()), "sigma_max": float(s.max())}

    # ---- checkpoint ------------------------------------------------------------------------
    def state_dict(self, state: ESState) -> dict[str, Any]:
        """Plain tensors, numbers and strings only: loads with torch.load(weights_only=True)."""
        return {
            "kind": self.KIND,
            "center": state.center,
            "lr": state.lr,
            "sigma": state.sigma,
            "generation": state.generation,
            "seed": state.seed,
            "step_name": self.updater.name,
            "step": dict(state.step),
        }

    def load_state_dict(self, data: Mapping[str, Any]) -> ESState:
        """A state_dict back as a state; checkpoints written before the steps were components
        (no step entries) are SGD's.  Another algorithm's or step's checkpoint is refused."""
        kind = data.get("kind", "openai_es")
        if kind != self.KIND:
            raise ConfigError(f"the checkpoint's optimiser is {kind!r}, this config has optimizer.name={self.KIND}; use the run's own optimizer")
        step_name = data.get("step_name", "sgd")
        if step_name != self.updater.name:
            raise ConfigError(f"the checkpoint was made with optimizer.step={step_name}, this config has optimizer.step={self.updater.name}; use the run's own optimizer")
        sigma = data["sigma"]
        if self.ADAPTS_SIGMA != isinstance(sigma, torch.Tensor):
            raise ConfigError(f"the checkpoint's sigma does not fit optimizer.name={self.KIND}; use the run's own optimizer")
        center = data["center"]
        step = dict(data.get("step", {})) if "step" in data else self.updater.init(center)
        return ESState(center, float(data["lr"]), sigma if isinstance(sigma, torch.Tensor) else float(sigma),
                       int(data["generation"]), int(data["seed"]), step)  # fmt: skip


def toklu_lr(sigma: float, dim: int) -> float:
    """ClipUp's step size by Toklu et al.'s rule: max_speed = |sigma_0| / 15, lr = max_speed / 2."""
    return sigma * math.sqrt(dim) / 15.0 / 2.0
