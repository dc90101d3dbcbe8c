"""Environments as data: everything env-specific comes from the env's config.

Observation preprocessing, action squashing, early stopping and episode length
are set in `conf/env/*.yaml` (schema: `hebbian_es.config.EnvConfig`); nothing here
branches on an environment's name.
Wrappers named in the config (Hydra `_target_` entries) change what an env
returns, e.g. which reward term counts as fitness.
"""

from __future__ import annotations

import difflib
import importlib
import math
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from hebbian_es.config import ActionConfig, EnvConfig, ObservationConfig
from hebbian_es.envs.variation import Variation
from hebbian_es.errors import ConfigError
from hebbian_es.numerics import pointwise


SQUASHES = {
    "identity": lambda x, low, high: x,
    "tanh": lambda x, low, high: torch.tanh(x),
    # through numerics.pointwise: torch's scalar tail would tie an action's last bit to the batch size
    "sigmoid": lambda x, low, high: pointwise(torch.sigmoid, x),
    "clip": lambda x, low, high: torch.clamp(x, low, high),
    # tanh, then mapped affinely onto the action space's [low, high]
    "rescale": lambda x, low, high: low + (torch.tanh(x) + 1.0) * 0.5 * (high - low),
}


@dataclass(frozen=True)
class ObservationSpec:
    """How a raw observation becomes network input."""

    kind: str  # "vector", "pixels" or "onehot"
    shape: tuple[int, ...]  # network input shape after preprocessing
    raw_shape: tuple[int, ...] = ()
    resize: tuple[int, int] | None = None
    crop: tuple[int, int, int, int] | None = None  # top, bottom, left, right (pixels kept)
    scale: float = 1.0
    n_values: int = 0  # Discrete observation size
    # "area": cv2.resize(INTER_AREA) on the uint8 frame, as the reference code's
    # gym ResizeObservation does (shrinking only); "bilinear_antialias": torch's
    # antialiased bilinear interpolation (what this project used before)
    interpolation: str = "area"


INTERPOLATIONS = ("area", "bilinear_antialias")


@dataclass(frozen=True)
class ActionSpec:
    kind: str  # "box" or "discrete"
    size: int  # network outputs
    squash: tuple[str, ...] = ()
    low: tuple[float, ...] = ()
    high: tuple[float, ...] = ()


@dataclass(frozen=True)
class EarlyStop:
    """Stop an episode once more than `patience` consecutive steps had negative reward,
    checked only after `min_steps` steps.  patience=None disables it.  window="after_min_steps"
    counts the streak only over steps t > min_steps (t from 0), as the reference code does."""

    patience: int | None = None
    min_steps: int = 0
    window: str = "all_steps"


EARLY_STOP_WINDOWS = ("all_steps", "after_min_steps")


@dataclass(frozen=True)
class EnvSpec:
    id: str
    make_kwargs: Mapping[str, Any] = field(default_factory=dict)
    wrappers: tuple[Mapping[str, Any], ...] = ()
    max_episode_steps: int | None = None
    observation: ObservationSpec | None = None
    action: ActionSpec | None = None
    early_stop: EarlyStop = EarlyStop()
    name: str = ""
    morphology_kwarg: str | None = None  # make kwarg that takes a list of damages, if the env has bodies
    solved_threshold: float | None = None  # a return at or above this counts as solved
    solved_tolerance: float = 10.0  # ... if the running return never falls more than this below its maximum after
    seen: bool | None = None  # test variants: was this body among the training ones?
    random_eval: bool = False  # one of morphology.random_eval's fixed random test bodies
    end_on_terminated: bool = True  # False: only truncation and early stop end an episode
    terminated_after: int | None = None  # terminated ends the episode only at steps t > this (t from 0)
    append_reward: bool = False  # the last reward appended to the observation (envs/reward_obs.py)
    vector: str | None = None  # module:Class of a batched numpy env (envs/vector): lifetimes stepped as arrays
    variation: Variation | None = None  # hidden per-lifetime variation (envs/variation.py), from the variation group


