"""`python -m hebbian_es.analyze analysis=<name> run=<dir> [key=value ...]`: the paper's analyses.

analysis=  freeze               Hebbian updates stop after k steps: return vs k (Fig. 3 left)
           actuator_saturation  outputs forced to 1.0 during [t0, t1): reward vs time, recovery (Fig. 3 right)
           weight_zeroing       a fraction of the weights zeroed at step t: reward, heatmaps, recovery (Fig. 4)
           pca                  3-D PCA trajectory of the plastic weights, evolved vs random rule (Fig. 5)
           weights              weight heatmaps at chosen steps over the reward curve (Fig. 1)
           video                a GIF of one lifetime with the step counter
           static_vs_hebbian    one perturbation on a Hebbian and a static run (static=<dir>), overlaid

Every analysis rebuilds the task from <run>/config.yaml, loads the run's checkpoint
(checkpoint=last|best), runs lifetimes through the one rollout loop with the
perturbation as a hook, and writes a PNG, its raw data (CSV/NPZ) and a JSON summary
into <run>/analysis/ (out=<dir> to change); with the run's logger.wandb set, also to
W&B.  Envs with bodies (env=ant) are analysed per test body (bodies=...).

Common keys: checkpoint=last  seed=<run's seed>  bodies=<named test bodies>|all|[a,b]
             early_stop=false  batch_size=<run's evaluator.batch_size>  out=<run>/analysis
freeze:               episodes=5 ks=<grid up to the episode length>
actuator_saturation:  episodes=3 t0=300 t1=400 value=1.0 clamp=output|action smooth=20 baseline=100
weight_zeroing:       episodes=3 t=300 fraction=0.3333 mode=band|random position=0.5 mask_seed=0
                      after=10 smooth=20 baseline=100
pca:                  episode=0 every=1 random_seed=0
weights:              episode=0 steps=<[0, 10, 30, 100, end]>
video:                episode=0 every=<ceil(episode length / 250)> fps=30 frames=6
static_vs_hebbian:    static=<static run dir> perturbation=actuator_saturation|weight_zeroing
                      episodes=3 and that perturbation's keys

Lifetime i of every analysis is lifetime i of `python -m hebbian_es.evaluate`'s
default 100-lifetime test protocol (same env seed, same initial weights).
docs/analyses.md explains each plot.
"""

from __future__ import annotations

import csv
import math
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from omegaconf import OmegaConf

from hebbian_es import perturbations as pert
from hebbian_es.envs import ActionMapper, EnvPool, EnvRunner, EnvSpec, ObservationBatcher
from hebbian_es.errors import ConfigError, run_command
from hebbian_es.loggers import write_json
from hebbian_es.rollout import LifetimeResult, RecordSpec, run_lifetimes
from hebbian_es.task import TEST, Task, build_task, episode_seeds

TEST_PROTOCOL_EPISODES = 100  # lifetime i here = lifetime i of evaluate's default test protocol
VIDEO_FRAMES = 250  # video's default frame stride keeps a full episode to about this many frames

SATURATION_KEYS: dict[str, Any] = {"t0": 300, "t1": 400, "value": 1.0, "clamp": "output", "smooth": 20, "baseline": 100}
ZEROING_KEYS: dict[str, Any] = {
    "t": 300, "fraction": 1 / 3, "mode": "band", "position": 0.5, "mask_seed": 0, "after": 10, "smooth": 20, "baseline": 100,
}
COMMON_KEYS: dict[str, Any] = {
    "analysis": None, "run": None, "checkpoint": "last", "seed": None, "bodies": None,
    "early_stop": False, "batch_size": None, "out": None,
}
ANALYSIS_KEYS: dict[str, dict[str, Any]] = {
    "freeze": {"episodes": 5, "ks": None},
    "actuator_saturation": {"episodes": 3, **SATURATION_KEYS},
    "weight_zeroing": {"episodes": 3, **ZEROING_KEYS},
    "pca": {"episode": 0, "every": 1, "random_seed": 0},
    "weights": {"episode": 0, "steps": None},
    "video": {"episode": 0, "every": None, "fps": 30, "frames": 6},
    "static_vs_hebbian": {"static": None, "perturbation": "actuator_saturation", "episodes": 3, **SATURATION_KEYS, **ZEROING_KEYS},
}
ANALYSES = tuple(ANALYSIS_KEYS)
PERTURBATIONS = ("actuator_saturation", "weight_zeroing")
CLAMPS = ("output", "action")


# ---- arguments -----------------------------------------------------------------------------
@dataclass
class Args:
    analysis: str
    values: dict[str, Any]

    def __getattr__(self, key: str) -> Any:
        try:
            return self.__dict__["values"][key]
        except KeyError:
            raise AttributeError(key) from None


