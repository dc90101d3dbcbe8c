"""The batched numpy envs (envs/vector) equal gymnasium's envs step for step, and the
VectorRunner applies EnvRunner's episode protocol row for row: same seeds -> same reset
states; same actions -> the same observations (float32, bit for bit), rewards, terminations
and truncations, over many seeds and whole episodes (terminations, the 500/200-step limits,
stepping on after `terminated`)."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

pytestmark = pytest.mark.filterwarnings("ignore:.*step\\(\\)' even though this environment has already returned terminated")

from hebbian_es.envs.runner import EnvRunner, VectorRunner
from hebbian_es.envs.spec import EarlyStop, EnvSpec
from hebbian_es.envs.vector import load_batch_env
from hebbian_es.errors import ConfigError

ENVS = {
    "CartPole-v1": "hebbian_es.envs.vector.cartpole:CartPole",
    "Pendulum-v1": "hebbian_es.envs.vector.pendulum:Pendulum",
    "Acrobot-v1": "hebbian_es.envs.vector.acrobot:Acrobot",
}


def policy_actions(env_id: str, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Actions that keep episodes going (a balancing rule) mixed with random ones, for (B, n) obs."""
    b = len(obs)
    if env_id == "CartPole-v1":
        balance = (obs[:, 2] + 0.5 * obs[:, 3] > 0).astype(np.int64)
        return np.where(rng.random(b) < 0.2, rng.integers(0, 2, b), balance)
    if env_id == "Acrobot-v1":
        pump = np.where(obs[:, 5] > 0, 2, 0)  # swings up within ~60-150 steps
        return np.where(rng.random(b) < 0.3, rng.integers(0, 3, b), pump).astype(np.int64)
    # Pendulum: torques beyond the bounds too (clipped by the env), float32 like ActionMapper's
    return rng.uniform(-3.0, 3.0, size=(b, 1)).astype(np.float32)


@pytest.mark.parametrize("env_id", sorted(ENVS))
def test_batched_env_equals_gymnasium_step_for_step(env_id: str) -> None:
    seeds = np.arange(40) * 7919 + 3
    batch = load_batch_env(ENVS[env_id])()
    obs = batch.reset(seeds)
    gyms = [gym.make(env_id).unwrapped for _ in seeds]  # no time limit: 600 steps, on past termination
    ref = np.stack([g.reset(seed=int(s))[0] for g, s in zip(gyms, seeds)])
    assert obs.dtype == np.float32 and np.array_equal(obs, ref)
    rng = np.random.default_rng(0)
    rows = np.arange(len(seeds))
    ended = 0
    for t in range(600):
        actions = policy_actions(env_id, obs, rng)
        if t % 3 == 0:  # a step of some rows only: the others keep their state
            rows = np.flatnonzero(rng.random(len(seeds)) < 0.7)
        obs_r, rew, term = batch.step(actions[rows], rows)
        for k, i in enumerate(rows):
            o, r, te, tr, _ = gyms[i].step(actions[i])
            assert np.array_equal(o, obs_r[k]), (env_id, t, i, o, obs_r[k])
            assert float(r) == rew[k] and bool(te) == term[k] and not tr, (env_id, t, i)
            ended += bool(te)
        obs = obs.copy()
        obs[rows] = obs_r
    if env_id != "Pendulum-v1":
        assert ended > 0  # terminations (and steps after them) were compared


def spec_of(env_id: str, **kw) -> EnvSpec:
    return EnvSpec(id=env_id, name=env_id, vector=ENVS[env_id], **kw)


PROTOCOLS = [
    {},
    {"end_on_terminated": False},
    {"terminated_after": 30},
    {"max_episode_steps": 77},
    {"early_stop": EarlyStop(patience=5, min_steps=20)},
    {"early_stop": EarlyStop(patience=3, min_steps=40, window="after_min_steps")},
    {"append_reward": True},
]


@pytest.mark.parametrize("env_id", sorted(ENVS))
@pytest.mark.parametrize("protocol", range(len(PROTOCOLS)))
def test_vector_runner_equals_env_runners(env_id: str, protocol: int) -> None:
    """Rewards, lifetime ends (time limit, early stop, terminated_after, end_on_terminated) and
    observations (with the appended reward) of a VectorRunner equal a batch of EnvRunners."""
    spec = spec_of(env_id, **PROTOCOLS[protocol])
    seeds = np.arange(12) * 104729 + protocol
    vec = VectorRunner(spec)
    per_env = [EnvRunner(dataclasses.replace(spec, vector=None)) for _ in seeds]
    obs = vec.reset(seeds)
    assert np.array_equal(obs, np.stack([r.reset(int(s)) for r, s in zip(per_env, seeds)]))
    alive = np.ones(len(seeds), dtype=bool)
    rng = np.random.default_rng(protocol)
    lengths = np.zeros(len(seeds), dtype=int)
    while alive.any():
        actions = policy_actions(env_id, vec.obs, rng)
        rows = np.flatnonzero(alive)
        rew, done = vec.step(actions, rows)
        for k, i in enumerate(rows):
            o, r, d = per_env[i].step(actions[i])
            assert np.array_equal(o, vec.obs[i]) and r == rew[k] and d == done[k], (env_id, protocol, i, lengths[i])
        lengths[rows] += 1
        alive[rows[done]] = False
    limit = PROTOCOLS[protocol].get("max_episode_steps") or gym.spec(env_id).max_episode_steps
    assert lengths.max() <= limit
    if protocol == 0 and env_id != "Acrobot-v1":  # some ran into the time limit (Acrobot's swing up first)
        assert (lengths == limit).any()
    if protocol == 0 and env_id != "Pendulum-v1":  # and some terminated before it
        assert (lengths < limit).any()
    for r in per_env:
        r.close()


def test_env_vector_config_errors_are_one_line() -> None:
    from hebbian_es.envs.vector.cartpole import CartPole

    with pytest.raises(ConfigError, match=r"env.vector='nowhere:Nothing' is not a batched env class; allowed: null"):
        load_batch_env("nowhere:Nothing")
    with pytest.raises(ConfigError, match=r"env.make_kwargs \['gravity'\] are not supported .*allowed: \['sutton_barto_reward'\]"):
        CartPole(gravity=3.0)


def test_a_step_with_no_rows_left_is_a_no_op(compose_config) -> None:
    """Every lifetime of a batch can end in one forward pass (non-finite outputs): the loop then
    steps no row, as the per-env path steps no env (tests/e2e/test_e2e.py's all-blown-up run)."""
    from hebbian_es.core.task import build_task
    from hebbian_es.envs.runner import VectorRunner

    spec = build_task(compose_config("env=pendulum", "network=small")).envs[0]
    runner = VectorRunner(spec)
    runner.reset([1, 2, 3])
    before = runner.obs.copy()
    reward, done = runner.step(np.zeros((3, 1), dtype=np.float32), np.array([], dtype=np.int64))
    assert reward.shape == (0,) and done.shape == (0,) and np.array_equal(runner.obs, before)
