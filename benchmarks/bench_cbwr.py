"""What MKL's same-bits-on-every-CPU mode costs (hebbian_es sets MKL_CBWR=COMPATIBLE by default).

    python benchmarks/bench_cbwr.py [--envs cartpole ant_fast carracing_fast] [--batch 32] [--steps 200] [--repeats 3]

MKL reads MKL_CBWR once, at its first call, so the two modes cannot share a process: each
measurement is a child process running benchmarks/bench_step.py's rollout split (the real
rollout loop, µs per individual-step, one torch thread) with MKL_CBWR=COMPATIBLE (the default
here) or MKL_CBWR=AUTO (MKL's fastest kernels for this CPU), the two alternated `--repeats`
times so both see the same machine load. Reported: the median total per individual-step, the
policy's part (preprocessing, forward pass, Hebbian update: what MKL computes) and the ratio
COMPATIBLE / AUTO of each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHILD = """
import json, sys, torch
sys.path.insert(0, {here!r})
from bench_step import task_for, rollout_split
from hebbian_es.envs.runner import EnvPool
from hebbian_es.numerics import mkl_mode
torch.set_num_threads(1)
task = task_for({env!r}, {steps})
pool = EnvPool()
rollout_split(task, pool, {batch}, 20, 1)  # warm-up: env instances built, kernels loaded
split = rollout_split(task, pool, {batch}, {steps}, 2)
pool.close()
print(json.dumps({{**split, "mkl_mode": mkl_mode()}}))
"""


def measure(env: str, mode: str, batch: int, steps: int) -> dict:
    code = CHILD.format(here=str(HERE), env=env, steps=steps, batch=batch)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "MKL_CBWR": mode})
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=["cartpole", "ant_fast", "carracing_fast"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"µs per individual-step, median of {args.repeats} alternated child processes; batch {args.batch}, {args.steps} steps, 1 torch thread")
    print(f"{'env':<15} {'AUTO total':>11} {'COMPAT total':>13} {'ratio':>7} {'AUTO policy':>12} {'COMPAT policy':>14} {'ratio':>7}")
    for env in args.envs:
        runs: dict[str, list[dict]] = {"AUTO": [], "COMPATIBLE": []}
        for _ in range(args.repeats):
            for mode in runs:
                runs[mode].append(measure(env, mode, args.batch, args.steps))
        med = {
            mode: {
                "total": statistics.median(r["total"] for r in rs),
                "policy": statistics.median(r["preprocess"] + r["forward"] + r["update"] for r in rs),
            }
            for mode, rs in runs.items()
        }
        a, c = med["AUTO"], med["COMPATIBLE"]
        print(f"{env:<15} {a['total']:>11.1f} {c['total']:>13.1f} {c['total'] / a['total']:>7.2f} "
              f"{a['policy']:>12.1f} {c['policy']:>14.1f} {c['policy'] / a['policy']:>7.2f}")


if __name__ == "__main__":
    main()