def parse_args(argv: Sequence[str]) -> Args:
    """key=value arguments; the analysis decides which keys exist.  Bad input: ConfigError."""
    pairs: dict[str, str] = {}
    for arg in argv:
        if "=" not in arg:
            raise ConfigError(f"argument {arg!r} is not key=value; usage: analysis=<{'|'.join(ANALYSES)}> run=<run dir> [key=value ...]")
        key, value = arg.split("=", 1)
        pairs[key] = value
    name = pairs.get("analysis")
    if not name:
        raise ConfigError(f"analysis=<name> is required; allowed: {', '.join(ANALYSES)}")
    if name not in ANALYSIS_KEYS:
        raise ConfigError(f"analysis={name!r} is not an analysis; allowed: {', '.join(ANALYSES)}")
    defaults = {**COMMON_KEYS, **ANALYSIS_KEYS[name]}
    for key in pairs:
        if key not in defaults:
            raise ConfigError(f"unknown key {key!r} for analysis={name}; allowed: {', '.join(k + '=' for k in defaults)}")
    try:
        given = OmegaConf.to_container(OmegaConf.from_dotlist([f"{k}={v}" for k, v in pairs.items()]))
    except Exception as exc:
        raise ConfigError(str(exc).splitlines()[0]) from None
    values = {**defaults, **given}  # type: ignore[dict-item]
    if not values["run"]:
        raise ConfigError("run=<run dir> is required")
    args = Args(name, values)
    _check_values(args)
    return args


def _number(args: Args, key: str, kind: type, low: float | None = None, high: float | None = None) -> None:
    v = args.values[key]
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and (kind is float or float(v).is_integer())
    if ok and kind is int:
        args.values[key] = v = int(v)
    elif ok:
        args.values[key] = v = float(v)
    if not ok or (low is not None and v < low) or (high is not None and v > high):
        what = "an integer" if kind is int else "a number"
        lo = "" if low is None else (f" >= {low}" if high is None else f" in [{low}, {high}]")
        raise ConfigError(f"{key}={v!r}: must be {what}{lo}")


def _choice(args: Args, key: str, allowed: Sequence[str]) -> None:
    if args.values[key] not in allowed:
        raise ConfigError(f"{key}={args.values[key]!r}; allowed: {', '.join(allowed)}")


def _int_list(args: Args, key: str) -> None:
    v = args.values[key]
    if v is None:
        return
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        v = [v]
    if not isinstance(v, list) or not v or not all(isinstance(x, int) and not isinstance(x, bool) for x in v):
        raise ConfigError(f"{key}={v!r}: must be a non-empty list of integers, e.g. {key}=[0,10,50]")
    args.values[key] = sorted(set(v))


def _check_values(a: Args) -> None:
    """Checks that need no run: types and ranges.  Windows are checked against the episode later."""
    v = a.values
    _choice(a, "checkpoint", ("last", "best"))
    if not isinstance(v["early_stop"], bool):
        raise ConfigError(f"early_stop={v['early_stop']!r}: must be true or false")
    for key in ("seed", "batch_size"):
        if v[key] is not None:
            _number(a, key, int, 0 if key == "seed" else 1)
    if "episodes" in v:
        _number(a, "episodes", int, 1)
    if "episode" in v:
        _number(a, "episode", int, 0)
    if "ks" in v:
        _int_list(a, "ks")
    if "steps" in v:
        _int_list(a, "steps")
    if "t0" in v:
        for key in ("t0", "t1"):
            _number(a, key, int)
        _number(a, "value", float)
        _choice(a, "clamp", CLAMPS)
    if "t" in v:
        _number(a, "t", int)
        _number(a, "fraction", float, 0.0, 1.0)
        _choice(a, "mode", pert.ZERO_MODES)
        _number(a, "position", float, 0.0, 1.0)
        _number(a, "mask_seed", int, 0)
        _number(a, "after", int, 1)
    if "smooth" in v:
        _number(a, "smooth", int, 1)
        _number(a, "baseline", int, 1)
    if a.analysis == "pca":
        _number(a, "every", int, 1)
        _number(a, "random_seed", int, 0)
    if a.analysis == "video":
        if v["every"] is not None:
            _number(a, "every", int, 1)
        _number(a, "fps", float, 0.1)
        _number(a, "frames", int, 1)
    if a.analysis == "static_vs_hebbian":
        if not v["static"]:
            raise ConfigError("static=<run dir of a rule=static run> is required for analysis=static_vs_hebbian")
        _choice(a, "perturbation", PERTURBATIONS)


