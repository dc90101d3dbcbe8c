"""`python -m hebbian_es.benchmark [tasks=[...]] [variants=[...]] [seeds=5] [jobs=2] [out=...]`

The plasticity benchmark: every rule variant x task x seed is one training run of
`python -m hebbian_es` (the suite's common overrides + the task's + the variant's + seed=<s>),
ending in the test protocol on the task's test variants, marked seen (inside the training
distribution) or unseen (held-out extremes).  Tasks are envs with hidden per-lifetime variation
(conf/variation/*.yaml) stepped as arrays (env.vector).  `jobs` long-lived worker processes run
the trainings side by side, one core each, in-process (train(), the function behind
`python -m hebbian_es`); a rerun skips finished runs and resumes interrupted ones from their
last.pt (train's resume=auto).  Then, per task, the report (hebbian_es.report.benchmark): IQM
and mean with stratified-bootstrap 95 % CIs over seen and unseen test variants, performance
profiles, and the probability of improvement over static and over ABCD, as report.md,
report.json and <task>.png in `out`.

The suite (tasks, variants, sizes) is a YAML file: hebbian_es/benchmark_suite.yaml by default;
a new rule variant is one entry there.  docs/benchmark.md says more.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional, Sequence

from hebbian_es import cli_args
from hebbian_es.cli_args import key
from hebbian_es.errors import ConfigError

SUITE = Path(__file__).resolve().parent / "benchmark_suite.yaml"


@dataclass
class BenchmarkArgs:
    tasks: Optional[List[str]] = key(None, "tasks to run (default: the suite's default_tasks)")
    variants: Optional[List[str]] = key(None, "rule variants to run (default: every variant of the suite)")
    seeds: int = key(5, "seeds per task and variant (0 .. seeds-1)")
    jobs: int = key(2, "training runs side by side, one core each")
    out: str = key("outputs/benchmark", "where the runs and the report go (a rerun continues there)")
    suite: Optional[str] = key(None, "the suite YAML (default: hebbian_es/benchmark_suite.yaml)")
    report_only: bool = key(False, "only (re)write the report from the finished runs in out")
    extra: List[str] = key([], "more overrides for every run, e.g. [generations=5] (a smoke run)")


@dataclass(frozen=True)
class Variant:
    name: str
    overrides: tuple[str, ...]
    merge_k: int | None = None  # evolve-then-merge: k shared rules ...
    merge_at: float = 0.5  # ... after this fraction of the generations


@dataclass(frozen=True)
class Suite:
    common: tuple[str, ...]
    tasks: dict[str, tuple[str, ...]]
    default_tasks: tuple[str, ...]
    baselines: tuple[str, ...]
    variants: dict[str, Variant] = field(default_factory=dict)


def load_suite(path: str | Path) -> Suite:
    """The suite file, checked: one line naming the key for anything malformed."""
    from omegaconf import OmegaConf

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"suite={str(path)!r}: no such file")
    try:
        data = OmegaConf.to_container(OmegaConf.load(p), resolve=True)
    except Exception as exc:
        raise ConfigError(f"suite={str(path)!r}: not readable YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), dict) or not isinstance(data.get("variants"), dict):
        raise ConfigError(f"suite={str(path)!r}: needs `tasks:` and `variants:` mappings")
    tasks = {}
    for name, t in data["tasks"].items():
        over = t.get("overrides") if isinstance(t, dict) else None
        if not isinstance(over, list):
            raise ConfigError(f"suite tasks.{name}: give `overrides: [...]`")
        tasks[str(name)] = tuple(map(str, over))
    variants = {}
    for name, v in data["variants"].items():
        if isinstance(v, list):
            variants[str(name)] = Variant(str(name), tuple(map(str, v)))
            continue
        if not isinstance(v, dict) or not isinstance(v.get("overrides"), list):
            raise ConfigError(f"suite variants.{name}: give a list of overrides, or {{overrides: [...], merge: {{k, at}}}}")
        merge = v.get("merge") or {}
        k, at = merge.get("k"), float(merge.get("at", 0.5))
        if merge and (not isinstance(k, int) or k < 1 or not 0.0 < at < 1.0):
            raise ConfigError(f"suite variants.{name}.merge: k must be an integer >= 1 and at in (0, 1), got k={k}, at={at}")
        variants[str(name)] = Variant(str(name), tuple(map(str, v["overrides"])), k if merge else None, at)
    default_tasks = tuple(data.get("default_tasks") or tasks)
    unknown = [t for t in default_tasks if t not in tasks]
    if unknown:
        raise ConfigError(f"suite default_tasks: {unknown} are not tasks; allowed: {sorted(tasks)}")
    return Suite(tuple(map(str, data.get("common") or ())), tasks, default_tasks, tuple(data.get("baselines") or ()), variants)


def choose(requested: Sequence[str] | None, allowed: Sequence[str], default: Sequence[str], key_name: str) -> list[str]:
    names = list(default if requested is None else requested)
    unknown = [n for n in names if n not in allowed]
    if unknown or not names:
        what = f"unknown {key_name[:-1]} {unknown[0]!r}" if unknown else "nothing chosen"
        raise ConfigError(f"{key_name}={names}: {what}; allowed: {list(allowed)}")
    return names


@dataclass(frozen=True)
class Job:
    task: str
    variant: Variant
    seed: int
    root: Path  # out/runs/<task>/<variant>/s<seed>

    @property
    def name(self) -> str:
        return f"{self.task}/{self.variant.name}/s{self.seed}"

    @property
    def run_dir(self) -> Path:
        """The run whose test results count (a merged variant's continuation)."""
        return self.root / "run" if self.variant.merge_k else self.root

    @property
    def results(self) -> Path:
        return self.run_dir / "test_last.json"

    def done(self) -> bool:
        return self.results.is_file()


def plan(args: BenchmarkArgs, suite: Suite) -> tuple[list[str], list[str], list[Job]]:
    if args.seeds < 1:
        raise ConfigError(f"seeds={args.seeds}: must be >= 1 (an integer: seeds 0 .. seeds-1 are run)")
    if args.jobs < 1:
        raise ConfigError(f"jobs={args.jobs}: must be >= 1")
    tasks = choose(args.tasks, list(suite.tasks), suite.default_tasks, "tasks")
    variants = choose(args.variants, list(suite.variants), list(suite.variants), "variants")
    root = Path(args.out).resolve() / "runs"
    jobs = [Job(t, suite.variants[v], s, root / t / v / f"s{s}") for t in tasks for v in variants for s in range(args.seeds)]
    return tasks, variants, jobs


def _overrides(suite: Suite, job: Job, extra: Sequence[str]) -> list[str]:
    return [*suite.common, *suite.tasks[job.task], *job.variant.overrides, *extra, f"seed={job.seed}"]


def _generations(overrides: Sequence[str]) -> int:
    """The run's generations, as these overrides compose them (the last one given wins)."""
    from hebbian_es import config

    return int(config.compose([o for o in overrides if not o.startswith("hydra.")]).generations)


def check_configs(suite: Suite, tasks: Sequence[str], variants: Sequence[str], extra: Sequence[str]) -> None:
    """Every (task, variant) config composes and builds, for training and for the test: a bad
    override or variation (a range whose low is above its high) is one line before any run."""
    from hebbian_es import config
    from hebbian_es.config.messages import error_line
    from hebbian_es.core.task import build_task

    for task in tasks:
        for name in variants:
            over = [*suite.common, *suite.tasks[task], *suite.variants[name].overrides, *extra, "run_dir=unused"]
            try:
                cfg = config.to_object(config.compose(over))
            except ConfigError as exc:
                raise ConfigError(f"task {task}, variant {name}: {exc}") from None
            except Exception as exc:  # Hydra's own: an unknown group option or key
                raise ConfigError(f"task {task}, variant {name}: {error_line(exc) or str(exc).splitlines()[0]}") from None
            try:
                build_task(cfg, "train")
                build_task(cfg, "test")
            except ConfigError as exc:
                raise ConfigError(f"task {task}, variant {name}: {exc}") from None


def _train(overrides: Sequence[str], run_dir: Path) -> None:
    """`python -m hebbian_es <overrides> hydra.run.dir=<run_dir>`, in this process (a resumed
    run continues from its last.pt, as train's resume=auto does)."""
    from hebbian_es import config
    from hebbian_es.run.train import train

    summary = train(config.compose([*overrides, f"run_dir={run_dir}"]))
    if summary.get("stopped"):
        raise RuntimeError(f"stopped: {summary['stopped']}")


def run_job(job: Job, suite: Suite, extra: Sequence[str]) -> None:
    """The job's stages, in this process, each skipped when its output exists: train (and test);
    or, for a merged variant, train the first part, merge it into k rules (python -m
    hebbian_es.merge), train on to the same budget."""
    over = _overrides(suite, job, extra)
    if not job.variant.merge_k:
        _train(over, job.root)
        return
    total = _generations(over)
    first = max(1, int(round(total * job.variant.merge_at)))
    pre = job.root / "pre"
    if not (job.run_dir / "merge.json").is_file():
        _train([*over, f"generations={first}", "test.after_fit=false"], pre)
        from hebbian_es.run.merge import MergeArgs, merge

        merge(MergeArgs(run=str(pre), k=job.variant.merge_k, out=str(job.run_dir)))
    merged = ["rule.sharing=merged", f"rule.shared_k={job.variant.merge_k}", "rule.assignment=rule_assignment.npy"]
    _train([*over, *merged, f"generations={max(1, total - first)}"], job.run_dir)


def _worker_job(job: Job, suite: Suite, extra: Sequence[str]) -> tuple[str, float]:
    """One job in a long-lived worker process (imports paid once per worker, not per run); its
    console output and log lines go to <job>/benchmark.log.  Returns (status, seconds)."""
    import contextlib
    import logging

    import torch

    torch.set_num_threads(1)
    t0 = time.monotonic()
    job.root.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(job.root / "benchmark.log")
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    logger = logging.getLogger("hebbian_es")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with open(job.root / "benchmark.log", "a") as fh, contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
            print(f"benchmark job {job.name}: {' '.join(_overrides(suite, job, extra))}", flush=True)
            run_job(job, suite, extra)
        status = "finished"
    except BaseException as exc:  # one run's failure does not stop the others; a rerun retries it
        status = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} (see {job.root / 'benchmark.log'})"
    finally:
        logger.removeHandler(handler)
        handler.close()
    return status, time.monotonic() - t0


