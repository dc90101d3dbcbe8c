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

from hebbian_es.config import launcher_rank
from hebbian_es.errors import ConfigError

BACKENDS = ("gloo",)


@dataclass(frozen=True)
class RankInfo:
    rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def rank_info() -> RankInfo:
    """This process's rank and the world size: the process group's once joined, else the
    launcher's environment (`hebbian_es.config.launcher_rank`; 1 process if none)."""
    if dist.is_available() and dist.is_initialized():
        return RankInfo(dist.get_rank(), dist.get_world_size())
    return RankInfo(*launcher_rank())


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
