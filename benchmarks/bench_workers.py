"""Throughput of local evaluation: 1 process vs N long-lived worker processes.

    python benchmarks/bench_workers.py [--env ant] [--popsize 16] [--steps 200] [--workers 2] [--repeats 3]

One generation of OpenAI-ES candidates (seeds sent, vectors rebuilt in the
workers), every lifetime `--steps` long (early stop off).  Workers are started
and warmed up (one generation) before timing.  Reports env steps per second and
the speed-up over the in-process evaluator measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from hebbian_es.evaluation import Episodes, ProcessEvaluator, SerialEvaluator
from hebbian_es.optim.openai_es import OpenAIES
from hebbian_es.task import build_task, episode_seeds

ENV_OVERRIDES = {"ant": ["env=ant"], "cartpole": ["env=cartpole"], "carracing": ["env=carracing"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="ant", choices=sorted(ENV_OVERRIDES))
    parser.add_argument("--popsize", type=int, default=16)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with initialize_config_module(version_base="1.3", config_module="hebbian_es.conf"):
        cfg = compose("train", overrides=["run_dir=unused", *ENV_OVERRIDES[args.env], f"env.max_episode_steps={args.steps}"])
    cfg = OmegaConf.to_container(cfg, resolve=True)
    cfg["env"]["early_stop"] = {"patience": None, "min_steps": 0}
    cfg["env"]["end_on_terminated"] = False  # every lifetime runs all steps: equal work per candidate
    task = build_task(cfg)
    es = OpenAIES(popsize=args.popsize)
    state = es.init(task.initial_center(0), seed=0)
    env_seeds, init_seeds = episode_seeds(0, 0, 0, 1)
    episodes = Episodes(np.zeros(1, dtype=np.int64), env_seeds, init_seeds)
    rates = {}
    for name, make in (
        ("1 process", lambda: SerialEvaluator(task, batch_size=64)),
        (f"{args.workers} workers", lambda: ProcessEvaluator(cfg, args.workers, batch_size=64)),
    ):
        evaluator = make()
        try:
            _, pop = es.ask(state)
            evaluator.evaluate(pop, range(pop.size), episodes)  # warm-up: worker start, env build
            runs = []
            for g in range(args.repeats):
                _, pop = es.ask(state.__class__(state.center, state.lr, state.sigma, g + 1, state.seed))
                t0 = time.perf_counter()
                res = evaluator.evaluate(pop, range(pop.size), episodes)
                runs.append(res.env_steps / (time.perf_counter() - t0))
            rates[name] = statistics.median(runs)
        finally:
            evaluator.close()
    base = rates["1 process"]
    print(f"{args.env}: population {args.popsize}, {args.steps}-step lifetimes, median of {args.repeats}")
    print(f"{'evaluator':<12} {'env steps/s':>12} {'speed-up':>9}")
    for name, rate in rates.items():
        print(f"{name:<12} {rate:>12.0f} {rate / base:>8.2f}x")


if __name__ == "__main__":
    main()