# ---- a loaded run ----------------------------------------------------------------------------
class LoadedRun:
    """A run directory's task (test bodies), checkpoint and the lifetimes the analyses run."""

    def __init__(
        self, run: str, which: str = "last", seed: int | None = None, early_stop: bool = False,
        bodies: Any = None, batch_size: int | None = None, key: str = "run",
    ) -> None:
        from hebbian_es import checkpoint
        from hebbian_es.training import without_early_stop

        self.dir, cfg, path = checkpoint.open_run(run, which, key)
        self.cfg = cfg
        self.task: Task = build_task(cfg if early_stop else without_early_stop(cfg), phase="test")
        saved = checkpoint.load(path)
        checkpoint.check_compatible(saved["task"], self.task.fingerprint(), path)
        self.checkpoint, self.generation = path, int(saved["generation"])
        self.params = saved["params"].detach().to(torch.float32).reshape(-1)
        self.seed = int(cfg["seed"] if seed is None else seed)
        self.batch_size = int(batch_size or cfg.get("evaluator", {}).get("batch_size", 64))
        self.envs = select_bodies(self.task.envs, bodies)
        self.pool = EnvPool()
        self._horizons: dict[str, int] = {}

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def rule(self) -> str:
        return self.task.rule.name

    @property
    def plastic(self) -> bool:
        return self.task.rule.plastic and bool(self.task.network.plastic_indices(self.task.rule))

    def perturbed_layers(self) -> list[int]:
        """The plastic FC layers; every FC layer of a static network."""
        plastic = self.task.network.plastic_indices(self.task.rule)
        return list(plastic) if plastic else list(range(len(self.task.network.fc_shapes)))

    def lifetimes(self, n: int, first: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(env seeds, init seeds) of test lifetimes first..first+n-1, as evaluate runs them."""
        env, init = episode_seeds(self.seed, TEST, 0, max(first + n, TEST_PROTOCOL_EPISODES))
        return env[first : first + n], init[first : first + n]

    def horizon(self, env: EnvSpec) -> int:
        """Steps an episode can last: what the env's time limit leaves after reset (the ant's
        settling steps count inside its limit), capped by env.step_limit."""
        if env.name not in self._horizons:
            runner = self.pool.get(env, 1)[0]
            runner.reset(int(self.lifetimes(1)[0][0]))
            self._horizons[env.name] = min(self.task.max_steps, steps_left(runner.env))
        return self._horizons[env.name]

    def rollout(
        self,
        env: EnvSpec,
        params: torch.Tensor,
        env_seeds: Sequence[int],
        init_seeds: Sequence[int],
        hooks: Sequence[Any] = (),
        record: RecordSpec = RecordSpec(rewards=True),
        runners: Sequence[EnvRunner] | None = None,
    ) -> tuple[LifetimeResult, Any]:
        """One batch of lifetimes (row b: params[b]) through the one rollout loop."""
        rows = params if params.dim() == 2 else params.unsqueeze(0).repeat(len(env_seeds), 1)
        policy = self.task.policy(rows.contiguous())
        runners = list(runners) if runners is not None else self.pool.get(env, len(env_seeds))
        result = run_lifetimes(
            policy, runners, [int(s) for s in env_seeds], [int(s) for s in init_seeds],
            ObservationBatcher(env.observation), ActionMapper(env.action), self.task.max_steps, hooks, record,
        )
        return result, policy

    def describe(self) -> dict[str, Any]:
        return {
            "run": str(self.dir), "checkpoint": str(self.checkpoint), "checkpoint_generation": self.generation,
            "rule": self.rule, "env": self.cfg["env"].get("name"), "env_id": self.task.envs[0].id, "seed": self.seed,
        }

    def close(self) -> None:
        self.pool.close()


def steps_left(env: Any) -> int:
    """Steps the innermost gymnasium TimeLimit allows after the reset just done (a huge number if none)."""
    import gymnasium as gym

    left = sys.maxsize
    while env is not None:
        if isinstance(env, gym.wrappers.TimeLimit):
            left = min(left, int(env._max_episode_steps) - int(env._elapsed_steps))
        env = getattr(env, "env", None) if isinstance(env, gym.Wrapper) else None
    return left


def select_bodies(envs: Sequence[EnvSpec], bodies: Any) -> list[EnvSpec]:
    """Default: the named test bodies (morphology.test), not the fixed random damages."""
    names = [e.name for e in envs]
    if bodies is None:
        chosen = [e for e in envs if not e.random_eval]
        return chosen or list(envs)
    if bodies == "all":
        return list(envs)
    wanted = [bodies] if isinstance(bodies, str) else bodies
    if not isinstance(wanted, list) or not wanted or not all(isinstance(b, str) for b in wanted):
        raise ConfigError(f"bodies={bodies!r}: give a body name, a list [a,b] or all; allowed names: {', '.join(names)}")
    unknown = [b for b in wanted if b not in names]
    if unknown:
        raise ConfigError(f"bodies={unknown} not among this run's test envs; allowed: {', '.join(names)}, all")
    return [e for e in envs if e.name in wanted]


# ---- outputs ---------------------------------------------------------------------------------
@dataclass
class Outputs:
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    def path(self, name: str) -> Path:
        p = self.out_dir / name
        self.files.append(p)
        return p

    def say(self, line: str) -> None:
        self.lines.append(line)
        print(line, flush=True)


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:
            writer.writerow(["" if isinstance(x, float) and math.isnan(x) else x for x in row])


def reward_rows(tag: Sequence[Any], perturbed: np.ndarray, unperturbed: np.ndarray) -> list[list[Any]]:
    """Long-format rows (…tag, episode, step, reward, reward_unperturbed) up to the longer episode."""
    rows = []
    for ep in range(perturbed.shape[0]):
        p, u = perturbed[ep], unperturbed[ep]
        n = max(_length(p), _length(u))
        for s in range(n):
            rows.append([*tag, ep, s, _num(p, s), _num(u, s)])
    return rows


def _length(r: np.ndarray) -> int:
    ended = ~np.isfinite(r)
    return int(np.argmax(ended)) if ended.any() else len(r)


def _num(r: np.ndarray, s: int) -> float:
    return float(r[s]) if s < len(r) and np.isfinite(r[s]) else float("nan")


def _pad(rewards: np.ndarray, length: int) -> np.ndarray:
    out = np.full((rewards.shape[0], length), np.nan)
    out[:, : rewards.shape[1]] = rewards[:, :length]
    return out


def stats(x: Sequence[float]) -> dict[str, float]:
    a = np.asarray([v for v in x if v is not None and np.isfinite(v)], dtype=np.float64)
    if not len(a):
        return {"mean": float("nan"), "sd": float("nan"), "n": 0}
    return {"mean": float(a.mean()), "sd": float(a.std()), "n": int(len(a))}


def _fmt(s: Mapping[str, float], unit: str = "") -> str:
    return "n/a" if not s["n"] else f"{s['mean']:.1f} ± {s['sd']:.1f}{unit}"


# ---- freeze (Fig. 3 left) ----------------------------------------------------------------------
def default_ks(horizon: int) -> list[int]:
    grid = [0, 5, 10, 20, 30, 40, 50, 60, 80, 100, 150, 200, 300, 400, 600, 800]
    return sorted({k for k in grid if k < horizon} | {horizon})


def run_freeze(run: LoadedRun, a: Args, out: Outputs) -> None:
    from hebbian_es.analysis_plots import freeze_plot

    if not run.plastic:
        raise ConfigError(f"analysis=freeze needs a plastic rule; run={str(run.dir)!r} has rule={run.rule}")
    horizons = {e.name: run.horizon(e) for e in run.envs}
    h = min(horizons.values())
    ks = a.ks if a.ks is not None else default_ks(h)
    bad = [k for k in ks if not 0 <= k <= h]
    if bad:
        raise ConfigError(f"ks={bad}: each k must be in 0..{h} (the episode's length in steps)")
    env_seeds, init_seeds = run.lifetimes(a.episodes)
    rows: list[list[Any]] = []
    curves: dict[str, dict[str, Any]] = {}
    for env in run.envs:
        never, _ = run.rollout(env, run.params, env_seeds, init_seeds, record=RecordSpec())
        plan = [(k, ep) for k in ks for ep in range(a.episodes)]
        returns = np.zeros(len(plan))
        for start in range(0, len(plan), run.batch_size):
            chunk = plan[start : start + run.batch_size]
            hook = pert.FreezePlasticity([k for k, _ in chunk])
            res, _ = run.rollout(
                env, run.params, [env_seeds[ep] for _, ep in chunk], [init_seeds[ep] for _, ep in chunk], [hook], RecordSpec()
            )
            returns[start : start + len(chunk)] = res.returns
        by_k = returns.reshape(len(ks), a.episodes)
        for (k, ep), r in zip(plan, returns):
            rows.append([env.name, k, ep, int(env_seeds[ep]), int(init_seeds[ep]), float(r)])
        for ep, r in enumerate(never.returns):
            rows.append([env.name, "never", ep, int(env_seeds[ep]), int(init_seeds[ep]), float(r)])
        nv = stats(never.returns)
        means = np.array([stats(r)["mean"] for r in by_k])
        settled = converged_k(ks, means, nv["mean"] - nv["sd"])
        curves[env.name] = {"ks": ks, "returns": by_k, "never": never.returns, "horizon": horizons[env.name]}
        out.summary[env.name] = {
            "never_frozen": nv,
            "by_k": {str(k): stats(r) for k, r in zip(ks, by_k)},
            "converged_k": settled,
        }
        out.say(
            f"{env.name}: never frozen {_fmt(nv)}; frozen after k=0: {_fmt(stats(by_k[0]))}; "
            f"first k whose mean return reaches the never-frozen mean - sd: {settled if settled is not None else 'none'}"
        )
    write_csv(out.path("freeze.csv"), ["body", "k", "episode", "env_seed", "init_seed", "return"], rows)
    freeze_plot(curves, out.path("freeze.png"), _title(run, f"Hebbian updates frozen after k steps ({a.episodes} lifetimes per k)"))


def converged_k(ks: Sequence[int], means: np.ndarray, threshold: float) -> int | None:
    """Smallest k whose mean return reaches `threshold` (None: none does)."""
    hit = np.flatnonzero(np.asarray(means) >= threshold)
    return int(ks[hit[0]]) if len(hit) else None


# ---- actuator saturation / weight zeroing (Fig. 3 right, Fig. 4) -------------------------------
@dataclass
class Curves:
    """Per-step rewards of the same lifetimes with and without the perturbation."""

    body: str
    perturbed: np.ndarray  # (episodes, T) NaN after the end
    unperturbed: np.ndarray
    window: tuple[int, int]  # perturbation steps [start, end); zeroing: (t, t)
    recoveries: list[pert.Recovery]
    extra: dict[str, Any] = field(default_factory=dict)


def check_window(a: Args, kind: str, horizon: int) -> None:
    if kind == "actuator_saturation":
        if not 0 <= a.t0 < a.t1 <= horizon:
            raise ConfigError(
                f"t0={a.t0}, t1={a.t1}: the window [t0, t1) must lie inside the episode, 0 <= t0 < t1 <= {horizon} "
                f"(its length in steps)"
            )
    else:
        if not 0 <= a.t < horizon:
            raise ConfigError(f"t={a.t}: the zeroing step must lie inside the episode, 0 <= t < {horizon} (its length in steps)")
        if a.t + a.after >= horizon:
            raise ConfigError(f"after={a.after}: t + after = {a.t + a.after} must be < {horizon} (the episode's length in steps)")


def perturb(run: LoadedRun, env: EnvSpec, a: Args, kind: str) -> Curves:
    """The perturbed and the unperturbed lifetimes (same seeds) of one body, and recovery times."""
    env_seeds, init_seeds = run.lifetimes(a.episodes)
    base, _ = run.rollout(env, run.params, env_seeds, init_seeds)
    extra: dict[str, Any] = {}
    if kind == "actuator_saturation":
        hook: Any = (pert.ClampOutputs if a.clamp == "output" else pert.ClampActions)(a.t0, a.t1, a.value)
        hooks: list[Any] = [hook]
        start, end = a.t0, a.t1
    else:
        layers = run.perturbed_layers()
        shapes = run.task.network.fc_shapes
        masks = {l: pert.zero_mask(shapes[l][0] * shapes[l][1], a.fraction, a.mode, a.position, a.mask_seed + l) for l in layers}
        snaps = pert.WeightSnapshots([s for s in (a.t - 1, a.t, a.t + a.after) if s >= 0])
        hooks = [pert.ZeroWeights(a.t, masks), snaps]
        start = end = a.t
        extra = {"masks": masks, "layers": layers, "snapshots": snaps}
    res, _ = run.rollout(env, run.params, env_seeds, init_seeds, hooks)
    t = max(res.rewards.shape[1], base.rewards.shape[1])
    p, u = _pad(res.rewards, t), _pad(base.rewards, t)
    recs = [pert.recovery(p[i], start, end, a.smooth, a.baseline) for i in range(len(p))]
    return Curves(env.name, p, u, (start, end), recs, extra)


def recovery_summary(c: Curves) -> dict[str, Any]:
    return {
        "recovery_steps": stats([r.steps for r in c.recoveries if r.steps is not None]),
        "recovered": sum(r.status == "recovered" for r in c.recoveries),
        "episodes": len(c.recoveries),
        "per_episode": [
            {"level": r.level, "recovery_steps": r.steps, "recovered_at": r.at, "status": r.status} for r in c.recoveries
        ],
        "return_perturbed": stats(np.nansum(c.perturbed, axis=1)),
        "return_unperturbed": stats(np.nansum(c.unperturbed, axis=1)),
    }


def _recovery_line(c: Curves, label: str = "") -> str:
    s = recovery_summary(c)
    counts: dict[str, int] = {}
    for r in c.recoveries:
        if r.status != "recovered":
            counts[r.status] = counts.get(r.status, 0) + 1
    other = "".join(f"; {n} {status}" for status, n in sorted(counts.items()))
    after = f" after {_fmt(s['recovery_steps'], ' steps')}" if s["recovered"] else ""
    return (
        f"{label}{c.body}: recovered in {s['recovered']}/{s['episodes']} lifetimes{after}{other}; "
        f"return {_fmt(s['return_perturbed'])} perturbed vs {_fmt(s['return_unperturbed'])} unperturbed"
    )


def _window_text(a: Args, kind: str) -> str:
    if kind == "actuator_saturation":
        what = "output units" if a.clamp == "output" else "env actions"
        return f"all {what} forced to {a.value:g} during steps [{a.t0}, {a.t1})"
    how = "one contiguous band" if a.mode == "band" else "at random"
    return f"{a.fraction:.1%} of each layer's weights zeroed ({how}) at step {a.t}"


def run_saturation(run: LoadedRun, a: Args, out: Outputs) -> None:
    from hebbian_es.analysis_plots import perturbation_plot

    for env in run.envs:
        check_window(a, "actuator_saturation", run.horizon(env))
    curves = [perturb(run, env, a, "actuator_saturation") for env in run.envs]
    rows = [r for c in curves for r in reward_rows([c.body], c.perturbed, c.unperturbed)]
    write_csv(out.path("actuator_saturation.csv"), ["body", "episode", "step", "reward", "reward_unperturbed"], rows)
    for c in curves:
        out.summary[c.body] = recovery_summary(c)
        out.say(_recovery_line(c))
    perturbation_plot(
        {"": curves}, out.path("actuator_saturation.png"),
        _title(run, f"actuator saturation: {_window_text(a, 'actuator_saturation')}"), a.smooth, reward_label(run),
    )


def run_zeroing(run: LoadedRun, a: Args, out: Outputs) -> None:
    from hebbian_es.analysis_plots import zeroing_plot

    for env in run.envs:
        check_window(a, "weight_zeroing", run.horizon(env))
    rows: list[list[Any]] = []
    for env in run.envs:
        c = perturb(run, env, a, "weight_zeroing")
        rows += reward_rows([c.body], c.perturbed, c.unperturbed)
        snaps: pert.WeightSnapshots = c.extra["snapshots"]
        layers, masks = c.extra["layers"], c.extra["masks"]
        zeroed = sum(len(m) for m in masks.values())
        total = sum(run.task.network.fc_shapes[l][0] * run.task.network.fc_shapes[l][1] for l in layers)
        out.summary[c.body] = {**recovery_summary(c), "zeroed_weights": zeroed, "of_weights": total, "layers": layers}
        out.say(f"{c.body}: zeroed {zeroed:,} of {total:,} weights ({zeroed / total:.1%}) in layers {layers} at step {a.t}")
        out.say(_recovery_line(c))
        heat = {s: [w[0] for w in ws] for s, ws in sorted(snaps.taken.items())}  # lifetime 0
        npz = {"layers": np.asarray(layers), "steps": np.asarray(sorted(heat))}
        for s, ws in heat.items():
            for l in layers:
                npz[f"step{s}_fc{l}"] = ws[l]
        for l in layers:
            npz[f"mask_fc{l}"] = masks[l]
        npz["rewards"], npz["rewards_unperturbed"] = c.perturbed, c.unperturbed
        np.savez_compressed(out.path(f"weight_zeroing_{c.body}.npz"), **npz)
        zeroing_plot(
            c, {s: [ws[l] for l in layers] for s, ws in heat.items()}, [f"fc{l}" for l in layers], a,
            out.path(f"weight_zeroing_{c.body}.png"),
            _title(run, f"{c.body}: {_window_text(a, 'weight_zeroing')}"), reward_label(run),
        )
    write_csv(out.path("weight_zeroing.csv"), ["body", "episode", "step", "reward", "reward_unperturbed"], rows)


# ---- static vs Hebbian -------------------------------------------------------------------------
def run_static_vs_hebbian(run: LoadedRun, a: Args, out: Outputs) -> None:
    from hebbian_es.analysis_plots import perturbation_plot

    if not run.plastic:
        raise ConfigError(f"run={str(run.dir)!r} has rule={run.rule}; give the Hebbian run as run= and the static one as static=")
    static = LoadedRun(a.static, a.checkpoint, a.seed, a.early_stop, a.bodies, a.batch_size, key="static")
    try:
        if static.rule != "static":
            raise ConfigError(f"static={a.static!r} has rule={static.rule}; it must be a rule=static run")
        if static.task.envs[0].id != run.task.envs[0].id:
            raise ConfigError(f"static={a.static!r} ran env {static.task.envs[0].id}, run= ran {run.task.envs[0].id}; they must match")
        names = [e.name for e in run.envs]
        if [e.name for e in static.envs] != names:
            raise ConfigError(f"the runs' test bodies differ ({names} vs {[e.name for e in static.envs]}); choose common ones with bodies=[...]")
        kind = a.perturbation
        for r in (run, static):
            for env in r.envs:
                check_window(a, kind, r.horizon(env))
        result: dict[str, list[Curves]] = {}
        rows: list[list[Any]] = []
        for label, r in (("hebbian", run), ("static", static)):
            result[f"Hebbian ({r.rule})" if r.plastic else "static"] = curves = [perturb(r, env, a, kind) for env in r.envs]
            for c in curves:
                rows += reward_rows([label, c.body], c.perturbed, c.unperturbed)
                out.summary.setdefault(label, {"run": str(r.dir), "rule": r.rule})[c.body] = recovery_summary(c)
                out.say(_recovery_line(c, f"{label}: "))
        write_csv(out.path("static_vs_hebbian.csv"), ["run", "body", "episode", "step", "reward", "reward_unperturbed"], rows)
        perturbation_plot(
            result, out.path("static_vs_hebbian.png"),
            _title(run, f"Hebbian vs static ({static.name}): {_window_text(a, kind)}"), a.smooth, reward_label(run),
        )
    finally:
        static.close()


# ---- PCA (Fig. 5) ------------------------------------------------------------------------------
def random_coefficients(run: LoadedRun, seed: int) -> torch.Tensor:
    """The evolved parameters with every rule coefficient redrawn from the run's coefficient_init."""
    from hebbian_es import distributions

    params = run.params.clone()
    gen = torch.Generator().manual_seed(int(seed))
    lay = run.task.layout
    for block, offset in zip(lay.blocks, lay.offsets):
        if block.kind == "coefficients":
            params[offset : offset + block.size] = distributions.sample(run.task.coefficient_init, block.shape, gen).reshape(-1)
    return params


