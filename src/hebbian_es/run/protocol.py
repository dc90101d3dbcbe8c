"""The paper's test protocol (Table 1), in one place.

Load a run's centre (`load_agent`), evaluate N lifetimes per test env — every test
body for envs with morphologies, plus the fixed random damages — each from fresh
random initial weights on env seeds disjoint from training and validation, with no
early stop unless asked (`run_protocol`), summarise per body (`summarise`) and
format the table (`format_table`).  The Lightning test phase at the end of training,
`python -m hebbian_es.evaluate` and the analyses all come through here; lifetime i
(`test_lifetimes`) is the same lifetime in all of them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from hebbian_es import config as config_schema
from hebbian_es.core.merging import apply_saved_merges
from hebbian_es.core.task import TEST, TRAIN, Task, build_task, episode_seeds
from hebbian_es.envs.spec import EnvSpec
from hebbian_es.errors import ConfigError
from hebbian_es.es.base import ExplicitPopulation
from hebbian_es.es.evaluators import Episodes, make_evaluator
from hebbian_es.run.checkpoint import check_compatible, load_checkpoint
from hebbian_es.run.rundir import RunDir
from hebbian_es.stats import format_ci, mean_ci

log = logging.getLogger("hebbian_es")


def test_config(cfg: Any, early_stop: bool) -> Any:
    """The run's (typed) config as the test protocol uses it: the env's early-stop rule off unless asked."""
    if early_stop:
        return cfg
    env = replace(cfg.env, early_stop=replace(cfg.env.early_stop, patience=None, min_steps=0))
    return replace(cfg, env=env)


def plan(seed: int, episodes: int, n_envs: int, trace: bool = False) -> Episodes:
    """`episodes` test lifetimes on each of n_envs envs; every env meets the same seeds.
    trace: also measure each lifetime's progress trace (the monotone "solved" check)."""
    return episodes_of(seed, TEST, 0, episodes, n_envs, trace)


def episodes_of(seed: int, stream: int, index: int, n: int, n_envs: int = 1, trace: bool = False) -> Episodes:
    """n episodes of round `index` of a seed stream on each of n_envs envs (same seeds on every env)."""
    env_seeds, init_seeds = episode_seeds(seed, stream, index, n)
    return Episodes(np.repeat(np.arange(n_envs), n), np.tile(env_seeds, n_envs), np.tile(init_seeds, n_envs), trace)


DRAWS = ("common", "per_candidate")


def generation_episodes(seed: int, generation: int, n: int, n_envs: int, members: int, draws: str) -> Episodes:
    """The training lifetimes of one generation: n per member on each of n_envs envs.
    common: every member meets the same n (common random numbers: ranks compare rules, not
    luck); per_candidate: member m gets lifetimes m*n .. m*n+n-1 of the generation's round,
    its own tracks and initial weights, as the reference code draws them."""
    if draws == "common":
        return episodes_of(seed, TRAIN, generation, n, n_envs)
    if draws != "per_candidate":
        raise ConfigError(f"fitness.draws={draws!r}; allowed: {list(DRAWS)}")
    env_seeds, init_seeds = episode_seeds(seed, TRAIN, generation, members * n)
    return Episodes(
        np.repeat(np.arange(n_envs), n),
        np.tile(env_seeds.reshape(members, n), (1, n_envs)),
        np.tile(init_seeds.reshape(members, n), (1, n_envs)),
    )


