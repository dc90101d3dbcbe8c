"""`python -m hebbian_es [overrides]`: evolve a Hebbian rule (Hydra app)."""

from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from hebbian_es.errors import ConfigError


@hydra.main(version_base="1.3", config_path="pkg://hebbian_es.conf", config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    from hebbian_es.app import train

    try:
        summary = train(cfg)
    except ConfigError as exc:
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # a failed job, recorded by Hydra: the sweep's other jobs still run
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    best = summary.get("best_center_return")
    return float(best) if best is not None else None  # the value a sweeper optimises


def _register_launcher() -> None:
    # Hydra finds plugins by walking hydra_plugins' directories, which misses an
    # editable install's; registering is a no-op when the scan already found it.
    from hydra.core.plugins import Plugins
    from hydra_plugins.hebbian_es_launcher.slurm import SlurmLauncher

    Plugins.instance().register(SlurmLauncher)


def main() -> None:
    _register_launcher()
    _hydra_main()


if __name__ == "__main__":
    main()
