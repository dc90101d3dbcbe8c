"""`python -m hebbian_es.report sweep=<dir> [out=<dir>] [by=<group>] [metric=center_return] [wandb=auto|off|on] ...`

The comparison report over a sweep directory (`python -m hebbian_es -m sweep=...`):
runs are grouped by the config group the sweep compares (its `sweep.compare`:
rule, init or morphology; `by=<group>` overrides), and each group is summarised
over its seeds.  Always written, into <sweep>/report/ (out=<dir> to change):

  report.html      one self-contained page (the PNGs embedded)
  report.md        the same as Markdown, next to curves.png and test_means.png
  report.json      every aggregate, unrounded, and every run's status
  wandb_report_spec.json   the W&B report of the same comparison (unless wandb=off)

Runs are the directories below the sweep holding a config.yaml or a status.json.
wandb=auto publishes the W&B report when the runs logged to W&B online and an API
key is configured, else only writes its spec; wandb=on publishes (exit 1 if it
cannot reach W&B, exit 2 without an API key: never a login prompt); wandb=off: no
W&B at all.

Only finished runs enter the curves and the tables of means; failed, stopped and
unfinished runs are listed with the reason.  docs/reports.md explains each part.
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from hebbian_es import cli_args
from hebbian_es.cli_args import key
from hebbian_es.errors import ConfigError
from hebbian_es.report import wandb as wb
from hebbian_es.report.aggregate import aggregate, choose_by, group_order, group_value, runs_table, test_table
from hebbian_es.report.plots import plot_curves, plot_test
from hebbian_es.report.render import build_doc, markdown_table, to_html, to_markdown
from hebbian_es.report.runs import FILES, MULTIRUN, Run, load_runs, num, sweep_command, sweep_name


@dataclass
class ReportArgs:
    sweep: Optional[str] = key(None, "the sweep directory (required): runs are the dirs below it")
    out: Optional[str] = key(None, "where to write (default <sweep>/report)")
    by: Optional[str] = key(None, "the config group to compare along (default: the sweep's compare)")
    metric: str = key("center_return", "the per-generation metric of the fitness curves")
    wandb: str = key("auto", "auto: publish the W&B report when the runs logged online and a key is set; on: publish or fail; off: no W&B")
    entity: Optional[str] = key(None, "the W&B entity (default: the runs' logger.wandb.entity)")
    project: Optional[str] = key(None, "the W&B project (default: the runs' logger.wandb.project)")
    title: Optional[str] = key(None, "the report's title")

    def check(self) -> None:
        if not self.sweep:
            raise ConfigError("sweep=<sweep dir> is required")
        if self.wandb not in wb.WANDB_MODES:
            raise ConfigError(f"wandb={self.wandb!r}; allowed: {', '.join(wb.WANDB_MODES)}")


class PublishError(RuntimeError):
    """wandb=on and the W&B report could not be published (the local report is written):
    exit 1, or 2 without an API key."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class WandbOutcome:
    note: str
    url: Optional[str] = None
    error: Optional[str] = None
    code: int = 1  # the exit code when wandb=on and publishing failed


