"""Figures of `python -m hebbian_es.analyze` (one function per analysis; data in, PNG out).

Every figure is written by `save_figure`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from hebbian_es.analysis.measures import cumulative, finite_stats, format_stats, mean_curve, mean_level, mean_recovered_at  # noqa: E402

DPI = 100
PERTURBATION_COLOUR = "tab:purple"


def save_figure(fig: Any, path: Path, title: str | None = None) -> Path:
    """Write `fig` (with `title` over it) as a PNG at `path` and close it."""
    if title:
        fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


# ---- freeze ----------------------------------------------------------------------------------
def freeze_plot(curves: Mapping[str, Mapping[str, Any]], path: Path, title: str) -> Path:
    """Episode return vs the step k after which the Hebbian updates stop (mean ± sd over lifetimes),
    the never-frozen return as a dashed line of the same colour."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2 + 0.25 * len(curves)), layout="constrained")
    for i, (body, c) in enumerate(curves.items()):
        colour = f"C{i}"
        ks = np.asarray(c["ks"])
        r = np.asarray(c["returns"], dtype=np.float64)
        mean, sd = np.nanmean(r, axis=1), np.nanstd(r, axis=1)
        ax.plot(ks, mean, "o-", color=colour, ms=4, label=f"{body}: frozen after k steps (mean ± sd)")
        ax.fill_between(ks, mean - sd, mean + sd, color=colour, alpha=0.2)
        never = finite_stats(c["never"])
        ax.axhline(never["mean"], color=colour, ls="--", lw=1.2, label=f"{body}: never frozen ({format_stats(never)})")
    top = max(max(c["ks"]) for c in curves.values())
    if top > 100:  # the first tens of steps matter most: linear up to 10, logarithmic beyond
        ax.set_xscale("symlog", linthresh=10, linscale=0.6)
        ticks = [t for t in (0, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000) if t * 1.4 <= top] + [int(top)]
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.set_xlim(-0.5, top * 1.15)
    ax.set_xlabel("k = Hebbian updates before the weights are frozen (env steps" + (", symlog axis)" if top > 100 else ")"))
    ax.set_ylabel("episode return")
    ax.grid(alpha=0.3)
    fig.legend(fontsize=8, loc="outside lower center", ncol=2)
    return save_figure(fig, path, title)


# ---- perturbation curves --------------------------------------------------------------------------
def _mark_window(ax: Any, window: tuple[int, int], label: str | None) -> None:
    start, end = window
    if end > start:
        ax.axvspan(start, end, color=PERTURBATION_COLOUR, alpha=0.12, label=label)
    else:
        ax.axvline(start, color=PERTURBATION_COLOUR, lw=1.5, label=label)


def _recovery_text(c: Any) -> str:
    s = finite_stats([r.steps for r in c.recoveries if r.steps is not None])
    n = len(c.recoveries)
    if not s["n"]:
        return f"not recovered (0/{n})"
    return f"recovery {s['mean']:.0f} ± {s['sd']:.0f} steps ({s['n']}/{n})"


def _mark_recovery(ax: Any, c: Any, p: np.ndarray, colour: str, pre: str = "") -> None:
    """The mean pre-perturbation level (dotted) and the mean recovery step (▼ on the curve p)."""
    level = mean_level(c.recoveries)
    if level is not None:
        ax.axhline(level, color=colour, ls=":", lw=1, label=f"{pre}pre-perturbation level")
    at = mean_recovered_at(c.recoveries)
    if at is not None and at < len(p) and np.isfinite(p[at]):
        ax.plot([at], [p[at]], "v", color=colour, ms=9, mec="black", label=f"{pre}recovered (mean step)")


