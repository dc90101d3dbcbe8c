"""CarRacing-v3 with the lean state renderer (render.py) and optional frame skip.

`gym.make("hebbian_es.envs.carracing:CarRacingFast-v0", supersampling=4, frame_skip=1)`
is gymnasium's CarRacing (a subclass: track generation, Box2D world, car dynamics,
tile rewards, terminations and every CarRacing kwarg untouched); only the 96x96
state it returns each step is drawn by `StateRenderer` instead of pygame.  The
`human` and `rgb_array` render modes are still gymnasium's.

supersampling (1, 2, 4, 8; default 4): the road is rasterised at this many times the
  96x96 output and box-averaged down.  Higher is closer to gymnasium's frame and
  slower (benchmarks/bench_carracing.py; README "CarRacing, fast").
frame_skip (integer >= 1; default 1, as the paper): each action is repeated this many
  physics steps, rewards summed, stopping at the first terminated or truncated step;
  only the last state is drawn.  The env's 1000-step limit (TimeLimit) then counts
  actions, i.e. up to 1000 x frame_skip physics steps: set env.max_episode_steps to
  keep the physics horizon.

The indicator bar is drawn inside its own 100 surface rows (gymnasium lets an
indicator longer than 4 bar heights, e.g. a wheel spinning faster than ~400 rad/s,
run up over the road; this one clips it there).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from gymnasium.envs.box2d.car_racing import CarRacing
from gymnasium.utils import EzPickle

from hebbian_es.envs.carracing.render import SUPERSAMPLING, StateRenderer
from hebbian_es.errors import ConfigError

ENV_ID = "CarRacingFast-v0"
DEFAULT_SUPERSAMPLING = 4

# The frame is small: cv2's thread pool costs more than it saves, and every ES
# worker is a process of its own already.
cv2.setNumThreads(1)


def check_options(supersampling: Any, frame_skip: Any) -> tuple[int, int]:
    """The two options, validated: one line naming the key and what is allowed."""
    integer = (int, np.integer)
    if isinstance(supersampling, bool) or not isinstance(supersampling, integer) or supersampling not in SUPERSAMPLING:
        raise ConfigError(f"env.make_kwargs.supersampling={supersampling!r}; allowed: {list(SUPERSAMPLING)}")
    if isinstance(frame_skip, bool) or not isinstance(frame_skip, integer) or frame_skip < 1:
        raise ConfigError(f"env.make_kwargs.frame_skip={frame_skip!r}; allowed: an integer >= 1 (1: no frame skip)")
    return int(supersampling), int(frame_skip)


class CarRacingFastEnv(CarRacing):
    """gymnasium's CarRacing whose state is drawn by render.StateRenderer."""

    def __init__(
        self,
        render_mode: str | None = None,
        verbose: bool = False,
        lap_complete_percent: float = 0.95,
        domain_randomize: bool = False,
        continuous: bool = True,
        supersampling: int = DEFAULT_SUPERSAMPLING,
        frame_skip: int = 1,
    ) -> None:
        self.supersampling, self.frame_skip = check_options(supersampling, frame_skip)
        super().__init__(render_mode, verbose, lap_complete_percent, domain_randomize, continuous)
        # pickling (vector envs) rebuilds with these options too, not the parent's
        EzPickle.__init__(
            self,
            render_mode=render_mode,
            verbose=verbose,
            lap_complete_percent=lap_complete_percent,
            domain_randomize=domain_randomize,
            continuous=continuous,
            supersampling=self.supersampling,
            frame_skip=self.frame_skip,
        )
        self.renderer = StateRenderer(self.supersampling)
        self._skip_state = False

    def _render(self, mode: str) -> Any:
        if mode != "state_pixels":
            return super()._render(mode)
        if self._skip_state or "t" not in self.__dict__:  # a repeated step nobody sees; before reset
            return None
        return self.renderer.render(self)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        if action is None or self.frame_skip == 1:  # reset's first, action-less step is never repeated
            return super().step(action)
        total = 0.0
        for i in range(self.frame_skip):
            self._skip_state = i < self.frame_skip - 1
            try:
                obs, reward, terminated, truncated, info = super().step(action)
            finally:
                self._skip_state = False
            total += float(reward)
            if terminated or truncated:
                break
        if obs is None:  # ended on a repeat whose state was not drawn
            obs = self.state = self.renderer.render(self)
        return obs, total, terminated, truncated, info
