"""Hydra's submitit launchers with the checks a sweep needs before anything is submitted.

`hydra/launcher=slurm` (conf/hydra/launcher/slurm.yaml) targets `SlurmLauncher` here
(it lives under `hydra_plugins` because Hydra loads launchers only from there):
the submitit plugin's launcher (job arrays, requeue on timeout/pre-emption through
submitit's checkpointing), refusing in one line a missing cluster key or a
multi-task job whose ranks would each run the whole sweep point.
"""

from __future__ import annotations

import sys
from typing import Any, Sequence

from hydra.core.utils import JobReturn
from hydra.types import HydraContext, TaskFunction
from hydra_plugins.hydra_submitit_launcher import submitit_launcher as _plugin
from omegaconf import DictConfig, OmegaConf

REQUIRED_SLURM_KEYS = ("partition",)


def _refuse(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


class SlurmLauncher(_plugin.SlurmLauncher):
    def __init__(self, **params: Any) -> None:
        missing = [k for k in REQUIRED_SLURM_KEYS if params.get(k) in (None, "???", "")]
        if missing:
            _refuse(
                f"hydra.launcher.{missing[0]} is required for hydra/launcher=slurm; set it in "
                f"conf/hydra/launcher/site/slurm.yaml or on the command line (hydra.launcher.{missing[0]}=<name>; "
                "`sinfo` lists partitions)"
            )
        super().__init__(**params)

    def _tasks(self) -> int:
        return int(self.params.get("tasks_per_node", 1)) * int(self.params.get("nodes", 1))

    def _refuse_unless_distributed(self, cfg: DictConfig) -> None:
        tasks = self._tasks()
        if tasks > 1 and not OmegaConf.select(cfg, "evaluator.distributed", default=False):
            _refuse(
                f"hydra.launcher.tasks_per_node={self.params.get('tasks_per_node')} x nodes="
                f"{self.params.get('nodes', 1)} starts {tasks} ranks per job, each of which would run "
                "the whole job; set evaluator=distributed"
            )

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        # Checked here, before the sweeper writes anything into the sweep directory.
        self._refuse_unless_distributed(config)
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        assert self.config is not None and self.hydra_context is not None
        if self._tasks() > 1:  # evaluator may itself be a sweep parameter
            for overrides in job_overrides:
                cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
                self._refuse_unless_distributed(cfg)
        return super().launch(job_overrides, initial_job_idx)
