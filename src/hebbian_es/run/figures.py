"""Plots written into a run directory (fitness_curve, at the end of training); `finish` styles and
saves a per-generation plot (also report.compare's comparison of runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def fitness_curve(rows: Sequence[dict[str, Any]], path: Path, title: str) -> Path:
    """Population mean/min/max and centre return per generation."""
    gens = [r["generation"] for r in rows]

    def col(key: str) -> list[float]:
        return [float("nan") if r.get(key) is None else float(r[key]) for r in rows]

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.fill_between(gens, col("pop_min"), col("pop_max"), alpha=0.2, label="population min–max")
    ax.plot(gens, col("pop_mean"), label="population mean")
    ax.plot(gens, col("center_return"), label="centre (the generation's training lifetimes)", lw=1)
    val = [(r["generation"], r["val_mean"]) for r in rows if r.get("val_mean") is not None]
    if val:
        ax.plot(*zip(*val), "o-", label="centre, validation mean")
    return finish(fig, ax, path, title, "episode return")


def finish(fig: Any, ax: Any, path: Path, title: str, ylabel: str) -> Path:
    """Axis labels, title, grid and legend of a per-generation plot; saved to `path` (PNG) and closed."""
    ax.set_xlabel("generation")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
