"""Kill a run at random moments, restart it, and compare with an uninterrupted run.

    python scripts/faults/kill_loop.py [--trials 50] [--signal KILL|TERM|INT] [--kills 1] [--seed 0]
                                       [--generations 40] [--dir DIR]

Each trial starts `python -m hebbian_es` on a tiny CartPole run (debug=default: population 8,
serial evaluator; --generations generations, validation every 5) and sends the signal
`--kills` times: at a random moment of training in even trials, and in odd trials the moment
a checkpoint's temp file appears (during a checkpoint write).  After each signal it checks
what was left (every checkpoint loads whole); then it runs the same command until the run
finishes and compares it with one uninterrupted run of the same command:

  * the centre, the optimiser state, the best centre and the counters are bit-identical;
  * exactly one metrics row per generation, and the rows (timing columns aside) and the
    validation rows are the uninterrupted run's;
  * no temp file is left (checkpoints/.*.pt.*, *.tmp), status.json says finished;
  * SIGTERM/SIGINT: exit code 143/130, one "stopped at generation" line, no traceback.

Prints one line per trial and the figure, e.g. "kill -9: 36/36 interrupted runs resumed
bit-identical (16 at a random moment, 20 in the middle of a checkpoint write)"; exit code 0 when
every trial passed.
tests/run/test_faults.py runs it with a few trials (HEBBIAN_ES_KILL_TRIALS, default 3).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hebbian_es.run.rundir import read_jsonl as rows  # a torn last line is skipped

RUN = ("debug=default", "validation.every=5", "validation.episodes=2", "test.after_fit=false", "progress_bar=false")
TIMING = ("gen_seconds", "steps_per_s", "wall_time")
# What a resumed checkpoint must share with the uninterrupted run's (wall_time and the RNG
# states at save time depend on the process, and resuming does not read them).
COMPARED = ("task", "seed", "generation", "best", "env_steps", "nonfinite_total", "optimizer", "params")
NAMES = {signal.SIGKILL: "kill -9", signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT"}


def command(run_dir: Path, generations: int) -> list[str]:
    return [sys.executable, "-m", "hebbian_es", *RUN, f"generations={generations}", f"hydra.run.dir={run_dir}"]


@dataclass
class Launch:
    """One process of a trial: how it ended and what it printed."""

    returncode: int
    stderr: str
    signalled: bool  # the signal was sent while the run was still running (status.json not yet finished)
    during_write: bool = False  # a checkpoint's temp file existed when it was sent
    generation: int | None = None  # last.pt's generation after it ended


@dataclass
class Trial:
    index: int
    during_write: bool
    launches: list[Launch] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def temp_files(run_dir: Path) -> list[Path]:
    return sorted([*run_dir.glob("checkpoints/.*.pt.*"), *run_dir.rglob("*.tmp")])


def untimed(rs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rs]


def same(a: Any, b: Any) -> bool:
    """Bit-identical: tensors and arrays element by element (NaN equal to NaN), containers recursively."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape and a.dtype == b.dtype \
            and bool(torch.equal(a, b) or (a.is_floating_point() and torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(), b.nan_to_num())))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=np.asarray(a).dtype.kind == "f")
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    return bool(a == b)


def load(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=False)


def _start(run_dir: Path, generations: int, log: Path) -> tuple[subprocess.Popen, Any]:
    err = open(log, "w")
    proc = subprocess.Popen(
        command(run_dir, generations), cwd=run_dir.parent, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
    )
    return proc, err


def _announced(run_dir: Path, pid: int) -> bool:
    """The process passed its checks and holds the run directory's lock (its signal handlers are set)."""
    try:
        return (run_dir / ".lock").read_text().startswith(f"pid {pid} ")
    except OSError:
        return False


def _status(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / "status.json").read_text()).get("status")
    except (OSError, ValueError):
        return None


def _send(proc: subprocess.Popen, sig: int) -> None:
    try:
        if sig == signal.SIGINT:
            os.killpg(proc.pid, sig)  # what a terminal's Ctrl-C does: the whole process group
        elif sig == signal.SIGKILL:
            os.killpg(proc.pid, sig)  # kill -9 of everything the run started
        else:
            proc.send_signal(sig)  # kill <pid>
    except ProcessLookupError:
        pass


