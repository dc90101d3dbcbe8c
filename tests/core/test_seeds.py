"""Which lifetime is which: lifetime i's seeds depend on (seed, stream, round, i) alone."""

from __future__ import annotations

import numpy as np

from hebbian_es.core.task import TEST, TRAIN, VALIDATION, episode_seeds
from hebbian_es.run.protocol import plan
from hebbian_es.run.protocol import test_lifetimes as lifetimes


def test_more_lifetimes_extend_fewer_instead_of_redrawing_them() -> None:
    env3, init3 = lifetimes(0, 3)
    env5, init5 = lifetimes(0, 5)
    env100, init100 = lifetimes(0, 100)
    assert np.array_equal(env5[:3], env3) and np.array_equal(init5[:3], init3)
    assert np.array_equal(env100[:5], env5) and np.array_equal(init100[:5], init5)
    for stream in (TRAIN, VALIDATION, TEST):  # every stream, not only the test protocol's
        short, long = episode_seeds(7, stream, 2, 3), episode_seeds(7, stream, 2, 8)
        assert all(np.array_equal(a, b[:3]) for a, b in zip(short, long))
    # a window of lifetimes is the same slice of the full list
    env_w, init_w = lifetimes(0, 4, first=37)
    assert np.array_equal(env_w, env100[37:41]) and np.array_equal(init_w, init100[37:41])


def test_the_protocol_plan_uses_the_same_lifetimes_on_every_body() -> None:
    episodes = plan(seed=3, episodes=4, n_envs=2)
    env, init = lifetimes(3, 4)
    assert np.array_equal(episodes.env_seeds, np.tile(env, 2)) and np.array_equal(episodes.init_seeds, np.tile(init, 2))


def test_streams_rounds_and_seeds_give_distinct_lifetimes_in_disjoint_env_seed_ranges() -> None:
    draws = {(s, r, seed): episode_seeds(seed, s, r, 50) for s in (TRAIN, VALIDATION, TEST) for r in (0, 1) for seed in (0, 1)}
    inits = [tuple(init) for _, init in draws.values()]
    assert len(set(inits)) == len(inits)  # no two rounds share their initial weights
    for (stream, _, _), (env, _) in draws.items():
        assert env.min() >= stream * (1 << 29) and env.max() < (stream + 1) * (1 << 29)
    assert len(set(episode_seeds(0, TEST, 0, 100)[0])) == 100