def run_pca(run: LoadedRun, a: Args, out: Outputs) -> None:
    from hebbian_es.analysis_plots import pca_plot

    if not run.plastic:
        raise ConfigError(f"analysis=pca needs plastic weights; run={str(run.dir)!r} has rule={run.rule}")
    env_seeds, init_seeds = run.lifetimes(1, a.episode)
    both = torch.stack([run.params, random_coefficients(run, a.random_seed)])
    panels: dict[str, dict[str, Any]] = {}
    npz: dict[str, np.ndarray] = {}
    for env in run.envs:
        res, _ = run.rollout(
            env, both, [env_seeds[0]] * 2, [init_seeds[0]] * 2, record=RecordSpec(rewards=True, weights=True, every=a.every)
        )
        assert res.weight_steps is not None
        for row, kind in enumerate(("evolved", "random")):
            traj = pert.flatten_weights(res.weights, row)
            n = pert.first_nonfinite(traj)
            steps = res.weight_steps[:n]
            p = pert.pca(traj[:n], k=10)
            ret = float(np.nansum(res.rewards[row]))
            panels.setdefault(env.name, {})[kind] = {"projection": p.projection[:, :3], "steps": steps, "evr": p.explained_variance_ratio, "return": ret}
            key = f"{env.name}/{kind}"
            npz[f"{key}/projection"] = p.projection.astype(np.float32)
            npz[f"{key}/steps"] = steps
            npz[f"{key}/explained_variance_ratio"] = p.explained_variance_ratio
            npz[f"{key}/components"] = p.components[:3].astype(np.float32)
            npz[f"{key}/mean"] = p.mean.astype(np.float32)
            npz[f"{key}/rewards"] = res.rewards[row]
            evr = p.explained_variance_ratio
            out.summary.setdefault(env.name, {})[kind] = {
                "explained_variance_ratio": [float(x) for x in evr], "first3": float(evr[:3].sum()),
                "return": ret, "points": int(n), "weights": int(traj.shape[1]),
            }
            cut = "" if n == len(traj) else f" (weights non-finite from step {int(res.weight_steps[n])}: trajectory cut there)"
            out.say(
                f"{env.name}, {kind} coefficients: explained variance PC1-3 = "
                f"{', '.join(f'{x:.1%}' for x in evr[:3])} (sum {evr[:3].sum():.1%}); return {ret:.1f}{cut}"
            )
    np.savez_compressed(out.path("pca.npz"), **npz)
    pca_plot(panels, out.path("pca.png"), _title(run, f"PCA of the plastic weights over one lifetime (test lifetime {a.episode})"))