def _check_gym_id(env_id: str) -> None:
    if ":" in env_id:  # "module:EnvId" registers the id on import (gymnasium's own syntax)
        module, _, bare = env_id.partition(":")
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(f"env.id={env_id!r}: module {module!r} cannot be imported ({exc})") from None
        env_id = bare
    if env_id in gym.registry:
        return
    close = difflib.get_close_matches(env_id, list(gym.registry), n=5)
    hint = f"; close matches: {close}" if close else "; see gymnasium.registry for the allowed ids"
    raise ConfigError(f"env.id={env_id!r} is not a registered gymnasium id{hint}")


def make_gym_env(spec: EnvSpec) -> gym.Env:
    from hydra.utils import instantiate

    kwargs = dict(spec.make_kwargs)
    if spec.max_episode_steps is not None:
        kwargs["max_episode_steps"] = int(spec.max_episode_steps)
    env = gym.make(spec.id, **kwargs)
    for wrapper in spec.wrappers:
        env = instantiate(wrapper, env=env)
    if spec.variation is not None:
        from hebbian_es.envs.variation import Varied

        env = Varied(env, spec.variation, spec.vector, spec.make_kwargs)
    if spec.append_reward:
        from hebbian_es.envs.reward_obs import AppendReward

        env = AppendReward(env)
    return env


def build_env_spec(cfg: EnvConfig) -> EnvSpec:
    """Resolve an env config against the real env's spaces (builds one env to look)."""
    env_id = cfg.id
    if not env_id:
        raise ConfigError("env.id is missing; set env=<config or gymnasium id> or env.id=<gymnasium id>")
    _check_gym_id(env_id)
    max_steps = cfg.max_episode_steps
    if max_steps is not None and max_steps < 1:
        raise ConfigError(f"env.max_episode_steps must be >= 1 or null, got {max_steps}")
    patience = cfg.early_stop.patience
    if patience is not None and patience < 0:
        raise ConfigError(f"env.early_stop.patience must be >= 0 or null, got {patience}")
    if cfg.early_stop.window not in EARLY_STOP_WINDOWS:
        raise ConfigError(f"env.early_stop.window={cfg.early_stop.window!r}; allowed: {list(EARLY_STOP_WINDOWS)}")
    if cfg.terminated_after is not None and cfg.terminated_after < 0:
        raise ConfigError(f"env.terminated_after must be >= 0 or null, got {cfg.terminated_after}")
    base = EnvSpec(
        id=env_id,
        make_kwargs=dict(cfg.make_kwargs),
        wrappers=tuple(dict(w) for w in cfg.wrappers),
        max_episode_steps=max_steps,
        early_stop=EarlyStop(patience, cfg.early_stop.min_steps, cfg.early_stop.window),
        name=cfg.name,
        morphology_kwarg=cfg.morphology_kwarg,
        solved_threshold=cfg.solved_threshold,
        solved_tolerance=cfg.solved_tolerance,
        end_on_terminated=cfg.end_on_terminated,
        terminated_after=cfg.terminated_after,
        append_reward=cfg.observation.append_reward,
        vector=cfg.vector,
    )
    if cfg.vector is not None:
        _check_vector(base)
    try:
        env = make_gym_env(base)
    except ConfigError:
        raise
    except Exception as exc:  # a bad make_kwargs or wrapper: say which
        raise ConfigError(f"env.id={env_id!r} could not be built with make_kwargs/wrappers: {exc}") from exc
    try:
        obs = _observation_spec(env.observation_space, cfg.observation)
        act = _action_spec(env.action_space, cfg.action)
    finally:
        env.close()
    return replace(base, observation=obs, action=act)


def _check_vector(spec: EnvSpec) -> None:
    """env.vector: a batched env class that takes the env's make kwargs, and no wrappers (the
    batched path cannot apply gymnasium wrappers; the episode protocol it does apply)."""
    from hebbian_es.envs.vector import load_batch_env

    cls = load_batch_env(str(spec.vector))
    if spec.wrappers:
        raise ConfigError(
            f"env.vector={spec.vector!r} cannot apply env.wrappers ({len(spec.wrappers)} given); "
            "allowed: env.wrappers=[] with env.vector, or env.vector=null"
        )
    cls(**dict(spec.make_kwargs))  # an unsupported make kwarg is one line here


