"""`python -m hebbian_es.plots OUT.png NAME=RUN_DIR [NAME=RUN_DIR ...]` (or `out=OUT.png NAME=RUN_DIR ...`)

Several runs' fitness curves on one axis: each run's population mean per generation
(line) and its centre's validation mean (markers), labelled NAME.  A run directory
needs a metrics.jsonl (validation.jsonl is optional).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from hebbian_es import cli_args
from hebbian_es.cli_args import key
from hebbian_es.errors import ConfigError
from hebbian_es.report.plots import pyplot
from hebbian_es.report.runs import FILES
from hebbian_es.run.rundir import RunDir


@dataclass
class CompareArgs:
    out: Optional[str] = key(None, "the PNG to write (required; also accepted as the first argument, without out=)")
    runs: Dict[str, str] = key({}, "NAME=RUN_DIR: a run directory and its name in the legend (one or more)", extra=True)


def compare_curves(runs: dict[str, Sequence[dict[str, Any]]], path: Path, title: str) -> Path:
    """Population mean (line) and centre validation (markers) of several runs on one axis."""
    from hebbian_es.run.figures import finish

    fig, ax = pyplot().subplots(figsize=(7, 4))
    for name, rows in runs.items():
        train = [r for r in rows if r.get("pop_mean") is not None]
        (line,) = ax.plot([r["generation"] for r in train], [r["pop_mean"] for r in train], label=f"{name}: population mean")
        val = [(r["generation"], r["val_mean"]) for r in rows if r.get("val_mean") is not None]
        if val:
            ax.plot(*zip(*val), "o--", color=line.get_color(), label=f"{name}: centre, validation mean")
    return finish(fig, ax, path, title, "episode return (fitness)")


def compare(args: CompareArgs) -> Path:
    if not args.out:
        raise ConfigError("out=OUT.png is required (or give OUT.png first): python -m hebbian_es.plots OUT.png NAME=RUN_DIR ...")
    if not args.runs:
        raise ConfigError("no runs to compare: give one or more NAME=RUN_DIR")
    runs = {name: RunDir(Path(path)).merged_metrics() for name, path in args.runs.items()}
    missing = [n for n, rows in runs.items() if not rows]
    if missing:
        raise ConfigError(f"no {FILES.metrics.name} rows for {missing}")
    return compare_curves(runs, Path(args.out), " vs ".join(runs))


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and "=" not in args[0] and not args[0].startswith("-"):  # the documented positional OUT.png
        args[0] = f"out={args[0]}"
    cli_args.main(__doc__, CompareArgs, args, compare)


if __name__ == "__main__":
    main()