def collect(tasks: Sequence[str], variants: Sequence[str], jobs: Sequence[Job]) -> list[Any]:
    """Per task, the finished runs' mean test return on every test variant."""
    import numpy as np

    from hebbian_es.report.benchmark import TaskScores

    out = []
    for task in tasks:
        mine = [j for j in jobs if j.task == task and j.done()]
        if not mine:
            continue
        results = {j: json.loads(j.results.read_text())["envs"] for j in mine}
        first = next(iter(results.values()))
        tests = tuple(first)
        seen = tuple(bool(first[t].get("seen", True)) for t in tests)
        seeds = tuple(sorted({j.seed for j in mine}))
        scores = {}
        for v in variants:
            x = np.full((len(seeds), len(tests)), np.nan)
            for j in mine:
                if j.variant.name == v:
                    envs = results[j]
                    x[seeds.index(j.seed)] = [envs[t]["mean"] if t in envs else np.nan for t in tests]
            if np.isfinite(x).any():
                scores[v] = x
        out.append(TaskScores(task, tests, seen, seeds, scores))
    return out


def report(args: BenchmarkArgs, suite: Suite, tasks: Sequence[str], variants: Sequence[str], jobs: Sequence[Job]) -> Path:
    from hebbian_es.files import write_json_atomic, write_text_atomic
    from hebbian_es.report.benchmark import markdown, plot_task, summarise

    out = Path(args.out).resolve()
    scored = collect(tasks, variants, jobs)
    summaries = []
    for task in scored:
        s = summarise(task, suite.baselines)
        plot_task(task, s, out / f"{task.task}.png")
        summaries.append(s)
    done = sum(j.done() for j in jobs)
    header = (
        f"# Plasticity benchmark\n\n{done}/{len(jobs)} runs finished; tasks {list(tasks)}, variants {list(variants)}, "
        f"{args.seeds} seeds. Scores: mean test return of each run on each test variant "
        f"(hebbian_es.report.benchmark says how the statistics are made).\n"
        + "".join(f"\n![{t.task}]({t.task}.png)\n" for t in scored)
    )
    write_text_atomic(out / "report.md", markdown(summaries, suite.baselines, header))
    write_json_atomic(out / "report.json", {"runs_finished": done, "runs": len(jobs), "tasks": summaries})
    return out / "report.md"


