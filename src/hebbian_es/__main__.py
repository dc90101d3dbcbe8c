"""`python -m hebbian_es [overrides]`: evolve a Hebbian rule (Hydra app)."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from hebbian_es.errors import ConfigError


@hydra.main(version_base="1.3", config_path="pkg://hebbian_es.conf", config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    from hebbian_es.app import train

    try:
        summary = train(cfg)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    best = summary.get("best_center_return")
    return float(best) if best is not None else None  # the value a sweeper optimises


def main() -> None:
    _hydra_main()


if __name__ == "__main__":
    main()