def perturbation_plot(
    runs: Mapping[str, Sequence[Any]], path: Path, title: str, smooth: int, reward_label: str = "reward"
) -> Path:
    """Rows: bodies.  Left: per-step reward (moving average, mean over lifetimes), perturbed
    (solid) and the same lifetimes unperturbed (dashed), the pre-perturbation level (dotted)
    and the recovery point (▼).  Right: cumulative reward."""
    bodies = [c.body for c in next(iter(runs.values()))]
    fig, axes = plt.subplots(
        len(bodies), 2, figsize=(11, 2.9 * len(bodies) + 0.9), squeeze=False, layout="constrained",
        gridspec_kw={"width_ratios": [1.6, 1]},
    )
    for i, body in enumerate(bodies):
        left, right = axes[i]
        texts = []
        for j, (label, curves) in enumerate(runs.items()):
            c = curves[i]
            colour = f"C{j}"
            pre = f"{label}: " if label else ""
            n = c.perturbed.shape[0]
            p, u = mean_curve(c.perturbed, smooth), mean_curve(c.unperturbed, smooth)
            steps = np.arange(len(p))
            left.plot(steps, u, "--", color=colour, lw=1, alpha=0.7, label=f"{pre}unperturbed (same lifetimes)")
            left.plot(steps, p, "-", color=colour, lw=1.4, label=f"{pre}perturbed")
            _mark_recovery(left, c, p, colour, pre)
            texts.append(f"{pre}{_recovery_text(c)}")
            right.plot(steps, cumulative(c.unperturbed), "--", color=colour, lw=1, alpha=0.7)
            right.plot(steps, cumulative(c.perturbed), "-", color=colour, lw=1.4)
        window = next(iter(runs.values()))[i].window
        _mark_window(left, window, "perturbation")
        _mark_window(right, window, None)
        left.set_title(f"{body}: per-step {reward_label}", fontsize=9)
        left.set_ylabel(f"{reward_label} per step\n(mean of {n}, {smooth}-step moving avg.)", fontsize=8)
        right.set_title(f"{body}: cumulative {reward_label} (mean of {n})", fontsize=9)
        right.set_ylabel(f"cumulative {reward_label}", fontsize=8)
        left.text(
            0.01, 0.03, "\n".join(texts), transform=left.transAxes, fontsize=7.5, va="bottom",
            bbox={"boxstyle": "round", "fc": "white", "alpha": 0.8},
        )
        for ax in (left, right):
            ax.grid(alpha=0.3)
            ax.set_xlabel("env step")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 3), fontsize=8)
    return save_figure(fig, path, title)


