"""Optimisers behind one ask/tell interface, chosen by `optimizer.name`."""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any, Callable

from hebbian_es.config import NevergradConfig, OpenAIESConfig
from hebbian_es.errors import ConfigError
from hebbian_es.es.nevergrad import EXPOSED as NEVERGRAD_EXPOSED
from hebbian_es.es.nevergrad import NevergradES
from hebbian_es.es.openai_es import OpenAIES

OPTIMIZERS: dict[str, Callable[..., Any]] = {"openai_es": OpenAIES}
# optimizer=nevergrad optimizer.name=<Name>: each exposed Nevergrad algorithm by its own name.
OPTIMIZERS.update({name: partial(NevergradES, name) for name in NEVERGRAD_EXPOSED})
# The schema (config group file) each optimiser's keys come from.
SCHEMAS: dict[str, tuple[type, str]] = {"openai_es": (OpenAIESConfig, "openai_es")}
SCHEMAS.update({name: (NevergradConfig, "nevergrad") for name in NEVERGRAD_EXPOSED})


def make_optimizer(cfg: OpenAIESConfig | NevergradConfig) -> Any:
    """The optimiser `cfg.name` names, with the rest of `cfg` as its settings."""
    name = cfg.name
    if name not in OPTIMIZERS:
        raise ConfigError(f"optimizer.name={name!r} is not known; allowed: {sorted(OPTIMIZERS)}")
    schema, group = SCHEMAS[name]
    if not isinstance(cfg, schema):
        raise ConfigError(f"optimizer.name={name!r} takes the settings of optimizer={group}: use optimizer={group} optimizer.name={name}")
    settings = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name != "name"}
    return OPTIMIZERS[name](**settings)
