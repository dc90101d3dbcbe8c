"""`python -m hebbian_es.zoo run=<run dir> name=<name> [episodes=100] [checkpoint=last] ...`

Ships a trained agent: copies a run's config and the chosen checkpoint into
zoo/<name>/ (with the run's metrics, validation and summary, and where it came from),
runs the test protocol on it (run/protocol.py: N lifetimes per test body) and writes
test_last.json, a README.md with its Table 1 rows, and a short GIF of one test lifetime
(the first unseen body, else the first env).  Every zoo entry is then a run directory
like any other: `python -m hebbian_es.evaluate run=zoo/<name>` and every analysis run on it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from hebbian_es import cli_args
from hebbian_es.cli_args import key
from hebbian_es.errors import ConfigError

COPIED = ("config", "metrics", "validation", "summary", "status_file")


@dataclass
class ZooArgs:
    run: Optional[str] = key(None, "the trained run directory (required)")
    name: Optional[str] = key(None, "the entry's name: zoo/<name> (required)")
    zoo: str = key("zoo", "the zoo folder")
    checkpoint: str = key("last", "the checkpoint shipped: last | best")
    episodes: int = key(100, "test lifetimes per body for the entry's table")
    gif: bool = key(True, "also write a GIF of one test lifetime")
    gif_every: int = key(8, "a GIF frame every k steps")
    overwrite: bool = key(False, "replace an existing entry of that name")
    command: Optional[str] = key(None, "the command that trained the run (recorded; default: from its status.json)")


def export(args: ZooArgs) -> Path:
    from hebbian_es.files import write_json
    from hebbian_es.run import protocol
    from hebbian_es.run.rundir import RunDir

    if not args.run or not args.name:
        raise ConfigError("run=<run dir> and name=<entry name> are required")
    if not args.name.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"name={args.name!r}: letters, digits, '_' and '-' only")
    agent = protocol.load_agent(args.run, args.checkpoint)  # one-line errors before anything is written
    dest = RunDir(Path(args.zoo).resolve() / args.name)
    if dest.path.exists() and not args.overwrite:
        raise ConfigError(f"{dest.path} exists; pass overwrite=true to replace it")
    if dest.path.resolve() == agent.run.path.resolve():
        raise ConfigError("run= is already this zoo entry")
    shutil.rmtree(dest.path, ignore_errors=True)
    dest.checkpoints.mkdir(parents=True)
    for attr in COPIED:
        src = getattr(agent.run, attr)
        if src.exists():
            shutil.copy2(src, getattr(dest, attr))
    shutil.copy2(agent.checkpoint, dest.last)
    status = agent.run.read_status() or {}
    source = {
        "run": _shown(agent.run.path), "checkpoint": agent.checkpoint.name, "generation": agent.generation,
        "overrides": status.get("overrides"), "command": args.command, "exported": time.strftime("%Y-%m-%d"),
        "budget": _budget(agent),
    }
    write_json(dest.path / "source.json", source)
    _progress_to_stderr()  # an export at 100 lifetimes on 23 bodies takes tens of minutes: one line per body
    results = protocol.run_protocol(agent.cfg.evaluator, agent.task, agent.params, args.episodes, agent.seed, False)
    results.update({"checkpoint": "checkpoints/last.pt", "checkpoint_generation": agent.generation})
    write_json(dest.test_results("last"), results)
    table = protocol.format_table(results)
    print(table)
    gif = _gif(dest, agent, args.gif_every) if args.gif else None
    (dest.path / "README.md").write_text(_readme(args.name, agent, source, table, gif, args.episodes))
    return dest.path


def _progress_to_stderr() -> None:
    """The test protocol's per-body lines (logger hebbian_es, INFO) on stderr, unless logging is set up."""
    import logging

    logger = logging.getLogger("hebbian_es")
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def _shown(path: Path) -> str:
    """The run's path relative to here when it lies below (campaigns/...), else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _budget(agent: Any) -> dict[str, Any]:
    """What training the shipped checkpoint cost (the checkpoint's own counters)."""
    return {
        "generations": agent.generation, "popsize": agent.cfg.optimizer.popsize,
        "env_steps": agent.env_steps, "wall_time_h": round(agent.wall_time / 3600, 2),
    }


def _gif(dest: Any, agent: Any, every: int) -> str:
    from hebbian_es.analysis.cli import analyze, parse_args

    envs = [e for e in agent.task.envs if not e.random_eval]
    body = next((e for e in envs if e.seen is False), envs[0] if envs else agent.task.envs[0])
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["analysis=video", f"run={dest.path}", f"out={tmp}", f"every={every}"]
        if body.seen is not None:
            argv.append(f"bodies={body.name}")
        analyze(parse_args(argv))
        name = f"{body.name}.gif"
        shutil.copy2(Path(tmp) / f"video_{body.name}.gif", dest.path / name)
    return name


def _readme(name: str, agent: Any, source: dict[str, Any], table: str, gif: str | None, episodes: int) -> str:
    lines = [
        f"# {name}", "",
        f"rule `{agent.task.rule.name}`, env `{agent.cfg.env.name}`, trained on "
        f"{', '.join(e.name for e in agent.task.envs if e.seen) or agent.cfg.env.name}; "
        f"checkpoint of generation {agent.generation} of `{source['run']}`.", "",
        _budget_line(source["budget"]), "",
        f"Test protocol ({episodes} lifetimes per body, fresh random initial weights, no early stop):", "",
        "```", table, "```", "",
        f"Evaluate it: `python -m hebbian_es.evaluate run=zoo/{name}`; analyses: "
        f"`python -m hebbian_es.analyze analysis=<name> run=zoo/{name}`.",
    ]
    if source.get("command") or source.get("overrides"):
        lines += ["", "Trained with: `" + (source.get("command") or "python -m hebbian_es " + " ".join(source["overrides"])) + "`"]
    if gif:
        lines += ["", f"![one test lifetime]({gif})"]
    return "\n".join(lines) + "\n"


def _budget_line(b: dict[str, Any]) -> str:
    return (f"Training budget: {b['generations']} generations of population {b['popsize']}, "
            f"{b['env_steps'] / 1e6:.1f} M env steps, "
            f"{b['wall_time_h']:.1f} h of training wall time.")


def main(argv: Sequence[str] | None = None) -> None:
    cli_args.main(__doc__ or "", ZooArgs, argv, export)


if __name__ == "__main__":
    main()
