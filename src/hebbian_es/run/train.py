"""The training task function: composed config in, run directory out.

`train(cfg)` is what `python -m hebbian_es` runs (through Hydra) and what tests call
in-process with a composed config.  It is the edge: the DictConfig becomes typed
objects here (config.to_object), the task, optimiser and evaluator are built from
them, the loop gets its observers, and every check that can fail on bad input runs
before the run directory is touched.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from hebbian_es import __version__
from hebbian_es import config as config_schema
from hebbian_es.core.task import build_task
from hebbian_es.errors import ConfigError, Interrupted, disk_fix
from hebbian_es.es import distributed, make_optimizer
from hebbian_es.es.evaluators import make_evaluator
from hebbian_es.files import storage_error, write_json_atomic, write_text_atomic
from hebbian_es.run import protocol
from hebbian_es.run.checkpoint import check_compatible, load_checkpoint
from hebbian_es.run.loop import BudgetSpent, ESRun, WallClockBudget
from hebbian_es.run.merging import RuleMerger, plan_merges
from hebbian_es.run.observers import NO_CREDENTIALS, CheckpointObserver, MetricsObserver, ProgressObserver, StatusObserver, WandbObserver, api_key_configured
from hebbian_es.run.rundir import RunDir, RunDirUnwritable, RunLock, Status

log = logging.getLogger("hebbian_es")
RESUME_MODES = ("auto", "never")


def versions() -> dict[str, str]:
    import gymnasium

    return {
        "hebbian_es": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gymnasium": gymnasium.__version__,
    }


def resolve(cfg: DictConfig) -> dict[str, Any]:
    """The composed config as plain data; a missing or unresolvable value is a ConfigError."""
    if "env" in cfg and OmegaConf.is_missing(cfg.env, "id"):
        raise ConfigError("env.id is missing; set env=<config or gymnasium id> or env.id=<gymnasium id>")
    try:
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        raise ConfigError(str(exc).splitlines()[0]) from None


def build_run(conf: Any, rundir: RunDir) -> ESRun:
    """Task, optimiser and evaluator from the typed config: raises ConfigError on bad values."""
    if conf.seed < 0:
        raise ConfigError(f"seed={conf.seed}: must be a non-negative integer")
    if conf.generations < 1:  # 0 would leave no checkpoint to test or resume
        raise ConfigError(f"generations={conf.generations}: must be >= 1")
    if conf.resume not in RESUME_MODES:
        raise ConfigError(f"resume={conf.resume!r}; allowed: {list(RESUME_MODES)}")
    if conf.fitness.episodes < 1:
        raise ConfigError(f"fitness.episodes={conf.fitness.episodes}: must be >= 1")
    if conf.fitness.draws not in protocol.DRAWS:
        raise ConfigError(f"fitness.draws={conf.fitness.draws!r}; allowed: {list(protocol.DRAWS)}")
    if conf.logger.wandb is not None and conf.logger.wandb.mode == "online" and not api_key_configured():
        raise ConfigError(f"logger.wandb.mode=online: {NO_CREDENTIALS} (or use logger.wandb.mode=offline)")
    task = build_task(conf, phase="train")
    optimizer = make_optimizer(conf.optimizer)
    plan = plan_merges(conf, task, optimizer)  # rule.merge.*: merging during evolution
    # An optimiser whose full state is too large to rewrite into every last.pt (Nevergrad)
    # keeps it in files of its own next to it, written every k generations.
    if hasattr(optimizer, "use_checkpoint_dir"):
        optimizer.use_checkpoint_dir(rundir.checkpoints)
    run = ESRun(
        task,
        optimizer,
        lambda: make_evaluator(conf.evaluator, run.task, phase="train"),  # run.task: a merge changes it
        seed=conf.seed,
        generations=conf.generations,
        episodes_per_eval=conf.fitness.episodes,
        l2_penalty=conf.fitness.l2_penalty,
        draws=conf.fitness.draws,
        run_id=str(rundir.path),
        merger=RuleMerger(plan, conf.seed) if plan is not None else None,
    )
    return run


def resumable(run: ESRun, rundir: RunDir, resume: str) -> dict[str, Any] | None:
    """last.pt's payload if resuming; another task's checkpoint is refused before anything is written."""
    if not rundir.last.exists():
        return None
    if resume == "never":
        raise ConfigError(f"run_dir={str(rundir.path)!r} already holds a run and resume=never; choose another run_dir")
    path = rundir.last
    saved = load_checkpoint(path, f"to start this run over, move it away (mv {path} {path}.damaged); or use another run_dir")
    run.adopt_checkpoint(saved)  # a run that merged its rules: the merged task
    check_compatible(saved["task"], run.task.fingerprint(), rundir.last)
    check_compatible({"seed": saved["seed"]}, {"seed": run.seed}, rundir.last)
    return saved


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run (or resume) an evolution run; returns the summary that is also written to summary.json."""
    container = resolve(cfg)
    conf = config_schema.to_object(cfg)
    torch.set_num_threads(conf.torch_threads)
    rundir = RunDir(Path(conf.run_dir).resolve())
    _check_run_dir(rundir.path)
    run = build_run(conf, rundir)
    locks: list[RunLock] = []
    try:
        with _stop_on_signals():
            # One writer per run dir (rank 0 of a distributed run holds it for all ranks): a
            # second process refuses before it reads or writes anything there.
            if run.is_main and rundir.path.is_dir():
                locks.append(rundir.lock(announce=False, wait_s=_requeue_lock_wait_s()))
            saved = resumable(run, rundir, conf.resume)
            counts = run.task.counts()
            log.info("evolved parameters: %s", ", ".join(f"{k}={v:,}" for k, v in counts.items() if v))
            if run.task.plasticity_summary():  # shared rules, modulation: e.g. "61,440 -> 16 x 5 = 80"
                log.info("%s", run.task.plasticity_summary())
            if run.merger is not None:
                log.info("rule.merge: %s", run.merger.describe())
            log.info("rule=%s coefficients/synapse=%d, run_dir=%s", run.task.rule.name, run.task.rule.coefficients_per_synapse, rundir.path)
            rundir.path.mkdir(parents=True, exist_ok=True)
            if run.is_main and not locks:
                locks.append(rundir.lock(announce=False))
            # Lightning (with torchmetrics and matplotlib) is imported before the announcement, not in
            # the middle of the first generation: a stop that lands inside a C extension's import
            # comes out as that import's ImportError (handled below, but slower to reach).
            import hebbian_es.run.lightning  # noqa: F401

            for lock in locks:
                lock.announce()  # the checks passed: this process is the run's writer
            return _train(cfg, conf, container, run, rundir, saved, counts)
    except Interrupted as exc:
        raise _stopped(run, rundir, str(exc)) from None
    except Exception as exc:
        if _STOP.requested is not None:  # the stop's exception, transformed on its way (e.g. by an import)
            raise _stopped(run, rundir, _STOP.requested) from None
        err = storage_error(exc)
        if err is None or isinstance(exc, ConfigError):
            raise
        raise _unwritable(rundir, err) from None  # a full or read-only disk: one line, not a traceback
    finally:
        for lock in locks:
            lock.release()  # after every observer has written the run's end


