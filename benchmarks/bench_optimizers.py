"""OpenAI-ES against each exposed Nevergrad optimiser (docs/optimizers.md).

    python benchmarks/bench_optimizers.py                    # both parts, ~3.5 min on 2 cores
    python benchmarks/bench_optimizers.py --part task        # equal-budget runs on CartPole only
    python benchmarks/bench_optimizers.py --part overhead    # ask/tell only, 456,640 params x 64

task: every optimiser on the same small real task — CartPole-v1 (episodes capped at
200 steps), the Hebbian ABCD rule on the small 4-32-16-2 network (3,360
coefficients), population 32, 1 lifetime per candidate, the same number of
generations and so the same number of episode evaluations — through the real
training loop (`ESRun.step`: the evaluator, the centre's return, the checkpoint
every generation), for several seeds, each run in its own process.  Written to
docs/results/optimizers/: task.csv (one row per run), task.md (the table),
curves.png (centre return against episode evaluations, mean and range over seeds).

overhead: ask + tell only (no env) at 456,640 parameters (CarRacing's ABCD
coefficients) x population 64, random fitness, each optimiser in its own process:
seconds per generation, the peak of traced memory within a generation
(tracemalloc: numpy's buffers included), the memory the optimiser keeps between
generations, and the size and time of one optimiser dump.  Written to overhead.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import os
import pickle
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "results" / "optimizers"
NEVERGRAD = ("TwoPointsDE", "TBPSA", "DiagonalCMA")
OPTIMIZERS = ("openai_es", *NEVERGRAD)


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class Timed:
    """The run's optimiser with its ask and tell timed (everything else passes through)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds: list[float] = []
        self._t = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def ask(self, state: Any) -> Any:
        t0 = time.perf_counter()
        out = self.inner.ask(state)
        self._t = time.perf_counter() - t0
        return out

    def tell(self, state: Any, population: Any, fitness: np.ndarray) -> Any:
        t0 = time.perf_counter()
        out = self.inner.tell(state, population, fitness)
        self.seconds.append(self._t + time.perf_counter() - t0)
        return out


# ---- task: equal-budget runs through the real training loop ---------------------------------
def task_overrides(name: str, args: argparse.Namespace) -> list[str]:
    common = [
        "network=small", "evaluator=serial", "env.max_episode_steps=200", f"generations={args.generations}",
        f"optimizer.popsize={args.popsize}", "fitness.episodes=1", "validation.every=0", "progress_bar=false",
    ]  # fmt: skip
    if name == "openai_es":
        return common
    return ["optimizer=nevergrad", f"optimizer.name={name}", *common]


def task_run(name: str, seed: int, args: argparse.Namespace, queue: Any) -> None:
    warnings.simplefilter("ignore")
    import torch

    from hebbian_es import config
    from hebbian_es.run.rundir import RunDir
    from hebbian_es.run.train import build_run

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config.to_object(config.compose([f"run_dir={tmp}", f"seed={seed}", *task_overrides(name, args)]))
        run = build_run(cfg, RunDir(Path(tmp)))
        run.optimizer = timed = Timed(run.optimizer)
        run.start(None)
        rss0 = max_rss_mb()
        rows = []
        try:
            for _ in range(run.generations):
                rows.append(run.step())
            final = run.validate(args.final_episodes)
        finally:
            run.close()
    queue.put(
        {
            "optimizer": name,
            "seed": seed,
            "center_return": [r["center_return"] for r in rows],
            "pop_mean": [r["pop_mean"] for r in rows],
            "gen_seconds": [r["gen_seconds"] for r in rows],
            "ask_tell_seconds": timed.seconds,
            "final_center_return": final["val_mean"],
            "peak_rss_mb": max_rss_mb(),
            "rss_growth_mb": max_rss_mb() - rss0,
        }
    )


