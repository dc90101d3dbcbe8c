"""`env.observation.append_reward=true`: the last reward as one more observation entry.

The paper's lifetimes are reward-free: the network never sees a reward, the rule alone
shapes it.  This wrapper is the opt-in exception (for neuromodulation experiments,
docs/plasticity.md): the observation becomes [obs, r_{t-1}], with r the reward the env
returns after every configured wrapper (for the quadruped: the progress term, the
fitness) and 0 after reset.  It is applied after the config's wrappers.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from hebbian_es.errors import ConfigError


class AppendReward(gym.Wrapper):
    """Observation [obs, last reward]; 1-D Box observations only."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
            raise ConfigError(
                f"env.observation.append_reward=true needs a 1-D Box observation; this env gives {space}; allowed: false"
            )
        low = np.append(space.low.astype(np.float32), np.float32(-np.inf))
        high = np.append(space.high.astype(np.float32), np.float32(np.inf))
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return self._with(obs, 0.0), info

    def step(self, action: Any) -> tuple[np.ndarray, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._with(obs, float(reward)), reward, terminated, truncated, info

    @staticmethod
    def _with(obs: Any, reward: float) -> np.ndarray:
        return np.append(np.asarray(obs, dtype=np.float32).reshape(-1), np.float32(reward))