def reference(root: Path, generations: int) -> tuple[Path, float]:
    """The uninterrupted run, and how long its training took (from the lock to the end)."""
    run_dir = root / "reference"
    proc, err = _start(run_dir, generations, root / "reference.err")
    started = None
    while proc.poll() is None:
        if started is None and _announced(run_dir, proc.pid):
            started = time.monotonic()
        time.sleep(0.005)
    err.close()
    if proc.returncode != 0:
        raise SystemExit(f"the uninterrupted run failed:\n{(root / 'reference.err').read_text()[-3000:]}")
    return run_dir, time.monotonic() - (started or time.monotonic())


def _signal_once(
    run_dir: Path, generations: int, log: Path, sig: int, during_write: bool, train_s: float, rng: random.Random,
) -> Launch:
    proc, err = _start(run_dir, generations, log)
    sent, caught = False, False
    try:
        while proc.poll() is None and not _announced(run_dir, proc.pid):
            time.sleep(0.002)
        if during_write:  # from a random generation on, signal the moment a checkpoint's temp file is there
            ckpt, target = run_dir / "checkpoints", rng.randrange(generations)
            while proc.poll() is None and len(rows(run_dir / "metrics.jsonl")) < target:
                time.sleep(0.002)
            while proc.poll() is None:
                if ckpt.is_dir() and any(n.startswith(".") and ".pt." in n for n in os.listdir(ckpt)):
                    caught = True
                    break
                time.sleep(0.0002)
        else:
            deadline = time.monotonic() + rng.uniform(0.0, train_s)
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.001)
        if proc.poll() is None:
            # A run that has written status finished is only exiting (releasing the lock, the
            # interpreter's shutdown): the signal is sent, but it interrupts nothing.
            sent = _status(run_dir) != "finished"
            _send(proc, sig)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        err.close()
    return Launch(proc.returncode, log.read_text(), sent, caught and sent)


def run_trial(
    root: Path, index: int, ref: Path, train_s: float, *, sig: int, kills: int, generations: int, rng: random.Random,
) -> Trial:
    run_dir = root / f"{NAMES[sig].replace(' ', '').replace('-', '')}_trial{index:03d}"
    trial = Trial(index, during_write=index % 2 == 1)
    for k in range(kills):
        launch = _signal_once(run_dir, generations, run_dir.with_name(f"{run_dir.name}.{k}.err"), sig, trial.during_write, train_s, rng)
        trial.launches.append(launch)
        for pt in sorted(run_dir.glob("checkpoints/*.pt")):
            try:  # no torn checkpoint, whatever the moment
                saved = load(pt)
                if pt.name == "last.pt":
                    launch.generation = int(saved["generation"])
            except Exception as exc:  # noqa: BLE001 - any failure to load is the finding
                trial.problems.append(f"launch {k}: {pt.name} does not load after the signal ({type(exc).__name__}: {exc})")
        if not launch.signalled and launch.returncode not in (0, 128 + sig, -sig):
            trial.problems.append(f"launch {k}: exit {launch.returncode} after the run had finished")
        if launch.signalled and sig == signal.SIGKILL and launch.returncode != -signal.SIGKILL:
            trial.problems.append(f"launch {k}: exit {launch.returncode} after kill -9")
        if launch.signalled and sig != signal.SIGKILL:
            code = 128 + sig
            stopped = [line for line in launch.stderr.splitlines() if line.startswith("stopped at generation")]
            if launch.returncode != code or len(stopped) != 1:
                trial.problems.append(f"launch {k}: exit {launch.returncode} (want {code}), {len(stopped)} 'stopped at' lines")
        if "Traceback" in launch.stderr:
            trial.problems.append(f"launch {k}: a traceback:\n{launch.stderr[-2000:]}")
    final = subprocess.run(command(run_dir, generations), cwd=root, capture_output=True, text=True, timeout=600)
    if final.returncode != 0 or "Traceback" in final.stderr:
        trial.problems.append(f"the restarted run failed (exit {final.returncode}):\n{final.stderr[-2000:]}")
        return trial
    trial.problems += compare(run_dir, ref, generations)
    return trial