def in_process(fn: Any, *args: Any) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=fn, args=(*args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def first_reach(curve: list[float], threshold: float, evals_per_gen: int) -> int | None:
    for g, r in enumerate(curve):
        if r is not None and r >= threshold:
            return (g + 1) * evals_per_gen
    return None


def task(args: argparse.Namespace) -> None:
    evals_per_gen = args.popsize  # one lifetime per candidate
    results = []
    for name in args.optimizers:
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            r = in_process(task_run, name, seed, args)
            results.append(r)
            print(f"{name:<12} seed {seed}: final centre {r['final_center_return']:7.1f}  ({time.perf_counter() - t0:5.1f} s)", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "task.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["optimizer", "seed", "final_center_return", "evals_to_threshold", "gen_seconds", "ask_tell_seconds", "peak_rss_mb"])
        for r in results:
            reach = first_reach(r["center_return"], args.threshold, evals_per_gen)
            w.writerow([r["optimizer"], r["seed"], f"{r['final_center_return']:.2f}", reach if reach else "",
                        f"{statistics.mean(r['gen_seconds']):.4f}", f"{statistics.mean(r['ask_tell_seconds']):.5f}",
                        f"{r['peak_rss_mb']:.0f}"])  # fmt: skip
    budget = args.generations * evals_per_gen
    lines = [
        f"CartPole-v1 (200-step cap), ABCD on the 4-32-16-2 network (3,360 parameters), population {args.popsize}, "
        f"{args.generations} generations = {budget:,} episode evaluations per run, seeds 0..{args.seeds - 1}. "
        f"Final centre: mean return of the last centre on {args.final_episodes} validation lifetimes. "
        f"Evaluations to threshold: episode evaluations until the centre's training return first reaches {args.threshold:g} "
        "(median over the seeds that reached it).",
        "",
        "| optimiser | final centre return, mean ± sd (per seed) | reached threshold | evaluations to threshold (median) "
        "| s / generation (ask+tell) | peak RSS (MB) |",
        "|---|---|---|---|---|---|",
    ]
    for name in args.optimizers:
        rs = [r for r in results if r["optimizer"] == name]
        finals = [r["final_center_return"] for r in rs]
        reach = [x for x in (first_reach(r["center_return"], args.threshold, evals_per_gen) for r in rs) if x]
        gen_s = statistics.mean(s for r in rs for s in r["gen_seconds"])
        at_s = statistics.mean(s for r in rs for s in r["ask_tell_seconds"])
        lines.append(
            f"| {name} | {statistics.mean(finals):.1f} ± {statistics.pstdev(finals):.1f} ({', '.join(f'{x:.0f}' for x in finals)}) "
            f"| {len(reach)}/{len(rs)} | {statistics.median(reach):,.0f} | " if reach else
            f"| {name} | {statistics.mean(finals):.1f} ± {statistics.pstdev(finals):.1f} ({', '.join(f'{x:.0f}' for x in finals)}) "
            f"| 0/{len(rs)} | — | "
        )  # fmt: skip
        lines[-1] += f"{gen_s:.3f} ({at_s * 1000:.1f} ms) | {max(r['peak_rss_mb'] for r in rs):.0f} |"
    (OUT / "task.md").write_text("\n".join(lines) + "\n")
    (OUT / "task_curves.json").write_text(json.dumps([{k: r[k] for k in ("optimizer", "seed", "center_return", "pop_mean")} for r in results]))
    plot(results, args, evals_per_gen)
    print("\n".join(lines))


def plot(results: list[dict[str, Any]], args: argparse.Namespace, evals_per_gen: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name in args.optimizers:
        curves = np.array([[np.nan if v is None else v for v in r["center_return"]] for r in results if r["optimizer"] == name])
        x = (np.arange(curves.shape[1]) + 1) * evals_per_gen
        (line,) = ax.plot(x, np.nanmean(curves, axis=0), label=f"{name} (mean of {len(curves)} seeds)")
        ax.fill_between(x, np.nanmin(curves, axis=0), np.nanmax(curves, axis=0), color=line.get_color(), alpha=0.15)
    ax.axhline(args.threshold, color="grey", lw=0.8, ls="--", label=f"threshold {args.threshold:g}")
    ax.set_xlabel("episode evaluations")
    ax.set_ylabel("centre return (training lifetime)")
    ax.set_title(f"CartPole-v1 (200 steps), ABCD 3,360 params, population {args.popsize}")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(OUT / "curves.png", dpi=110)
    plt.close(fig)


# ---- overhead: ask/tell only at full size ------------------------------------------------------
def overhead_run(name: str, args: argparse.Namespace, queue: Any) -> None:
    import torch

    from hebbian_es.config import NevergradConfig, OpenAIESConfig
    from hebbian_es.es import make_optimizer

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    schema = OpenAIESConfig if name == "openai_es" else NevergradConfig
    opt = make_optimizer(schema(name=name, popsize=args.overhead_popsize))
    x0 = torch.rand(args.dim, generator=torch.Generator().manual_seed(0))  # U[0, 1]: the paper's start
    rng = np.random.default_rng(0)
    state = opt.init(x0, 0)
    seconds, peaks, kept = [], [], []
    tracemalloc.start()
    for g in range(args.overhead_generations):
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        t0 = time.perf_counter()
        state, pop = opt.ask(state)
        fitness = rng.normal(size=pop.size)
        state = opt.tell(state, pop, fitness)
        seconds.append(time.perf_counter() - t0)
        del pop
        current, peak = tracemalloc.get_traced_memory()
        peaks.append(peak - before)
        kept.append(current)
    tracemalloc.stop()
    dump_s = dump_mb = float("nan")
    if name != "openai_es":
        t0 = time.perf_counter()
        dump_mb = len(pickle.dumps(state.live.opt, protocol=pickle.HIGHEST_PROTOCOL)) / 2**20
        dump_s = time.perf_counter() - t0
    queue.put({"optimizer": name, "seconds": seconds, "peaks": peaks, "kept": kept, "dump_mb": dump_mb, "dump_s": dump_s,
               "peak_rss_mb": max_rss_mb()})  # fmt: skip


def overhead(args: argparse.Namespace) -> None:
    rows = []
    for name in args.optimizers:
        r = in_process(overhead_run, name, args)
        rows.append(r)
        print(f"{name:<12} s/gen {[round(s, 2) for s in r['seconds']]}  peak MB {[round(p / 2**20) for p in r['peaks']]}  "
              f"kept MB {[round(k / 2**20) for k in r['kept']]}", flush=True)  # fmt: skip
    skip = 1  # the first generation fills populations and starts CMA: reported apart
    lines = [
        f"ask + tell only, {args.dim:,} parameters x population {args.overhead_popsize}, random fitness, 1 torch thread, "
        f"{args.overhead_generations} generations each in a fresh process; the first generation apart (populations fill). "
        "Peak: the most memory traced within one generation above what was held before it (tracemalloc, numpy buffers "
        "included). Kept: traced memory held after generation 1 and after the last one (flat = the archive is capped).",
        "",
        "| optimiser | first generation (s) | later generations, median (s) | peak per generation, max (GB) "
        "| kept after gen 1 → last (GB) | dump size (MB) | dump time (s) | process peak RSS (GB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        later = r["seconds"][skip:] or r["seconds"]
        lines.append(
            f"| {r['optimizer']} | {r['seconds'][0]:.2f} | {statistics.median(later):.2f} | {max(r['peaks']) / 2**30:.2f} "
            f"| {r['kept'][min(1, len(r['kept']) - 1)] / 2**30:.2f} → {r['kept'][-1] / 2**30:.2f} "
            f"| {_num(r['dump_mb'], 0)} | {_num(r['dump_s'], 2)} | {r['peak_rss_mb'] / 1024:.1f} |"
        )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "overhead.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _num(x: float, digits: int) -> str:
    return "—" if x != x else f"{x:.{digits}f}"


def main(argv: list[str] | None = None) -> None:
    global OUT
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("task", "overhead", "both"), default="both")
    parser.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS), choices=OPTIMIZERS)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--generations", type=int, default=100)
    parser.add_argument("--popsize", type=int, default=32)
    parser.add_argument("--threshold", type=float, default=195.0, help="CartPole's classic 'solved' bar at 200 steps")
    parser.add_argument("--final-episodes", type=int, default=20)
    parser.add_argument("--dim", type=int, default=456_640, help="CarRacing ABCD coefficients")
    parser.add_argument("--overhead-popsize", type=int, default=64)
    parser.add_argument("--overhead-generations", type=int, default=4)
    parser.add_argument("--out", type=Path, default=OUT, help="where the tables and the plot go")
    args = parser.parse_args(argv)
    OUT = args.out
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    if args.part in ("task", "both"):
        task(args)
    if args.part in ("overhead", "both"):
        overhead(args)


if __name__ == "__main__":
    sys.exit(main())
