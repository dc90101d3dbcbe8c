"""µs per step of the quadruped: AntBulletEnv-v0 (MorphAnt-v0) vs the lean FastAnt-v0 vs bare physics.

    python benchmarks/bench_ant_env.py [--steps 1000] [--warmup 100] [--repeats 5] [--body standard] [--clock wall]

Every row steps the same body with the same action sequence (uniform in [-1, 1]
from a fixed seed) from the same seeded reset, so the three walk the same
trajectory and pybullet does the same contact work.  Steady state: `--warmup`
untimed steps after the reset, then `--steps` timed ones; the figure is the median
over `--repeats` (the rows take turns inside each repeat, so load spikes hit all
of them alike).  "physics" is the floor a step cannot go below: the 8 torques
set in one call and one stepSimulation (0.0165 s = 4 substeps of 0.004125 s, as
the env does), no state read back; "physics + queries" adds the five pybullet
queries FastAnt-v0 reads the state with (joints, links, base pose, base
velocity, contacts), no arithmetic: the floor for any env built on pybullet's
Python API.  Ratios are against AntBulletEnv-v0 measured
in the same process.  `--clock thread` counts this thread's CPU time instead of
wall time: steadier on a machine shared with other jobs (it leaves out the
time the scheduler gives to them, not their effect on caches).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable

import numpy as np
import pybullet as p

from hebbian_es.envs.ant.bullet import MorphAntEnv
from hebbian_es.envs.ant.fast import FastAntEnv
from hebbian_es.envs.ant.morphology import resolve


def _actions(n: int, seed: int = 0) -> list[np.ndarray]:
    return list(np.random.default_rng(seed).uniform(-1.0, 1.0, size=(n, 8)).astype(np.float32))


CLOCKS = {"wall": time.perf_counter, "thread": time.thread_time}
clock = time.perf_counter


def _time_per_step(step: Callable[[Any], Any], inputs: list[Any], warmup: int) -> float:
    """µs per call of `step` over inputs[warmup:], after the untimed inputs[:warmup]."""
    for x in inputs[:warmup]:
        step(x)
    timed = inputs[warmup:]
    t0 = clock()
    for x in timed:
        step(x)
    return (clock() - t0) / len(timed) * 1e6


def _env_stepper(env: Any) -> Callable[[list[np.ndarray], int], float]:
    def run(actions: list[np.ndarray], warmup: int) -> float:
        env.reset(seed=0)
        return _time_per_step(env.step, actions, warmup)

    return run


def _physics_stepper(env: FastAntEnv, queries: bool) -> Callable[[list[np.ndarray], int], float]:
    """The same world, driven with the same torques; the state read back or not."""

    def run(actions: list[np.ndarray], warmup: int) -> float:
        env.reset(seed=0)
        cid, ant, motors, links, plane = env._cid, env._ant, env._motors, env._links, env._plane
        control, sim, torque = p.setJointMotorControlArray, p.stepSimulation, p.TORQUE_CONTROL
        joints, link_states, pose, velocity, contacts = (
            p.getJointStates, p.getLinkStates, p.getBasePositionAndOrientation, p.getBaseVelocity, p.getContactPoints,
        )  # fmt: skip
        forces = [(250.0 * np.clip(a, -1, 1).astype(np.float64)).tolist() for a in actions]

        def step(f: list[float]) -> None:
            control(ant, motors, torque, forces=f, physicsClientId=cid)
            sim(cid)
            if queries:
                contacts(ant, plane, -2, -2, cid)
                joints(ant, motors, cid)
                pose(ant, cid)
                link_states(ant, links, 0, 0, cid)
                velocity(ant, cid)

        return _time_per_step(step, forces, warmup)

    return run


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1000, help="timed steps per repeat")
    parser.add_argument("--warmup", type=int, default=100, help="untimed steps after each reset")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--body", default="standard", help="morphology preset, e.g. front_right_short")
    parser.add_argument("--clock", default="wall", choices=sorted(CLOCKS), help="wall time or this thread's CPU time")
    args = parser.parse_args(argv)
    global clock
    clock = CLOCKS[args.clock]
    damages = resolve(args.body).as_kwargs()
    actions = _actions(args.warmup + args.steps)
    base_env, fast_env, floor_env = MorphAntEnv(damages=damages), FastAntEnv(damages=damages), FastAntEnv(damages=damages)
    runs = {
        "AntBulletEnv-v0 (MorphAnt-v0)": _env_stepper(base_env),
        "FastAnt-v0": _env_stepper(fast_env),
        "physics + queries": _physics_stepper(floor_env, queries=True),
        "physics (torques + stepSimulation)": _physics_stepper(floor_env, queries=False),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    try:
        for _ in range(args.repeats):
            for name, run in runs.items():
                times[name].append(run(actions, args.warmup))
    finally:
        for env in (base_env, fast_env, floor_env):
            env.close()
    base = statistics.median(times["AntBulletEnv-v0 (MorphAnt-v0)"])
    rows = [
        {"env": name, "us_per_step": statistics.median(t), "min_us": min(t), "ratio": statistics.median(t) / base, "clock": args.clock}
        for name, t in times.items()
    ]
    print(
        f"µs per env step ({args.clock} clock), median (min) of {args.repeats} x {args.steps} steps"
        f" after {args.warmup} warm-up; body {args.body}"
    )
    print(f"{'env':<36} {'µs/step':>9} {'min':>9} {'vs AntBulletEnv':>16}")
    for r in rows:
        print(f"{r['env']:<36} {r['us_per_step']:>9.1f} {r['min_us']:>9.1f} {r['ratio']:>15.2f}x")
    return rows


if __name__ == "__main__":
    main()
