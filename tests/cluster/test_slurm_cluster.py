"""The local SLURM cluster (scripts/slurm/start-cluster.sh) runs what the project sends it.

submitit jobs return their results, a 2-task job forms a torch.distributed (gloo) group
through submitit's TorchDistributedEnvironment, and accounting works: a job killed with
scancel shows as CANCELLED in sacct and in submitit, so waiting on it cannot hang.

Every wait here is bounded; job folders live under pytest's tmp_path. The bounds leave
room for a job to wait a while for CPUs (others may share the 2-CPU node); on a free
cluster each test takes a few seconds.
"""

from __future__ import annotations

import subprocess
import sys
import time

import cloudpickle
import pytest
import submitit
from submitit.core.utils import UncompletedJobError

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(180)]

# The job's Python cannot import this test module: send its functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _executor(folder, cluster, **params) -> submitit.AutoExecutor:
    executor = submitit.AutoExecutor(folder=folder / "%j", cluster="slurm")
    executor.update_parameters(
        name="hebbian-es-test",
        slurm_partition=cluster.partition,
        # Not less: submitit asks for USR2 90 s before the time limit and SLURM may send
        # it up to 60 s earlier still; with 2 min it can come at once, and submitit then
        # ends rank 0 as "timed out" (a 2-task gloo job hangs, a finished job is FAILED).
        timeout_min=5,
        nodes=1,
        tasks_per_node=1,
        cpus_per_task=1,
    )
    executor.update_parameters(**params)
    return executor


def _wait(job: submitit.Job, timeout_s: float) -> None:
    """Wait for the job to finish, or cancel it and fail after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while not job.done(force_check=True):
        if time.monotonic() > deadline:
            job.cancel(check=False)
            pytest.fail(f"job {job.job_id} not done after {timeout_s} s (state {job.state})")
        time.sleep(0.5)


def _sacct_state(job_id: str) -> str:
    out = subprocess.run(
        ["sacct", "-j", job_id, "-X", "-n", "-P", "-o", "State"],
        capture_output=True, text=True, timeout=15, check=True,
    )
    return out.stdout.strip()


def _wait_sacct(job_id: str, prefix: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    state = _sacct_state(job_id)
    while not state.startswith(prefix):
        if time.monotonic() > deadline:
            pytest.fail(f"sacct: job {job_id} is {state!r}, not {prefix} after {timeout_s} s")
        time.sleep(0.5)
        state = _sacct_state(job_id)
    return state


# ---- what the jobs run (pickled by value, executed on the node)


def _square_with_job_id(x: int) -> tuple[int, str]:
    import os

    return x * x, os.environ["SLURM_JOB_ID"]


def _all_reduce_rank_plus_one() -> dict:
    import datetime

    import torch
    import torch.distributed as dist
    from submitit.helpers import TorchDistributedEnvironment

    env = TorchDistributedEnvironment().export()
    dist.init_process_group(backend="gloo", timeout=datetime.timedelta(seconds=60))
    try:
        value = torch.tensor([float(env.rank + 1)])
        dist.all_reduce(value)
        return {
            "rank": env.rank,
            "world_size": dist.get_world_size(),
            "sum": value.item(),
            "master_addr": env.master_addr,
        }
    finally:
        dist.destroy_process_group()


# ---- tests


def test_submitit_job_returns_its_result(slurm_cluster, tmp_path):
    job = _executor(tmp_path, slurm_cluster).submit(_square_with_job_id, 7)
    _wait(job, 60)
    assert job.result() == (49, job.job_id)
    assert _wait_sacct(job.job_id, "COMPLETED", 15) == "COMPLETED"


def test_two_task_job_all_reduces_over_gloo(slurm_cluster, tmp_path):
    if slurm_cluster.cpus < 2:
        pytest.skip(f"node {slurm_cluster.node} has {slurm_cluster.cpus} cpu; a 2-task job needs 2")
    job = _executor(tmp_path, slurm_cluster, tasks_per_node=2).submit(_all_reduce_rank_plus_one)
    _wait(job, 90)
    results = sorted(job.results(), key=lambda r: r["rank"])
    assert [r["rank"] for r in results] == [0, 1]
    assert all(r["world_size"] == 2 for r in results)
    assert all(r["sum"] == 3.0 for r in results)  # (0 + 1) + (1 + 1)
    assert {r["master_addr"] for r in results} == {slurm_cluster.node}


def test_scancel_shows_as_cancelled_in_sacct_and_submitit(slurm_cluster, tmp_path):
    job = _executor(tmp_path, slurm_cluster).submit(time.sleep, 600)
    try:
        _wait_sacct(job.job_id, "RUNNING", 60)
    finally:
        subprocess.run(["scancel", job.job_id], check=True, timeout=15)

    assert _wait_sacct(job.job_id, "CANCELLED", 15).startswith("CANCELLED")
    assert job.done(force_check=True)
    assert job.state.startswith("CANCELLED")
    # The job left no result: result() raises instead of waiting for ever. (submitit
    # first waits _results_timeout_s for a late result file; keep that short here.)
    job._results_timeout_s = 1
    started = time.monotonic()
    with pytest.raises(UncompletedJobError, match="CANCELLED"):
        job.result()
    assert time.monotonic() - started < 15