def _observation_spec(space: gym.Space, cfg: ObservationConfig) -> ObservationSpec:
    if isinstance(space, gym.spaces.Discrete):
        return ObservationSpec("onehot", (int(space.n),), n_values=int(space.n))
    if not isinstance(space, gym.spaces.Box):
        raise ConfigError(f"observation space {space} is not supported; allowed: Box, Discrete")
    kind = cfg.kind
    if kind == "auto":
        kind = "pixels" if len(space.shape) == 3 else "vector"
    if kind not in ("vector", "pixels"):
        raise ConfigError(f"env.observation.kind={kind!r}; allowed: ['auto', 'vector', 'pixels']")
    raw = tuple(int(d) for d in space.shape)
    # scale null: raw pixels are bytes (255), vectors are taken as they are (1)
    scale = float(cfg.scale) if cfg.scale is not None else (255.0 if kind == "pixels" else 1.0)
    if kind == "vector":
        n = int(np.prod(raw))
        return ObservationSpec("vector", (n,), raw_shape=raw, scale=scale)
    if len(raw) != 3:
        raise ConfigError(f"env.observation.kind=pixels needs an (H, W, C) observation, got shape {raw}")
    h, w, c = raw
    crop = None
    if cfg.crop is not None:
        if len(cfg.crop) != 4:
            raise ConfigError(f"env.observation.crop={list(cfg.crop)}: give [top, bottom, left, right]")
        top, bottom, left, right = cfg.crop
        if not (0 <= top < bottom <= h and 0 <= left < right <= w):
            raise ConfigError(f"env.observation.crop={list(cfg.crop)} is outside the {h}x{w} frame")
        h, w = bottom - top, right - left
        crop = (top, bottom, left, right)
    interpolation = cfg.interpolation
    if interpolation not in INTERPOLATIONS:
        raise ConfigError(f"env.observation.interpolation={interpolation!r}; allowed: {list(INTERPOLATIONS)}")
    resize = None
    if cfg.resize is not None:
        if len(cfg.resize) != 2:
            raise ConfigError(f"env.observation.resize={list(cfg.resize)}: give [height, width]")
        resize = (cfg.resize[0], cfg.resize[1])
        if interpolation == "area" and (resize[0] > h or resize[1] > w):
            raise ConfigError(
                f"env.observation.resize={list(resize)} enlarges the {h}x{w} frame; interpolation=area only"
                " shrinks: set env.observation.interpolation=bilinear_antialias"
            )
        h, w = resize
    return ObservationSpec(
        "pixels", (c, h, w), raw_shape=raw, resize=resize, crop=crop, scale=scale, interpolation=interpolation
    )


def _action_spec(space: gym.Space, cfg: ActionConfig) -> ActionSpec:
    if isinstance(space, gym.spaces.Discrete):
        return ActionSpec("discrete", int(space.n))
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise ConfigError(f"action space {space} is not supported; allowed: Box (1-D), Discrete")
    n = int(space.shape[0])
    squash = cfg.squash
    squash = [squash] * n if isinstance(squash, str) else list(squash)
    if len(squash) != n:
        raise ConfigError(f"env.action.squash has {len(squash)} entries for a {n}-dim action space")
    for s in squash:
        if s not in SQUASHES:
            raise ConfigError(f"env.action.squash={s!r} is not known; allowed: {sorted(SQUASHES)}")
    return ActionSpec(
        "box",
        n,
        tuple(squash),
        tuple(float(v) for v in space.low),
        tuple(float(v) for v in space.high),
    )


def area_weights(src: int, dst: int) -> tuple[int, torch.Tensor]:
    """cv2's INTER_AREA weights for shrinking an axis of `src` pixels to `dst` (dst <= src).

    Output pixel d averages the source interval [d·s, (d+1)·s), s = src/dst, each
    source pixel weighted by its overlap (cv2's computeResizeAreaTab).  With
    g = gcd(src, dst) the (dst, src) matrix is block-diagonal: g copies of one
    (dst/g, src/g) block, e.g. 96 -> 84: twelve 7x8 blocks.  Returns (g, block).
    """
    g = math.gcd(src, dst)
    p, q, scale = src // g, dst // g, src / dst
    block = torch.zeros(q, p, dtype=torch.float64)
    for d in range(q):
        f1 = d * scale
        f2, cell = f1 + scale, min(scale, src - f1)
        s1, s2 = math.ceil(f1), min(math.floor(f2), src)
        if s1 - f1 > 1e-3:
            block[d, s1 - 1] += (s1 - f1) / cell
        for k in range(s1, s2):
            block[d, k] += 1.0 / cell
        if s2 < src and f2 - s2 > 1e-3:
            block[d, s2] += min(f2 - s2, 1.0, cell) / cell
    return g, block.to(torch.float32)


