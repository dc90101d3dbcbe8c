"""`hydra/launcher=local`: a sweep on this machine, sized to it, with progress and a summary.

submitit's local executor starts every job of a sweep at once: 15 jobs of
`sweep=rule_ablation`, each with a worker per core, were about 90 processes on 2 cores.
This launcher keeps at most `max_parallel` jobs running (default: the cores divided by
each job's evaluator workers, at least 1), starts the next one as one ends, prints a line
per job start/end (jobs done / running / failed, elapsed, ETA) and ends with a summary
that names the failed jobs and points at `python -m hebbian_es.report`.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher import submitit_launcher as _plugin
from omegaconf import OmegaConf

log = logging.getLogger(__name__)
EXECUTOR_KEYS = ("timeout_min", "cpus_per_task", "gpus_per_node", "tasks_per_node", "mem_gb", "nodes", "name", "stderr_to_stdout")
POLL_S = 1.0


def job_workers(cfg: Any) -> int:
    """Worker processes one job of this sweep starts (its evaluator's; auto = one per core)."""
    workers = OmegaConf.select(cfg, "evaluator.workers", default=1)
    if workers in (None, "auto"):
        return os.cpu_count() or 1
    return max(1, int(workers))


def job_labels(job_overrides: Sequence[Sequence[str]]) -> list[str]:
    """Each job named by the overrides that differ between the jobs (the sweep's parameters)."""
    jobs = [filter_overrides(o) for o in job_overrides]
    common = set.intersection(*(set(j) for j in jobs)) if len(jobs) > 1 else set()
    return [" ".join(x for x in j if x not in common) or " ".join(j) for j in jobs]


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def _say(line: str) -> None:
    print(f"[sweep] {line}", file=sys.stderr, flush=True)


class LocalLauncher(_plugin.LocalLauncher):
    def __init__(self, max_parallel: int | None = None, **params: Any) -> None:
        if max_parallel is not None and int(max_parallel) < 1:
            print(f"error: hydra.launcher.max_parallel={max_parallel}: must be >= 1 or null (auto)", file=sys.stderr)
            sys.exit(2)
        self.max_parallel = None if max_parallel is None else int(max_parallel)
        super().__init__(**params)

    def _parallel(self, job_overrides: Sequence[Sequence[str]]) -> int:
        if self.max_parallel is not None:
            return self.max_parallel
        assert self.config is not None and self.hydra_context is not None
        cores = os.cpu_count() or 1
        widest = max(job_workers(self.hydra_context.config_loader.load_sweep_config(self.config, list(o))) for o in job_overrides)
        return max(1, cores // widest)

    def _executor(self) -> Any:
        import submitit

        executor = submitit.AutoExecutor(
            cluster="local", folder=self.params["submitit_folder"], local_max_num_timeout=self.params.get("max_num_timeout", 3)
        )
        executor.update_parameters(**{k: v for k, v in self.params.items() if k in EXECUTOR_KEYS and v is not None})
        return executor

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        assert self.config is not None
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        parallel = self._parallel(job_overrides)
        n = len(job_overrides)
        labels = job_labels(job_overrides)
        _say(f"{n} jobs, at most {parallel} at a time ({os.cpu_count()} cores); output in {sweep_dir}")
        executor = self._executor()
        pending = list(range(n))
        running: dict[int, Any] = {}
        results: dict[int, JobReturn] = {}
        failed: dict[int, str] = {}
        crashed: BaseException | None = None
        start = time.monotonic()

        def status(event: str) -> None:
            done = len(set(results) | set(failed))
            elapsed = time.monotonic() - start
            eta = f", ETA {_duration(elapsed / done * (n - done))}" if done and done < n else ""
            _say(f"{event} · {done}/{n} done, {len(running)} running, {len(failed)} failed · {_duration(elapsed)}{eta}")

        try:
            while pending or running:
                while pending and len(running) < parallel:
                    i = pending.pop(0)
                    idx = initial_job_idx + i
                    args = (list(job_overrides[i]), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state())
                    running[i] = executor.submit(self, *args)
                    status(f"#{idx} started: {labels[i]}")
                for i, job in list(running.items()):
                    if not job.done():
                        continue
                    del running[i]
                    idx = initial_job_idx + i
                    try:
                        ret = job.results()[0]
                    except Exception as exc:  # the job's process died (killed, out of memory)
                        failed[i] = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                        crashed = crashed or exc
                        status(f"#{idx} failed: {labels[i]}")
                        continue
                    results[i] = ret
                    if ret.status == JobStatus.FAILED:
                        failed[i] = f"{type(ret._return_value).__name__}: {ret._return_value}".splitlines()[0]
                        status(f"#{idx} failed: {labels[i]}")
                    else:
                        status(f"#{idx} ended: {labels[i]}")
                time.sleep(POLL_S if running else 0)
        except KeyboardInterrupt:
            for job in running.values():
                job.cancel(check=False)
            raise
        finally:
            self._summary(sweep_dir, n, results, failed, labels, initial_job_idx, time.monotonic() - start)
        if crashed is not None:
            raise crashed
        return [results[i] for i in range(n)]

    def _summary(
        self, sweep_dir: Path, n: int, results: dict[int, JobReturn], failed: dict[int, str],
        labels: list[str], first: int, elapsed: float,
    ) -> None:  # fmt: skip
        ok = len(results) - sum(r.status == JobStatus.FAILED for r in results.values())
        not_run = n - len(set(results) | set(failed))
        _say(f"summary: {n} jobs in {_duration(elapsed)}: {ok} ended, {len(failed)} failed" + (f", {not_run} not run" if not_run else ""))
        for i, why in sorted(failed.items()):
            _say(f"  failed #{first + i} ({labels[i]}): {why}; log under {sweep_dir / '.submitit'}")
        _say(f"compare them: python -m hebbian_es.report sweep={sweep_dir}")
