"""Optimisers behind one ask/tell interface, chosen by `optimizer.name`."""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, Mapping

from hebbian_es.errors import ConfigError
from hebbian_es.optim.ng_adapter import EXPOSED as NEVERGRAD_EXPOSED
from hebbian_es.optim.ng_adapter import NevergradES
from hebbian_es.optim.openai_es import OpenAIES

OPTIMIZERS: dict[str, Callable[..., Any]] = {"openai_es": OpenAIES}
# optimizer=nevergrad optimizer.name=<Name>: each exposed Nevergrad algorithm by its own name.
OPTIMIZERS.update({name: partial(NevergradES, name) for name in NEVERGRAD_EXPOSED})


def make_optimizer(cfg: Mapping[str, Any]) -> Any:
    cfg = dict(cfg)
    name = cfg.pop("name", None)
    if name not in OPTIMIZERS:
        raise ConfigError(f"optimizer.name={name!r} is not known; allowed: {sorted(OPTIMIZERS)}")
    try:
        return OPTIMIZERS[name](**cfg)
    except TypeError as exc:
        raise ConfigError(f"optimizer={name}: {exc}") from None
