"""Named weight distributions, used for the fresh initial weights of every lifetime
and for the starting point of the evolved parameters.

Each distribution draws a (out, in) matrix (or any shape: fan-in/out are read from
the last two axes) from an explicit torch.Generator, so every draw is seeded.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import torch

from hebbian_es.errors import ConfigError

Sampler = Callable[[tuple[int, ...], torch.Generator, Mapping[str, Any]], torch.Tensor]


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    fan_in = shape[-1] if len(shape) >= 1 else 1
    fan_out = shape[-2] if len(shape) >= 2 else 1
    return fan_in, fan_out


def _uniform(shape, gen, p):
    low, high = float(p.get("low", -0.1)), float(p.get("high", 0.1))
    return torch.rand(shape, generator=gen).mul_(high - low).add_(low)


def _normal(shape, gen, p):
    return torch.randn(shape, generator=gen).mul_(float(p.get("std", 0.1))).add_(float(p.get("mean", 0.0)))


def _xavier(shape, gen, p):
    fan_in, fan_out = _fans(shape)
    bound = float(p.get("gain", 1.0)) * math.sqrt(6.0 / (fan_in + fan_out))
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
    sparsity, std = float(p.get("sparsity", 0.5)), float(p.get("std", 0.01))
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


def check_distribution(spec: Mapping[str, Any], key: str) -> None:
    kind = spec.get("kind")
    if kind not in DISTRIBUTIONS:
        raise ConfigError(f"{key}.kind={kind!r} is not a known distribution; allowed: {sorted(DISTRIBUTIONS)}")
    if kind == "uniform" and float(spec.get("low", -0.1)) >= float(spec.get("high", 0.1)):
        raise ConfigError(f"{key}: low must be < high, got low={spec.get('low')} high={spec.get('high')}")
    if kind == "normal" and float(spec.get("std", 0.1)) < 0:
        raise ConfigError(f"{key}.std must be >= 0, got {spec.get('std')}")
    if kind == "sparse" and not 0.0 <= float(spec.get("sparsity", 0.5)) <= 1.0:
        raise ConfigError(f"{key}.sparsity must be in [0, 1], got {spec.get('sparsity')}")


def sample(spec: Mapping[str, Any], shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    """Draw a float32 tensor of `shape` from the distribution `spec` ({kind: ..., params})."""
    return DISTRIBUTIONS[spec["kind"]](tuple(shape), gen, spec).to(torch.float32)
