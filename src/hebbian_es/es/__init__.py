"""Optimisers behind one ask/tell interface, chosen by `optimizer.name`.

The seed-based ES (openai_es, pgpe, snes) share one base (es/gaussian.py) and swap their
fitness shaping (es/shaping.py) and update step (es/steps.py) by name; the Nevergrad
algorithms are adapted in es/nevergrad.py.  Each name's settings load as its own schema
(hebbian_es.config.OPTIMIZER_CONFIGS)."""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any, Callable

from hebbian_es.config import NEVERGRAD_NAMES, OPTIMIZER_CONFIGS, SCHEMAS as CONFIG_SCHEMAS
from hebbian_es.errors import ConfigError
from hebbian_es.es.nevergrad import EXPOSED as NEVERGRAD_EXPOSED
from hebbian_es.es.nevergrad import NevergradES
from hebbian_es.es.openai_es import OpenAIES
from hebbian_es.es.pgpe import PGPE
from hebbian_es.es.snes import SNES

OPTIMIZERS: dict[str, Callable[..., Any]] = {"openai_es": OpenAIES, "pgpe": PGPE, "snes": SNES}
# optimizer=nevergrad optimizer.name=<Name>: each exposed Nevergrad algorithm by its own name.
OPTIMIZERS.update({name: partial(NevergradES, name) for name in NEVERGRAD_EXPOSED})
assert set(NEVERGRAD_EXPOSED) == set(NEVERGRAD_NAMES) and set(OPTIMIZERS) == set(OPTIMIZER_CONFIGS)
# The config group file (conf/optimizer/<file>.yaml) whose schema each optimiser's keys come from.
_FILE_OF_SCHEMA = {schema: file for file, schema in CONFIG_SCHEMAS["optimizer"].items()}
SCHEMAS: dict[str, tuple[type, str]] = {name: (schema, _FILE_OF_SCHEMA[schema]) for name, schema in OPTIMIZER_CONFIGS.items()}


def make_optimizer(cfg: Any) -> Any:
    """The optimiser `cfg.name` names, with the rest of `cfg` (its schema's dataclass) as its settings."""
    name = cfg.name
    if name not in OPTIMIZERS:
        raise ConfigError(f"optimizer.name={name!r} is not known; allowed: {sorted(OPTIMIZERS)}")
    schema, group = SCHEMAS[name]
    if not isinstance(cfg, schema):
        raise ConfigError(f"optimizer.name={name!r} takes the settings of optimizer={group}: use optimizer={group} optimizer.name={name}")
    settings = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name != "name"}
    return OPTIMIZERS[name](**settings)