def test_lifetimes(seed: int, n: int, first: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(env seeds, init seeds) of test lifetimes first..first+n-1: lifetime i is the same
    whatever the number of lifetimes a protocol or an analysis runs."""
    return episode_seeds(seed, TEST, 0, n, first)


@dataclass(frozen=True)
class Agent:
    """A trained centre ready to be tested: the run, its config, the test-phase task and the parameters."""

    run: RunDir
    cfg: Any  # the run's typed config as the protocol uses it (test_config)
    task: Task  # test phase: every test env / body
    params: torch.Tensor
    checkpoint: Path
    generation: int
    seed: int
    env_steps: int  # the training the checkpoint holds: env steps and wall time up to `generation`
    wall_time: float

    def describe(self) -> dict[str, Any]:
        return {
            "run": str(self.run.path), "checkpoint": str(self.checkpoint), "checkpoint_generation": self.generation,
            "rule": self.task.rule.name, "env": self.cfg.env.name, "env_id": self.task.envs[0].id, "seed": self.seed,
        }


def load_agent(
    run: str | Path | RunDir, which: str = "last", *, seed: int | None = None, early_stop: bool = False, key: str = "run",
    env: str | None = None,
) -> Agent:
    """A run directory's `which` checkpoint on its test-phase task; one-line errors for a missing
    directory, config or checkpoint, or a checkpoint that does not fit the config.  env: test on
    that env config (conf/env/<env>.yaml, as shipped) instead of the run's own, e.g. an agent
    trained on carracing_fast on the real CarRacing-v3 (env=carracing); its network must fit."""
    rd = run if isinstance(run, RunDir) else RunDir.open(run, key)
    path = rd.checkpoint(which)
    container = rd.read_config()
    if env is not None:
        own, other = container.get("env") or {}, env_config(env)
        differ = sorted(k for k in set(own) | set(other) if own.get(k) != other.get(k))
        log.info("env=%s: testing on conf/env/%s.yaml as shipped instead of the run's env (they differ in: %s)",
                 env, env, ", ".join(differ) or "nothing")  # fmt: skip
        container = {**container, "env": other}
    cfg = test_config(config_schema.from_container(container), early_stop)
    cfg = replace(cfg, run_dir=str(rd.path))  # where it is now: files it names relatively (rule.assignment) move with it
    task = build_task(cfg, phase="test")
    saved = load_checkpoint(path, "restore it from a good copy, or pass checkpoint=best|last for the other one")
    task = apply_saved_merges(task, saved)  # a run that merged its rules during evolution
    try:
        check_compatible(saved["task"], task.fingerprint(), path)
    except ConfigError as exc:
        if env is None:
            raise
        raise ConfigError(f"env={env}: the run's network does not fit this env's observations and actions ({exc})") from None
    params = saved["params"].detach().to(torch.float32).reshape(-1)
    return Agent(
        rd, cfg, task, params, path, int(saved["generation"]), cfg.seed if seed is None else int(seed),
        int(saved["env_steps"]), float(saved["wall_time"]),
    )


def env_config(name: str) -> dict[str, Any]:
    """conf/env/<name>.yaml as the app composes it (resolved); one line for an unknown name."""
    from omegaconf import OmegaConf

    from hebbian_es.config.messages import error_line

    try:
        composed = config_schema.compose([f"env={name}"])
    except Exception as exc:  # Hydra's own exceptions: an unknown group choice
        raise ConfigError(error_line(exc) or f"env={name}: {str(exc).splitlines()[0]}") from None
    return OmegaConf.to_container(composed.env, resolve=True)  # type: ignore[return-value]


def run_protocol(
    evaluator_cfg: Any, task: Task, params: torch.Tensor, episodes: int, seed: int, early_stop: bool
) -> dict[str, Any]:
    """`episodes` lifetimes of `params` on every env of the test-phase `task`, on an evaluator
    built from `evaluator_cfg` (its own worker processes, closed before returning); summarised."""
    if episodes < 1:
        raise ConfigError(f"episodes={episodes}: must be >= 1")
    lifetimes = plan(seed, episodes, len(task.envs), trace=any(e.solved_threshold is not None for e in task.envs))
    returns = np.full(len(lifetimes), np.nan)
    drawdown = np.full(len(lifetimes), np.nan) if lifetimes.trace else None
    evaluator = make_evaluator(evaluator_cfg, task, phase="test")
    started = time.monotonic()
    try:
        # One env (body) at a time, so progress can be told; each lifetime's seeds are its own,
        # so the returns do not depend on how the lifetimes are grouped.
        for k, env in enumerate(task.envs):
            cols = np.flatnonzero(lifetimes.env_index == k)
            res = evaluator.evaluate(ExplicitPopulation(params.unsqueeze(0)), [0], lifetimes.subset(cols))
            returns[cols] = res.returns[0]
            if drawdown is not None and res.drawdown is not None:
                drawdown[cols] = res.drawdown[0]
            left = (time.monotonic() - started) / (k + 1) * (len(task.envs) - k - 1)
            finite = res.returns[0][np.isfinite(res.returns[0])]
            log.info(
                "test protocol: %s done (%d/%d envs, %d lifetimes each), mean %.2f, ETA %d s",
                env.name, k + 1, len(task.envs), len(cols), float(finite.mean()) if len(finite) else float("nan"), left,
            )
    finally:
        evaluator.close()
    return summarise(task.envs, lifetimes, returns, drawdown, seed=seed, early_stop=early_stop)


def summarise(
    envs: Sequence[EnvSpec], lifetimes: Episodes, returns: np.ndarray, drawdown: np.ndarray | None = None,
    *, seed: int, early_stop: bool,
) -> dict[str, Any]:
    """Per env (body): mean ± sd, min, max, seen/unseen, solved; the random damages as a distribution."""
    stats = {
        env.name: env_stats(env, returns[lifetimes.env_index == k], None if drawdown is None else drawdown[lifetimes.env_index == k])
        for k, env in enumerate(envs)
    }
    out: dict[str, Any] = {"envs": stats, "early_stop": bool(early_stop), "seed": int(seed)}
    randoms = [stats[env.name] for env in envs if env.random_eval]
    if randoms:
        means = np.array([s["mean"] for s in randoms], dtype=np.float64)
        out["random_damages"] = {
            "count": len(randoms),
            "mean_of_means": float(np.nanmean(means)),
            "sd_of_means": float(np.nanstd(means)),
            "min": float(np.nanmin(means)),
            "median": float(np.nanmedian(means)),
            "max": float(np.nanmax(means)),
            "ci95": list(mean_ci(means)),  # over the bodies' means
            "solved_fraction": float(np.mean([bool(s.get("solved")) for s in randoms])),
        }
    return out


def monotone_solved(returns: np.ndarray, drawdown: np.ndarray, threshold: float, tolerance: float) -> np.ndarray:
    """Per lifetime: it moved at least `threshold` and, from the step its running return first
    reached the threshold, never fell more than `tolerance` below its running maximum (and
    kept a finite return).  docs/protocol.md states the definition."""
    r, d = np.asarray(returns, dtype=np.float64), np.asarray(drawdown, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.isfinite(r) & (r >= threshold) & np.isfinite(d) & (d <= tolerance)


def env_stats(env: EnvSpec, r: np.ndarray, drawdown: np.ndarray | None = None) -> dict[str, Any]:
    ok = r[np.isfinite(r)]  # a lifetime whose weights or simulator blew up has no return: counted apart
    stat = (lambda fn: float(fn(ok))) if len(ok) else (lambda fn: float("nan"))
    stats: dict[str, Any] = {
        "env_id": env.id,
        "episodes": int(len(r)),
        "mean": stat(np.mean),
        "sd": stat(np.std),
        "min": stat(np.min),
        "max": stat(np.max),
        "nonfinite": int(len(r) - len(ok)),
        "ci95": list(mean_ci(ok)),  # bootstrap interval of the mean over these lifetimes (hebbian_es.stats)
        "returns": [float(x) if np.isfinite(x) else None for x in r],
    }
    if env.seen is not None:
        stats["seen"] = bool(env.seen)
        damages = env.make_kwargs.get(env.morphology_kwarg) if env.morphology_kwarg else None
        stats["damages"] = damages or []
        if env.variation is not None:  # the hidden per-lifetime values of this test variant
            stats["variation"] = env.variation.describe()
    if env.solved_threshold is not None:
        stats["solved_threshold"] = env.solved_threshold
        stats["solved"] = bool(len(ok)) and stats["mean"] >= env.solved_threshold
        if drawdown is not None:  # the monotone part: most lifetimes moved forward, not back and forth
            monotone = monotone_solved(r, drawdown, env.solved_threshold, env.solved_tolerance)
            stats["solved_tolerance"] = env.solved_tolerance
            stats["monotone_lifetimes"] = int(monotone.sum())
            stats["solved"] = stats["solved"] and 2 * int(monotone.sum()) >= len(r)
    return stats


def lifetime_ci(stats: Mapping[str, Any]) -> tuple[float, float]:
    """The 95 % interval of one env's test mean over its lifetimes: the stored one, or computed
    from the per-lifetime returns (results files written before intervals were stored)."""
    if stats.get("ci95") is not None:
        lo, hi = stats["ci95"]
        return float(lo), float(hi)
    return mean_ci(x for x in stats.get("returns") or [] if x is not None)


def format_table(results: Mapping[str, Any]) -> str:
    """The test table; with bodies it is the paper's Table 1 (seen/unseen, solved)."""
    rows = list(results["envs"].items())
    bodies = any("seen" in st for _, st in rows)
    solved = any("solved" in st for _, st in rows)
    # with bodies, the first column names the body and the second says whether training saw it
    head = (f"{'body':<22} {'seen':<7}" if bodies else f"{'env':<22}") + f" {'episodes':>8} {'mean':>10} {'95% CI':>20} {'sd':>9} {'min':>10} {'max':>10}"
    lines = [head + (f" {'solved':>7}" if solved else "")]
    for name, st in rows:
        line = f"{name:<22}" + (f" {('seen' if st.get('seen') else 'unseen'):<7}" if bodies else "")
        line += f" {st['episodes']:>8} {st['mean']:>10.2f} {format_ci(lifetime_ci(st), 2):>20} {st['sd']:>9.2f} {st['min']:>10.2f} {st['max']:>10.2f}"
        if solved:
            line += f" {('yes' if st.get('solved') else 'no'):>7}"
        lines.append(line)
    rd = results.get("random_damages")
    if rd:
        lines.append(
            f"random damages: {rd['count']} bodies, mean of means {rd['mean_of_means']:.2f} ± {rd['sd_of_means']:.2f} "
            + (f"(95% CI {format_ci(rd['ci95'], 2)}) " if rd.get("ci95") else "")
            + f"(min {rd['min']:.2f}, median {rd['median']:.2f}, max {rd['max']:.2f}), solved {rd['solved_fraction']:.0%}"
        )
    return "\n".join(lines)


def table_means(results: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The per-env numbers summary.json keeps (no per-lifetime returns)."""
    return {k: {s: v[s] for s in ("mean", "ci95", "sd", "min", "max", "episodes") if s in v} for k, v in results["envs"].items()}
