"""Hidden per-lifetime variation: an env whose physics or wiring differ from lifetime to lifetime.

The cheap analogues of the quadruped's damages (envs/ant/morphology.py), declared the same way
(conf/variation/*.yaml, core/task.env_variants): training variants (`random`: values drawn per
lifetime from ranges, or named presets) and test variants, each marked seen or unseen by what
its values are (inside the training distribution's support or not), not by its name.  A
lifetime's values are drawn from its env reset seed (`Variation.draw`), so lifetime i meets
the same pole whatever the batch, worker or path.

Parameters:
- physical ones, named as the gymnasium env's attributes, from the batched env class that
  `env.vector` names (`BatchEnv.PARAMETERS`: CartPole gravity, masscart, masspole, length,
  force_mag; Pendulum g, m, l, max_torque);
- generic ones: `action_sign` (-1 reverses the actuator: Discrete a -> n-1-a, Box a -> -a),
  `action_gain` (Box: a -> gain * a, before the env's own clipping), `obs_permutation` (the
  network reads obs[perm]).

The batched path applies them as arrays (envs/runner.VectorRunner); one gymnasium env per
lifetime gets the same values through the `Varied` wrapper (the equality is tested).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import gymnasium as gym
import numpy as np

from hebbian_es.errors import ConfigError

GENERIC = ("action_sign", "action_gain", "obs_permutation")
STREAM = 0x7A51  # the variation's draws: a stream of the reset seed apart from the env's own


@dataclass(frozen=True)
class Variation:
    """Fixed values, plus values drawn per lifetime: uniform in [low, high], or one of a list."""

    fixed: tuple[tuple[str, Any], ...] = ()
    ranges: tuple[tuple[str, float, float], ...] = ()
    choices: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    def draw(self, seed: int) -> dict[str, Any]:
        """This lifetime's values, from its env reset seed."""
        values = dict(self.fixed)
        if self.ranges or self.choices:
            rng = np.random.default_rng([STREAM, int(seed)])
            for name, low, high in self.ranges:
                values[name] = float(rng.uniform(low, high))
            for name, options in self.choices:
                values[name] = options[int(rng.integers(len(options)))]
        return values

    def names(self) -> set[str]:
        return {n for n, _ in self.fixed} | {n for n, _, _ in self.ranges} | {n for n, _ in self.choices}

    def describe(self) -> dict[str, Any]:
        """For result files: fixed values as they are, drawn ones as their range or choices."""
        out: dict[str, Any] = {n: _plain(v) for n, v in self.fixed}
        out.update({n: {"uniform": [lo, hi]} for n, lo, hi in self.ranges})
        out.update({n: {"choices": [_plain(o) for o in opts]} for n, opts in self.choices})
        return out


def _plain(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def parameters_of(vector: str | None) -> dict[str, float]:
    """The physical parameters (with defaults) of the batched env `env.vector` names."""
    if vector is None:
        return {}
    from hebbian_es.envs.vector import load_batch_env

    return dict(load_batch_env(vector).PARAMETERS)


def check_value(name: str, value: Any, key: str, physical: Mapping[str, float], obs_size: int, discrete: bool) -> Any:
    """One parameter value, checked (ConfigError naming `key`); returns it normalised."""
    allowed = sorted(physical) + list(GENERIC)
    if name not in allowed:
        raise ConfigError(f"{key}: unknown parameter {name!r}; allowed: {allowed}")
    if name == "obs_permutation":
        perm = tuple(int(i) for i in value)
        if sorted(perm) != list(range(obs_size)):
            raise ConfigError(f"{key}={list(perm)}: must be a permutation of 0..{obs_size - 1} (the {obs_size} observations)")
        return perm
    if name == "action_sign" and value not in (1, -1):
        raise ConfigError(f"{key}={value!r}; allowed: 1, -1")
    if name == "action_gain" and discrete:
        raise ConfigError(f"{key}: action_gain needs a Box action space; this env's actions are Discrete (use force_mag or similar)")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}={value!r}: must be a number") from None
    if not np.isfinite(v):
        raise ConfigError(f"{key}={value!r}: must be finite")
    return int(v) if name == "action_sign" else v


