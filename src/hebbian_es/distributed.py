"""torch.distributed across processes and nodes: which rank this process is, and the
one process group every rank of a run shares.

A distributed run is SPMD: every rank runs the same training program, holds the same
optimiser state and asks for the same population (regenerated from seeds), evaluates
its share of the members, and all ranks gather the fitness vectors, so every rank
tells the optimiser the same numbers.  Rank 0 alone writes logs, metrics and
checkpoints.

Ranks come from the launcher, never from a home-made one:
- `torchrun --nproc-per-node N -m hebbian_es evaluator=distributed ...` sets
  RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT;
- a multi-task SLURM job started by submitit (e.g. Hydra's submitit_slurm launcher
  with `hydra.launcher.tasks_per_node=N`) has SLURM_PROCID / SLURM_NTASKS, and
  `submitit.helpers.TorchDistributedEnvironment` exports the rest.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch.distributed as dist

from hebbian_es.errors import ConfigError

BACKENDS = ("gloo",)


@dataclass(frozen=True)
class RankInfo:
    rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _int_env(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else None


def rank_info() -> RankInfo:
    """This process's rank and the world size, from the launcher's environment (1 process if none)."""
    if dist.is_available() and dist.is_initialized():
        return RankInfo(dist.get_rank(), dist.get_world_size())
    rank, world = _int_env("RANK"), _int_env("WORLD_SIZE")
    if rank is not None and world is not None:
        return RankInfo(rank, world)
    # A task of a multi-task job step (srun, as submitit starts jobs); a plain shell
    # inside an allocation has no step and stays a single process.
    tasks, procid = _int_env("SLURM_STEP_NUM_TASKS"), _int_env("SLURM_PROCID")
    if tasks is not None and tasks > 1 and procid is not None:
        return RankInfo(procid, tasks)
    return RankInfo(0, 1)


def rank_suffix() -> str:
    """'' on rank 0 (and single-process runs), '.rank<k>' elsewhere: for per-rank log files."""
    info = rank_info()
    return "" if info.rank == 0 else f".rank{info.rank}"


def init_process_group(backend: str = "gloo", timeout_s: float = 600.0) -> RankInfo:
    """Join (or reuse) the run's process group; a no-op for a single process."""
    if backend not in BACKENDS:
        raise ConfigError(f"evaluator.backend={backend!r}; allowed: {list(BACKENDS)}")
    if dist.is_initialized():
        return rank_info()
    info = rank_info()
    if info.world_size <= 1:
        return info
    if "MASTER_ADDR" not in os.environ:
        try:
            from submitit.helpers import TorchDistributedEnvironment

            TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        except Exception as exc:  # not a submitit job: the launcher should have set them
            raise ConfigError(
                f"rank {info.rank} of {info.world_size}: MASTER_ADDR/MASTER_PORT are not set and this is not a "
                f"submitit SLURM job ({exc}); launch with torchrun or a submitit launcher"
            ) from None
    dist.init_process_group(
        backend, init_method="env://", rank=info.rank, world_size=info.world_size, timeout=timedelta(seconds=timeout_s)
    )
    return rank_info()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def shutdown(together: bool = True) -> None:
    """Leave the process group.  `together=False` after an error: don't wait for peers
    that may never come (the launcher then stops the other ranks)."""
    if dist.is_available() and dist.is_initialized():
        if together:
            # A rank whose last collective is done may leave while a peer still reads
            # from it; gloo aborts that peer.  Leave together.
            dist.barrier()
        dist.destroy_process_group()