class ObservationBatcher:
    """Turns a list of raw observations into a float32 network-input batch.

    Pixels come back as a (B, C, H, W) tensor whose memory is laid out (H, W, B, C):
    the channels-last layout in which the population's grouped convolution reads
    them without a copy (`PolicyPopulation.features`).
    """

    def __init__(self, spec: ObservationSpec) -> None:
        self.spec = spec
        self.area: tuple[tuple[int, torch.Tensor] | None, ...] = ()
        if spec.kind == "pixels" and spec.resize is not None and spec.interpolation == "area":
            _, h, w = spec.shape
            if spec.crop is not None:
                top, bottom, left, right = spec.crop
                src = (bottom - top, right - left)
            else:
                src = spec.raw_shape[:2]
            self.area = tuple(None if a == b else area_weights(a, b) for a, b in zip(src, (h, w)))

    def __call__(self, raw: Sequence[Any]) -> torch.Tensor:
        s = self.spec
        if s.kind == "onehot":
            idx = torch.as_tensor(np.asarray(raw, dtype=np.int64))
            return F.one_hot(idx, s.n_values).to(torch.float32)
        # a batched env's (B, n) array is copied too: the update after the env step reads this input
        x = torch.from_numpy(np.array(raw) if isinstance(raw, np.ndarray) else np.stack(raw))
        if s.kind == "vector":
            x = x.reshape(len(raw), -1).to(torch.float32)
            return x / s.scale if s.scale != 1.0 else x
        if s.crop is not None:
            top, bottom, left, right = s.crop
            x = x[:, top:bottom, left:right]
        if self.area:
            return self._area(x)
        x = x.permute(0, 3, 1, 2).to(torch.float32).div_(s.scale)
        if s.resize is not None and tuple(x.shape[-2:]) != s.resize:
            x = F.interpolate(x, size=s.resize, mode="bilinear", align_corners=False, antialias=True)
        return x.permute(2, 3, 0, 1).contiguous().permute(2, 3, 0, 1)

    def _area(self, x: torch.Tensor) -> torch.Tensor:
        """INTER_AREA on (B, H, W, C) frames: two block-diagonal matmuls, one per axis,
        the first on (B, H, W, C), the second on (H', W, B, C); uint8 input is rounded to
        uint8 levels as cv2 returns it, then scaled.  Equal to cv2.resize(frame, (W', H'),
        interpolation=cv2.INTER_AREA) / scale up to float rounding in the sums."""
        b, h, w, c = x.shape
        rounded = x.dtype == torch.uint8
        x = x.to(torch.float32, memory_format=torch.contiguous_format)
        rows, cols = self.area
        if rows is not None:
            g, block = rows
            x = torch.matmul(block, x.view(b, g, h // g, w * c))
            h = x.shape[1] * x.shape[2]
        y = torch.empty(h, w, b, c)
        y.copy_(x.view(b, h, w, c).permute(1, 2, 0, 3))
        if cols is not None:
            g, block = cols
            y = torch.matmul(block, y.view(h, g, w // g, b * c))
            w = y.shape[1] * y.shape[2]
        y = y.view(h, w, b, c)
        if rounded:
            y.round_()
        if self.spec.scale != 1.0:
            y.div_(self.spec.scale)
        return y.permute(2, 3, 0, 1)


class ActionMapper:
    """Turns network outputs (B, n) into env actions, per the env's config."""

    def __init__(self, spec: ActionSpec) -> None:
        self.spec = spec
        if spec.kind == "box":
            self.low = torch.tensor(spec.low)
            self.high = torch.tensor(spec.high)
            self.groups = {}
            for i, name in enumerate(spec.squash):
                self.groups.setdefault(name, []).append(i)

    def __call__(self, out: torch.Tensor) -> np.ndarray:
        if self.spec.kind == "discrete":
            return out.argmax(dim=1).numpy()
        if len(self.groups) == 1:
            (name,) = self.groups
            return SQUASHES[name](out, self.low, self.high).numpy()
        act = torch.empty_like(out)
        for name, idx in self.groups.items():
            act[:, idx] = SQUASHES[name](out[:, idx], self.low[idx], self.high[idx])
        return act.numpy()
