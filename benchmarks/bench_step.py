"""Per-step cost split inside the real rollout loop, against an env-only baseline.

    python benchmarks/bench_step.py [--envs ant ant_fast carracing carracing_fast cartpole] [--batch 8] [--steps 300] [--repeats 3]

For each env: the baseline steps the same env instances with fixed actions and no
policy (env cost alone); the rollout runs `run_lifetimes` with a population of
`--batch` ABCD networks and times its parts (env step, observation
preprocessing, forward, Hebbian update; "other" is the loop's remainder).
Every figure is µs per individual-step, the median over `--repeats` runs, and
the policy's share is reported as a ratio to the baseline measured in the same
process.  One torch thread, as in a worker.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np
import torch

from hebbian_es import config
from hebbian_es.envs.runner import EnvPool
from hebbian_es.envs.spec import ActionMapper, ObservationBatcher
from hebbian_es.core.rollout import run_lifetimes
from hebbian_es.core.task import build_task

ENV_OVERRIDES = {
    "ant": ["env=ant", "network=mlp"],
    "ant_fast": ["env=ant_fast", "network=mlp"],
    "carracing": ["env=carracing", "network=cnn_mlp"],
    "carracing_fast": ["env=carracing_fast", "network=cnn_mlp"],
    "cartpole": ["env=cartpole", "network=mlp", "env.vector=null"],  # one gymnasium env per lifetime: bench_vector.py times the batched one
}


class Timer:
    def __init__(self) -> None:
        self.total = 0.0

    def wrap(self, fn: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.total += time.perf_counter() - t0

        return timed


def task_for(name: str, steps: int):
    cfg = config.compose([
        "run_dir=unused", *ENV_OVERRIDES[name], f"env.max_episode_steps={steps}",
        "env.early_stop.patience=null", "env.early_stop.min_steps=0",  # every lifetime runs all steps
    ])  # fmt: skip
    return build_task(config.to_object(cfg))


def baseline(task, pool: EnvPool, batch: int, steps: int, seed: int) -> float:
    """Env cost alone: the same env instances, the same number of steps, fixed actions."""
    runners = pool.get(task.envs[0], batch)
    space = runners[0].env.action_space
    action = space.sample() if not hasattr(space, "n") else 0
    n = 0
    t0 = time.perf_counter()
    for i, r in enumerate(runners):  # resets (and any settling steps) are env cost, as in a rollout
        r.reset(seed + i)
    for _ in range(steps):
        for r in runners:
            _, _, done = r.step(action)
            n += 1
            if done:
                r.reset(seed)
    return (time.perf_counter() - t0) / n * 1e6


def rollout_split(task, pool: EnvPool, batch: int, steps: int, seed: int) -> dict[str, float]:
    params = task.initial_center(seed).unsqueeze(0).repeat(batch, 1)
    params.add_(torch.randn(params.shape, generator=torch.Generator().manual_seed(seed)), alpha=0.1)
    policy = task.policy(params)
    spec = task.envs[0]
    runners = pool.get(spec, batch)
    timers = {k: Timer() for k in ("env", "preprocess", "forward", "update")}
    observe = timers["preprocess"].wrap(ObservationBatcher(spec.observation))
    policy.forward = timers["forward"].wrap(policy.forward)
    policy.update = timers["update"].wrap(policy.update)
    steppers = []
    for r in runners:  # env time = resets (with any settling steps) + steps
        r.step = timers["env"].wrap(type(r).step.__get__(r))
        r.reset = timers["env"].wrap(type(r).reset.__get__(r))
        steppers.append(r)
    t0 = time.perf_counter()
    res = run_lifetimes(policy, steppers, [seed + i for i in range(batch)], [seed] * batch, observe, ActionMapper(spec.action), steps)
    wall = time.perf_counter() - t0
    for r in runners:
        del r.step, r.reset
    n = int(res.steps.sum())
    out = {k: t.total / n * 1e6 for k, t in timers.items()}
    out["other"] = wall / n * 1e6 - sum(out.values())
    out["total"] = wall / n * 1e6
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=["ant", "carracing"], choices=sorted(ENV_OVERRIDES))
    parser.add_argument("--batch", type=int, default=8, help="lifetimes run together (population share of a worker)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cols = ("env", "preprocess", "forward", "update", "other", "total")
    print(f"µs per individual-step, median of {args.repeats}; batch {args.batch}, {args.steps} steps, 1 torch thread")
    print(f"{'env':<14} {'baseline':>9} " + " ".join(f"{c:>10}" for c in cols) + f" {'policy/base':>11}")
    for name in args.envs:
        task = task_for(name, args.steps)
        pool = EnvPool()
        try:
            base = [baseline(task, pool, args.batch, args.steps, 100 + k) for k in range(args.repeats)]
            splits = [rollout_split(task, pool, args.batch, args.steps, 200 + k) for k in range(args.repeats)]
        finally:
            pool.close()
        med = {c: statistics.median(s[c] for s in splits) for c in cols}
        b = statistics.median(base)
        policy = med["preprocess"] + med["forward"] + med["update"]
        print(f"{name:<14} {b:>9.1f} " + " ".join(f"{med[c]:>10.1f}" for c in cols) + f" {policy / b:>10.1%}")


if __name__ == "__main__":
    main()
