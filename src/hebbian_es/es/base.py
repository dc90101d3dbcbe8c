"""The ask/tell contract every optimiser follows (the shape of evosax).

- `init(x0, seed)` returns an explicit state object; a checkpoint is a dump of it.
- `ask(state)` returns (state, population); a population materialises its
  members' parameter vectors on demand, so a worker can be sent a cheap
  description (seeds) instead of vectors.
- `tell(state, population, fitness)` returns the next state.  Fitness is
  *maximised*; NaN or inf ranks worst.  Any other sign convention (Nevergrad
  minimises) is converted inside the adapter, never outside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

# Fitness shaping lives in es/shaping.py; these stay importable from here.
from hebbian_es.es.shaping import TIES, centered_ranks, worst_for_nonfinite  # noqa: F401


@runtime_checkable
class Population(Protocol):
    size: int

    def params(self, indices: Sequence[int]) -> torch.Tensor:
        """Parameter vectors of the given members, (len(indices), D) float32."""


@dataclass
class ExplicitPopulation:
    """Members given as vectors (the centre alone, or a non-ES optimiser's candidates)."""

    vectors: torch.Tensor  # (n, D)

    @property
    def size(self) -> int:
        return int(self.vectors.shape[0])

    def params(self, indices: Sequence[int]) -> torch.Tensor:
        return self.vectors[list(indices)]


def noise_from_seed(seed: int, dim: int) -> torch.Tensor:
    """The Gaussian noise vector that `seed` stands for; identical on every worker."""
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randn(dim, generator=gen)


@dataclass
class SeededPopulation:
    """Members centre + σ·sign·ε, each ε regenerated from its seed where it is needed
    (σ one number, or one per parameter: centre + sign·σ⊙ε)."""

    center: torch.Tensor  # (D,)
    sigma: float | torch.Tensor  # a number, or (D,) float32
    noise_seeds: np.ndarray  # one per noise vector
    antithetic: bool = True

    @property
    def size(self) -> int:
        return len(self.noise_seeds) * (2 if self.antithetic else 1)

    def member_noise(self, index: int) -> tuple[int, float]:
        """(noise index, sign) of a member: antithetic pairs are (2k, 2k+1) = (+ε_k, −ε_k)."""
        if self.antithetic:
            return index // 2, (1.0 if index % 2 == 0 else -1.0)
        return index, 1.0

    def noise(self, k: int) -> torch.Tensor:
        return noise_from_seed(int(self.noise_seeds[k]), self.center.numel())

    def params(self, indices: Sequence[int]) -> torch.Tensor:
        out = torch.empty((len(indices), self.center.numel()))
        cache: dict[int, torch.Tensor] = {}
        for row, i in enumerate(indices):
            k, sign = self.member_noise(int(i))
            if k not in cache:
                cache[k] = self.noise(k)
            if isinstance(self.sigma, torch.Tensor):
                torch.addcmul(self.center, self.sigma, cache[k], value=sign, out=out[row])
            else:
                torch.add(self.center, cache[k], alpha=sign * self.sigma, out=out[row])
        return out


class Optimizer(Protocol):
    """The ask/tell contract every optimiser meets (the seed-based ES of es/gaussian.py, NevergradES); ESRun holds one."""

    def init(self, x0: torch.Tensor, seed: int) -> Any: ...

    def ask(self, state: Any) -> tuple[Any, Population]: ...

    def tell(self, state: Any, population: Population, fitness: np.ndarray) -> Any: ...

    def center(self, state: Any) -> torch.Tensor: ...

    def state_dict(self, state: Any) -> dict[str, Any]: ...

    def load_state_dict(self, data: dict[str, Any]) -> Any: ...

    def scalars(self, state: Any) -> dict[str, float]: ...


@dataclass
class PopulationWithCenter:
    """A population plus its centre as the last member, so both go out in one request."""

    population: Any
    center: torch.Tensor

    @property
    def size(self) -> int:
        return self.population.size + 1

    def params(self, indices: Sequence[int]) -> torch.Tensor:
        n = self.population.size
        members = [i for i in indices if i < n]
        out = torch.empty((len(indices), self.center.numel()))
        if members:
            out[[k for k, i in enumerate(indices) if i < n]] = self.population.params(members)
        for k, i in enumerate(indices):
            if i >= n:
                out[k] = self.center
        return out
