"""The plasticity benchmark's statistics and report (`python -m hebbian_es.benchmark`).

Per task: the score of a run (variant x seed) on each test variant is the mean test return of
its 100 (or `test.episodes`) lifetimes there (run/protocol.py).  Over the seeds and test
variants of a group (seen, unseen, all) it gives, per rule variant, following Agarwal et al.
2021 ("Deep RL at the edge of the statistical precipice"):

- the interquartile mean (IQM: scipy.stats.trim_mean, 25 % cut at each end) and the mean, with
  95 % stratified-bootstrap confidence intervals (scipy.stats.bootstrap over one sample per test
  variant, each resampled over the seeds on its own: the stratified bootstrap);
- the performance profile: the fraction of (seed, test variant) scores above each threshold τ,
  with a 95 % stratified-bootstrap band;
- the probability of improvement P(X > Y) over each baseline (static, ABCD): per test variant
  the Mann-Whitney U statistic of X's seeds against Y's / (n·m) (scipy.stats.mannwhitneyu: ties
  count half), averaged over the test variants, with a stratified-bootstrap CI.

The statistics are scipy's; rliable (which implements the same) does not import here with
pandas 3 (its arch dependency fails at import).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from scipy import stats

from hebbian_es.stats import CONFIDENCE, RESAMPLING_SEED  # the project's interval settings (hebbian_es.stats)

GROUPS = ("unseen", "seen", "all")


@dataclass(frozen=True)
class TaskScores:
    """One task's scores: variant -> (seeds, test variants) mean test returns (NaN: missing)."""

    task: str
    tests: tuple[str, ...]  # test variant names (columns)
    seen: tuple[bool, ...]  # per column
    seeds: tuple[int, ...]
    scores: Mapping[str, np.ndarray]

    def columns(self, group: str) -> np.ndarray:
        if group == "all":
            return np.arange(len(self.tests))
        return np.flatnonzero(np.array(self.seen) == (group == "seen"))


def _samples(x: np.ndarray) -> list[np.ndarray]:
    """One sample per test variant (column), its finite seeds: the strata of the bootstrap."""
    return [col[np.isfinite(col)] for col in x.T if np.isfinite(col).sum() > 0]


def _iqm(*cols: np.ndarray, axis: int = -1) -> np.ndarray:
    return stats.trim_mean(np.concatenate(cols, axis=axis), 0.25, axis=axis)


