"""OpenAI-ES (Salimans et al. 2017) with the settings of Najarro & Risi (2020).

Antithetic sampling, centred ranks then standardised, plain gradient ascent
h <- h + α/(n·σ) Σ F̂_i ε_i, and multiplicative α/σ decays that stop at a floor.
Noise seeds for generation g derive from (seed, g), so a state holds no RNG:
resuming from a checkpoint replays exactly the same noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hebbian_es.config import OpenAIESConfig
from hebbian_es.errors import ConfigError
from hebbian_es.es.base import TIES, SeededPopulation, centered_ranks


@dataclass(frozen=True)
class ESState:
    center: torch.Tensor
    lr: float
    sigma: float
    generation: int
    seed: int


@dataclass(frozen=True)
class OpenAIES:
    """Defaults: the schema's (`hebbian_es.config.OpenAIESConfig`), documented there."""

    popsize: int = OpenAIESConfig.popsize
    sigma: float = OpenAIESConfig.sigma
    lr: float = OpenAIESConfig.lr
    lr_decay: float = OpenAIESConfig.lr_decay
    lr_floor: float = OpenAIESConfig.lr_floor  # decay only while lr > floor
    sigma_decay: float = OpenAIESConfig.sigma_decay
    sigma_floor: float = OpenAIESConfig.sigma_floor
    antithetic: bool = OpenAIESConfig.antithetic
    standardize: bool = OpenAIESConfig.standardize  # after centred ranks
    ties: str = OpenAIESConfig.ties  # "ordinal" (reference code) | "average" (tied members share their rank)

    def __post_init__(self) -> None:
        if self.antithetic and (self.popsize < 2 or self.popsize % 2):
            raise ConfigError(
                f"optimizer.popsize={self.popsize}: antithetic sampling needs an even population >= 2"
            )
        if self.popsize < 2:
            raise ConfigError(f"optimizer.popsize={self.popsize}: must be >= 2")
        if not self.sigma > 0:
            raise ConfigError(f"optimizer.sigma={self.sigma}: must be > 0")
        if not self.lr > 0:
            raise ConfigError(f"optimizer.lr={self.lr}: must be > 0")
        if self.ties not in TIES:
            raise ConfigError(f"optimizer.ties={self.ties!r}; allowed: {list(TIES)}")
        for key in ("lr_decay", "sigma_decay"):
            if not 0 < getattr(self, key) <= 1:
                raise ConfigError(f"optimizer.{key}={getattr(self, key)}: must be in (0, 1]")

    def init(self, x0: torch.Tensor, seed: int) -> ESState:
        if int(seed) < 0:
            raise ConfigError(f"seed={seed}: must be a non-negative integer")
        return ESState(x0.detach().to(torch.float32).clone(), float(self.lr), float(self.sigma), 0, int(seed))

    def _noise_seeds(self, state: ESState) -> np.ndarray:
        n = self.popsize // 2 if self.antithetic else self.popsize
        return np.random.SeedSequence([state.seed, state.generation, 0xE5]).generate_state(n, dtype=np.uint32)

    def ask(self, state: ESState) -> tuple[ESState, SeededPopulation]:
        return state, SeededPopulation(state.center, state.sigma, self._noise_seeds(state), self.antithetic)

    def shape(self, fitness: np.ndarray) -> np.ndarray:
        shaped = centered_ranks(fitness, self.ties)
        if self.standardize:
            std = shaped.std()
            shaped = (shaped - shaped.mean()) / (std if std > 0 else 1.0)
        return shaped

    def tell(self, state: ESState, population: SeededPopulation, fitness: np.ndarray) -> ESState:
        fitness = np.asarray(fitness, dtype=np.float64)
        if fitness.shape != (population.size,):
            raise ValueError(f"fitness has shape {fitness.shape}, expected ({population.size},)")
        lr = state.lr * self.lr_decay if state.lr > self.lr_floor else state.lr
        sigma = state.sigma * self.sigma_decay if state.sigma > self.sigma_floor else state.sigma
        if not np.isfinite(fitness).any():  # no member is comparable to another: nothing to learn from
            return ESState(state.center, lr, sigma, state.generation + 1, state.seed)
        shaped = self.shape(fitness)
        grad = torch.zeros_like(state.center, dtype=torch.float64)
        # Σ_i F̂_i ε_i, one noise vector at a time: antithetic pairs share ε with opposite signs.
        weights = np.zeros(len(population.noise_seeds))
        for i, f in enumerate(shaped):
            k, sign = population.member_noise(i)
            weights[k] += sign * f
        for k, w in enumerate(weights):
            if w != 0.0:
                grad.add_(population.noise(k), alpha=float(w))
        step = state.lr / (population.size * state.sigma)
        center = (state.center.to(torch.float64) + step * grad).to(torch.float32)
        return ESState(center, lr, sigma, state.generation + 1, state.seed)

    def center(self, state: ESState) -> torch.Tensor:
        return state.center

    def recenter(self, state: ESState, center: torch.Tensor) -> ESState:
        """Continue from another centre, possibly of another dimension (a merge of rules: run/merging.py):
        lr, σ, generation and seed carry over, so the next noise comes from the same seeds."""
        return ESState(center.detach().to(torch.float32).clone(), state.lr, state.sigma, state.generation, state.seed)

    def state_dict(self, state: ESState) -> dict[str, Any]:
        return {"kind": "openai_es", **state.__dict__}

    def load_state_dict(self, data: dict[str, Any]) -> ESState:
        data = dict(data)
        data.pop("kind", None)
        return ESState(**data)

    def scalars(self, state: ESState) -> dict[str, float]:
        return {"lr": state.lr, "sigma": state.sigma}
