"""Live env instances: one runner per env, or one for a whole batch, and the pool that keeps them.

EnvRunner applies the episode protocol that is not the env's own (early stop, which
`terminated` ends a lifetime, non-finite states) to one gymnasium env; VectorRunner applies
the same protocol, row by row as arrays, to a batched numpy env (envs/vector, declared by
`env.vector`), and adds what gymnasium's wrappers would (the time limit, the appended reward).
The rollout loop sees either through the same two calls (`batch_of`): reset(seeds) and
step(actions, rows).  EnvPool reuses runners and bounds how many bodies stay alive.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any, Sequence

import gymnasium as gym
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


class PerEnvBatch:
    """A batch of EnvRunners behind the rollout loop's batch interface: one gymnasium env per row."""

    def __init__(self, runners: Sequence[EnvRunner]) -> None:
        self.runners = list(runners)
        self.obs: list[Any] = []

    def reset(self, seeds: Sequence[int]) -> list[Any]:
        self.obs = [r.reset(s) for r, s in zip(self.runners, seeds)]
        return self.obs

    def step(self, actions: Any, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Step the envs of `rows` with their actions (actions[i] for row i): their rewards and
        whether their lifetimes ended; the new observations are in `self.obs`."""
        rewards = np.empty(len(rows))
        done = np.empty(len(rows), dtype=bool)
        for k, i in enumerate(rows):
            self.obs[i], rewards[k], done[k] = self.runners[i].step(actions[i])
        return rewards, done


class VectorRunner:
    """One batched env (envs/vector) for every lifetime of a batch, with EnvRunner's episode
    protocol as arrays: the same rewards, ends and observations row for row as a batch of
    EnvRunners on the gymnasium env (tests/envs/test_vector_envs.py).  Reused across batches;
    each reset sizes it to its seeds."""

    def __init__(self, spec: EnvSpec) -> None:
        from hebbian_es.envs.vector import load_batch_env

        assert spec.vector is not None
        self.spec = spec
        self.env = load_batch_env(spec.vector)(**dict(spec.make_kwargs))
        self.limit = time_limit(spec)
        self.obs = np.zeros((0, 0), dtype=np.float32)

    def reset(self, seeds: Sequence[int]) -> np.ndarray:
        seeds = np.asarray(seeds, dtype=np.int64)
        obs = self.env.reset(seeds)
        n = len(seeds)
        self.steps = np.zeros(n, dtype=np.int64)
        self.negative_streak = np.zeros(n, dtype=np.int64)
        self.action_sign = self.action_gain = self.perm = None
        if self.spec.variation is not None:
            obs = self._vary(seeds, obs)
        if self.spec.append_reward:  # envs/reward_obs.AppendReward: [obs, 0] after reset
            obs = np.concatenate([obs, np.zeros((n, 1), dtype=np.float32)], axis=1)
        self.obs = obs
        return obs

    def step(self, actions: Any, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """As PerEnvBatch.step; `actions` holds every row's action (rows not in `rows` are ignored)."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) == 0:  # every lifetime ended in this step's forward pass (blown up): nothing steps
            return np.empty(0), np.empty(0, dtype=bool)
        n, rows = len(rows), self.env.rows(rows)  # a slice when every row steps
        acts = np.asarray(actions)[rows]
        if self.action_sign is not None:  # envs/variation.Varied._action, row by row
            acts = self._varied_actions(acts, rows)
        obs, reward, terminated = self.env.step(acts, rows)
        if self.perm is not None:
            obs = np.take_along_axis(obs, self.perm[rows], axis=1)
        reward = np.asarray(reward, dtype=np.float64)
        ok = np.isfinite(reward) & np.isfinite(obs).all(axis=1)
        if not ok.all():  # EnvRunner: an unstable simulator ends the lifetime, which ranks worst
            bad = ~ok
            log.warning("env %s gave a non-finite state or reward in %d lifetimes; they end", self.spec.name, int(bad.sum()))
            obs = np.nan_to_num(obs)
            reward = np.where(bad, np.nan, reward)
        t = self.steps[rows].copy()  # each row's step index, from 0
        self.steps[rows] = t + 1
        truncated = t + 1 >= self.limit if self.limit is not None else np.zeros(n, dtype=bool)
        es = self.spec.early_stop
        streak = self.negative_streak[rows].copy()
        if es.window == "after_min_steps":
            counting = t > es.min_steps
            streak = np.where(counting, np.where(reward < 0, streak + 1, 0), streak)
        else:
            counting = t + 1 > es.min_steps
            streak = np.where(reward < 0, streak + 1, 0)
        self.negative_streak[rows] = streak
        stop = counting & (streak > es.patience) if es.patience is not None else np.zeros(n, dtype=bool)
        after = self.spec.terminated_after
        ends = terminated & self.spec.end_on_terminated & ((t > after) if after is not None else True)
        done = ends | truncated | stop | ~ok
        if self.spec.append_reward:  # the reward as float32, after the observation
            obs = np.concatenate([obs, reward.astype(np.float32)[:, None]], axis=1)
        self.obs[rows] = obs
        return reward, done

    def _vary(self, seeds: np.ndarray, obs: np.ndarray) -> np.ndarray:
        """Each row's values drawn from its seed (envs/variation.py): physical ones into the
        batched env (none of these envs' start states depends on them), the actuator sign/gain
        and the sensor permutation kept as arrays."""
        from hebbian_es.envs.variation import GENERIC, generic_defaults

        assert self.spec.variation is not None
        n, size = obs.shape
        drawn = [self.spec.variation.draw(int(s)) for s in seeds]
        physical = sorted({k for d in drawn for k in d} - set(GENERIC))
        if physical:
            defaults = self.env.defaults()
            self.env.set_parameters(np.arange(n), {k: np.array([d.get(k, defaults[k]) for d in drawn], dtype=np.float64) for k in physical})
        base = generic_defaults(size)
        self.action_sign = np.array([d.get("action_sign", 1) for d in drawn], dtype=np.int64)
        self.action_gain = np.array([np.float32(d.get("action_sign", 1) * d.get("action_gain", 1.0)) for d in drawn], dtype=np.float32)
        self.perm = np.array([d.get("obs_permutation", base["obs_permutation"]) for d in drawn], dtype=np.int64)
        return np.take_along_axis(obs, self.perm, axis=1)

    def _varied_actions(self, acts: np.ndarray, rows: np.ndarray) -> np.ndarray:
        assert self.action_sign is not None and self.action_gain is not None
        n = self.env.discrete_actions
        if n is not None:
            return np.where(self.action_sign[rows] < 0, n - 1 - acts, acts)
        gain = self.action_gain[rows].reshape(-1, *([1] * (acts.ndim - 1)))
        return np.where(gain == 1.0, acts, gain * acts.astype(np.float32))

    def close(self) -> None:
        pass


def time_limit(spec: EnvSpec) -> int | None:
    """The TimeLimit gymnasium.make would add: env.max_episode_steps, else the registered one."""
    if spec.max_episode_steps is not None:
        return int(spec.max_episode_steps)
    registered = gym.spec(spec.id).max_episode_steps
    return int(registered) if registered is not None else None


def batch_of(runners: "Sequence[EnvRunner] | VectorRunner") -> "PerEnvBatch | VectorRunner":
    """What the rollout loop steps: a VectorRunner as it is, EnvRunners wrapped one per row."""
    return runners if isinstance(runners, VectorRunner) else PerEnvBatch(runners)


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

    def get(self, spec: EnvSpec, n: int) -> "list[EnvRunner] | VectorRunner":
        """n runners of `spec`; one VectorRunner for the whole batch where the spec declares a
        batched env (env.vector)."""
        key = repr(spec)
        if key not in self._pool and self.max_specs is not None:
            while len(self._pool) >= self.max_specs:
                _, evicted = self._pool.popitem(last=False)
                for r in evicted:
                    r.close()
        runners = self._pool.setdefault(key, [])
        self._pool.move_to_end(key)
        if spec.vector is not None:
            if not runners:
                runners.append(VectorRunner(spec))  # type: ignore[arg-type]
            return runners[0]  # type: ignore[return-value]
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
