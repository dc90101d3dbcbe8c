"""Run logging: a local JSONL + CSV always; Weights & Biases (offline by default) on request."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping


def json_safe(value: Any) -> Any:
    """JSON has no NaN/inf: NaN becomes null, ±inf the strings "inf"/"-inf"; recurses into containers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_json(path: Path, data: Any) -> None:
    """Indented JSON of `data` through json_safe (so never a bare NaN or Infinity)."""
    path.write_text(json.dumps(json_safe(data), indent=2, default=str, allow_nan=False) + "\n")


class MetricsFile:
    """metrics.jsonl and metrics.csv in the run dir, one row per generation.

    On resume, rows of generations at or after the checkpoint are dropped first, so
    a killed-and-restarted run leaves the same files as an uninterrupted one."""

    def __init__(self, run_dir: Path, keep_below: int) -> None:
        self.jsonl = Path(run_dir) / "metrics.jsonl"
        self.csv = Path(run_dir) / "metrics.csv"
        self.validation = Path(run_dir) / "validation.jsonl"
        self.jsonl.parent.mkdir(parents=True, exist_ok=True)
        # validation after generation g's update is tagged g + 1
        val = [r for r in read_metrics(self.validation) if int(r["generation"]) <= keep_below]
        with open(self.validation, "w") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in val)
        rows = [r for r in read_metrics(self.jsonl) if int(r["generation"]) < keep_below]
        self.columns: list[str] | None = list(rows[0]) if rows else None
        with open(self.jsonl, "w") as fh:
            for r in rows:
                fh.write(json.dumps(r) + "\n")
        with open(self.csv, "w", newline="") as fh:
            if rows:
                writer = csv.DictWriter(fh, fieldnames=self.columns, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(rows)

    def write(self, row: Mapping[str, Any]) -> None:
        clean = json_safe(dict(row))
        with open(self.jsonl, "a") as fh:
            fh.write(json.dumps(clean) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        header = self.columns is None
        if header:
            self.columns = list(clean)
        with open(self.csv, "a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.columns, extrasaction="ignore")
            if header:
                writer.writeheader()
            writer.writerow(clean)

    def write_validation(self, row: Mapping[str, Any]) -> None:
        with open(self.validation, "a") as fh:
            fh.write(json.dumps(json_safe(dict(row))) + "\n")

    def close(self) -> None:
        pass


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Rows of a metrics.jsonl; a torn last line (killed mid-write) is skipped."""
    rows = []
    if not Path(path).exists():
        return rows
    with open(path) as fh:
        for line in fh:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def merged_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """metrics.jsonl rows with validation.jsonl's val_mean folded in: validation tagged g ran
    after generation g - 1's update.  Rows without a generation (foreign files) are kept as they are."""
    rows = read_metrics(run_dir / "metrics.jsonl")
    by_gen = {int(r["generation"]): r for r in rows if isinstance(r.get("generation"), (int, float))}
    for v in read_metrics(run_dir / "validation.jsonl"):
        g = int(v.get("generation", -1)) - 1
        if g in by_gen:
            by_gen[g]["val_mean"] = v.get("val_mean")
    return rows


class WandbLogger:
    """One W&B run per job; `finish()` always called by the owner."""

    def __init__(self, cfg: Mapping[str, Any], run_config: Mapping[str, Any], run_dir: Path) -> None:
        import wandb

        import hashlib

        mode = cfg.get("mode", "offline")
        os.environ.setdefault("WANDB_SILENT", "true")
        self.wandb = wandb
        # The run's id comes from its directory: a resumed or requeued job continues the same W&B run.
        run_id = cfg.get("id") or hashlib.sha256(str(Path(run_dir).resolve()).encode()).hexdigest()[:16]
        sweep = run_config.get("sweep") or {}
        self.run = wandb.init(
            project=cfg.get("project", "hebbian_es"),
            entity=cfg.get("entity"),
            group=cfg.get("group") or sweep.get("name"),  # runs of one sweep share a group
            job_type=cfg.get("job_type") or "train",
            name=cfg.get("name"),
            tags=list(cfg.get("tags") or []),
            mode=mode,
            dir=str(cfg.get("dir") or run_dir),
            config=dict(run_config),
            id=run_id,
            resume="allow",
        )

    def log(self, metrics: Mapping[str, Any], step: int) -> None:
        self.run.log({k: v for k, v in metrics.items() if isinstance(v, (int, float))}, step=step)

    def log_summary(self, summary: Mapping[str, Any]) -> None:
        for k, v in summary.items():
            self.run.summary[k] = v

    def log_image(self, key: str, path: Path) -> None:
        self.run.log({key: self.wandb.Image(str(path))})

    def log_test(self, results: Mapping[str, Any]) -> None:
        """The test protocol's table (per env / body) and its means as summary values."""
        columns = ["env", "seen", "episodes", "mean", "sd", "min", "max", "solved"]
        table = self.wandb.Table(columns=columns)
        for name, st in results["envs"].items():
            table.add_data(name, st.get("seen"), st["episodes"], st["mean"], st["sd"], st["min"], st["max"], st.get("solved"))
            self.run.summary[f"test/{name}/mean"] = st["mean"]
        self.run.log({"test_table": table})

    def finish(self) -> None:
        self.run.finish()
