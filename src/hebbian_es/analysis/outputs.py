"""What an analysis writes: its files (CSV, NPZ, PNG) in the output folder, the numbers of its
summary, the lines it prints, and the copy on W&B when the run logged there."""

from __future__ import annotations

import csv
import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from hebbian_es.analysis.measures import first_nonfinite

if TYPE_CHECKING:
    from hebbian_es.analysis.loaded import LoadedRun


@dataclass
class Outputs:
    """The files an analysis wrote (in order) and the results of its <analysis>.json."""

    out_dir: Path
    files: list[Path] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def path(self, name: str) -> Path:
        p = self.out_dir / name
        self.files.append(p)
        return p

    def say(self, line: str) -> None:
        print(line, flush=True)


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A CSV with NaN as an empty cell."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:
            writer.writerow(["" if isinstance(x, float) and math.isnan(x) else x for x in row])


def reward_rows(tag: Sequence[Any], perturbed: np.ndarray, unperturbed: np.ndarray) -> list[list[Any]]:
    """Long-format rows (…tag, episode, step, reward, reward_unperturbed) up to the longer episode."""
    rows = []
    for ep in range(perturbed.shape[0]):
        p, u = perturbed[ep], unperturbed[ep]
        for s in range(max(first_nonfinite(p), first_nonfinite(u))):
            rows.append([*tag, ep, s, _value(p, s), _value(u, s)])
    return rows


def _value(r: np.ndarray, s: int) -> float:
    return float(r[s]) if s < len(r) and np.isfinite(r[s]) else float("nan")


def log_to_wandb(run: LoadedRun, analysis: str, out: Outputs, arguments: Mapping[str, Any]) -> None:
    """A W&B run of its own per (run dir, analysis) — job type 'analysis', the training run's
    project, group and mode; run again, it continues that W&B run — with every PNG as an
    image, every file in one artifact and the headline numbers as summary values."""
    from hebbian_es.run.observers import WandbObserver

    wcfg = run.section("logger", "wandb") or {}
    name = wcfg.get("name") or run.name
    wcfg.update(
        name=f"{name}-{analysis}",
        id=hashlib.sha256(f"{run.dir}|analysis={analysis}".encode()).hexdigest()[:16],
        tags=[*(wcfg.get("tags") or []), "analysis", analysis],
    )
    config = {"analysis": analysis, "arguments": dict(arguments), **run.describe(), "sweep": run.section("sweep")}
    logger = WandbObserver(SimpleNamespace(**wcfg), config, run.rundir, run.setting("sweep", "name"), job_type="analysis")
    try:
        for p in out.files:
            if p.suffix == ".png":
                logger.log_image(f"analysis/{p.stem}", p)
        artifact = logger.wandb.Artifact(f"{_safe(name)}-{analysis}", type="analysis")
        for p in out.files:
            artifact.add_file(str(p))
        logger.run.log_artifact(artifact)
        logger.log_summary({k: v for k, v in _flatten(out.summary).items() if isinstance(v, (int, float))})
    finally:
        logger.run.finish()
    print(f"logged {len(out.files)} files to W&B ({wcfg.get('mode', 'offline')}) as run {wcfg['name']}")


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            flat.update(_flatten(v, key + "/"))
        elif not isinstance(v, (list, tuple)):
            flat[key] = v
    return flat
