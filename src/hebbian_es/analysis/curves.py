"""The same lifetimes with and without a perturbation: per-step reward curves and recovery.

A `Perturbation` (actuator_saturation in saturation.py, weight_zeroing in zeroing.py)
says how to check its window against an episode, which hooks perturb a lifetime, and
how to describe itself; `perturb` runs it on one body, `recovery_summary` and
`recovery_line` report it.  static_vs_hebbian runs either one on two runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from hebbian_es.analysis.args import CommonArgs, key
from hebbian_es.analysis.loaded import LoadedRun
from hebbian_es.analysis.measures import Recovery, finite_stats, first_nonfinite, format_stats, pad, recovery, recovery_steps
from hebbian_es.envs.spec import EnvSpec
from hebbian_es.errors import ConfigError

CSV_HEADER = ["episode", "step", "reward", "reward_unperturbed"]  # after the tag columns (run, body)


@dataclass
class RecoveryArgs(CommonArgs):
    """The keys of every analysis of a perturbation and the recovery from it."""

    episodes: int = key(3, "lifetimes, each run with and without the perturbation", low=1)
    smooth: int = key(20, "moving-average window (steps) of the curves and of the recovery test", low=1)
    baseline: int = key(100, "steps before the perturbation whose mean reward is the level to recover", low=1)


@dataclass
class Curves:
    """Per-step rewards of the same lifetimes with and without the perturbation."""

    body: str
    perturbed: np.ndarray  # (episodes, T) NaN after the end
    unperturbed: np.ndarray
    window: tuple[int, int]  # perturbation steps [start, end); zeroing: (t, t)
    recoveries: list[Recovery]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Perturbation:
    name: str
    # (args, episode length in steps): ConfigError if the window does not fit the episode
    check: Callable[[Any, int], None]
    # (run, args) -> hooks, the window [start, end), extra data for the analysis
    hooks: Callable[[LoadedRun, Any], tuple[list[Any], tuple[int, int], dict[str, Any]]]
    # args -> one line saying what it does, for figure titles
    describe: Callable[[Any], str]
    start_key: str = "t0"  # the key naming the window's first step, for the error line

    def check_runs(self, runs: Sequence[LoadedRun], a: Any) -> None:
        """The window against every analysed body of every run, before any lifetime runs."""
        for run in runs:
            for env in run.envs:
                self.check(a, run.horizon(env))


def perturb(run: LoadedRun, env: EnvSpec, a: Any, p: Perturbation) -> Curves:
    """The perturbed and the unperturbed lifetimes (same seeds) of one body, and recovery times."""
    env_seeds, init_seeds = run.lifetimes(a.episodes)
    base, _ = run.rollout(env, run.params, env_seeds, init_seeds)
    hooks, (start, end), extra = p.hooks(run, a)
    longest = max(first_nonfinite(row) for row in base.rewards)
    if longest <= start:  # nothing would be perturbed: a clear line, not an empty plot
        raise ConfigError(
            f"{p.start_key}={start}: every lifetime on {env.name} ended before the perturbation "
            f"(the longest ran {longest} steps); choose {p.start_key} < {longest}"
        )
    res, _ = run.rollout(env, run.params, env_seeds, init_seeds, hooks)
    t = max(res.rewards.shape[1], base.rewards.shape[1])
    perturbed, unperturbed = pad(res.rewards, t), pad(base.rewards, t)
    recs = [recovery(perturbed[i], start, end, a.smooth, a.baseline) for i in range(len(perturbed))]
    return Curves(env.name, perturbed, unperturbed, (start, end), recs, extra)


def recovery_summary(c: Curves) -> dict[str, Any]:
    return {
        "recovery_steps": recovery_steps(c.recoveries),
        "recovered": sum(r.status == "recovered" for r in c.recoveries),
        "episodes": len(c.recoveries),
        "per_episode": [
            {"level": r.level, "recovery_steps": r.steps, "recovered_at": r.at, "status": r.status} for r in c.recoveries
        ],
        "return_perturbed": finite_stats(np.nansum(c.perturbed, axis=1)),
        "return_unperturbed": finite_stats(np.nansum(c.unperturbed, axis=1)),
    }


def recovery_line(c: Curves, label: str = "") -> str:
    s = recovery_summary(c)
    counts: dict[str, int] = {}
    for r in c.recoveries:
        if r.status != "recovered":
            counts[r.status] = counts.get(r.status, 0) + 1
    other = "".join(f"; {n} {status}" for status, n in sorted(counts.items()))
    after = f" after {format_stats(s['recovery_steps'], ' steps')}" if s["recovered"] else ""
    return (
        f"{label}{c.body}: recovered in {s['recovered']}/{s['episodes']} lifetimes{after}{other}; "
        f"return {format_stats(s['return_perturbed'])} perturbed vs {format_stats(s['return_unperturbed'])} unperturbed"
    )
