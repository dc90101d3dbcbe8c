"""The pybullet quadruped (AntBulletEnv-v0) with generated morphologies.

`gym.make("hebbian_es.envs.ant:MorphAnt-v0", damages=[...])` is AntBulletEnv-v0 whose
body comes from a generated MJCF file; `random_damage={...}` draws a new damage
from the reset seed every episode (the env is rebuilt only when the body changes).
`reset_as_built=True` (default): every reset is the first reset of a newly built env, as in
the reference code, which makes a new env for each lifetime (AntBulletEnv-v0 itself adds the
floor to the parts whose mean is `body_xyz` at the end of its first reset, so a reused env's
later episodes start differently; then a lifetime's numbers depend on what ran before it on
that instance, and a resumed training run would not equal an uninterrupted one).
Wrappers set in conf/env/ant.yaml make the walked distance the reward
(`ProgressReward`) and take the reference code's zero-action settling steps
(`SettleSteps`).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import gymnasium as gym
import numpy as np

from hebbian_es.envs.ant.morphology import BodyChoice, Damage, generate_xml
from hebbian_es.envs.console import native_output_silenced

ENV_ID = "MorphAnt-v0"


def _ant_env(damages: Sequence[Damage], render_mode: str | None) -> gym.Env:
    from pybullet_envs_gymnasium.gym_locomotion_envs import AntBulletEnv

    env = AntBulletEnv(render_mode=render_mode)
    # pybullet_envs joins this onto pybullet_data's mjcf dir; an absolute path wins the join.
    env.robot.model_xml = str(generate_xml(damages))
    return env


class AntBodyEnv(gym.Env):
    """What both quadruped envs (MorphAnt-v0, FastAnt-v0) take: fixed damages, a random
    damage per episode, rgb_array rendering, and whether every reset is an env's first
    (reset_as_built; False: AntBulletEnv-v0's own later resets, the floor among the parts)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 60}

    def __init__(
        self,
        damages: Sequence[Mapping[str, Any]] | None = None,
        random_damage: Mapping[str, Any] | None = None,
        render_mode: str | None = None,
        reset_as_built: bool = True,
    ) -> None:
        self.render_mode = render_mode
        self.reset_as_built = bool(reset_as_built)
        self.body = BodyChoice(damages, random_damage)
        self._setup()

    def _setup(self) -> None:
        """The env's own construction, once `render_mode` and `body` are set."""
        raise NotImplementedError


class MorphAntEnv(AntBodyEnv):
    """AntBulletEnv-v0 with a given (or per-episode random) body."""

    def _setup(self) -> None:
        self.inner = _ant_env(self.body.damages, self.render_mode)
        self.observation_space = self.inner.observation_space
        self.action_space = self.inner.action_space

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        with native_output_silenced():  # pybullet's "argv[0]=" when the first reset connects
            if self.body.redraw(seed):
                self.inner.close()
                self.inner = _ant_env(self.body.damages, self.render_mode)
            if self.reset_as_built and self.inner.robot.parts is not None:
                # the floor joins the parts (and body_xyz's mean) again at the end of this reset
                self.inner.robot.parts.pop("floor", None)
            obs, info = self.inner.reset(seed=seed, options=options)
        info["damages"] = self.body.info()
        return obs, info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        return self.inner.step(action)

    @property
    def rewards(self) -> list[float]:
        return self.inner.rewards

    @property
    def body_xyz(self) -> Sequence[float]:
        return self.inner.robot.body_xyz

    def render(self) -> Any:
        return self.inner.render()

    def close(self) -> None:
        self.inner.close()


class ProgressReward(gym.Wrapper):
    """Reward = the env's progress term (`rewards[index]`): distance walked toward the target
    along +x, in the env's units (potential difference = distance / dt).  The env's total
    reward is kept in info["total_reward"]."""

    def __init__(self, env: gym.Env, index: int = 1) -> None:
        super().__init__(env)
        self.index = index

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        obs, total, terminated, truncated, info = self.env.step(action)
        info["total_reward"] = float(total)
        return obs, float(self.env.unwrapped.rewards[self.index]), terminated, truncated, info


class SettleSteps(gym.Wrapper):
    """`steps` zero-action steps after every reset so the body settles (reference code: 40).
    With count_in_limit (the reference's quirk) they use up steps of the episode's limit.
    `observe`: what the first forward pass sees: "reset" (the reset observation, as the
    reference code feeds it) or "settled" (the last settling observation: the body as it is)."""

    OBSERVE = ("reset", "settled")

    def __init__(self, env: gym.Env, steps: int = 40, count_in_limit: bool = True, observe: str = "settled") -> None:
        super().__init__(env)
        if observe not in self.OBSERVE:
            raise ValueError(f"SettleSteps observe={observe!r}; allowed: {list(self.OBSERVE)}")
        self.steps = int(steps)
        self.count_in_limit = bool(count_in_limit)
        self.observe = observe

    def reset(self, **kwargs: Any) -> tuple[Any, dict]:
        obs, info = self.env.reset(**kwargs)
        first = obs
        zero = np.zeros(self.env.action_space.shape, dtype=self.env.action_space.dtype)
        step = self.env.step if self.count_in_limit else self.env.unwrapped.step
        for _ in range(self.steps):
            # Only the step limit cuts settling short: a body lying down is what settling is for.
            obs, _, _, truncated, info = step(zero)
            if truncated:
                break
        return (first if self.observe == "reset" else obs), info


gym.register(id=ENV_ID, entry_point="hebbian_es.envs.ant.bullet:MorphAntEnv", max_episode_steps=1000)
