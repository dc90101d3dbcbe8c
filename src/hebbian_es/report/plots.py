"""The report's figures: fitness curves and test means by group, mean ± sd over seeds."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from hebbian_es.report.aggregate import fmt, solved_threshold
from hebbian_es.report.runs import Run, num


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (imported on first use: `--help` stays fast)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig: Any, path: Path) -> Path:
    """The figure as a small PNG (a 128-colour palette: the plots have a few colours, and the page embeds them)."""
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    pyplot().close(fig)
    buf.seek(0)
    Image.open(buf).convert("RGB").quantize(colors=128).save(path, format="PNG", optimize=True)
    return path


def _colors(plt: Any) -> list[str]:
    return plt.rcParams["axes.prop_cycle"].by_key()["color"]


def plot_curves(runs: Sequence[Run], groups: Sequence[str], agg: Mapping[str, Any], metric: str, by: str, title: str, path: Path) -> Path:
    """`metric` (and the validation mean, when any) per generation: each group's mean ± sd, thin lines per seed."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    panels = [(metric, agg["curves"], f"{metric} (training lifetimes)")]
    if agg["validation"]:
        panels.append(("val_mean", agg["validation"], "validation mean (fresh lifetimes)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.2), squeeze=False)
    colors = _colors(plt)
    for ax, (key, curves, label) in zip(axes[0], panels):
        for i, g in enumerate(groups):
            c = curves.get(g)
            if not c or not c["generation"]:
                continue
            color = colors[i % len(colors)]
            x = np.asarray(c["generation"])
            m = np.asarray(c["mean"], dtype=float)
            sd = np.asarray(c["sd"], dtype=float)
            for r in runs:
                if r.group == g and r.included:
                    pts = [(row["generation"], num(row.get(key))) for row in r.rows if num(row.get(key)) is not None]
                    if pts:
                        ax.plot(*zip(*pts), color=color, lw=0.7, alpha=0.3)
            n = max(c["n"])
            legend = f"{by}={g} (n={n} seed{'s' if n != 1 else ''})"
            if key == "val_mean":  # sparse points: error bars read better than a band
                ax.errorbar(x, m, yerr=sd, fmt="o-", color=color, lw=2, ms=5, capsize=4, label=legend)
            else:
                ax.plot(x, m, "-", color=color, lw=2, label=legend)
                ax.fill_between(x, m - sd, m + sd, color=color, alpha=0.2)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("generation")
        ax.set_ylabel("episode return")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    fig.suptitle(f"{title} — mean ± sd over seeds", fontsize=11)
    fig.tight_layout()
    return save_png(fig, path)


def plot_test(agg: Mapping[str, Any], groups: Sequence[str], by: str, title: str, path: Path) -> Optional[Path]:
    """Bars of each group's test mean ± sd per env (and the random damages), dots the single seeds;
    None when no group has test results."""
    plt = pyplot()
    cols: list[tuple[str, dict[str, Any]]] = []
    for env in agg["test_envs"]:
        cols.append((env, {g: agg["test"].get(g, {}).get(env) for g in groups}))
    if agg["random_damages"]:
        cols.append(("random damages", {g: agg["random_damages"].get(g) for g in groups}))
    colors = _colors(plt)
    color = {g: colors[i % len(colors)] for i, g in enumerate(groups)}  # as in the curves
    groups = [g for g in groups if any(entries.get(g) for _, entries in cols)]  # no gaps for groups without results
    if not cols or not groups:
        return None
    fig, ax = plt.subplots(figsize=(max(6.5, 1.1 * len(cols) * max(1, len(groups)) + 1.5), 4.2))
    width = 0.8 / max(1, len(groups))
    for j, g in enumerate(groups):
        xs, ms, sds = [], [], []
        for i, (_, entries) in enumerate(cols):
            e = entries.get(g)
            if e and e.get("mean") is not None:
                x = i - 0.4 + width * (j + 0.5)
                xs.append(x)
                ms.append(e["mean"])
                sds.append(e["sd"])
                vals = [v for v in e["values"] if v is not None]
                ax.plot([x] * len(vals), vals, "k.", ms=5, alpha=0.6, zorder=3)
        if xs:
            ax.bar(xs, ms, width * 0.9, yerr=sds, capsize=3, color=color[g], alpha=0.8, label=f"{by}={g}")
    labels = []
    for name, entries in cols:
        seen = {e.get("seen") for e in entries.values() if e}
        labels.append(f"{name}\n({'seen' if seen == {True} else 'unseen'})" if seen in ({True}, {False}) else name)
    threshold = solved_threshold(agg)
    if threshold is not None:
        ax.axhline(threshold, color="0.3", ls="--", lw=1, label=f"solved (≥ {fmt(threshold, 0)})")
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels(labels, fontsize=9)
    ax.set_ylabel("test mean return")
    ax.set_title(f"{title}\ntest mean by {by}: bar = mean ± sd over seeds, dots = single seeds", fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return save_png(fig, path)
