"""env.observation.append_reward: the last reward as one more input (off by default: reward-free lifetimes)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from hebbian_es.core.task import build_task
from hebbian_es.envs.reward_obs import AppendReward
from hebbian_es.envs.runner import EnvRunner
from hebbian_es.envs.spec import ObservationBatcher
from hebbian_es.errors import ConfigError


def test_the_observation_ends_with_the_last_reward(compose_config) -> None:
    plain = build_task(compose_config("network=small"))
    task = build_task(compose_config("network=small", "env.observation.append_reward=true"))
    assert not plain.envs[0].append_reward and task.envs[0].append_reward
    assert task.network.feature_size == plain.network.feature_size + 1 == 5
    assert task.counts()["plastic_synapses"] == plain.counts()["plastic_synapses"] + 32  # one more input to 32 hidden units
    runner, bare = EnvRunner(task.envs[0]), EnvRunner(plain.envs[0])
    obs, obs0 = runner.reset(3), bare.reset(3)
    assert obs.shape == (5,) and obs[-1] == 0.0 and np.array_equal(obs[:4], obs0)  # 0 after reset
    for _ in range(3):
        obs, r, _ = runner.step(1)
        obs0, r0, _ = bare.step(1)
        assert obs[-1] == r == r0 and np.array_equal(obs[:4], obs0)  # the env itself is unchanged
    batch = ObservationBatcher(task.envs[0].observation)([obs, obs])
    assert batch.shape == (2, 5) and float(batch[0, -1]) == r


def test_append_reward_needs_a_1d_box_observation() -> None:
    with pytest.raises(ConfigError, match="env.observation.append_reward=true needs a 1-D Box observation"):
        AppendReward(gym.make("FrozenLake-v1"))  # Discrete observations
