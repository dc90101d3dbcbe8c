"""CarRacing-v3 vs env=carracing_fast (the lean 96x96 renderer): env steps, then a whole generation.

    python benchmarks/bench_carracing.py [--steps 300] [--repeats 3] [--popsize 64] [--gen-steps 200] [--clock wall]

1. Env step.  Every row steps the same env, from the same seeded reset, with the same
   action sequence (uniform steer/gas/brake from a fixed seed), `--steps` steps after
   reset, so the zoom-in of the first second (the whole track in view) is included as
   in every episode.  "render" is the time inside CarRacing._render('state_pixels')
   (for CarRacing-v3: pygame draws 1000x800, smoothscale to 96x96); "physics" is the
   rest of the step (car dynamics, Box2D, rewards, gymnasium's wrappers).  Median of
   `--repeats`; the rows take turns inside each repeat so load spikes hit all alike.
   Ratios are against CarRacing-v3 measured in the same process.
2. A generation.  OpenAI-ES at population `--popsize` (ask, evaluate, tell) with the
   project's task, the paper's network (2 conv layers + ABCD plastic 648-128-64-3) and
   the in-process evaluator (all members in one batch, as a worker runs its share),
   every lifetime `--gen-steps` steps long (early stop off: equal work per member, and
   both envs do the same work though their slightly different pixels steer the cars
   apart).  Split: physics, render, preprocessing (84x84 INTER_AREA, scale),
   forward (CNN + FC), Hebbian update, other (ask + tell, the loop).

`--clock thread` counts this thread's CPU time instead of wall time: steadier on a
machine shared with other jobs (it leaves out the time the scheduler gives to them).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch

import hebbian_es.envs.carracing  # noqa: F401  (registers CarRacingFast-v0)
from hebbian_es import config
from hebbian_es.core.task import build_task, episode_seeds
from hebbian_es.es.evaluators import Episodes, SerialEvaluator
from hebbian_es.es.openai_es import OpenAIES

FAST_ID = "hebbian_es.envs.carracing:CarRacingFast-v0"
CLOCKS = {"wall": time.perf_counter, "thread": time.thread_time}
clock = time.perf_counter


class Timer:
    """Accumulates the time spent inside the callables it wraps."""

    def __init__(self) -> None:
        self.total = 0.0

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = clock()
            try:
                return fn(*args, **kwargs)
            finally:
                self.total += clock() - t0

        return timed


def time_render(env: gym.Env, timer: Timer) -> None:
    """Time the state rendering of `env` (CarRacing-v3 or CarRacingFast-v0) into `timer`."""
    inner = env.unwrapped
    inner._render = timer.wrap(inner._render)


def actions(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.array([rng.uniform(-1, 1), rng.uniform(0, 1), rng.uniform(0, 0.3)], np.float32) for _ in range(n)]


# --------------------------------------------------------------------------- 1. env step


def env_rows(steps: int, repeats: int) -> list[dict[str, Any]]:
    acts = actions(steps)
    makers = {"CarRacing-v3": lambda: gym.make("CarRacing-v3")}
    for k in (1, 2, 4, 8):
        makers[f"carracing_fast (supersampling {k})"] = lambda k=k: gym.make(FAST_ID, supersampling=k)
    envs = {name: make() for name, make in makers.items()}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in envs}
    try:
        for _ in range(repeats):
            for name, env in envs.items():
                env.reset(seed=0)
                render = Timer()
                original = env.unwrapped._render
                time_render(env, render)
                t0 = clock()
                for a in acts:
                    env.step(a)
                total = clock() - t0
                env.unwrapped._render = original
                times[name].append((total / steps * 1e6, render.total / steps * 1e6))
    finally:
        for env in envs.values():
            env.close()
    base = statistics.median(t for t, _ in times["CarRacing-v3"])
    rows = []
    for name, ts in times.items():
        step, render = statistics.median(t for t, _ in ts), statistics.median(r for _, r in ts)
        rows.append({"env": name, "us_per_step": step, "physics": step - render, "render": render, "speedup": base / step})
    return rows


# --------------------------------------------------------------------------- 2. a generation


class _TimedTask:
    """The task, whose policies' forward and update are timed."""

    def __init__(self, task: Any, forward: Timer, update: Timer) -> None:
        self._task, self._forward, self._update = task, forward, update

    def __getattr__(self, name: str) -> Any:
        return getattr(self._task, name)

    def policy(self, params: torch.Tensor) -> Any:
        policy = self._task.policy(params)
        policy.forward = self._forward.wrap(policy.forward)
        policy.update = self._update.wrap(policy.update)
        return policy


