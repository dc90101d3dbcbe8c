"""Throughput of evaluation: 1 process vs N long-lived worker processes vs N
torch.distributed ranks.

    python benchmarks/bench_workers.py [--env ant] [--popsize 16] [--steps 200] [--workers 2] [--ranks 2] [--repeats 3]

One generation of OpenAI-ES candidates (seeds sent, vectors rebuilt in the
workers or on each rank), every lifetime `--steps` long (early stop off).
Workers and ranks are started and warmed up (one generation) before timing; a
rank's time includes the all-gather of the returns (gloo, this machine).  Reports
env steps per second and the speed-up over the in-process evaluator measured in
the same run.  `--ranks 0` skips the distributed row.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.multiprocessing as tmp_mp

from hebbian_es import config
from hebbian_es.es.evaluators import Episodes, ProcessEvaluator, SerialEvaluator, make_evaluator
from hebbian_es.es.openai_es import OpenAIES
from hebbian_es.core.task import build_task, episode_seeds

ENV_OVERRIDES = {"ant": ["env=ant"], "cartpole": ["env=cartpole"], "carracing": ["env=carracing"]}


def _config(env: str, steps: int, evaluator: str) -> config.TrainConfig:
    cfg = config.to_object(config.compose([
        "run_dir=unused", *ENV_OVERRIDES[env], f"env.max_episode_steps={steps}", f"evaluator={evaluator}",
        # every lifetime runs all steps: equal work per candidate
        "env.early_stop.patience=null", "env.early_stop.min_steps=0", "env.end_on_terminated=false",
    ]))  # fmt: skip
    return cfg


def _rate(make: Callable[[], Any], task: Any, popsize: int, repeats: int) -> float:
    """Median env steps/s over `repeats` generations, after one warm-up generation."""
    es = OpenAIES(popsize=popsize)
    state = es.init(task.initial_center(0), seed=0)
    env_seeds, init_seeds = episode_seeds(0, 0, 0, 1)
    episodes = Episodes(np.zeros(1, dtype=np.int64), env_seeds, init_seeds)
    evaluator = make()
    try:
        _, pop = es.ask(state)
        evaluator.evaluate(pop, range(pop.size), episodes)  # warm-up: worker start, env build
        runs = []
        for g in range(repeats):
            _, pop = es.ask(state.__class__(state.center, state.lr, state.sigma, g + 1, state.seed))
            t0 = time.perf_counter()
            res = evaluator.evaluate(pop, range(pop.size), episodes)
            runs.append(res.env_steps / (time.perf_counter() - t0))
        return statistics.median(runs)
    finally:
        evaluator.close()


def _rank_main(rank: int, world: int, port: int, args: argparse.Namespace, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    from hebbian_es.es import distributed

    cfg = _config(args.env, args.steps, "distributed")
    task = build_task(cfg)
    rate = _rate(lambda: make_evaluator(cfg.evaluator, task), task, args.popsize, args.repeats)
    if rank == 0:  # every rank saw the same gathered env-step count and the same wall time, give or take
        Path(out).write_text(str(rate))
    distributed.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="ant", choices=sorted(ENV_OVERRIDES))
    parser.add_argument("--popsize", type=int, default=16)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ranks", type=int, default=2, help="torch.distributed ranks (gloo) on this machine; 0: skip")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = _config(args.env, args.steps, "local")
    task = build_task(cfg)
    rates = {
        "1 process": _rate(lambda: SerialEvaluator(task, batch_size=64), task, args.popsize, args.repeats),
        f"{args.workers} workers": _rate(lambda: ProcessEvaluator(task, args.workers, batch_size=64, threads=1), task, args.popsize, args.repeats),
    }
    if args.ranks > 0:
        with tempfile.TemporaryDirectory() as tmp:
            out = str(Path(tmp) / "rate")
            tmp_mp.start_processes(_rank_main, args=(args.ranks, _free_port(), args, out), nprocs=args.ranks, start_method="spawn")
            rates[f"{args.ranks} ranks"] = float(Path(out).read_text())
    base = rates["1 process"]
    print(f"{args.env}: population {args.popsize}, {args.steps}-step lifetimes, median of {args.repeats}")
    print(f"{'evaluator':<12} {'env steps/s':>12} {'speed-up':>9}")
    for name, rate in rates.items():
        print(f"{name:<12} {rate:>12.0f} {rate / base:>8.2f}x")

if __name__ == "__main__":
    main()