# ---- weights (Fig. 1) --------------------------------------------------------------------------
def run_weights(run: LoadedRun, a: Args, out: Outputs) -> None:
    from hebbian_es.analysis_plots import weights_plot

    env_seeds, init_seeds = run.lifetimes(1, a.episode)
    layers = run.perturbed_layers()
    for env in run.envs:
        h = run.horizon(env)
        steps = a.steps if a.steps is not None else sorted({s for s in (0, 10, 30, 100) if s < h} | {h})
        bad = [s for s in steps if not 0 <= s <= h]
        if bad:
            raise ConfigError(f"steps={bad}: each step must be in 0..{h} (the episode's length in steps)")
        snaps = pert.WeightSnapshots(steps)
        res, policy = run.rollout(env, run.params, env_seeds, init_seeds, [snaps])
        length = int(res.steps[0])
        final = [w[0].numpy().copy() for w in policy.weights]
        shown: dict[int, list[np.ndarray]] = {}
        for s in steps:  # a step at or after the end shows the weights after the last step
            ws = snaps.taken.get(s)
            shown[min(s, length) if ws is None else s] = [w[0] for w in ws] if ws is not None else final
        npz = {"steps": np.asarray(sorted(shown)), "rewards": res.rewards[0], "layers": np.asarray(layers)}
        for s, ws in shown.items():
            for l in layers:
                npz[f"step{s}_fc{l}"] = ws[l]
        np.savez_compressed(out.path(f"weights_{env.name}.npz"), **npz)
        ret = float(res.returns[0])
        out.summary[env.name] = {"steps": sorted(shown), "return": ret, "episode_steps": length}
        ended = "" if length >= max(steps) else f" (the episode ended after {length} steps)"
        out.say(f"{env.name}: weights at steps {sorted(shown)}{ended}; return {ret:.1f}")
        weights_plot(
            {s: [ws[l] for l in layers] for s, ws in sorted(shown.items())}, [f"fc{l}" for l in layers], res.rewards[0],
            out.path(f"weights_{env.name}.png"),
            _title(run, f"{env.name}: weights during test lifetime {a.episode}" + ("" if run.plastic else " (static: constant)")),
            reward_label(run),
        )


