"""OpenAI-ES (Salimans et al. 2017) with the settings of Najarro & Risi (2020).

Antithetic sampling, centred ranks then standardised, the plain gradient ascent step
h <- h + α/(n·σ) Σ F̂_i ε_i, and multiplicative α/σ decays that stop at a floor: the
composition of the seed-based ES base (es/gaussian.py) with shaping=centered_ranks and
step=sgd.  Any other shaping or step (`optimizer.shaping`, `optimizer.step`) swaps in.
Noise seeds for generation g derive from (seed, g), so a state holds no RNG: resuming from
a checkpoint replays exactly the same noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from hebbian_es.config import OpenAIESConfig
from hebbian_es.es.base import SeededPopulation
from hebbian_es.es.gaussian import ESState, SeededES
from hebbian_es.es.steps import Gradient

__all__ = ["ESState", "OpenAIES"]


@dataclass(frozen=True)
class OpenAIES(SeededES):
    """Defaults: the schema's (`hebbian_es.config.OpenAIESConfig`), documented there."""

    KIND = "openai_es"

    popsize: int = OpenAIESConfig.popsize
    sigma: float = OpenAIESConfig.sigma
    lr: float = OpenAIESConfig.lr
    lr_decay: float = OpenAIESConfig.lr_decay
    lr_floor: float = OpenAIESConfig.lr_floor  # decay only while lr > floor
    sigma_decay: float = OpenAIESConfig.sigma_decay
    sigma_floor: float = OpenAIESConfig.sigma_floor
    antithetic: bool = OpenAIESConfig.antithetic
    standardize: bool = OpenAIESConfig.standardize  # after the shaping
    ties: str = OpenAIESConfig.ties  # "ordinal" (reference code) | "average" (tied members share their rank)
    shaping: str = OpenAIESConfig.shaping
    step: str = OpenAIESConfig.step
    momentum: float = OpenAIESConfig.momentum
    beta1: float = OpenAIESConfig.beta1
    beta2: float = OpenAIESConfig.beta2
    eps: float = OpenAIESConfig.eps
    max_speed: Optional[float] = OpenAIESConfig.max_speed
    weight_decay: float = OpenAIESConfig.weight_decay

    def __post_init__(self) -> None:
        self.check()

    def shape(self, fitness: np.ndarray) -> np.ndarray:
        return self.shaper(fitness)

    def estimate(self, state: ESState, population: SeededPopulation, shaped: np.ndarray) -> tuple[Gradient, float]:
        # Σ_i F̂_i ε_i, one noise vector at a time: antithetic pairs share ε with opposite signs.
        signed, _ = self.per_noise(population, shaped)
        sums = self.noise_sums(population, signed)
        return Gradient(sums.linear, population.size * state.sigma), state.sigma
