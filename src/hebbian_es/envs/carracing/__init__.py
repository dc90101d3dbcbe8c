"""CarRacing-v3 with a lean 96x96 state renderer (env.py, render.py).

Importing this package registers `hebbian_es.envs.carracing:CarRacingFast-v0`
(conf/env/carracing_fast.yaml): gymnasium's CarRacing physics, rewards and
terminations, its state drawn straight at 96x96 instead of through a 1000x800
pygame surface; tests/envs/test_carracing_fast.py steps both side by side.
"""

import gymnasium as gym

from hebbian_es.envs.carracing.env import ENV_ID

# as gymnasium registers CarRacing-v3
gym.register(
    id=ENV_ID,
    entry_point="hebbian_es.envs.carracing.env:CarRacingFastEnv",
    max_episode_steps=1000,
    reward_threshold=900,
)
