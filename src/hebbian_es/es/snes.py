"""SNES, separable natural evolution strategies (Schaul, Glasmachers & Schmidhuber 2011), on
the seed-based ES base (es/gaussian.py).

Generation: z_i ~ N(0, I) from seeds (mirrored pairs with antithetic=true), members
mu + sigma⊙z_i, utilities u_i from the shaping (the NES utilities by default):

    g_mu    = sigma ⊙ Σ_i u_i z_i                -> the update step; sgd with lr = eta_mu = 1 is the paper's
    g_sigma = Σ_i u_i (z_i² - 1)
    sigma  <- sigma ⊙ exp(eta_sigma / 2 · g_sigma),  eta_sigma = (3 + ln d) / (5 sqrt(d)) unless sigma_lr is set

Then the base's decay and floor apply to sigma.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from hebbian_es.config import SNESConfig
from hebbian_es.errors import ConfigError
from hebbian_es.es.base import SeededPopulation
from hebbian_es.es.gaussian import ESState, SeededES
from hebbian_es.es.steps import Gradient


def paper_sigma_lr(dim: int) -> float:
    """Schaul et al.'s eta_sigma = (3 + ln d) / (5 sqrt(d))."""
    return (3.0 + math.log(dim)) / (5.0 * math.sqrt(dim))


@dataclass(frozen=True)
class SNES(SeededES):
    """Defaults: the schema's (`hebbian_es.config.SNESConfig`), documented there."""

    KIND = "snes"
    ADAPTS_SIGMA = True

    popsize: int = SNESConfig.popsize
    sigma: float = SNESConfig.sigma
    lr: float = SNESConfig.lr
    lr_decay: float = SNESConfig.lr_decay
    lr_floor: float = SNESConfig.lr_floor
    sigma_lr: Optional[float] = SNESConfig.sigma_lr
    sigma_decay: float = SNESConfig.sigma_decay
    sigma_floor: float = SNESConfig.sigma_floor
    antithetic: bool = SNESConfig.antithetic
    standardize: bool = SNESConfig.standardize
    ties: str = SNESConfig.ties
    shaping: str = SNESConfig.shaping
    step: str = SNESConfig.step
    momentum: float = SNESConfig.momentum
    beta1: float = SNESConfig.beta1
    beta2: float = SNESConfig.beta2
    eps: float = SNESConfig.eps
    max_speed: Optional[float] = SNESConfig.max_speed
    weight_decay: float = SNESConfig.weight_decay

    def __post_init__(self) -> None:
        if self.lr is None:
            raise ConfigError("optimizer.lr=null: must be a number > 0 (the paper's eta_mu is 1)")
        self.check()
        if self.sigma_lr is not None and not self.sigma_lr > 0:
            raise ConfigError(f"optimizer.sigma_lr={self.sigma_lr}: must be > 0 (or null: the paper's (3 + ln d) / (5 sqrt(d)))")

    def initial_sigma(self, dim: int) -> torch.Tensor:
        return torch.full((dim,), float(self.sigma), dtype=torch.float32)

    def estimate(self, state: ESState, population: SeededPopulation, shaped: np.ndarray) -> tuple[Gradient, torch.Tensor]:
        signed, total = self.per_noise(population, shaped)
        sums = self.noise_sums(population, signed, total)
        sigma = state.sigma.to(torch.float64)  # type: ignore[union-attr]
        grad_mu = sigma * sums.linear
        grad_sigma = sums.square - float(shaped.sum())  # type: ignore[operator]
        eta = paper_sigma_lr(sigma.numel()) if self.sigma_lr is None else self.sigma_lr
        return Gradient(grad_mu), (sigma * torch.exp(0.5 * eta * grad_sigma)).to(torch.float32)