def compare(run_dir: Path, ref: Path, generations: int) -> list[str]:
    """What differs between a killed-and-restarted run and the uninterrupted one (nothing: [])."""
    problems = []
    for name in ("last.pt", "best.pt"):
        a, b = load(run_dir / "checkpoints" / name), load(ref / "checkpoints" / name)
        differ = [k for k in COMPARED if not same(a.get(k), b.get(k))]
        if differ:
            problems.append(f"checkpoints/{name} differs from the uninterrupted run's in {differ}")
    got = rows(run_dir / "metrics.jsonl")
    if [r["generation"] for r in got] != list(range(generations)):
        problems.append(f"metrics rows for generations {[r['generation'] for r in got]}, want one per generation 0..{generations - 1}")
    elif untimed(got) != untimed(rows(ref / "metrics.jsonl")):
        problems.append("metrics rows differ from the uninterrupted run's")
    if rows(run_dir / "validation.jsonl") != rows(ref / "validation.jsonl"):
        problems.append("validation rows differ from the uninterrupted run's")
    left = temp_files(run_dir)
    if left:
        problems.append(f"temp files left: {[str(p.relative_to(run_dir)) for p in left]}")
    status = json.loads((run_dir / "status.json").read_text())["status"]
    if status != "finished":
        problems.append(f"status {status}, want finished")
    return problems


def describe(trial: Trial, sig: int, trials: int) -> str:
    how = "during a checkpoint write" if trial.during_write else "at a random moment"
    parts = []
    for launch in trial.launches:
        if not launch.signalled:
            parts.append("finished before the signal")  # or was only exiting: status.json said finished
            continue
        where = "no checkpoint yet" if launch.generation is None else f"last.pt at generation {launch.generation}"
        parts.append(f"signalled ({where}{', temp file caught mid-write' if launch.during_write else ''})")
    verdict = "ok: bit-identical, one row per generation, no temp file" if trial.ok else "FAILED: " + "; ".join(trial.problems)
    return f"trial {trial.index + 1}/{trials} ({NAMES[sig]} {how}): {', '.join(parts)}; {verdict}"


def figure(results: list[Trial], sig: int) -> str:
    """The line for the docs: how many interrupted runs resumed bit-identical, and where the signal landed."""
    hit = [t for t in results if any(launch.signalled for launch in t.launches)]
    writes = sum(any(launch.during_write for launch in t.launches) for t in hit)
    line = (
        f"{NAMES[sig]}: {sum(t.ok for t in hit)}/{len(hit)} interrupted runs resumed bit-identical "
        f"({len(hit) - writes} at a random moment, {writes} in the middle of a checkpoint write)"
    )
    missed = [t for t in results if t not in hit]
    if missed:  # the random moment fell after the run's end: still compared, but not a fault
        line += f"; {len(missed)} more trials ended before the signal ({sum(t.ok for t in missed)} identical)"
    return line


def run_trials(
    root: Path, trials: int, *, sig: int = signal.SIGKILL, kills: int = 1, generations: int = 40, seed: int = 0,
    echo: bool = True, ref: tuple[Path, float] | None = None,
) -> tuple[list[Trial], str]:
    """`trials` trials under `root` (ref: an uninterrupted run of the same command and its training
    seconds, from `reference`; made here if not given); the per-trial results and the figure's line."""
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    ref_dir, train_s = ref or reference(root, generations)
    results = []
    for i in range(trials):
        trial = run_trial(root, i, ref_dir, train_s, sig=sig, kills=kills, generations=generations, rng=rng)
        results.append(trial)
        if echo:
            print(describe(trial, sig, trials), flush=True)
    return results, figure(results, sig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--signal", choices=("KILL", "TERM", "INT"), default="KILL")
    parser.add_argument("--kills", type=int, default=1, help="signals per trial before the run is let finish")
    parser.add_argument("--generations", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0, help="seed of the random moments")
    parser.add_argument("--dir", type=Path, default=None, help="where the runs go (default: a temp dir, removed after)")
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="kill_loop_"))
    started = time.monotonic()
    try:
        results, line = run_trials(
            root, args.trials, sig=getattr(signal, f"SIG{args.signal}"), kills=args.kills,
            generations=args.generations, seed=args.seed,
        )
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)
    print(f"{line} [{time.monotonic() - started:.0f} s]")
    sys.exit(0 if all(t.ok for t in results) else 1)


if __name__ == "__main__":
    main()
