"""analysis=video: a GIF of one lifetime with the step counter and the return so far, a PNG of
a few of its frames and the per-step reward."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from typing import Any, Optional

import numpy as np

from hebbian_es.analysis.args import CommonArgs, key
from hebbian_es.analysis.loaded import LoadedRun
from hebbian_es.analysis.outputs import Outputs, write_csv
from hebbian_es.analysis.plots import frames_plot
from hebbian_es.envs.runner import EnvRunner
from hebbian_es.envs.spec import EnvSpec
from hebbian_es.errors import ConfigError

SUMMARY = "a GIF of one lifetime with the step counter"
VIDEO_FRAMES = 250  # the default frame stride keeps a full episode to about this many frames


@dataclass
class Args(CommonArgs):
    episode: int = key(0, "the test lifetime", low=0)
    every: Optional[int] = key(None, f"a frame every k steps; null: ceil(episode length / {VIDEO_FRAMES})", low=1)
    fps: float = key(30.0, "frames per second of the GIF", low=0.1)
    frames: int = key(6, "frames shown in the PNG", low=1)


class FrameRecorder(EnvRunner):
    """An env runner that renders rgb_array frames after reset and after every `every`-th step."""

    def __init__(self, spec: EnvSpec, every: int = 1) -> None:
        # rgb_array frames are drawn off-screen: without this, SDL probes for a display and
        # prints "error: XDG_RUNTIME_DIR is invalid..." on headless machines, then works anyway.
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        kwargs = {**spec.make_kwargs, "render_mode": "rgb_array"}
        try:
            super().__init__(replace(spec, make_kwargs=kwargs))
        except Exception as exc:
            raise ConfigError(f"env {spec.id} cannot be built with render_mode='rgb_array': {exc}") from None
        self.every = int(every)
        self.frames: list[tuple[int, float, np.ndarray]] = []
        self.total = 0.0

    def _grab(self) -> None:
        frame = self.env.render()
        if not isinstance(frame, np.ndarray) or frame.ndim != 3:
            raise ConfigError(f"env {self.spec.id} gave no rgb_array frame (render() returned {type(frame).__name__})")
        self.frames.append((self.steps, self.total, frame[..., :3].astype(np.uint8)))

    def reset(self, seed: int) -> Any:
        obs = super().reset(seed)
        self.frames, self.total = [], 0.0
        self._grab()
        return obs

    def step(self, action: Any) -> tuple[Any, float, bool]:
        obs, reward, done = super().step(action)
        self.total += reward if np.isfinite(reward) else 0.0
        if self.steps % self.every == 0 or done:
            self._grab()
        return obs, reward, done


def stamp(frame: np.ndarray, text: str) -> np.ndarray:
    """The frame with `text` in a dark box at the top left."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.fromarray(frame)
    draw = ImageDraw.Draw(img)
    size = max(12, frame.shape[0] // 20)
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    box = draw.textbbox((6, 4), text, font=font)
    draw.rectangle((box[0] - 4, box[1] - 3, box[2] + 4, box[3] + 3), fill=(0, 0, 0))
    draw.text((6, 4), text, fill=(255, 255, 255), font=font)
    return np.asarray(img)


def analyse(run: LoadedRun, a: Args, out: Outputs) -> None:
    import imageio.v3 as iio

    env_seeds, init_seeds = run.lifetimes(1, a.episode)
    for env in run.envs:
        every = a.every or max(1, math.ceil(run.horizon(env) / VIDEO_FRAMES))
        recorder = FrameRecorder(env, every)
        try:
            res, _ = run.rollout(env, run.params, env_seeds, init_seeds, runners=[recorder])
        finally:
            recorder.close()
        frames = [stamp(f, f"{env.name} | step {s} | return {tot:.1f}") for s, tot, f in recorder.frames]
        gif = out.path(f"video_{env.name}.gif")
        iio.imwrite(gif, frames, extension=".gif", duration=1000.0 / a.fps, loop=0)
        pick = np.unique(np.linspace(0, len(frames) - 1, min(a.frames, len(frames))).round().astype(int))
        frames_plot(
            [recorder.frames[i][2] for i in pick], [recorder.frames[i][0] for i in pick], [recorder.frames[i][1] for i in pick],
            out.path(f"video_{env.name}.png"), run.title(f"{env.name}: test lifetime {a.episode}, frames of {gif.name}"),
        )
        write_csv(
            out.path(f"video_{env.name}.csv"), ["step", "reward"],
            [[s, float(r)] for s, r in enumerate(res.rewards[0]) if np.isfinite(r)],
        )
        out.summary[env.name] = {
            "frames": len(frames), "every": every, "fps": a.fps, "steps": int(res.steps[0]), "return": float(res.returns[0]), "gif": gif.name,
        }
        out.say(f"{env.name}: {len(frames)} frames, every {every} steps ({int(res.steps[0])} steps, return {float(res.returns[0]):.1f}) -> {gif}")