# ---- video ---------------------------------------------------------------------------------------
class FrameRecorder(EnvRunner):
    """An env runner that renders rgb_array frames after reset and after every `every`-th step."""

    def __init__(self, spec: EnvSpec, every: int = 1) -> None:
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


def run_video(run: LoadedRun, a: Args, out: Outputs) -> None:
    import imageio.v3 as iio

    from hebbian_es.analysis_plots import frames_plot

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
            out.path(f"video_{env.name}.png"), _title(run, f"{env.name}: test lifetime {a.episode}, frames of {gif.name}"),
        )
        write_csv(
            out.path(f"video_{env.name}.csv"), ["step", "reward"],
            [[s, float(r)] for s, r in enumerate(res.rewards[0]) if np.isfinite(r)],
        )
        out.summary[env.name] = {
            "frames": len(frames), "every": every, "fps": a.fps, "steps": int(res.steps[0]), "return": float(res.returns[0]), "gif": gif.name,
        }
        out.say(f"{env.name}: {len(frames)} frames, every {every} steps ({int(res.steps[0])} steps, return {float(res.returns[0]):.1f}) -> {gif}")


# ---- driver ----------------------------------------------------------------------------------------
RUNNERS: dict[str, Callable[[LoadedRun, Args, Outputs], None]] = {
    "freeze": run_freeze,
    "actuator_saturation": run_saturation,
    "weight_zeroing": run_zeroing,
    "pca": run_pca,
    "weights": run_weights,
    "video": run_video,
    "static_vs_hebbian": run_static_vs_hebbian,
}