def _wandb(args: ReportArgs, out: Path, runs: Sequence[Run], groups: Sequence[str], by: str,
           agg: dict[str, Any], name: str, title: str) -> WandbOutcome:
    """wandb_report_spec.json, and the report published when wandb=on (or auto and possible)."""
    if args.wandb == "off":
        return WandbOutcome("W&B: off (wandb=off).")
    test_t = test_table(agg, groups, by)
    spec = wb.wandb_spec(runs, groups, by, args.metric, agg, name, title,
                         markdown_table(test_t) if test_t else None, markdown_table(runs_table(runs, by)), args.entity, args.project)
    try:
        spec["viewspec"] = wb.viewspec(spec)
    except ImportError as exc:  # wandb-workspaces missing: the plain spec still says it all
        spec["viewspec"] = None
        print(f"note: W&B view spec not built ({exc}); pip install wandb-workspaces")
    (out / "wandb_report_spec.json").write_text(json.dumps(spec, indent=2) + "\n")
    go, why = wb.wandb_decision(args.wandb, spec)
    where = f"{spec['entity'] or '<default entity>'}/{spec['project']}, group {spec['group']!r}"
    if not go:
        return WandbOutcome(f"W&B report not published ({why}); its spec ({where}, grouped by {', '.join(spec['groupby'])}) "
                            "is in wandb_report_spec.json: `python -m hebbian_es.report sweep=... wandb=on` publishes it.")
    try:
        url = wb.publish(spec)
    except ConfigError as exc:
        return WandbOutcome(f"W&B report not published: {exc}; its spec is in wandb_report_spec.json.", error=str(exc),
                            code=2 if isinstance(exc, wb.MissingCredentials) else 1)
    return WandbOutcome(f"W&B report published: {url} ({where}).", url=url)


def make_report(args: ReportArgs, argv: Sequence[str] = ()) -> dict[str, Any]:
    args.check()
    sweep = Path(args.sweep).expanduser()  # type: ignore[arg-type]
    out = Path(args.out).expanduser() if args.out else sweep / "report"
    runs = load_runs(sweep, out)
    by = choose_by(runs, args.by)
    for r in runs:
        r.group = group_value(r, by)
    groups = group_order(runs, sweep, by)
    metric_keys = sorted({k for r in runs for row in r.rows for k, v in row.items() if num(v) is not None} - {"generation"})
    if metric_keys and args.metric not in metric_keys:
        raise ConfigError(f"metric={args.metric!r} is not in the runs' {FILES.metrics.name}; allowed: {', '.join(metric_keys)}")
    name = sweep_name(runs, sweep)
    title = args.title or f"{name}: comparison by {by}"
    agg = aggregate(runs, groups, args.metric)

    out.mkdir(parents=True, exist_ok=True)
    images: dict[str, Path] = {}
    if any(c["generation"] for c in agg["curves"].values()):
        images["curves"] = plot_curves(runs, groups, agg, args.metric, by, title, out / "curves.png")
    test_png = plot_test(agg, groups, by, title, out / "test_means.png")
    if test_png is not None:
        images["test"] = test_png
    commands = {"this report": "python -m hebbian_es.report " + " ".join(shlex.quote(a) for a in argv)}
    made = sweep_command(sweep)
    if made:
        commands[f"the sweep (from {MULTIRUN})"] = made

    w = _wandb(args, out, runs, groups, by, agg, name, title)
    doc = build_doc(name, runs, groups, by, args.metric, agg, images, commands, args.title, w.note)
    (out / "report.md").write_text(to_markdown(doc, {p: p.name for p in images.values()}))
    (out / "report.html").write_text(to_html(doc))
    data = {
        "sweep": str(sweep), "sweep_name": name, "by": by, "metric": args.metric, "groups": groups,
        "runs": [
            {"name": r.name, "group": r.group, "seed": r.seed, "status": r.status, "included": r.included,
             "excluded": r.excluded, "generations_done": r.generations_done, "generations": r.generations,
             "best_center_return": r.best_center_return, "notes": r.notes}
            for r in runs
        ],
        "aggregates": agg,
        "wandb": {"note": w.note, "url": w.url, "error": w.error},
        "commands": commands,
    }
    (out / "report.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    n_ex = sum(not r.included for r in runs)
    print(f"report: {len(runs)} runs ({n_ex} excluded), {len(groups)} groups by {by} -> {out / 'report.html'} and report.md")
    print(w.note)
    if w.error and args.wandb == "on":
        raise PublishError(w.error, w.code)
    return data


def main(argv: Sequence[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)

    def command(parsed: ReportArgs) -> None:
        try:
            make_report(parsed, args)
        except PublishError as exc:  # the local report is written; only W&B failed
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(exc.code)

    cli_args.main(__doc__, ReportArgs, args, command)


if __name__ == "__main__":
    main()