# ---- heatmaps ------------------------------------------------------------------------------------
def _heatmap(ax: Any, w: np.ndarray, title: str, mark_zeros: bool = False) -> Any:
    w = np.asarray(w, dtype=np.float64)
    scale = float(np.nanmax(np.abs(w))) if np.isfinite(w).any() else 1.0
    scale = scale if scale > 0 else 1.0
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="black")
    shown = np.ma.masked_where(w == 0.0, w / scale) if mark_zeros else w / scale
    im = ax.imshow(shown, cmap=cmap, vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    ax.set_title(f"{title}\nmax|w| = {scale:.3g}", fontsize=8)
    ax.tick_params(labelsize=6)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    return im


def _heatmap_grid(fig: Any, grid: Any, heat: Mapping[int, Sequence[np.ndarray]], names: Sequence[str], labels: Mapping[int, str], zeros_at: int | None) -> None:
    steps = sorted(heat)
    im = None
    for r, name in enumerate(names):
        for c, s in enumerate(steps):
            ax = fig.add_subplot(grid[r, c])
            im = _heatmap(ax, heat[s][r], f"{name} · {labels.get(s, f't = {s}')}", mark_zeros=(s == zeros_at))
            if c == 0:
                ax.set_ylabel("post (out)", fontsize=7)
            if r == len(names) - 1:
                ax.set_xlabel("pre (in)", fontsize=7)
    if im is not None:
        cbar = fig.colorbar(im, ax=fig.axes, location="right", shrink=0.5, pad=0.01)
        cbar.set_label("w / max|w| of its panel", fontsize=8)
        if zeros_at is not None:
            cbar.ax.text(0.5, -0.08, "black: w = 0", transform=cbar.ax.transAxes, ha="center", va="top", fontsize=7)


def zeroing_plot(
    c: Any, heat: Mapping[int, Sequence[np.ndarray]], names: Sequence[str], a: Any, path: Path, title: str, reward_label: str = "reward"
) -> Path:
    """Heatmaps of each zeroed layer just before, at and `after` steps after the zeroing
    (lifetime 0; zeroed weights black), over the per-step reward with the zeroing step marked."""
    steps = sorted(heat)
    fig = plt.figure(figsize=(3.1 * len(steps) + 1.5, 2.3 * len(names) + 3.2), layout="constrained")
    grid = fig.add_gridspec(len(names) + 1, len(steps), height_ratios=[1] * len(names) + [1.3])
    labels = {a.t - 1: f"t = {a.t - 1} (before)", a.t: f"t = {a.t} (zeroed)", a.t + a.after: f"t = {a.t + a.after} ({a.after} steps later)"}
    _heatmap_grid(fig, grid, heat, names, labels, zeros_at=a.t)
    ax = fig.add_subplot(grid[len(names), :])
    p, u = mean_curve(c.perturbed, a.smooth), mean_curve(c.unperturbed, a.smooth)
    ax.plot(u, "--", color="C0", lw=1, alpha=0.7, label="unperturbed (same lifetimes)")
    ax.plot(p, "-", color="C0", lw=1.4, label="weights zeroed")
    ax.axvline(a.t, color=PERTURBATION_COLOUR, lw=1.5, label=f"zeroing step t = {a.t}")
    _mark_recovery(ax, c, p, "C0")
    n = c.perturbed.shape[0]
    ax.set_xlabel("env step")
    ax.set_ylabel(f"{reward_label} per step\n(mean of {n}, {a.smooth}-step moving avg.)", fontsize=8)
    ax.set_title(f"{c.body}: {_recovery_text(c)}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return save_figure(fig, path, title)


def weights_plot(
    heat: Mapping[int, Sequence[np.ndarray]], names: Sequence[str], rewards: np.ndarray, path: Path, title: str, reward_label: str = "reward"
) -> Path:
    """Each plastic layer (rows) at each chosen step (columns), over the cumulative reward."""
    steps = sorted(heat)
    fig = plt.figure(figsize=(2.6 * len(steps) + 1.5, 2.1 * len(names) + 2.8), layout="constrained")
    grid = fig.add_gridspec(len(names) + 1, len(steps), height_ratios=[1] * len(names) + [1.1])
    _heatmap_grid(fig, grid, heat, names, {}, zeros_at=None)
    ax = fig.add_subplot(grid[len(names), :])
    r = np.asarray(rewards, dtype=np.float64)
    r = r[np.isfinite(r)]
    ax.plot(np.arange(1, len(r) + 1), np.cumsum(r), color="C0", label=f"cumulative {reward_label}")
    for s in steps:
        ax.axvline(s, color="grey", ls=":", lw=1)
    ax.set_xlim(0, max(len(r), max(steps)) + 1)
    ax.set_xlabel("env step (dotted: the steps shown above)")
    ax.set_ylabel(f"cumulative {reward_label}", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return save_figure(fig, path, title)


# ---- PCA -------------------------------------------------------------------------------------------
def pca_plot(panels: Mapping[str, Mapping[str, Mapping[str, Any]]], path: Path, title: str) -> Path:
    """Rows: bodies; columns: evolved vs random coefficients.  Each dot one step (colour = step),
    start ★, end ■; axes the first three principal components (% of variance)."""
    bodies = list(panels)
    fig = plt.figure(figsize=(10, 4.4 * len(bodies) + 0.6), layout="constrained")
    sc = None
    for i, body in enumerate(bodies):
        for j, kind in enumerate(("evolved", "random")):
            d = panels[body][kind]
            ax = fig.add_subplot(len(bodies), 2, 2 * i + j + 1, projection="3d")
            x = np.zeros((len(d["steps"]), 3))
            x[:, : d["projection"].shape[1]] = d["projection"][:, :3]
            evr = list(d["evr"][:3]) + [0.0] * (3 - len(d["evr"][:3]))
            ax.plot(x[:, 0], x[:, 1], x[:, 2], color="grey", lw=0.5, alpha=0.6)
            sc = ax.scatter(x[:, 0], x[:, 1], x[:, 2], c=d["steps"], cmap="viridis", s=6, depthshade=False)
            ax.scatter(*x[0], marker="*", s=220, color="red", edgecolor="black", label="start (t = 0)", zorder=5)
            ax.scatter(*x[-1], marker="s", s=50, color="black", label=f"end (t = {int(d['steps'][-1])})", zorder=5)
            for setter, k in ((ax.set_xlabel, 0), (ax.set_ylabel, 1), (ax.set_zlabel, 2)):
                setter(f"PC{k + 1} ({evr[k]:.1%})", fontsize=8, labelpad=2)
            ax.tick_params(labelsize=6)
            name = "evolved coefficients" if kind == "evolved" else "random coefficients (coefficient_init)"
            ax.set_title(f"{body}: {name}\nreturn {d['return']:.1f}; PC1-3 explain {sum(evr):.1%} of the variance", fontsize=9)
            if i == 0 and j == 0:
                ax.legend(fontsize=7, loc="upper left")
    if sc is not None:
        cbar = fig.colorbar(sc, ax=fig.axes, shrink=0.4, location="right")
        cbar.set_label("env step", fontsize=8)
    return save_figure(fig, path, title)


# ---- video frames ---------------------------------------------------------------------------------
def frames_plot(frames: Sequence[np.ndarray], steps: Sequence[int], totals: Sequence[float], path: Path, title: str) -> Path:
    """A few frames of the lifetime, evenly spaced, each with its step and the return so far."""
    n = len(frames)
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    h, w = frames[0].shape[:2]
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.4 * cols * rows * h / w / cols + 0.7), squeeze=False, layout="constrained")
    for ax in axes.flat:
        ax.axis("off")
    for ax, f, s, tot in zip(axes.flat, frames, steps, totals):
        ax.imshow(f)
        ax.set_title(f"step {s} · return so far {tot:.1f}", fontsize=8)
    return save_figure(fig, path, title)


# ---- rules -----------------------------------------------------------------------------------------
def rules_plot(
    grid: np.ndarray, pre: np.ndarray, post: np.ndarray, labels: Sequence[str], path: Path, title: str,
    post_label: str = "post-synaptic activity o_j",
) -> Path:
    """One heatmap per rule: Δw (colour, each rule on its own symmetric scale, red > 0 > blue) over
    pre-synaptic (x) and post-synaptic (y) activity; its largest |Δw| in the panel's title."""
    k = len(grid)
    cols = int(np.ceil(np.sqrt(k)))
    rows = int(np.ceil(k / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.3 * cols + 0.8, 2.1 * rows + 1.2), layout="constrained", squeeze=False)
    extent = (float(pre[0]), float(pre[-1]), float(post[0]), float(post[-1]))
    for r, ax in enumerate(axes.flat):
        if r >= k:
            ax.axis("off")
            continue
        peak = float(np.abs(grid[r]).max()) or 1.0
        ax.imshow(grid[r].T, origin="lower", extent=extent, aspect="auto", cmap="RdBu_r", vmin=-peak, vmax=peak)
        ax.contour(pre, post, grid[r].T, levels=[0.0], colors="k", linewidths=0.6)
        ax.set_title(f"{labels[r]}\nmax|Δw| {peak:.3g}", fontsize=7)
        ax.tick_params(labelsize=6)
    for ax in axes[-1]:
        ax.set_xlabel("pre-synaptic activity o_i", fontsize=7)
    for ax in axes[:, 0]:
        ax.set_ylabel(post_label, fontsize=7)
    return save_figure(fig, path, title)