def reward_label(run: LoadedRun) -> str:
    """The y-axis name of a per-step reward: env.reward_label in the run's config, else 'reward'."""
    return str(run.cfg["env"].get("reward_label") or "reward")


def _title(run: LoadedRun, what: str) -> str:
    return f"{run.cfg['env'].get('name')} · rule={run.rule} · {run.name} (generation {run.generation})\n{what}"


def analyze(args: Args) -> Outputs:
    """Run one analysis; returns what it wrote (also <out>/<analysis>.json)."""
    run = LoadedRun(args.run, args.checkpoint, args.seed, args.early_stop, args.bodies, args.batch_size)
    torch.set_num_threads(int(run.cfg.get("torch_threads", 1)))
    out_dir = Path(args.out).resolve() if args.out else run.dir / "analysis"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = Outputs(out_dir)
    t0 = time.perf_counter()
    try:
        RUNNERS[args.analysis](run, args, out)
    finally:
        run.close()
    summary = {
        "analysis": args.analysis,
        "arguments": {k: v for k, v in args.values.items()},
        **run.describe(),
        "bodies": [e.name for e in run.envs],
        "episode_length": dict(run._horizons),  # steps each body's episode can last (where an analysis needed it)
        "wall_time_s": time.perf_counter() - t0,
        "results": out.summary,
    }
    write_json(out.path(f"{args.analysis}.json"), summary)
    for p in out.files:
        print(f"wrote {p}")
    if run.cfg.get("logger", {}).get("wandb"):
        log_to_wandb(run, args.analysis, out, args.values)
    return out


