"""The training task function: composed config in, run directory out.

`train(cfg)` is what `python -m hebbian_es` runs (through Hydra) and what tests
call in-process with a config from `compose`.  Every check that can fail on bad
input runs before the run directory is touched.
"""

from __future__ import annotations

import json
import logging
import platform
import sys
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from hebbian_es import __version__, checkpoint, distributed
from hebbian_es.errors import ConfigError
from hebbian_es.loggers import json_safe, merged_metrics, write_json
from hebbian_es.training import ESRun

log = logging.getLogger("hebbian_es")


def versions() -> dict[str, str]:
    import gymnasium

    return {
        "hebbian_es": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gymnasium": gymnasium.__version__,
    }


def _format_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}={v:,}" for k, v in counts.items() if v)


def resolve(cfg: DictConfig) -> dict[str, Any]:
    """The composed config as plain data; a missing or unresolvable value is a ConfigError."""
    if "env" in cfg and OmegaConf.is_missing(cfg.env, "id"):
        raise ConfigError("env.id is missing; set env=<config or gymnasium id> or env.id=<gymnasium id>")
    try:
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        raise ConfigError(str(exc).splitlines()[0]) from None


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run (or resume) an evolution run; returns the summary that is also written to summary.json."""
    container = resolve(cfg)
    torch.set_num_threads(int(container.get("torch_threads", 1)))
    run_dir = Path(container["run_dir"]).resolve()
    _check_run_dir(run_dir)
    run = ESRun(container, run_dir)  # validates the whole config: raises ConfigError
    saved = run.check_resumable()  # refuses another task's checkpoint before anything is written
    counts = run.task.counts()
    log.info("evolved parameters: %s", _format_counts(counts))
    log.info("rule=%s coefficients/synapse=%d, run_dir=%s", run.task.rule.name, run.task.rule.coefficients_per_synapse, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if run.is_main:
        write_status(run_dir, "running", container)
    if saved is None and run.is_main:
        (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    elif saved is not None:
        log.info("resuming from generation %d (%s)", saved["generation"], run_dir / "checkpoints" / checkpoint.LAST)
    try:
        run.start(saved)
    except ConfigError as exc:  # every rank found the same problem (ranks disagree): leave together
        run.close()
        distributed.shutdown()
        if run.is_main:
            write_status(run_dir, "failed", container, error=f"ConfigError: {exc}")
        raise
    except BaseException as exc:
        run.close()
        distributed.shutdown(together=False)
        if run.is_main:
            write_status(run_dir, "failed", container, error=f"{type(exc).__name__}: {exc}")
        raise

    finished = False
    wandb_logger = None
    try:
        if container["logger"].get("wandb") and run.is_main:  # one W&B run per job, rank 0 only
            from hebbian_es.loggers import WandbLogger

            wandb_logger = WandbLogger(container["logger"]["wandb"], container, run_dir)
        from hebbian_es.lightning_module import HebbianESModule, make_trainer

        val = container["validation"]
        every = int(val.get("every", 0))
        module = HebbianESModule(run, int(val.get("episodes", 0)), validation_every=every)
        if wandb_logger is not None:
            module.on_generation.append(lambda m: wandb_logger.log(m, step=int(m["generation"])))
        remaining = run.generations - run.generation
        if remaining > 0:
            trainer = make_trainer(
                val_check_interval=1,
                limit_val_batches=1 if every > 0 and val.get("episodes", 0) > 0 else 0,
                enable_progress_bar=bool(container.get("progress_bar", True)) and run.is_main,
            )
            trainer.fit(module)
        summary = finish(run, container, counts)
        test = container["test"]
        if test.get("after_fit") and int(test.get("episodes", 0)) > 0:
            results = run_test(run, container, which=test.get("checkpoint", "best"), episodes=int(test["episodes"]))
            summary["test"] = {k: {s: v[s] for s in ("mean", "sd", "min", "max", "episodes")} for k, v in results["envs"].items()}
            if run.is_main:
                write_json(run_dir / "summary.json", summary)
            if wandb_logger is not None:
                wandb_logger.log_test(results)
        if wandb_logger is not None:
            wandb_logger.log_summary({k: v for k, v in summary.items() if isinstance(v, (int, float, str))})
            wandb_logger.log_image("fitness_curve", run_dir / "fitness_curve.png")
        finished = True
        if run.is_main:
            write_status(run_dir, "finished", container)
        return summary
    except BaseException as exc:
        if run.is_main:
            # SystemExit/KeyboardInterrupt: stopped (SLURM requeue, Ctrl-C); resumable from last.pt
            stopped = isinstance(exc, (SystemExit, KeyboardInterrupt))
            write_status(run_dir, "stopped" if stopped else "failed", container, error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        run.close()
        distributed.shutdown(together=finished)
        if wandb_logger is not None:
            wandb_logger.finish()


def finish(run: ESRun, container: dict[str, Any], counts: dict[str, int]) -> dict[str, Any]:
    from hebbian_es.plots import fitness_curve

    rows = merged_metrics(run.run_dir) if run.is_main else []  # other ranks write nothing, read nothing
    if rows:
        envs = "+".join(e.name for e in run.task.envs)
        fitness_curve(rows, run.run_dir / "fitness_curve.png", f"{container['env'].get('name')} ({envs}) · rule={run.task.rule.name}")
    train_rows = [r for r in rows if "pop_mean" in r]
    summary = {
        "env": run.task.envs[0].id,
        "train_envs": [e.name for e in run.task.envs],
        "rule": run.task.rule.name,
        "coefficients_per_synapse": run.task.rule.coefficients_per_synapse,
        "counts": counts,
        "seed": run.seed,
        "generations_done": run.generation,
        "generations": run.generations,
        "best_center_return": run.best["fitness"],
        "best_generation": run.best["generation"],
        "final_pop_mean": train_rows[-1]["pop_mean"] if train_rows else None,
        "final_center_return": train_rows[-1]["center_return"] if train_rows else None,
        "env_steps": run.env_steps,
        "wall_time_s": run.wall_time,
        "nonfinite_fitness_total": run.nonfinite_total,
        "versions": versions(),
    }
    if run.is_main:
        write_json(run.run_dir / "summary.json", summary)
    return summary


STATUSES = ("running", "finished", "failed", "stopped")


def write_status(run_dir: Path, status: str, container: dict[str, Any], error: str | None = None) -> None:
    """status.json: where a run stands (for reports over sweeps) and which config choices made it."""
    import time

    from hydra.core.hydra_config import HydraConfig

    assert status in STATUSES
    info: dict[str, Any] = {"status": status, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "sweep": container.get("sweep")}
    if HydraConfig.initialized():
        runtime = HydraConfig.get().runtime
        info["choices"] = {k: v for k, v in runtime.choices.items() if not k.startswith("hydra/")}
        info["overrides"] = list(HydraConfig.get().overrides.task)
    if error:
        info["error"] = error
    tmp = run_dir / "status.json.tmp"
    tmp.write_text(json.dumps(json_safe(info), indent=2, default=str) + "\n")
    tmp.replace(run_dir / "status.json")


def _check_run_dir(run_dir: Path) -> None:
    """Inside a Hydra app, run_dir must be Hydra's output dir, or the log would land elsewhere."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        hydra_dir = Path(HydraConfig.get().runtime.output_dir).resolve()
        if hydra_dir != run_dir:
            raise ConfigError(
                f"run_dir={str(run_dir)!r} differs from Hydra's output dir {str(hydra_dir)!r}; "
                "set hydra.run.dir=<dir> (or hydra.sweep.dir for -m) instead of run_dir"
            )


