"""Resident memory and time per generation with glibc's default allocator settings and with
hebbian_es's (core/memory.py: the mmap threshold fixed at 128 KiB).

    python benchmarks/bench_memory.py [--envs carracing_fast ant_fast] [--generations 6]

Each (env, setting) runs in a fresh subprocess (allocator history is per process): the
env's paper experiment, one serial evaluator with the whole population in one batch (as
the campaigns run), OpenAI-ES generations from the experiment's initial centre with the
real early stops, so lifetimes end at different times and the batch shrinks.  Reported:
resident size (VmRSS) after each generation, the peak (VmHWM), and the median seconds per
generation; the ratio rows compare the fixed threshold to the default measured on the same
machine in the same invocation.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

EXPERIMENTS = {
    # the campaigns' settings (campaigns/run.sh), the quadruped's lifetimes shortened to keep this quick
    "carracing_fast": ["experiment=carracing_paper", "env=carracing_fast", "optimizer.popsize=64"],
    "ant_fast": ["experiment=ant_damage_paper", "env=ant_fast", "optimizer.popsize=128", "env.max_episode_steps=300"],
}


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _child(env: str, setting: str, generations: int) -> None:
    import numpy as np
    import torch

    from hebbian_es import config
    from hebbian_es.core.task import build_task, episode_seeds
    from hebbian_es.core import memory
    from hebbian_es.es import evaluators
    from hebbian_es.es import make_optimizer

    torch.set_num_threads(1)
    if setting == "glibc default":
        evaluators.limit_heap_fragmentation = lambda: False  # type: ignore[assignment]
    elif setting.startswith("threshold "):  # another fixed threshold, in KiB
        kib = int(setting.split()[1])
        evaluators.limit_heap_fragmentation = lambda: memory.limit_heap_fragmentation(kib * 1024)  # type: ignore[assignment]
    cfg = config.to_object(config.compose(["run_dir=unused", *EXPERIMENTS[env]]))
    task = build_task(cfg)
    popsize = cfg.optimizer.popsize
    es = make_optimizer(cfg.optimizer)
    state = es.init(task.initial_center(0), seed=0)
    evaluator = evaluators.SerialEvaluator(task, batch_size=popsize)
    rss, seconds, steps = [], [], 0
    try:
        for g in range(generations):
            env_seeds, init_seeds = episode_seeds(0, 0, g, 1)
            episodes = evaluators.Episodes(np.zeros(1, dtype=np.int64), env_seeds, init_seeds)
            state, pop = es.ask(state)
            t0 = time.perf_counter()
            res = evaluator.evaluate(pop, range(pop.size), episodes)
            seconds.append(time.perf_counter() - t0)
            steps += res.env_steps
            state = es.tell(state, pop, res.returns.mean(axis=1))
            rss.append(_status_mb("VmRSS"))
    finally:
        evaluator.close()
    print(json.dumps({"rss": rss, "peak": _status_mb("VmHWM"), "seconds": seconds, "steps": steps}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=sorted(EXPERIMENTS), choices=sorted(EXPERIMENTS))
    parser.add_argument("--generations", type=int, default=6)
    parser.add_argument("--thresholds", nargs="*", type=int, default=[], metavar="KIB",
                        help="also fixed thresholds other than hebbian_es's 128 KiB")
    parser.add_argument("--child", nargs=2, metavar=("ENV", "SETTING"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], args.child[1], args.generations)
        return
    print(f"| env | allocator | RSS after each generation (MB) | peak RSS (MB) | s/generation (median) | env steps |")
    print("|---|---|---|---|---|---|")
    for env in args.envs:
        rows = {}
        for setting in ("glibc default", "hebbian_es", *(f"threshold {k} KiB" for k in args.thresholds)):
            out = subprocess.run(
                [sys.executable, __file__, "--generations", str(args.generations), "--child", env, setting],
                check=True, capture_output=True, text=True,
            ).stdout  # fmt: skip
            r = rows[setting] = json.loads(out.strip().splitlines()[-1])
            curve = " ".join(f"{x:.0f}" for x in r["rss"])
            print(f"| {env} | {setting} | {curve} | {r['peak']:.0f} | {statistics.median(r['seconds']):.2f} | {r['steps']} |", flush=True)
        d, h = rows["glibc default"], rows["hebbian_es"]
        print(f"| {env} | ratio hebbian_es / default | | {h['peak'] / d['peak']:.2f} | "
              f"{statistics.median(h['seconds']) / statistics.median(d['seconds']):.2f} | |")  # fmt: skip


if __name__ == "__main__":
    main()
