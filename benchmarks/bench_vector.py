"""The default CartPole run (`python -m hebbian_es`: conf/env_defaults/cartpole.yaml, population
64, 3 lifetimes per candidate, 2 local workers) with the batched numpy CartPole (env.vector,
the default) against one gymnasium CartPole-v1 per lifetime (env.vector=null), in the same process.

    python benchmarks/bench_vector.py [--generations 5] [--phases start full small_full] [--workers 2] [--repeats 1]

Each phase runs generations 1 .. `--generations` of the default run (ESRun.step: ask,
evaluate on the workers, tell; no validation, no files; generation 0 runs first, untimed,
while the worker processes start) on each path, one after the other,
and reports env steps per second and the ratio vector/per-env.  Phases: `start` is the run as
it begins (random coefficients: most poles fall within ~10-30 steps); `full` sets
env.end_on_terminated=false so every lifetime runs its 500 steps, as in the late run where
the population balances; `small_full` is `full` with the benchmark suite's network=small
(4 -> 32 -> 16 -> 2), where the env is a larger share of a step.  Both paths give the same centre (checked and printed): the vector
path changes the speed, not the run.  Timings on a machine shared with other work vary by
tens of per cent; the ratio is measured within one process, minutes apart at most.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from hebbian_es import config
from hebbian_es.run.rundir import RunDir
from hebbian_es.run.train import build_run

PHASES = {
    "start": [],
    "full": ["env.end_on_terminated=false"],
    # the benchmark suite's network (4 -> 32 -> 16 -> 2): the env's share of a step is larger
    "small_full": ["network=small", "env.end_on_terminated=false"],
}


def measure(overrides: list[str], generations: int) -> tuple[float, int, float, torch.Tensor]:
    """(env steps/s, env steps, seconds, centre after the generations) of one path."""
    with tempfile.TemporaryDirectory() as tmp:
        conf = config.to_object(config.compose([f"run_dir={tmp}", *overrides]))
        run = build_run(conf, RunDir(Path(tmp)))
        run.start(None)
        try:
            warm = int(run.step()["env_steps"])  # generation 0, untimed: the workers start (spawn, imports)
            steps, seconds = 0, 0.0
            for _ in range(generations):
                t0 = time.perf_counter()
                m = run.step()
                seconds += time.perf_counter() - t0
                steps = int(m["env_steps"]) - warm
        finally:
            run.end("finished")
        return steps / seconds, steps, seconds, run.optimizer.center(run.state).clone()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generations", type=int, default=5)
    parser.add_argument("--phases", nargs="+", default=["start", "full", "small_full"], choices=sorted(PHASES))
    parser.add_argument("--workers", default="2", help="evaluator.workers (the default run: auto = one per core)")
    parser.add_argument("--repeats", type=int, default=1, help="alternate the two paths this many times; median")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"default CartPole run, {args.generations} generations per measurement, evaluator.workers={args.workers}, median of {args.repeats}")
    print(f"{'phase':<7} {'path':<9} {'env steps':>10} {'seconds':>8} {'steps/s':>9} {'ratio':>6}  same centre")
    for phase in args.phases:
        base = [*PHASES[phase], f"evaluator.workers={args.workers}", "progress_bar=false"]
        rates: dict[str, list[float]] = {"per-env": [], "vector": []}
        last: dict[str, tuple[int, float, torch.Tensor]] = {}
        for _ in range(args.repeats):
            for path, extra in (("per-env", ["env.vector=null"]), ("vector", [])):
                rate, steps, seconds, center = measure(base + extra, args.generations)
                rates[path].append(rate)
                last[path] = (steps, seconds, center)
        same = torch.equal(last["per-env"][2], last["vector"][2])
        ref = statistics.median(rates["per-env"])
        for path in ("per-env", "vector"):
            steps, seconds, _ = last[path]
            rate = statistics.median(rates[path])
            print(f"{phase:<7} {path:<9} {steps:>10} {seconds:>8.2f} {rate:>9.0f} {rate / ref:>5.2f}x  {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