def run_test(run: ESRun, container: dict[str, Any], which: str, episodes: int, early_stop: bool = False) -> dict[str, Any]:
    """Test protocol through the Lightning module's test phase; writes test_<which>.json."""
    from hebbian_es.lightning_module import HebbianESModule, make_trainer

    distributed.barrier()  # rank 0 has written the last checkpoint before any rank reads it
    path = checkpoint.find_checkpoint(run.run_dir, which)
    saved = checkpoint.load(path)
    checkpoint.check_compatible(saved["task"], run.task.fingerprint(), path)
    module = HebbianESModule(run, 0, {"params": saved["params"], "episodes": episodes, "early_stop": early_stop})
    make_trainer(enable_progress_bar=False).test(module, verbose=False)
    results = module.test_results
    assert results is not None
    results.update({"checkpoint": str(path), "checkpoint_generation": saved["generation"]})
    if run.is_main:
        write_json(run.run_dir / f"test_{which}.json", results)
        print(format_table(results), file=sys.stdout)
    return results


def format_table(results: dict[str, Any]) -> str:
    """The test table; with bodies it is the paper's Table 1 (seen/unseen, solved)."""
    rows = list(results["envs"].items())
    bodies = any("seen" in st for _, st in rows)
    solved = any("solved" in st for _, st in rows)
    head = f"{'env':<22}" + (f" {'body':<7}" if bodies else "") + f" {'episodes':>8} {'mean':>10} {'sd':>9} {'min':>10} {'max':>10}"
    lines = [head + (f" {'solved':>7}" if solved else "")]
    for name, st in rows:
        line = f"{name:<22}" + (f" {('seen' if st.get('seen') else 'unseen'):<7}" if bodies else "")
        line += f" {st['episodes']:>8} {st['mean']:>10.2f} {st['sd']:>9.2f} {st['min']:>10.2f} {st['max']:>10.2f}"
        if solved:
            line += f" {('yes' if st.get('solved') else 'no'):>7}"
        lines.append(line)
    rd = results.get("random_damages")
    if rd:
        lines.append(
            f"random damages: {rd['count']} bodies, mean of means {rd['mean_of_means']:.2f} ± {rd['sd_of_means']:.2f} "
            f"(min {rd['min']:.2f}, median {rd['median']:.2f}, max {rd['max']:.2f}), solved {rd['solved_fraction']:.0%}"
        )
    return "\n".join(lines)
