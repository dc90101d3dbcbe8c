"""Observers of the run loop: the metrics files, checkpoints, status.json and W&B.

Each attaches to `ESRun` (run/loop.py) through its hooks; the loop knows none of
them.  On a distributed run only rank 0 attaches the writing observers.  Order
matters for exact resumption: the metrics row is written before `last.pt`, so a
kill in between replays generation g and rewrites its row.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import time
from pathlib import Path
from typing import Any, Mapping

from hebbian_es.errors import ConfigError
from hebbian_es.files import atomic_save, json_safe, remove_partial_writes, storage_error, write_text_atomic
from hebbian_es.run.checkpoint import FORMAT
from hebbian_es.run.loop import BaseObserver, ESRun, Generation
from hebbian_es.run.rundir import RunDir, Status, read_jsonl


class MetricsObserver(BaseObserver):
    """metrics.jsonl and metrics.csv, one row per generation; validation.jsonl.

    On start, rows of generations at or after the resumed one are dropped, so a
    killed-and-restarted run leaves the same files as an uninterrupted one."""

    def __init__(self, rundir: RunDir) -> None:
        self.rd = rundir
        self.columns: list[str] | None = None

    def on_start(self, run: ESRun) -> None:
        keep_below = run.generation
        self.rd.path.mkdir(parents=True, exist_ok=True)
        # Rewritten through a rename: a kill while rewriting leaves the old rows, never none.
        # Validation after generation g's update is tagged g + 1; the one tagged with the resumed
        # generation is dropped too: a resumed run runs it again (train.py: it may never have run).
        val = [r for r in read_jsonl(self.rd.validation) if int(r["generation"]) < keep_below]
        write_text_atomic(self.rd.validation, "".join(json.dumps(r) + "\n" for r in val))
        rows = [r for r in read_jsonl(self.rd.metrics) if int(r["generation"]) < keep_below]
        self.columns = list(rows[0]) if rows else None
        write_text_atomic(self.rd.metrics, "".join(json.dumps(r) + "\n" for r in rows))
        table = io.StringIO(newline="")
        if rows:
            writer = csv.DictWriter(table, fieldnames=self.columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        write_text_atomic(self.rd.metrics_csv, table.getvalue())

    def on_generation(self, run: ESRun, gen: Generation) -> None:
        clean = json_safe(dict(gen.metrics))
        with open(self.rd.metrics, "a") as fh:
            fh.write(json.dumps(clean) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        header = self.columns is None
        if header:
            self.columns = list(clean)
        with open(self.rd.metrics_csv, "a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.columns, extrasaction="ignore")
            if header:
                writer.writeheader()
            writer.writerow(clean)

    def on_validation(self, run: ESRun, metrics: Mapping[str, Any]) -> None:
        with open(self.rd.validation, "a") as fh:
            fh.write(json.dumps(json_safe(dict(metrics))) + "\n")


class CheckpointObserver(BaseObserver):
    """checkpoints/last.pt every generation and checkpoints/best.pt for the best centre, atomically;
    keep_validated: also the centre of every validation (checkpoints/validation/gen<g>.pt), the
    candidates of a selection by validation."""

    def __init__(self, rundir: RunDir, keep_validated: bool = False) -> None:
        self.rd = rundir
        self.keep_validated = keep_validated

    def payload(self, run: ESRun, state: Any, params: Any) -> dict[str, Any]:
        return {"format": FORMAT, **run.state_dict(state), "params": params.clone()}

    def on_start(self, run: ESRun) -> None:
        remove_partial_writes(self.rd.checkpoints)

    def on_generation(self, run: ESRun, gen: Generation) -> None:
        if gen.new_best:  # the centre that earned it, with the state it was asked from
            atomic_save(self.payload(run, gen.asked_state, gen.center), self.rd.best)
        atomic_save(self.payload(run, run.state, run.optimizer.center(run.state)), self.rd.last)

    def on_validation(self, run: ESRun, metrics: Mapping[str, Any]) -> None:
        if self.keep_validated:  # the centre validated: that of run.state (ESRun.validate)
            path = self.rd.validation_checkpoint(int(metrics["generation"]))
            atomic_save(self.payload(run, run.state, run.optimizer.center(run.state)), path)


class StatusObserver(BaseObserver):
    """status.json: running at start, then finished / failed / stopped with the error."""

    def __init__(self, rundir: RunDir, info: Mapping[str, Any]) -> None:
        self.rd = rundir
        self.info = dict(info)  # sweep, choices, overrides

    def write(self, status: Status, error: str | None = None) -> None:
        self.rd.write_status(status, self.info, error)

    def on_start(self, run: ESRun) -> None:
        self.write(Status.RUNNING)

    def on_end(self, run: ESRun, status: str, error: str | None) -> None:
        try:
            self.write(Status(status), error)
        except Exception as exc:
            # A run already failing on a full or read-only disk cannot record it there either: the
            # error line reports the disk.  A finished run must not end quietly without its status.
            if status == Status.FINISHED or storage_error(exc) is None:
                raise


class ProgressObserver(BaseObserver):
    """Progress in the terms of evolution, one log line per generation (console and train.log):
    generation k/N, population mean and max, centre and best centre return, env steps/s, ETA;
    the centre's validation when it runs."""

    def __init__(self, log: Any) -> None:
        self.log = log
        self.started_at = 0.0
        self.first_generation = 0

    def on_start(self, run: ESRun) -> None:
        self.started_at, self.first_generation = time.monotonic(), run.generation

    def on_generation(self, run: ESRun, gen: Generation) -> None:
        m = gen.metrics
        done = int(m["generation"]) + 1
        rate = (time.monotonic() - self.started_at) / max(1, done - self.first_generation)
        eta = duration(rate * (run.generations - done))
        self.log.info(
            "generation %d/%d: population mean %.2f (max %.2f), centre %.2f, best centre %.2f, %s env steps/s, ETA %s",
            done, run.generations, m["pop_mean"], m["pop_max"], m["center_return"], m["best_center_return"],
            f"{m['steps_per_s']:,.0f}", eta,
        )

    def on_validation(self, run: ESRun, metrics: Mapping[str, Any]) -> None:
        self.log.info(
            "validation after generation %d: centre %.2f ± %.2f on fresh lifetimes",
            int(metrics["generation"]), metrics["val_mean"], metrics["val_std"],
        )


