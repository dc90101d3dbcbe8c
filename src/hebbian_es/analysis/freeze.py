"""analysis=freeze (Fig. 3 left): the Hebbian updates stop after k steps; episode return vs k."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional, Sequence

import numpy as np

from hebbian_es.analysis import hooks
from hebbian_es.analysis.args import CommonArgs, key
from hebbian_es.analysis.loaded import LoadedRun
from hebbian_es.analysis.measures import finite_stats, format_stats
from hebbian_es.analysis.outputs import Outputs, write_csv
from hebbian_es.analysis.plots import freeze_plot
from hebbian_es.core.rollout import RecordSpec
from hebbian_es.errors import ConfigError

SUMMARY = "Hebbian updates stop after k steps: return vs k (Fig. 3 left)"
K_GRID = (0, 5, 10, 20, 30, 40, 50, 60, 80, 100, 150, 200, 300, 400, 600, 800)


@dataclass
class Args(CommonArgs):
    episodes: int = key(5, "lifetimes per k", low=1)
    ks: Optional[List[int]] = key(None, "the k's; null: a grid up to the episode length")


def default_ks(horizon: int) -> list[int]:
    return sorted({k for k in K_GRID if k < horizon} | {horizon})


def converged_k(ks: Sequence[int], means: np.ndarray, threshold: float) -> int | None:
    """Smallest k whose mean return reaches `threshold` (None: none does)."""
    hit = np.flatnonzero(np.asarray(means) >= threshold)
    return int(ks[hit[0]]) if len(hit) else None


def analyse(run: LoadedRun, a: Args, out: Outputs) -> None:
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
            hook = hooks.FreezePlasticity([k for k, _ in chunk])
            res, _ = run.rollout(
                env, run.params, [env_seeds[ep] for _, ep in chunk], [init_seeds[ep] for _, ep in chunk], [hook], RecordSpec()
            )
            returns[start : start + len(chunk)] = res.returns
        by_k = returns.reshape(len(ks), a.episodes)
        for (k, ep), r in zip(plan, returns):
            rows.append([env.name, k, ep, int(env_seeds[ep]), int(init_seeds[ep]), float(r)])
        for ep, r in enumerate(never.returns):
            rows.append([env.name, "never", ep, int(env_seeds[ep]), int(init_seeds[ep]), float(r)])
        nv = finite_stats(never.returns)
        means = np.array([finite_stats(r)["mean"] for r in by_k])
        settled = converged_k(ks, means, nv["mean"] - nv["sd"])
        curves[env.name] = {"ks": ks, "returns": by_k, "never": never.returns, "horizon": horizons[env.name]}
        out.summary[env.name] = {
            "never_frozen": nv,
            "by_k": {str(k): finite_stats(r) for k, r in zip(ks, by_k)},
            "converged_k": settled,
        }
        out.say(
            f"{env.name}: never frozen {format_stats(nv)}; frozen after k=0: {format_stats(finite_stats(by_k[0]))}; "
            f"first k whose mean return reaches the never-frozen mean - sd: {settled if settled is not None else 'none'}"
        )
    write_csv(out.path("freeze.csv"), ["body", "k", "episode", "env_seed", "init_seed", "return"], rows)
    freeze_plot(curves, out.path("freeze.png"), run.title(f"Hebbian updates frozen after k steps ({a.episodes} lifetimes per k)"))
