"""Named weight distributions, used for the fresh initial weights of every lifetime
and for the starting point of the evolved parameters.

Each distribution draws a (out, in) matrix (or any shape: fan-in/out are read from
the last two axes) from an explicit torch.Generator, so every draw is seeded.  A
distribution is a `hebbian_es.config.DistributionConfig` (its kind and the parameters
each kind reads); its defaults live there.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from hebbian_es.config import DistributionConfig
from hebbian_es.errors import ConfigError

Sampler = Callable[[tuple[int, ...], torch.Generator, DistributionConfig], torch.Tensor]


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    fan_in = shape[-1] if len(shape) >= 1 else 1
    fan_out = shape[-2] if len(shape) >= 2 else 1
    return fan_in, fan_out


def _uniform(shape, gen, p):
    low, high = float(p.low), float(p.high)
    return torch.rand(shape, generator=gen).mul_(high - low).add_(low)


def _normal(shape, gen, p):
    return torch.randn(shape, generator=gen).mul_(float(p.std)).add_(float(p.mean))


def _xavier(shape, gen, p):
    fan_in, fan_out = _fans(shape)
    bound = float(p.gain) * math.sqrt(6.0 / (fan_in + fan_out))
    return torch.rand(shape, generator=gen).mul_(2 * bound).sub_(bound)


def _kaiming(shape, gen, p):
    fan_in, _ = _fans(shape)
    return torch.randn(shape, generator=gen).mul_(math.sqrt(2.0 / fan_in))


def _torch_default(shape, gen, p):
    # nn.Linear's default: kaiming_uniform(a=√5) gives U[-1/√fan_in, 1/√fan_in]
    fan_in, _ = _fans(shape)
    bound = 1.0 / math.sqrt(fan_in)
    return torch.rand(shape, generator=gen).mul_(2 * bound).sub_(bound)


def _sparse(shape, gen, p):
    # As torch.nn.init.sparse_: in each column a fraction of entries is zero, the rest N(0, std).
    sparsity, std = float(p.sparsity), float(p.std)
    w = torch.randn(shape, generator=gen).mul_(std)
    rows = shape[-2] if len(shape) >= 2 else shape[-1]
    n_zero = int(math.ceil(sparsity * rows))
    if n_zero:
        order = torch.rand(shape, generator=gen).argsort(dim=-2 if len(shape) >= 2 else -1)
        mask = order < n_zero
        w[mask] = 0.0
    return w


def _zeros(shape, gen, p):
    return torch.zeros(shape)


def _ones(shape, gen, p):
    return torch.ones(shape)


DISTRIBUTIONS: dict[str, Sampler] = {
    "uniform": _uniform,
    "normal": _normal,
    "xavier": _xavier,
    "kaiming": _kaiming,
    "torch_default": _torch_default,
    "sparse": _sparse,
    "zeros": _zeros,
    "ones": _ones,
}


def check_distribution(spec: DistributionConfig, key: str) -> None:
    """A known kind with parameters it can draw from; `key` names the config entry in errors."""
    kind = spec.kind
    if kind not in DISTRIBUTIONS:
        raise ConfigError(f"{key}.kind={kind!r} is not a known distribution; allowed: {sorted(DISTRIBUTIONS)}")
    if kind == "uniform" and spec.low >= spec.high:
        raise ConfigError(f"{key}: low must be < high, got low={spec.low} high={spec.high}")
    if kind == "normal" and spec.std < 0:
        raise ConfigError(f"{key}.std must be >= 0, got {spec.std}")
    if kind == "sparse" and not 0.0 <= spec.sparsity <= 1.0:
        raise ConfigError(f"{key}.sparsity must be in [0, 1], got {spec.sparsity}")


def sample(spec: DistributionConfig, shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    """Draw a float32 tensor of `shape` from the distribution `spec`."""
    return DISTRIBUTIONS[spec.kind](tuple(shape), gen, spec).to(torch.float32)