def _stopped(run: ESRun, rundir: RunDir, signal_name: str) -> SystemExit:
    """The one line a stopped run prints, with the command that continues it; exit 128 + signal."""
    print(f"stopped at generation {run.generation} by {signal_name} (status stopped); continue with: {_resume_command(rundir)}", file=sys.stderr)
    return SystemExit(128 + signal.Signals[signal_name].value)


def _unwritable(rundir: RunDir, err: OSError) -> RunDirUnwritable:
    """One line for a write the disk refused: which file and why, what is intact, what to do."""
    try:
        done = int(load_checkpoint(rundir.last, "")["generation"]) if rundir.last.exists() else None
    except (ConfigError, OSError):
        done = None
    kept = f"checkpoints/last.pt is intact (the run continues at generation {done})" if done is not None else "no generation is checkpointed yet"
    return RunDirUnwritable(
        f"cannot write {err.filename or rundir.path}: {err.strerror}; {kept}: {disk_fix(err)}, then run the same command to continue"
    )


def _requeue_lock_wait_s() -> float:
    # A requeued SLURM job (SLURM_RESTART_COUNT >= 1) is the same run continuing: give its
    # pre-empted predecessor a minute to release the lock instead of reporting "running elsewhere".
    return 60.0 if os.environ.get("SLURM_RESTART_COUNT", "0") not in ("", "0") else 0.0


class _StopRequest:
    """The signal that asked this run to stop, if one did.  Interrupted is raised wherever the main
    thread is; inside a C extension's initialisation it comes out as another exception (matplotlib's
    ft2font: ImportError "initialization failed"), so the handlers check this, not the type."""

    requested: str | None = None


