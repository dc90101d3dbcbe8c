"""What a batched env provides (`BatchEnv`), and how a config's `env.vector` names one."""

from __future__ import annotations

import importlib
from typing import Any, ClassVar, Mapping

import numpy as np
from numpy.random import PCG64, Generator, SeedSequence

from hebbian_es.errors import ConfigError


class BatchEnv:
    """B episodes of one env as arrays; rows are episodes.

    `reset(seeds)` starts one episode per seed and returns the (B, obs) float32 observations;
    `step(actions, rows)` advances the episodes of `rows` (an int array, ascending, or a slice) by one step
    with `actions` (one per row of `rows`) and returns their observations, float64 rewards and
    terminated flags; other rows keep their state.  Physical parameters (`PARAMETERS`, the
    gymnasium env's attribute names with their defaults) are per-row arrays: `set_parameters`
    changes some rows' values after a reset (hidden per-lifetime variation, envs/variation.py),
    and `apply_to_gym` sets the same values on a gymnasium env (the per-env path's variation).
    """

    PARAMETERS: ClassVar[dict[str, float]] = {}
    MAKE_KWARGS: ClassVar[dict[str, Any]] = {}  # the gymnasium env's make kwargs this class honours, with defaults
    discrete_actions: ClassVar[int | None] = None  # Discrete(n) action space: n; Box: None

    def __init__(self, **make_kwargs: Any) -> None:
        unknown = sorted(set(make_kwargs) - set(self.MAKE_KWARGS))
        if unknown:
            raise ConfigError(
                f"env.make_kwargs {unknown} are not supported by the batched {type(self).__name__}; "
                f"allowed: {sorted(self.MAKE_KWARGS)} (or env.vector=null for one gymnasium env per lifetime)"
            )
        self.options = {**self.MAKE_KWARGS, **make_kwargs}
        self.batch = 0
        self.params: dict[str, np.ndarray] = {}

    def reset(self, seeds: np.ndarray) -> np.ndarray:
        seeds = np.asarray(seeds)
        self.batch = len(seeds)
        self.params = {k: np.full(self.batch, float(v)) for k, v in self.defaults().items()}
        # gymnasium's Env.reset(seed=s): self.np_random = Generator(PCG64(SeedSequence(s)))
        return self._reset([Generator(PCG64(SeedSequence(int(s)))) for s in seeds])

    def defaults(self) -> dict[str, float]:
        """Each parameter's value in an env built with this config's make kwargs."""
        return dict(self.PARAMETERS)

    def rows(self, rows: "np.ndarray | slice") -> "np.ndarray | slice":
        """`rows` as an index: a slice (views, no copies) when it is every row, as it mostly is."""
        return rows if isinstance(rows, slice) or len(rows) < self.batch else slice(None)

    def set_parameters(self, rows: np.ndarray, values: Mapping[str, np.ndarray]) -> None:
        for name, v in values.items():
            self.params[name][rows] = v

    @classmethod
    def apply_to_gym(cls, unwrapped: Any, values: Mapping[str, float]) -> None:
        """Set parameter values on a gymnasium env of this kind (and what derives from them)."""
        for name, v in values.items():
            setattr(unwrapped, name, float(v))

    def _reset(self, rngs: list[Generator]) -> np.ndarray:
        raise NotImplementedError

    def step(self, actions: np.ndarray, rows: "np.ndarray | slice") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError


def square(x: np.ndarray) -> np.ndarray:
    """`x ** 2` as gymnasium computes it on one numpy scalar: libm's pow, not numpy's array
    power (x * x, or SIMD pow), which differ from it in the last bit now and then.  float64:
    np.float_power goes through pow; float32 (powf): one scalar power per element."""
    x = np.asarray(x)
    if x.dtype == np.float32:
        return np.array([v**2 for v in x], dtype=np.float32).reshape(x.shape)
    return np.float_power(x, 2.0)


def load_batch_env(path: str) -> type[BatchEnv]:
    """`module:Class` (env.vector) -> the class; one line if it cannot be found."""
    module, _, name = path.partition(":")
    try:
        cls = getattr(importlib.import_module(module), name) if name else None
    except (ImportError, AttributeError):
        cls = None
    if not (isinstance(cls, type) and issubclass(cls, BatchEnv)):
        raise ConfigError(
            f"env.vector={path!r} is not a batched env class; allowed: null or <module>:<Class> of a "
            "hebbian_es.envs.vector.BatchEnv subclass, e.g. hebbian_es.envs.vector.cartpole:CartPole"
        )
    return cls
