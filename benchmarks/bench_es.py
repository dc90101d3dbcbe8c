"""ES bookkeeping per generation (ask + tell, no env), against plain noise generation.

    python benchmarks/bench_es.py [--dim 458002] [--popsize 200] [--repeats 3]

Baseline: drawing the generation's popsize/2 noise vectors once (the least any
seed-based ES must do).  Measured: `ask` + `tell` of OpenAI-ES with random
fitness, which regenerates each noise vector from its seed.  Peak memory is the
growth of the process's max RSS during the measured calls.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import numpy as np
import torch

from hebbian_es.es.base import noise_from_seed
from hebbian_es.es.openai_es import OpenAIES


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dim", type=int, default=458_002, help="CarRacing ABCD: 456,640 coefficients + 1,362 conv")
    parser.add_argument("--popsize", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    es = OpenAIES(popsize=args.popsize)
    state = es.init(torch.zeros(args.dim), seed=0)
    rng = np.random.default_rng(0)
    base, step = [], []
    rss0 = max_rss_mb()
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for k in range(args.popsize // 2):
            noise_from_seed(k, args.dim)
        base.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        state, pop = es.ask(state)
        state = es.tell(state, pop, rng.normal(size=args.popsize))
        step.append(time.perf_counter() - t0)
    b, s = statistics.median(base), statistics.median(step)
    print(f"ES bookkeeping, dim {args.dim:,}, population {args.popsize}, median of {args.repeats}, 1 torch thread")
    print(f"{'noise only (s)':>15} {'ask+tell (s)':>13} {'ratio':>7} {'peak RSS growth (MB)':>21}")
    print(f"{b:>15.3f} {s:>13.3f} {s / b:>7.2f} {max_rss_mb() - rss0:>21.1f}")


if __name__ == "__main__":
    main()