def generation_row(env: str, popsize: int, steps: int, repeats: int) -> dict[str, float]:
    cfg = config.to_object(config.compose([
        "run_dir=unused", f"env={env}", f"env.max_episode_steps={steps}", f"optimizer.popsize={popsize}",
        "env.early_stop.patience=null", "env.end_on_terminated=false",  # every lifetime runs all steps
    ]))  # fmt: skip
    task = build_task(cfg)
    timers = {k: Timer() for k in ("env", "render", "preprocess", "forward", "update")}
    evaluator = SerialEvaluator(task, batch_size=popsize)
    ws = evaluator.workspace
    ws.task = _TimedTask(task, timers["forward"], timers["update"])  # type: ignore[assignment]
    ws.observe = [timers["preprocess"].wrap(o) for o in ws.observe]
    for runner in ws.pool.get(task.envs[0], popsize):  # the runners evaluate() will use
        runner.step = timers["env"].wrap(runner.step)
        runner.reset = timers["env"].wrap(runner.reset)
        time_render(runner.env, timers["render"])
    es = OpenAIES(popsize=popsize)
    state = es.init(task.initial_center(0), seed=0)
    env_seeds, init_seeds = episode_seeds(0, 0, 0, 1)
    episodes = Episodes(np.zeros(1, dtype=np.int64), env_seeds, init_seeds)
    runs = []
    try:
        for _ in range(repeats):
            for t in timers.values():
                t.total = 0.0
            t0 = clock()
            state, pop = es.ask(state)
            res = evaluator.evaluate(pop, range(pop.size), episodes)
            state = es.tell(state, pop, res.returns.mean(axis=1))
            wall = clock() - t0
            parts = {k: t.total for k, t in timers.items()}
            parts["physics"] = parts.pop("env") - parts["render"]
            parts["other"] = wall - sum(parts.values())
            runs.append({"total": wall, **parts, "env_steps": res.env_steps})
    finally:
        evaluator.close()
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300, help="env steps per repeat after a reset (part 1)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--popsize", type=int, default=64, help="population of the generation (part 2)")
    parser.add_argument("--gen-steps", type=int, default=200, help="steps of every lifetime in the generation")
    parser.add_argument("--gen-repeats", type=int, default=1, help="generations timed per env")
    parser.add_argument("--skip-generation", action="store_true")
    parser.add_argument("--clock", default="wall", choices=sorted(CLOCKS), help="wall time or this thread's CPU time")
    args = parser.parse_args(argv)
    global clock
    clock = CLOCKS[args.clock]
    torch.set_num_threads(1)

    rows = env_rows(args.steps, args.repeats)
    print(f"µs per env step ({args.clock} clock), median of {args.repeats} x {args.steps} steps from reset (zoom-in included)")
    print(f"{'env':<36} {'µs/step':>9} {'physics':>9} {'render':>9} {'speed-up':>9}")
    for r in rows:
        print(f"{r['env']:<36} {r['us_per_step']:>9.1f} {r['physics']:>9.1f} {r['render']:>9.1f} {r['speedup']:>8.2f}x")
    out: dict[str, Any] = {"env": rows}
    if args.skip_generation:
        return out

    gens = {env: generation_row(env, args.popsize, args.gen_steps, args.gen_repeats) for env in ("carracing", "carracing_fast")}
    base = gens["carracing"]["total"]
    cols = ("physics", "render", "preprocess", "forward", "update", "other")
    print(
        f"\nOne generation ({args.clock} clock, s): OpenAI-ES population {args.popsize}, {args.gen_steps} steps per lifetime,"
        f" in-process evaluator, 1 torch thread; median of {args.gen_repeats}"
    )
    print(f"{'env':<16} {'total':>8} " + " ".join(f"{c:>10}" for c in cols) + f" {'steps/s':>9} {'speed-up':>9}")
    for env, g in gens.items():
        rate = g["env_steps"] / g["total"]
        print(f"{env:<16} {g['total']:>8.2f} " + " ".join(f"{g[c]:>10.2f}" for c in cols) + f" {rate:>9.0f} {base / g['total']:>8.2f}x")
    out["generation"] = gens
    return out


if __name__ == "__main__":
    main()