def _mean(*cols: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(np.concatenate(cols, axis=axis), axis=axis)


def interval(statistic: Any, x: np.ndarray, seed: int = RESAMPLING_SEED, resamples: int = 2000) -> tuple[float, float, float]:
    """(point, low, high): the statistic of all scores and its stratified-bootstrap 95 % CI."""
    cols = _samples(x)
    if not cols:
        return (float("nan"),) * 3  # type: ignore[return-value]
    point = float(statistic(*cols))
    if any(len(c) < 2 for c in cols):  # a stratum of one seed has no spread to resample
        return point, float("nan"), float("nan")
    res = stats.bootstrap(
        [c for c in cols], statistic, paired=False, vectorized=True, n_resamples=resamples,
        confidence_level=CONFIDENCE, method="percentile", random_state=seed,
    )  # fmt: skip
    return point, float(res.confidence_interval.low), float(res.confidence_interval.high)


def probability_of_improvement(x: np.ndarray, y: np.ndarray, seed: int = RESAMPLING_SEED, resamples: int = 2000) -> tuple[float, float, float]:
    """P(X > Y) averaged over test variants (Mann-Whitney U / (n m) per column), with a
    stratified-bootstrap CI (X's and Y's seeds resampled per column)."""
    pairs = [(a[np.isfinite(a)], b[np.isfinite(b)]) for a, b in zip(x.T, y.T)]
    pairs = [(a, b) for a, b in pairs if len(a) and len(b)]
    if not pairs:
        return (float("nan"),) * 3  # type: ignore[return-value]
    k = len(pairs)

    def poi(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
        out = 0.0
        for i in range(k):
            a, b = samples[i], samples[k + i]
            # U / (n m) = P(a > b) + P(a = b) / 2, for every resample at once
            gt = (a[..., :, None] > b[..., None, :]).mean(axis=(-1, -2))
            eq = (a[..., :, None] == b[..., None, :]).mean(axis=(-1, -2))
            out = out + gt + 0.5 * eq
        return out / k

    point = float(np.mean([stats.mannwhitneyu(a, b).statistic / (len(a) * len(b)) for a, b in pairs]))
    samples = [a for a, _ in pairs] + [b for _, b in pairs]
    if any(len(s) < 2 for s in samples):
        return point, float("nan"), float("nan")
    res = stats.bootstrap(samples, poi, paired=False, vectorized=True, n_resamples=resamples,
                          confidence_level=CONFIDENCE, method="percentile", random_state=seed)  # fmt: skip
    return point, float(res.confidence_interval.low), float(res.confidence_interval.high)


def performance_profile(x: np.ndarray, taus: np.ndarray, seed: int = RESAMPLING_SEED, resamples: int = 500) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fraction of scores above each τ, with a stratified-bootstrap 95 % band."""
    point, low, high = np.full(len(taus), np.nan), np.full(len(taus), np.nan), np.full(len(taus), np.nan)
    cols = _samples(x)
    if not cols:
        return point, low, high
    for k, tau in enumerate(taus):
        def above(*c: np.ndarray, axis: int = -1, tau: float = float(tau)) -> np.ndarray:
            return (np.concatenate(c, axis=axis) > tau).mean(axis=axis)

        point[k] = float(above(*cols))
        if all(len(c) >= 2 for c in cols):
            res = stats.bootstrap(cols, above, paired=False, vectorized=True, n_resamples=resamples,
                                  confidence_level=CONFIDENCE, method="percentile", random_state=seed)  # fmt: skip
            low[k], high[k] = res.confidence_interval.low, res.confidence_interval.high
    return point, low, high


def summarise(task: TaskScores, baselines: Sequence[str]) -> dict[str, Any]:
    """Every statistic of one task, per group and variant (report.json's entry)."""
    out: dict[str, Any] = {"task": task.task, "tests": list(task.tests), "seen": list(task.seen), "seeds": list(task.seeds), "groups": {}}
    for group in GROUPS:
        cols = task.columns(group)
        if not len(cols):
            continue
        rows = {}
        for name, x in task.scores.items():
            sub = x[:, cols]
            iqm, mean = interval(_iqm, sub), interval(_mean, sub)
            row: dict[str, Any] = {"iqm": iqm, "mean": mean, "runs": int(np.isfinite(sub).any(axis=1).sum())}
            for base in baselines:
                if base in task.scores and base != name:
                    row[f"p_improve_over_{base}"] = probability_of_improvement(sub, task.scores[base][:, cols])
            rows[name] = row
        out["groups"][group] = {"tests": [task.tests[c] for c in cols], "variants": rows}
    return out


def _ci(v: Sequence[float], digits: int = 1) -> str:
    point, low, high = v
    if not np.isfinite(point):
        return "–"
    if not np.isfinite(low):
        return f"{point:.{digits}f}"
    return f"{point:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def markdown(summaries: Sequence[Mapping[str, Any]], baselines: Sequence[str], header: str = "") -> str:
    """The report's tables: per task and group, IQM and mean with 95 % CIs, P(improvement)."""
    lines = [header] if header else []
    for s in summaries:
        lines += [f"## {s['task']}", "", f"seeds: {s['seeds']}; test variants: "
                  + ", ".join(f"{t} ({'seen' if seen else 'unseen'})" for t, seen in zip(s["tests"], s["seen"])), ""]  # fmt: skip
        for group, g in s["groups"].items():
            lines += [f"### {group} ({', '.join(g['tests'])})", ""]
            head = ["variant", "runs", "IQM [95% CI]", "mean [95% CI]"] + [f"P(> {b}) [95% CI]" for b in baselines]
            lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            order = sorted(g["variants"].items(), key=lambda kv: -np.nan_to_num(kv[1]["iqm"][0], nan=-np.inf))
            for name, row in order:
                cells = [name, str(row["runs"]), _ci(row["iqm"]), _ci(row["mean"])]
                cells += [_ci(row[f"p_improve_over_{b}"], 2) if f"p_improve_over_{b}" in row else "–" for b in baselines]
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
    return "\n".join(lines)


def plot_task(task: TaskScores, summary: Mapping[str, Any], path: Path) -> None:
    """IQM with CIs (unseen and seen) and the performance profile of every variant: one figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [g for g in ("unseen", "seen") if g in summary["groups"]]
    fig, axes = plt.subplots(1, len(groups) + 1, figsize=(5.2 * (len(groups) + 1), 0.35 * len(task.scores) + 2.2))
    names = list(task.scores)
    for ax, group in zip(axes, groups):
        rows = summary["groups"][group]["variants"]
        for i, name in enumerate(names):
            p, lo, hi = rows[name]["iqm"]
            ax.errorbar([p], [i], xerr=[[p - lo if np.isfinite(lo) else 0], [hi - p if np.isfinite(hi) else 0]], fmt="o", capsize=3)
        ax.set_yticks(range(len(names)), names)
        ax.set_xlabel("IQM test return (95% stratified bootstrap CI)")
        ax.set_title(f"{task.task}: {group} test variants")
        ax.grid(alpha=0.3)
    ax = axes[-1]
    finite = np.concatenate([x[np.isfinite(x)] for x in task.scores.values()] or [np.zeros(1)])
    taus = np.linspace(finite.min(), finite.max(), 40) if len(finite) else np.zeros(1)
    for name, x in task.scores.items():
        point, low, high = performance_profile(x, taus)
        line = ax.plot(taus, point, label=name)[0]
        ax.fill_between(taus, low, high, color=line.get_color(), alpha=0.15)
    ax.set_xlabel("test return τ")
    ax.set_ylabel("fraction of runs with score > τ")
    ax.set_title(f"{task.task}: performance profile (all test variants)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
