"""Every benchmark table in one command:  python benchmarks/run_all.py

Runs, each in its own process: the per-step split (ant, ant_fast, CarRacing), the ES
bookkeeping for CarRacing's 458,002 parameters x population 200, 1 vs 2
local workers on the ant, the quadruped env alone (AntBulletEnv-v0 vs
FastAnt-v0 vs bare physics), and CarRacing-v3 vs env=carracing_fast (env step and
one population-64 generation).  Takes about ten minutes on 2 cores, most of it
CarRacing-v3's generation.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = [
    ["bench_step.py", "--envs", "ant", "ant_fast", "--batch", "32", "--steps", "200", "--repeats", "2"],
    ["bench_step.py", "--envs", "carracing", "--batch", "8", "--steps", "150", "--repeats", "2"],
    ["bench_es.py", "--repeats", "3"],
    ["bench_workers.py", "--env", "ant", "--popsize", "16", "--steps", "200", "--repeats", "2"],
    ["bench_ant_env.py", "--steps", "1000", "--repeats", "5"],
    ["bench_carracing.py", "--steps", "300", "--repeats", "3", "--popsize", "64", "--gen-steps", "200"],
]


def main() -> None:
    for script, *args in RUNS:
        print(f"\n$ python benchmarks/{script} {' '.join(args)}", flush=True)
        done = subprocess.run([sys.executable, str(HERE / script), *args], capture_output=True, text=True)
        lines = [l for l in done.stdout.splitlines() if not l.startswith(("argv[0]", "pybullet build time"))]
        print("\n".join(lines), flush=True)
        if done.returncode != 0:
            print(done.stderr[-2000:], file=sys.stderr)
            sys.exit(done.returncode)


if __name__ == "__main__":
    main()
