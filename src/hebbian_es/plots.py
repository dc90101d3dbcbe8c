"""Plots written into a run directory."""

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
    return _finish(fig, ax, path, title, "episode return")


def compare_curves(runs: dict[str, Sequence[dict[str, Any]]], path: Path, title: str) -> Path:
    """Population mean (line) and centre validation (markers) of several runs on one axis."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, rows in runs.items():
        train = [r for r in rows if r.get("pop_mean") is not None]
        (line,) = ax.plot([r["generation"] for r in train], [r["pop_mean"] for r in train], label=f"{name}: population mean")
        val = [(r["generation"], r["val_mean"]) for r in rows if r.get("val_mean") is not None]
        if val:
            ax.plot(*zip(*val), "o--", color=line.get_color(), label=f"{name}: centre, validation mean")
    return _finish(fig, ax, path, title, "episode return (fitness)")


def _finish(fig: Any, ax: Any, path: Path, title: str, ylabel: str) -> Path:
    ax.set_xlabel("generation")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m hebbian_es.plots OUT.png NAME=RUN_DIR [NAME=RUN_DIR ...]`: compare runs' curves."""
    import sys

    from hebbian_es.loggers import merged_metrics

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2 or any("=" not in a for a in args[1:]):
        print("usage: python -m hebbian_es.plots OUT.png NAME=RUN_DIR [NAME=RUN_DIR ...]", file=sys.stderr)
        sys.exit(2)
    runs = {a.split("=", 1)[0]: merged_metrics(Path(a.split("=", 1)[1])) for a in args[1:]}
    missing = [n for n, rows in runs.items() if not rows]
    if missing:
        print(f"error: no metrics.jsonl rows for {missing}", file=sys.stderr)
        sys.exit(2)
    compare_curves(runs, Path(args[0]), " vs ".join(runs))


if __name__ == "__main__":
    main()