def benchmark(args: BenchmarkArgs) -> None:
    suite = load_suite(args.suite or SUITE)
    tasks, variants, jobs = plan(args, suite)  # every check before anything is written
    out = Path(args.out).resolve()
    if not args.report_only:
        check_configs(suite, tasks, variants, args.extra)
        todo = [j for j in jobs if not j.done()]
        print(f"benchmark: {len(jobs)} runs ({len(tasks)} tasks x {len(variants)} variants x {args.seeds} seeds), "
              f"{len(jobs) - len(todo)} finished already, {len(todo)} to run, {args.jobs} at a time; out={out}", flush=True)  # fmt: skip
        out.mkdir(parents=True, exist_ok=True)
        import multiprocessing as mp

        started, failed = time.monotonic(), []
        # Long-lived worker processes, one core each: a run's imports (torch, Lightning) are paid
        # once per worker; each run is `python -m hebbian_es`'s train(), in that process.
        ctx = mp.get_context("spawn")
        pool = ctx.Pool(args.jobs, maxtasksperchild=None)
        try:
            pending = [(j, pool.apply_async(_worker_job, (j, suite, list(args.extra)))) for j in todo]
            for k, (job, res) in enumerate(pending, 1):
                status, seconds = res.get()
                if status != "finished":
                    failed.append(job.name)
                with open(out / "jobs.jsonl", "a") as fh:
                    fh.write(json.dumps({"job": job.name, "status": status, "seconds": round(seconds, 1)}) + "\n")
                left = (time.monotonic() - started) / k * (len(todo) - k)
                print(f"[{k}/{len(todo)}] {job.name}: {status} in {seconds:.0f} s; ETA {left / 60:.0f} min", flush=True)
        except KeyboardInterrupt:
            pool.terminate()
            print("benchmark: stopped; the same command continues it (finished runs are kept)", file=sys.stderr)
            raise SystemExit(130) from None
        finally:
            pool.close()
            pool.join()
        if failed:
            print(f"{len(failed)} runs failed (their benchmark.log says why); rerun the same command to retry them: {failed}", file=sys.stderr)
    path = report(args, suite, tasks, variants, jobs)
    print(f"wrote {path}")


def main(argv: Sequence[str] | None = None) -> None:
    cli_args.main(__doc__ or "", BenchmarkArgs, argv, benchmark, needs_args=False)


if __name__ == "__main__":
    main()