_STOP = _StopRequest()


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """The first Ctrl-C (SIGINT) or SIGTERM stops the run at once (Interrupted: workers terminated,
    status stopped, last.pt intact); a second one exits immediately.  SIGTERM is taken only where
    nobody else handles it (a submitit SLURM job keeps its own handling: requeue on pre-emption).
    The main thread only (signals go there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def second(signum: int, frame: Any) -> None:
        os._exit(128 + signum)

    def first(signum: int, frame: Any) -> None:
        _STOP.requested = signal.Signals(signum).name
        for s in taken:
            signal.signal(s, second)
        sys.excepthook = _quiet_stop(sys.excepthook)
        raise Interrupted(_STOP.requested)

    taken = [signal.SIGINT] + ([signal.SIGTERM] if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL else [])
    _STOP.requested = None
    previous = {s: signal.signal(s, first) for s in taken}
    try:
        yield
    finally:  # _STOP keeps its value: train()'s handlers read it after this block has exited
        for s, handler in previous.items():
            signal.signal(s, handler)


def _quiet_stop(hook: Any) -> Any:
    """After a stop, the workers are terminated mid-conversation: multiprocessing's background
    threads (e.g. the resource sharer handing tensors to workers) then hit closed connections.
    Those are expected, not errors to show; anything else still is."""

    def excepthook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        if not issubclass(kind, (ConnectionError, EOFError)):
            hook(kind, value, tb)

    return excepthook


def _resume_command(rundir: RunDir) -> str:
    """The command that continues this run: its overrides with its run directory."""
    import shlex

    from hydra.core.hydra_config import HydraConfig

    overrides = [o for o in HydraConfig.get().overrides.task] if HydraConfig.initialized() else []
    overrides = [o for o in overrides if not o.startswith("hydra.run.dir=")]
    return " ".join(["python -m hebbian_es", *map(shlex.quote, overrides), shlex.quote(f"hydra.run.dir={rundir.path}")])


def _train(
    cfg: DictConfig, conf: Any, container: dict[str, Any], run: ESRun, rundir: RunDir, saved: dict[str, Any] | None,
    counts: dict[str, int],
) -> dict[str, Any]:
    wandb = None
    if run.is_main:  # distributed runs: rank 0 alone writes
        status = StatusObserver(rundir, _status_info(conf))
        run.observers += [status, MetricsObserver(rundir), CheckpointObserver(rundir, conf.validation.keep_checkpoints)]
        if conf.progress_bar:
            run.observers.append(ProgressObserver(log))
        if saved is None or not _config_readable(rundir):
            write_text_atomic(rundir.config, OmegaConf.to_yaml(cfg, resolve=True))
    if saved is not None:
        log.info("resuming from generation %d (%s)", saved["generation"], rundir.last)
    try:
        if conf.logger.wandb is not None and run.is_main:  # one W&B run per job, rank 0 only
            wandb = WandbObserver(conf.logger.wandb, container, rundir, conf.sweep.name)
            run.observers.append(wandb)
        run.start(saved)
        _validate_resumed(run, conf)
        if run.generation < run.generations:
            _fit(run, conf)
    except BudgetSpent as exc:  # a clean stop at a generation boundary: the same command continues
        log.info("%s; status stopped, continue with the same command", exc)
        summary = finish(run, rundir, conf, counts)
        summary["stopped"] = str(exc)  # not finished: the CLI exits with EXIT_STOPPED
        run.end(Status.STOPPED, str(exc))
        distributed.shutdown(together=True)
        return summary
    except BaseException as exc:
        _failed(run, exc)
        raise
    try:
        summary = finish(run, rundir, conf, counts)
        if conf.test.after_fit and conf.test.episodes > 0:
            run.close_evaluator()  # the training workers stop before the protocol's start
            results = run_test(run, rundir, conf, which=conf.test.checkpoint, episodes=conf.test.episodes)
            summary["test"] = protocol.table_means(results)
            if run.is_main:
                write_json_atomic(rundir.summary, summary)
            if wandb is not None:
                wandb.log_test(results)
        if wandb is not None:
            wandb.log_summary(summary)
            wandb.log_image("fitness_curve", rundir.fitness_curve)
    except BaseException as exc:
        _failed(run, exc)
        raise
    run.end(Status.FINISHED)
    distributed.shutdown(together=True)
    return summary


def _config_readable(rundir: RunDir) -> bool:
    """config.yaml of a resumed run reads back; if it went missing or was damaged, say so (the caller
    writes it anew from this command's config, which passed the checkpoint's compatibility checks)."""
    if not rundir.config.exists():
        log.warning("%s is missing; writing it anew from this command's config", rundir.config)
        return False
    try:
        rundir.read_config()
        return True
    except ConfigError as exc:
        log.warning("%s; writing it anew from this command's config", str(exc).split("; ")[0])
        return False


def _failed(run: ESRun, exc: BaseException) -> None:
    # SystemExit/KeyboardInterrupt: stopped (SLURM requeue, Ctrl-C); resumable from last.pt
    stopped = isinstance(exc, (SystemExit, KeyboardInterrupt, Interrupted)) or _STOP.requested is not None
    run.end(Status.STOPPED if stopped else Status.FAILED, f"{type(exc).__name__}: {exc}")
    # A ConfigError while starting (ranks disagree) is found by every rank: leave together;
    # after any other error, don't wait for peers that may never come.
    distributed.shutdown(together=isinstance(exc, ConfigError) and not run.started)


def _validate_resumed(run: ESRun, conf: Any) -> None:
    """The loop validates after a generation's checkpoint, so a run killed in between would lose that
    validation: resuming where one is due runs it first (the same lifetimes, so the same numbers; the
    metrics observer dropped the row it may have written).  Every rank decides alike, from last.pt."""
    val = conf.validation
    if run.resumed_from is not None and val.episodes > 0 and run.validation_due(val.every):
        run.validate(val.episodes)


def _fit(run: ESRun, conf: Any) -> None:
    from hebbian_es.run.lightning import HebbianESModule, make_trainer

    val = conf.validation
    module = HebbianESModule(run, val.episodes, validation_every=val.every, budget=WallClockBudget(conf.stop_after_minutes))
    trainer = make_trainer(
        val_check_interval=1,
        limit_val_batches=1 if val.every > 0 and val.episodes > 0 else 0,
        enable_progress_bar=False,  # progress is ProgressObserver's, in generations, not epochs
    )
    trainer.fit(module)


def finish(run: ESRun, rundir: RunDir, conf: Any, counts: dict[str, int]) -> dict[str, Any]:
    from hebbian_es.run.figures import fitness_curve

    rows = rundir.merged_metrics() if run.is_main else []  # other ranks write nothing, read nothing
    if rows:
        envs = "+".join(e.name for e in run.task.envs)
        fitness_curve(rows, rundir.fitness_curve, f"{conf.env.name} ({envs}) · rule={run.task.rule.name}")
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
        **({"merges": run.merger.history} if run.merger is not None else {}),
    }
    if run.is_main:
        write_json_atomic(rundir.summary, summary)
    return summary


def run_test(run: ESRun, rundir: RunDir, conf: Any, which: str, episodes: int) -> dict[str, Any]:
    """The test protocol on the run's `which` checkpoint, through the Lightning module's test phase;
    writes test_<which>.json and prints the table."""
    from hebbian_es.run.lightning import HebbianESModule, make_trainer

    distributed.barrier()  # rank 0 has written the last checkpoint before any rank reads it
    agent = protocol.load_agent(rundir, which, seed=run.seed)
    module = HebbianESModule(run, 0, test=lambda: protocol.run_protocol(agent.cfg.evaluator, agent.task, agent.params, episodes, agent.seed, False))
    make_trainer(enable_progress_bar=False).test(module, verbose=False)
    results = module.test_results
    assert results is not None
    results.update({"checkpoint": str(agent.checkpoint), "checkpoint_generation": agent.generation})
    if run.is_main:
        write_json_atomic(rundir.test_results(which), results)
        print(protocol.format_table(results), file=sys.stdout)
    return results


def _status_info(conf: Any) -> dict[str, Any]:
    """The sweep, config choices and overrides a report groups runs by."""
    from dataclasses import asdict, is_dataclass

    from hydra.core.hydra_config import HydraConfig

    info: dict[str, Any] = {"sweep": asdict(conf.sweep) if is_dataclass(conf.sweep) else dict(conf.sweep)}
    if HydraConfig.initialized():
        runtime = HydraConfig.get().runtime
        info["choices"] = {k: v for k, v in runtime.choices.items() if not k.startswith("hydra/")}
        info["overrides"] = list(HydraConfig.get().overrides.task)
    return info


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
