"""PGPE (Sehnke et al. 2010) with symmetric sampling and a sigma per parameter, ClipUp's step
by default (Toklu et al. 2020), on the seed-based ES base (es/gaussian.py).

Generation: K = n/2 directions z_k ~ N(0, I) from seeds; members mu ± sigma⊙z_k (pairs 2k, 2k+1).
With the shaped fitness f+_k, f-_k of a pair and b the mean shaped fitness:

    g_mu    = sigma ⊙ Σ_k (f+_k - f-_k)/2 · z_k / K          -> the update step (ClipUp)
    g_sigma = sigma ⊙ Σ_k ((f+_k + f-_k)/2 - b) · (z_k² - 1) / K
    sigma  <- clip(sigma + sigma_lr · g_sigma, (1 - c)·sigma, (1 + c)·sigma),  c = sigma_max_change

(with eps_k = sigma⊙z_k these are Sehnke et al.'s symmetric-sampling estimates
Σ_k r_T,k eps_k and Σ_k r_S,k (eps_k² - sigma²)/sigma; the shaping replaces their reward
normalisation, as in evotorch and evosax).  Then the base's decay and floor apply to sigma.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Optional

import numpy as np
import torch

from hebbian_es.config import PGPEConfig
from hebbian_es.errors import ConfigError
from hebbian_es.es.base import SeededPopulation
from hebbian_es.es.gaussian import ESState, SeededES, toklu_lr
from hebbian_es.es.steps import Gradient


@dataclass(frozen=True)
class PGPE(SeededES):
    """Defaults: the schema's (`hebbian_es.config.PGPEConfig`), documented there."""

    KIND = "pgpe"
    ADAPTS_SIGMA = True
    antithetic: ClassVar[bool] = True  # symmetric sampling is PGPE's

    popsize: int = PGPEConfig.popsize
    sigma: float = PGPEConfig.sigma
    lr: Optional[float] = PGPEConfig.lr
    lr_decay: float = PGPEConfig.lr_decay
    lr_floor: float = PGPEConfig.lr_floor
    sigma_lr: float = PGPEConfig.sigma_lr
    sigma_max_change: Optional[float] = PGPEConfig.sigma_max_change
    sigma_decay: float = PGPEConfig.sigma_decay
    sigma_floor: float = PGPEConfig.sigma_floor
    standardize: bool = PGPEConfig.standardize
    ties: str = PGPEConfig.ties
    shaping: str = PGPEConfig.shaping
    step: str = PGPEConfig.step
    momentum: float = PGPEConfig.momentum
    beta1: float = PGPEConfig.beta1
    beta2: float = PGPEConfig.beta2
    eps: float = PGPEConfig.eps
    max_speed: Optional[float] = PGPEConfig.max_speed
    weight_decay: float = PGPEConfig.weight_decay

    def __post_init__(self) -> None:
        self.check()
        if self.lr is None and self.step != "clipup":
            raise ConfigError(f"optimizer.lr=null: only step=clipup derives lr (Toklu et al.'s rule); set optimizer.lr for step={self.step}")
        if not self.sigma_lr > 0:
            raise ConfigError(f"optimizer.sigma_lr={self.sigma_lr}: must be > 0")
        if self.sigma_max_change is not None and not 0 < self.sigma_max_change < 1:
            raise ConfigError(f"optimizer.sigma_max_change={self.sigma_max_change}: must be in (0, 1) (or null: no limit)")

    def initial_sigma(self, dim: int) -> torch.Tensor:
        return torch.full((dim,), float(self.sigma), dtype=torch.float32)

    def initial_lr(self, dim: int) -> float:
        return toklu_lr(self.sigma, dim) if self.lr is None else float(self.lr)

    def estimate(self, state: ESState, population: SeededPopulation, shaped: np.ndarray) -> tuple[Gradient, torch.Tensor]:
        plus, minus = shaped[0::2], shaped[1::2]  # member 2k = mu + eps_k, 2k + 1 = mu - eps_k
        directions = len(plus)
        linear = (plus - minus) / 2.0
        square = (plus + minus) / 2.0 - shaped.mean()
        sums = self.noise_sums(population, linear, square)
        sigma = state.sigma.to(torch.float64)  # type: ignore[union-attr]
        grad_mu = sigma * sums.linear / directions
        grad_sigma = sigma * (sums.square - float(square.sum())) / directions  # type: ignore[operator]
        new_sigma = sigma + self.sigma_lr * grad_sigma
        if self.sigma_max_change is not None:
            new_sigma = torch.minimum(torch.maximum(new_sigma, sigma * (1 - self.sigma_max_change)), sigma * (1 + self.sigma_max_change))
        return Gradient(grad_mu), new_sigma.to(torch.float32)