def log_to_wandb(run: LoadedRun, analysis: str, out: Outputs, arguments: Mapping[str, Any]) -> None:
    """A W&B run of its own per (run dir, analysis) — job type 'analysis', the training run's
    project, group and mode; run again, it continues that W&B run — with every PNG as an
    image, every file in one artifact and the headline numbers as summary values."""
    import hashlib

    from hebbian_es.loggers import WandbLogger

    wcfg = dict(run.cfg["logger"]["wandb"])
    name = wcfg.get("name") or run.name
    wcfg.update(
        name=f"{name}-{analysis}",
        id=hashlib.sha256(f"{run.dir}|analysis={analysis}".encode()).hexdigest()[:16],
        job_type="analysis",
        tags=[*(wcfg.get("tags") or []), "analysis", analysis],
    )
    config = {"analysis": analysis, "arguments": dict(arguments), **run.describe(), "sweep": run.cfg.get("sweep")}
    logger = WandbLogger(wcfg, config, run.dir)
    try:
        for p in out.files:
            if p.suffix == ".png":
                logger.log_image(f"analysis/{p.stem}", p)
        artifact = logger.wandb.Artifact(f"{_safe(name)}-{analysis}", type="analysis")
        for p in out.files:
            artifact.add_file(str(p))
        logger.run.log_artifact(artifact)
        logger.log_summary({k: v for k, v in _flatten(out.summary).items() if isinstance(v, (int, float))})
    finally:
        logger.finish()
    print(f"logged {len(out.files)} files to W&B ({wcfg.get('mode', 'offline')}) as run {wcfg['name']}")


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            flat.update(_flatten(v, key + "/"))
        elif not isinstance(v, (list, tuple)):
            flat[key] = v
    return flat


def main(argv: Sequence[str] | None = None) -> None:
    run_command(__doc__, argv, lambda args: analyze(parse_args(args)), needs_args=True)


if __name__ == "__main__":
    main()