def build_variation(
    fixed: Mapping[str, Any], random: Mapping[str, Any], key: str, physical: Mapping[str, float], obs_size: int, discrete: bool
) -> Variation:
    """A Variation from a preset's values and a `random` block (name: [low, high] | {choices: [...]})."""
    fixed_items = tuple((n, check_value(n, v, f"{key}.{n}", physical, obs_size, discrete)) for n, v in fixed.items())
    ranges, choices = [], []
    for name, spec in random.items():
        k = f"variation.random.{name}"
        if isinstance(spec, Mapping):
            if set(spec) != {"choices"} or not list(spec["choices"]):
                raise ConfigError(f"{k}: give [low, high] or {{choices: [a non-empty list]}}")
            choices.append((name, tuple(check_value(name, o, k, physical, obs_size, discrete) for o in spec["choices"])))
            continue
        if isinstance(spec, (str, bytes)) or not isinstance(spec, Sequence) or len(spec) != 2:
            raise ConfigError(f"{k}={spec!r}: give [low, high] or {{choices: [...]}}")
        low, high = (check_value(name, s, k, physical, obs_size, discrete) for s in spec)
        if name in ("obs_permutation", "action_sign"):
            raise ConfigError(f"{k}: {name} takes {{choices: [...]}}, not a range")
        if low > high:
            raise ConfigError(f"{k}=[{low}, {high}]: low is above high; give [low, high] with low <= high")
        ranges.append((name, float(low), float(high)))
    return Variation(fixed_items, tuple(ranges), tuple(choices))


def support_contains(train: Sequence[Variation], test: Variation, defaults: Mapping[str, Any]) -> bool:
    """Whether every value of `test` lies inside what training met (its ranges, choices and
    fixed values; a parameter a variant leaves alone is at its default): seen, else unseen.
    A random test variant is seen when its support lies inside the training support."""

    def support(v: Variation, name: str) -> list[Any]:
        for n, lo, hi in v.ranges:
            if n == name:
                return [("range", lo, hi)]
        for n, opts in v.choices:
            if n == name:
                return [("value", o) for o in opts]
        for n, x in v.fixed:
            if n == name:
                return [("value", x)]
        return [("value", defaults.get(name))]

    def inside(item: tuple, allowed: list[tuple]) -> bool:
        if item[0] == "value":
            return any((a[0] == "value" and a[1] == item[1]) or (a[0] == "range" and isinstance(item[1], float) and a[1] <= item[1] <= a[2]) for a in allowed)
        return any(a[0] == "range" and a[1] <= item[1] and item[2] <= a[2] for a in allowed)

    names = set().union(*(v.names() for v in train), test.names())
    for name in names:
        allowed = [s for v in train for s in support(v, name)]
        if not all(inside(item, allowed) for item in support(test, name)):
            return False
    return True


def generic_defaults(obs_size: int) -> dict[str, Any]:
    return {"action_sign": 1, "action_gain": 1.0, "obs_permutation": tuple(range(obs_size))}


class Varied(gym.Wrapper):
    """One gymnasium env with a lifetime's values, drawn at every reset from its seed: physical
    parameters set on the unwrapped env (through the batched class's apply_to_gym), the actuator
    sign and gain applied to each action, the observation permuted."""

    def __init__(self, env: gym.Env, variation: Variation, vector: str | None, make_kwargs: Mapping[str, Any]) -> None:
        super().__init__(env)
        self.variation = variation
        self.cls = None
        self.defaults: dict[str, float] = {}
        if vector is not None:
            from hebbian_es.envs.vector import load_batch_env

            self.cls = load_batch_env(vector)
            self.defaults = self.cls(**dict(make_kwargs)).defaults()
        self.values: dict[str, Any] = {}

    def reset(self, *, seed: int | None = None, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self.values = self.variation.draw(0 if seed is None else seed)
        physical = {k: v for k, v in self.values.items() if k not in GENERIC}
        if self.cls is not None:  # every lifetime from the defaults: no value stays from the last one
            self.cls.apply_to_gym(self.env.unwrapped, {**self.defaults, **physical})
        obs, info = self.env.reset(seed=seed, **kwargs)
        return self._obs(obs), info

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(self._action(action))
        return self._obs(obs), reward, terminated, truncated, info

    def _obs(self, obs: Any) -> Any:
        perm = self.values.get("obs_permutation")
        return obs if perm is None else np.asarray(obs)[list(perm)]

    def _action(self, action: Any) -> Any:
        sign = self.values.get("action_sign", 1)
        gain = self.values.get("action_gain", 1.0)
        space = self.env.action_space
        if isinstance(space, gym.spaces.Discrete):
            return space.n - 1 - action if sign < 0 else action
        if sign == 1 and gain == 1.0:
            return action
        return np.float32(sign * gain) * np.asarray(action, dtype=np.float32)
