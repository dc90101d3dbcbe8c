"""Live env instances: one runner per env, and the pool that keeps them across episodes.

EnvRunner applies the episode protocol that is not the env's own (early stop, which
`terminated` ends a lifetime, non-finite states); EnvPool reuses runners and bounds how
many bodies stay alive.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

import numpy as np

from hebbian_es.envs.spec import EnvSpec, make_gym_env

log = logging.getLogger(__name__)


class EnvRunner:
    """One long-lived env instance; reused across episodes."""

    def __init__(self, spec: EnvSpec) -> None:
        self.spec = spec
        self.env = make_gym_env(spec)
        self.negative_streak = 0
        self.steps = 0

    def reset(self, seed: int) -> Any:
        self.negative_streak = 0
        self.steps = 0
        obs, _ = self.env.reset(seed=int(seed))
        return obs

    def step(self, action: Any) -> tuple[Any, float, bool]:
        obs, reward, terminated, truncated, _ = self.env.step(action)
        reward = float(reward)
        obs_ok = not (isinstance(obs, np.ndarray) and obs.dtype.kind == "f") or np.isfinite(obs).all()
        if not (np.isfinite(reward) and obs_ok):
            # An unstable body or simulator: this lifetime ends and ranks worst.
            log.warning("env %s gave a non-finite state or reward at step %d; episode ends", self.spec.name, self.steps)
            return np.nan_to_num(np.asarray(obs, dtype=np.float64)), float("nan"), True
        t = self.steps  # this step's index, from 0
        self.steps += 1
        es = self.spec.early_stop
        if es.window == "after_min_steps":  # the reference: `if t > 200:` guards streak and stop
            counting = t > es.min_steps
            if counting:
                self.negative_streak = self.negative_streak + 1 if reward < 0 else 0
        else:
            counting = self.steps > es.min_steps
            self.negative_streak = self.negative_streak + 1 if reward < 0 else 0
        stop = es.patience is not None and counting and self.negative_streak > es.patience
        after = self.spec.terminated_after
        terminated = terminated and self.spec.end_on_terminated and (after is None or t > after)
        return obs, reward, bool(terminated or truncated or stop)

    def close(self) -> None:
        self.env.close()


class EnvPool:
    """Env instances kept alive for the life of a process, grown on demand.

    max_specs bounds how many distinct specs (bodies) keep their instances: asking for
    one more closes the least recently used spec's instances first. A pybullet body costs
    about 29 MB per instance, so the test protocol (100 lifetimes on each of 23 bodies)
    would otherwise hold ~2,300 of them (measured: 16 GB, then the OOM killer); a new
    instance costs ~17 ms, nothing beside the lifetimes it serves."""

    def __init__(self, max_specs: int | None = None) -> None:
        if max_specs is not None and max_specs < 1:
            raise ValueError(f"max_specs={max_specs}: must be >= 1 or None")
        self.max_specs = max_specs
        self._pool: OrderedDict[str, list[EnvRunner]] = OrderedDict()

    def get(self, spec: EnvSpec, n: int) -> list[EnvRunner]:
        key = repr(spec)
        if key not in self._pool and self.max_specs is not None:
            while len(self._pool) >= self.max_specs:
                _, evicted = self._pool.popitem(last=False)
                for r in evicted:
                    r.close()
        runners = self._pool.setdefault(key, [])
        self._pool.move_to_end(key)
        while len(runners) < n:
            runners.append(EnvRunner(spec))
        return runners[:n]

    def __len__(self) -> int:
        """Live env instances."""
        return sum(len(r) for r in self._pool.values())

    def close(self) -> None:
        for runners in self._pool.values():
            for r in runners:
                r.close()
        self._pool.clear()