def duration(seconds: float) -> str:
    """h:mm:ss of a number of seconds (negative: 0:00:00), as progress lines show an ETA."""
    s = int(round(max(0.0, seconds)))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _wandb_hosts() -> set[str]:
    """The W&B server host(s) a key would be for: WANDB_BASE_URL's, else the classic one and wandb's default."""
    from urllib.parse import urlparse

    urls = [os.environ["WANDB_BASE_URL"]] if os.environ.get("WANDB_BASE_URL") else ["https://api.wandb.ai"]
    if not os.environ.get("WANDB_BASE_URL"):
        try:
            from wandb.sdk.lib.urls import DEFAULT_BASE_URL  # where recent wandb versions log in

            urls.append(DEFAULT_BASE_URL)
        except Exception:  # noqa: BLE001 - an older or missing wandb: the classic host only
            pass
    return {urlparse(u).hostname or u for u in urls}


def api_key_configured() -> bool:
    """An API key in the environment or in ~/.netrc for the W&B host (no network, no prompt)."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    import netrc

    try:
        path = os.environ.get("NETRC") or os.path.expanduser("~/.netrc")
        return bool(os.path.exists(path) and any(netrc.netrc(path).authenticators(h) for h in _wandb_hosts()))
    except (OSError, netrc.NetrcParseError):
        return False


NO_CREDENTIALS = "no W&B credentials: run `wandb login` or set WANDB_API_KEY"


class WandbObserver(BaseObserver):
    """One W&B run per job (offline by default); `finish()` at the end, whatever the end."""

    def __init__(
        self, cfg: Any, run_config: Mapping[str, Any], rundir: RunDir, sweep_name: str | None, job_type: str = "train"
    ) -> None:
        import wandb

        if cfg.mode == "online" and not api_key_configured():  # fail fast: never a login prompt on stdin
            raise ConfigError(f"logger.wandb.mode=online: {NO_CREDENTIALS} (or use logger.wandb.mode=offline)")
        os.environ.setdefault("WANDB_SILENT", "true")
        self.wandb = wandb
        # The run's id comes from its directory: a resumed or requeued job continues the same W&B run.
        run_id = cfg.id or hashlib.sha256(str(Path(rundir.path).resolve()).encode()).hexdigest()[:16]
        self.run = wandb.init(
            project=cfg.project,
            entity=cfg.entity,
            group=cfg.group or sweep_name,  # runs of one sweep share a group
            job_type=job_type,
            name=cfg.name,
            tags=list(cfg.tags),
            mode=cfg.mode,
            dir=str(cfg.dir or rundir.path),
            config=dict(run_config),
            id=run_id,
            resume="allow",
        )

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        self.run.log({k: v for k, v in metrics.items() if isinstance(v, (int, float))}, step=step)

    def on_generation(self, run: ESRun, gen: Generation) -> None:
        self.log(gen.metrics, step=int(gen.metrics["generation"]))

    def on_validation(self, run: ESRun, metrics: Mapping[str, Any]) -> None:
        self.log(metrics, step=int(metrics["generation"]))

    def log_summary(self, summary: Mapping[str, Any]) -> None:
        for k, v in summary.items():
            if isinstance(v, (int, float, str)):
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

    def on_end(self, run: ESRun, status: str, error: str | None) -> None:
        self.run.finish()
