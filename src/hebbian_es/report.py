"""`python -m hebbian_es.report sweep=<dir> [out=<dir>] [by=<group>] [metric=center_return] [wandb=auto|off|on] ...`

The comparison report over a sweep directory (`python -m hebbian_es -m sweep=...`):
runs are grouped by the config group the sweep compares (its `sweep.compare`:
rule, init or morphology; `by=<group>` overrides), and each group is summarised
over its seeds.  Always written, into <sweep>/report/ (out=<dir> to change):

  report.html      one self-contained page (the PNGs embedded)
  report.md        the same as Markdown, next to curves.png and test_means.png
  report.json      every aggregate, unrounded, and every run's status
  wandb_report_spec.json   the W&B report of the same comparison (unless wandb=off)

Keys:
  sweep=<dir>        the sweep directory (required): runs are the dirs below it
                     holding a config.yaml or a status.json
  out=<dir>          where to write (default <sweep>/report)
  by=<group>         the config group to compare along (default: the sweep's compare)
  metric=<key>       the per-generation metric of the fitness curves (default center_return)
  wandb=auto|off|on  auto: publish the W&B report when the runs logged to W&B online
                     and an API key is configured, else only write its spec;
                     on: publish (an error if it cannot); off: no W&B at all
  entity=, project=  the W&B target (default: the runs' logger.wandb.entity/project)
  title=<text>       the report's title

Only finished runs enter the curves and the tables of means; failed, stopped and
unfinished runs are listed with the reason.  docs/reports.md explains each part.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import re
import shlex
import sys
import threading
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np

from hebbian_es.errors import ConfigError, run_command
from hebbian_es.loggers import merged_metrics

WANDB_MODES = ("auto", "off", "on")
SKIP_DIRS = {"report", "checkpoints", "wandb", ".hydra", "analysis", "__pycache__"}
PUBLISH_TIMEOUT_S = 120.0


class PublishError(RuntimeError):
    """wandb=on and the W&B report could not be published (the local report is written)."""


# ---- arguments -----------------------------------------------------------------------------


@dataclass
class ReportArgs:
    sweep: Optional[str] = None
    out: Optional[str] = None
    by: Optional[str] = None
    metric: str = "center_return"
    wandb: str = "auto"
    entity: Optional[str] = None
    project: Optional[str] = None
    title: Optional[str] = None


def parse_args(argv: Sequence[str]) -> ReportArgs:
    allowed = [f.name for f in fields(ReportArgs)]
    values: dict[str, Any] = {}
    for arg in argv:
        key, eq, value = arg.partition("=")
        if not eq or key not in allowed:
            raise ConfigError(f"unknown argument {arg!r}; allowed: {', '.join(k + '=' for k in allowed)}")
        values[key] = value
    args = ReportArgs(**values)
    if not args.sweep:
        raise ConfigError("sweep=<sweep dir> is required")
    if args.wandb not in WANDB_MODES:
        raise ConfigError(f"wandb={args.wandb!r}; allowed: {', '.join(WANDB_MODES)}")
    return args


# ---- runs ----------------------------------------------------------------------------------


@dataclass
class Run:
    """One run directory of the sweep, as far as its files tell."""

    path: Path
    name: str  # relative to the sweep dir
    status: str  # running | finished | failed | stopped | unknown
    error: Optional[str] = None
    config: dict[str, Any] = field(default_factory=dict)
    choices: dict[str, Any] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    sweep: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    test: Optional[dict[str, Any]] = None
    seed: Optional[int] = None
    group: str = "?"
    excluded: Optional[str] = None  # why the run is left out of every aggregate; None: included
    notes: list[str] = field(default_factory=list)

    @property
    def generations(self) -> Optional[int]:
        g = self.config.get("generations")
        return int(g) if isinstance(g, (int, float)) else None

    @property
    def generations_done(self) -> int:
        if isinstance(self.summary.get("generations_done"), int):
            return int(self.summary["generations_done"])
        gens = [int(r["generation"]) for r in self.rows if "pop_mean" in r]
        return max(gens) + 1 if gens else 0

    @property
    def best_center_return(self) -> Optional[float]:
        if self.summary.get("best_center_return") is not None:
            return _num(self.summary["best_center_return"])
        vals = [_num(r.get("center_return")) for r in self.rows]
        vals = [v for v in vals if v is not None]
        return max(vals) if vals else None

    @property
    def included(self) -> bool:
        return self.excluded is None


def _num(x: Any) -> Optional[float]:
    if isinstance(x, bool) or x is None:
        return None
    if isinstance(x, (int, float)):
        return float(x)
    if x in ("inf", "-inf"):
        return float(x)
    return None


def _read_json(path: Path) -> tuple[Optional[Any], Optional[str]]:
    if not path.exists():
        return None, None
    try:
        return json.loads(path.read_text()), None
    except (OSError, json.JSONDecodeError) as exc:
        return None, f"{path.name} unreadable ({type(exc).__name__})"


def find_run_dirs(sweep: Path, skip: Iterable[Path] = ()) -> list[Path]:
    """Dirs under the sweep holding a config.yaml or a status.json (not descending into runs)."""
    skip = {p.resolve() for p in skip}
    found = []
    for root, dirs, files in os.walk(sweep):
        here = Path(root)
        if here.resolve() in skip:
            dirs[:] = []
            continue
        if here != sweep and ("config.yaml" in files or "status.json" in files):
            found.append(here)
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
    return sorted(found)


def load_run(path: Path, sweep: Path) -> Run:
    from omegaconf import OmegaConf

    run = Run(path=path, name=str(path.relative_to(sweep)), status="unknown")
    status, problem = _read_json(path / "status.json")
    if problem:
        run.notes.append(problem)
    if isinstance(status, dict):
        run.status = str(status.get("status", "unknown"))
        run.error = status.get("error")
        run.choices = {k: v for k, v in (status.get("choices") or {}).items() if not str(k).startswith("hydra/")}
        run.overrides = [str(o) for o in status.get("overrides") or []]
        run.sweep = dict(status.get("sweep") or {})
    if (path / "config.yaml").exists():
        try:
            run.config = OmegaConf.to_container(OmegaConf.load(path / "config.yaml"), resolve=False)  # type: ignore[assignment]
        except Exception as exc:  # a torn or hand-edited file: report it, keep going
            run.notes.append(f"config.yaml unreadable ({type(exc).__name__})")
    if not run.sweep and isinstance(run.config.get("sweep"), dict):
        run.sweep = dict(run.config["sweep"])
    run.rows = merged_metrics(path)
    summary, problem = _read_json(path / "summary.json")
    run.summary = summary if isinstance(summary, dict) else {}
    if problem:
        run.notes.append(problem)
    which = str((run.config.get("test") or {}).get("checkpoint") or "last")
    for name in dict.fromkeys([f"test_{which}.json", "test_last.json", "test_best.json"]):
        test, problem = _read_json(path / name)
        if problem:
            run.notes.append(problem)
        if isinstance(test, dict) and isinstance(test.get("envs"), dict):
            run.test = test
            if name != f"test_{which}.json":
                run.notes.append(f"test results from {name}")
            break
    run.seed = _seed(run)
    run.excluded = _exclusion(run)
    return run


def _seed(run: Run) -> Optional[int]:
    if isinstance(run.config.get("seed"), int):
        return int(run.config["seed"])
    for o in run.overrides:
        if o.startswith("seed=") and o[5:].lstrip("-").isdigit():
            return int(o[5:])
    m = re.fullmatch(r"s(\d+)", run.path.name)
    return int(m.group(1)) if m else None


def _exclusion(run: Run) -> Optional[str]:
    done = run.generations_done
    of = f"{done} of {run.generations}" if run.generations is not None else str(done)
    if run.status == "failed":
        return f"failed at generation {of}: {run.error or 'no error recorded'}"
    if run.status == "stopped":
        return f"stopped at generation {of} (resumable: run the sweep command again); {run.error or ''}".rstrip("; ")
    if run.status == "running":
        return f"not finished: status 'running' at generation {of} (still running, or killed)"
    if run.status != "finished":
        return f"no usable status.json (status {run.status!r}) at generation {of}"
    if not run.rows:
        return "finished, but metrics.jsonl has no rows"
    return None


def load_runs(sweep: Path, out: Path) -> list[Run]:
    if not sweep.exists():
        raise ConfigError(f"sweep={str(sweep)!r} does not exist")
    if not sweep.is_dir():
        raise ConfigError(f"sweep={str(sweep)!r} is not a directory")
    dirs = find_run_dirs(sweep, skip=[out])
    if not dirs and (sweep / "config.yaml").exists():
        raise ConfigError(f"sweep={str(sweep)!r} is a single run's directory, not a sweep; pass the directory above its runs")
    if not dirs:
        raise ConfigError(
            f"sweep={str(sweep)!r} holds no runs (no directory with a config.yaml or status.json below it); "
            "point it at outputs/sweeps/<sweep name>"
        )
    return [load_run(d, sweep) for d in dirs]


# ---- grouping ------------------------------------------------------------------------------


def allowed_groups(runs: Sequence[Run]) -> list[str]:
    keys: dict[str, None] = {}
    for r in runs:
        keys.update(dict.fromkeys(r.choices))
    if not keys:  # runs made without Hydra: the config groups with a name
        for r in runs:
            keys.update(dict.fromkeys(k for k, v in r.config.items() if isinstance(v, dict) and "name" in v))
    return sorted(keys)


def choose_by(runs: Sequence[Run], by: Optional[str]) -> str:
    allowed = allowed_groups(runs)
    if by is not None:
        if by not in allowed:
            raise ConfigError(f"by={by!r} is not a config group of these runs; allowed: {', '.join(allowed) or '(none)'}")
        return by
    compares = {r.sweep.get("compare") for r in runs if r.sweep.get("compare")}
    if len(compares) == 1:
        (compare,) = compares
        if compare in allowed:
            return str(compare)
    differ = [k for k in allowed if len({str(_group_value(r, k)) for r in runs}) > 1]
    if len(differ) == 1:
        return differ[0]
    if len(differ) > 1:
        raise ConfigError(f"the runs differ in {', '.join(differ)} and name no sweep.compare; choose by=<group> ({', '.join(allowed)})")
    if "rule" in allowed or not allowed:
        return "rule"
    return allowed[0]


def _group_value(run: Run, by: str) -> str:
    if by in run.choices:  # null (e.g. morphology on an env without bodies) is a value too
        return str(run.choices[by])
    for o in run.overrides:
        if o.startswith(f"{by}="):
            return o.split("=", 1)[1]
    value = run.config.get(by)
    if isinstance(value, dict) and "name" in value:
        return str(value["name"])
    if value is not None and not isinstance(value, (dict, list)):
        return str(value)
    return run.path.parent.name if run.path.parent.name else "?"


def group_order(runs: Sequence[Run], sweep: Path, by: str) -> list[str]:
    """Group values in the sweep command's order (multirun.yaml), then the rest as found."""
    found = list(dict.fromkeys(r.group for r in runs))
    order: list[str] = []
    try:
        from omegaconf import OmegaConf

        cfg = OmegaConf.load(sweep / "multirun.yaml") if (sweep / "multirun.yaml").exists() else None
        if cfg is not None:
            for o in OmegaConf.select(cfg, "hydra.overrides.task", default=[]) or []:
                if str(o).startswith(f"{by}="):
                    order += str(o).split("=", 1)[1].split(",")
            params = OmegaConf.select(cfg, f"hydra.sweeper.params.{by}", default=None)
            if params:
                order += str(params).split(",")
    except Exception:  # an unreadable multirun.yaml only loses the order
        pass
    return [g for g in dict.fromkeys(o.strip() for o in order) if g in found] + [g for g in found if g not in order]


# ---- aggregates ----------------------------------------------------------------------------


def mean_sd(values: Sequence[float]) -> dict[str, Any]:
    """Mean and population sd (numpy std, ddof=0: as the test protocol's sd) over seeds."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if not len(v):
        return {"mean": None, "sd": None, "n": 0}
    return {"mean": float(v.mean()), "sd": float(v.std()), "n": int(len(v))}


def curve(runs: Sequence[Run], key: str) -> dict[str, list[Any]]:
    """Per generation: mean, sd and n over the runs that have `key` at that generation."""
    by_gen: dict[int, list[float]] = {}
    for r in runs:
        for row in r.rows:
            v = _num(row.get(key))
            if v is not None and math.isfinite(v) and "generation" in row:
                by_gen.setdefault(int(row["generation"]), []).append(v)
    gens = sorted(by_gen)
    stats = [mean_sd(by_gen[g]) for g in gens]
    return {"generation": gens, "mean": [s["mean"] for s in stats], "sd": [s["sd"] for s in stats], "n": [s["n"] for s in stats]}


def random_body_names(run: Run) -> set[str]:
    """The fixed random test damages of a quadruped run (reported as a distribution)."""
    if not run.test:
        return set()
    names = set(run.test["envs"])
    morph = run.config.get("morphology") or {}
    if isinstance(morph, dict) and morph.get("test") is not None and run.test.get("random_damages"):
        return names - {str(n) for n in morph["test"]}
    return {n for n in names if re.fullmatch(r"random_\d+", n)} if run.test.get("random_damages") else set()


def test_envs(runs: Sequence[Run]) -> list[str]:
    names: dict[str, None] = {}
    for r in runs:
        if r.test:
            rand = random_body_names(r)
            names.update(dict.fromkeys(n for n in r.test["envs"] if n not in rand))
    return list(names)


def aggregate(runs: Sequence[Run], groups: Sequence[str], metric: str) -> dict[str, Any]:
    out: dict[str, Any] = {"curves": {}, "validation": {}, "test": {}, "random_damages": {}}
    envs = test_envs([r for r in runs if r.included])
    for g in groups:
        members = [r for r in runs if r.group == g and r.included]
        out["curves"][g] = curve(members, metric)
        val = curve(members, "val_mean")
        if val["generation"]:
            out["validation"][g] = val
        tested = [r for r in members if r.test]
        per_env = {}
        for env in envs:
            stats = [r.test["envs"][env] for r in tested if env in r.test["envs"]]  # type: ignore[index]
            if not stats:
                continue
            entry = mean_sd([_num(s.get("mean")) for s in stats])  # type: ignore[misc]
            entry["seeds"] = [r.seed for r in tested if env in r.test["envs"]]  # type: ignore[index]
            entry["values"] = [_num(s.get("mean")) for s in stats]
            seen = {s.get("seen") for s in stats}
            if seen != {None}:
                entry["seen"] = seen.pop() if len(seen) == 1 else "mixed"
            if any("solved" in s for s in stats):
                entry["solved"] = sum(bool(s.get("solved")) for s in stats)
                entry["solved_threshold"] = stats[0].get("solved_threshold")
            per_env[env] = entry
        out["test"][g] = per_env
        rds = [r.test["random_damages"] for r in tested if r.test.get("random_damages")]  # type: ignore[union-attr]
        if rds:
            entry = mean_sd([_num(d.get("mean_of_means")) for d in rds])  # type: ignore[misc]
            entry["count"] = rds[0].get("count")
            entry["values"] = [_num(d.get("mean_of_means")) for d in rds]
            entry["solved_fraction"] = float(np.mean([float(d.get("solved_fraction") or 0.0) for d in rds]))
            entry["seen"] = False  # random damages are never trained on
            out["random_damages"][g] = entry
    out["test_envs"] = envs
    return out


# ---- the report as a document --------------------------------------------------------------


def fmt(x: Any, digits: int = 2) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}" if math.isfinite(x) else str(x)
    return str(x)


def pm(entry: Mapping[str, Any]) -> str:
    return f"{fmt(entry.get('mean'))} ± {fmt(entry.get('sd'))}" if entry.get("mean") is not None else "–"


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    marked: list[bool] = field(default_factory=list)  # rows drawn as excluded


@dataclass
class Doc:
    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)  # (kind, payload): h2 p list table image code

    def add(self, kind: str, payload: Any) -> None:
        self.blocks.append((kind, payload))


def is_quadruped(agg: Mapping[str, Any]) -> bool:
    return any("seen" in e for g in agg["test"].values() for e in g.values()) or bool(agg["random_damages"])


def solved_threshold(agg: Mapping[str, Any]) -> Optional[float]:
    """The solved threshold when every env/body with one shares it."""
    found = {e.get("solved_threshold") for g in agg["test"].values() for e in g.values() if e.get("solved_threshold") is not None}
    return float(found.pop()) if len(found) == 1 else None


def test_table(agg: Mapping[str, Any], groups: Sequence[str], by: str) -> Optional[Table]:
    envs = agg["test_envs"]
    if not envs:
        return None
    quad = is_quadruped(agg)
    solved = any("solved" in e for g in agg["test"].values() for e in g.values())
    threshold = solved_threshold(agg)
    solved_head = f"solved (seeds; mean ≥ {fmt(threshold, 0)})" if threshold is not None else "solved (seeds)"
    if quad:  # the paper's Table 1: body, seen/unseen, mean ± sd, solved
        header = ["body", "seen", by, "seeds", "test mean ± sd over seeds", solved_head]
    else:
        header = ["env", by, "seeds", "test mean ± sd over seeds", "seeds' test means"] + ([solved_head] if solved else [])
    rows = []
    for env in envs:
        for g in groups:
            e = agg["test"].get(g, {}).get(env)
            if e is None:
                continue
            solved_cell = f"{e['solved']}/{e['n']}" if "solved" in e else "–"
            if quad:
                seen = e.get("seen")
                seen_cell = "seen" if seen is True else "unseen" if seen is False else fmt(seen)
                rows.append([env, seen_cell, g, str(e["n"]), pm(e), solved_cell])
            else:
                row = [env, g, str(e["n"]), pm(e), ", ".join(fmt(v) for v in e["values"])]
                rows.append(row + ([solved_cell] if solved else []))
    for g in groups:
        rd = agg["random_damages"].get(g)
        if rd:
            rows.append([
                f"{rd.get('count')} random damages (mean over bodies)", "unseen", g, str(rd["n"]), pm(rd),
                f"{rd['solved_fraction']:.0%} of bodies (mean over seeds)",
            ])
    return Table(header, rows)


def runs_table(runs: Sequence[Run], by: str) -> Table:
    header = [by, "seed", "status", "generations", "best centre return", "test mean", "run dir", "note"]
    rows, marked = [], []
    for r in runs:
        done = f"{r.generations_done}/{r.generations}" if r.generations is not None else str(r.generations_done)
        status = r.status if r.included else f"{r.status.upper()} (excluded)"
        test = "–"
        if r.test:
            rand = random_body_names(r)
            named = [(n, s) for n, s in r.test["envs"].items() if n not in rand]
            if len(named) == 1 and not r.test.get("random_damages"):
                test = fmt(_num(named[0][1].get("mean")))
            else:
                parts = [f"{n} {fmt(_num(s.get('mean')))}" for n, s in named]
                if r.test.get("random_damages"):
                    parts.append(f"random {fmt(_num(r.test['random_damages'].get('mean_of_means')))}")
                test = "; ".join(parts)
        note = r.excluded or ""
        if r.included and not r.test:
            note = "no test results: left out of the test table"
        note = "; ".join(x for x in [note, *r.notes] if x)
        rows.append([r.group, fmt(r.seed), status, done, fmt(r.best_center_return), test, r.name, note])
        marked.append(not r.included)
    return Table(header, rows, marked)


def build_doc(
    sweep_name: str, runs: Sequence[Run], groups: Sequence[str], by: str, metric: str, agg: Mapping[str, Any],
    images: Mapping[str, Path], commands: Mapping[str, str], title: Optional[str], wandb_note: str,
) -> Doc:
    doc = Doc(title or f"{sweep_name}: comparison by {by}")
    counts: dict[str, int] = {}
    for r in runs:
        counts[r.status] = counts.get(r.status, 0) + 1
    included = [r for r in runs if r.included]
    doc.add("p", (
        f"{len(runs)} runs ({', '.join(f'{n} {s}' for s, n in counts.items())}); compared along **{by}** "
        f"({', '.join(f'{g}: {_seeds(sum(1 for r in included if r.group == g))}' for g in groups)}). "
        f"Aggregates are over the {len(included)} finished runs only; mean ± sd over seeds (sd: population, ddof=0)."
    ))
    excluded = [r for r in runs if not r.included]
    if excluded:
        doc.add("h2", "Excluded runs")
        doc.add("list", [f"**{r.name}** ({by}={r.group}, seed {fmt(r.seed)}): {r.excluded}" for r in excluded])
    doc.add("h2", "Fitness curves")
    if "curves" in images:
        doc.add("p", (
            f"Left: `{metric}` per generation (the centre's return on that generation's training lifetimes), "
            "mean over seeds with ± sd shaded; thin lines are the single seeds."
            + (" Right: the centre's validation mean (fresh lifetimes, seeds disjoint from training)." if agg["validation"] else "")
        ))
        doc.add("image", images["curves"])
    else:
        doc.add("p", "No finished run has metrics rows: no curves.")
    doc.add("h2", "Final test")
    table = test_table(agg, groups, by)
    if table is None:
        doc.add("p", "No finished run has test results (test_last.json).")
    else:
        quad = is_quadruped(agg)
        doc.add("p", (
            "Each run's test mean (the test protocol's mean return over its lifetimes), then mean ± sd of those over seeds"
            + ("; seen: a body trained on; solved: the run's mean reached the env's threshold." if quad else ".")
        ))
        doc.add("table", table)
        if "test" in images:
            doc.add("image", images["test"])
    doc.add("h2", "Runs")
    doc.add("table", runs_table(runs, by))
    doc.add("h2", "W&B")
    doc.add("p", wandb_note)
    doc.add("h2", "Commands")
    doc.add("code", "\n".join(f"# {k}\n{v}" for k, v in commands.items()))
    return doc


def _seeds(n: int) -> str:
    return f"{n} seed" + ("" if n == 1 else "s")


def _md_cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def to_markdown(doc: Doc, rel: Mapping[Path, str]) -> str:
    out = [f"# {doc.title}", ""]
    for kind, payload in doc.blocks:
        if kind == "h2":
            out += [f"## {payload}", ""]
        elif kind == "p":
            out += [payload, ""]
        elif kind == "list":
            out += [f"- {x}" for x in payload] + [""]
        elif kind == "code":
            out += ["```", payload, "```", ""]
        elif kind == "image":
            out += [f"![{Path(payload).stem}]({rel[payload]})", ""]
        elif kind == "table":
            out += [markdown_table(payload), ""]
    return "\n".join(out)


def markdown_table(t: Table) -> str:
    lines = ["| " + " | ".join(t.header) + " |", "|" + "|".join("---" for _ in t.header) + "|"]
    for i, row in enumerate(t.rows):
        cells = [_md_cell(c) for c in row]
        if i < len(t.marked) and t.marked[i]:
            cells = [f"~~{cells[0]}~~"] + cells[1:2] + [f"**{cells[2]}**"] + cells[3:]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f3f3f3}tr.excluded td{background:#fde8e8;color:#8a1c1c}img{max-width:100%;border:1px solid #eee}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto}code{background:#f6f6f6}
"""


def _inline(text: str) -> str:
    """The little Markdown used in paragraphs (**bold**, `code`) as HTML."""
    s = html.escape(text)
    s = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", s)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", s)


def to_html(doc: Doc) -> str:
    out = ["<!DOCTYPE html>", '<html><head><meta charset="utf-8">', f"<title>{html.escape(doc.title)}</title>",
           f"<style>{CSS}</style></head><body>", f"<h1>{html.escape(doc.title)}</h1>"]
    for kind, payload in doc.blocks:
        if kind == "h2":
            out.append(f"<h2>{html.escape(payload)}</h2>")
        elif kind == "p":
            out.append(f"<p>{_inline(payload)}</p>")
        elif kind == "list":
            out.append("<ul>" + "".join(f"<li>{_inline(x)}</li>" for x in payload) + "</ul>")
        elif kind == "code":
            out.append(f"<pre>{html.escape(payload)}</pre>")
        elif kind == "image":
            data = base64.b64encode(Path(payload).read_bytes()).decode()
            out.append(f'<p><img alt="{html.escape(Path(payload).stem)}" src="data:image/png;base64,{data}"></p>')
        elif kind == "table":
            t: Table = payload
            rows = ["<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in t.header) + "</tr>"]
            for i, row in enumerate(t.rows):
                cls = ' class="excluded"' if i < len(t.marked) and t.marked[i] else ""
                rows.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
            out.append("<table>" + "".join(rows) + "</table>")
    out.append("</body></html>")
    return "\n".join(out)


# ---- plots ---------------------------------------------------------------------------------


def plot_curves(runs: Sequence[Run], groups: Sequence[str], agg: Mapping[str, Any], metric: str, by: str, title: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    panels = [(metric, agg["curves"], f"{metric} (training lifetimes)")]
    if agg["validation"]:
        panels.append(("val_mean", agg["validation"], "validation mean (fresh lifetimes)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.2), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (key, curves, label) in zip(axes[0], panels):
        for i, g in enumerate(groups):
            c = curves.get(g)
            if not c or not c["generation"]:
                continue
            color = colors[i % len(colors)]
            x = np.asarray(c["generation"])
            m = np.asarray(c["mean"], dtype=float)
            sd = np.asarray(c["sd"], dtype=float)
            for r in runs:
                if r.group == g and r.included:
                    pts = [(row["generation"], _num(row.get(key))) for row in r.rows if _num(row.get(key)) is not None]
                    if pts:
                        ax.plot(*zip(*pts), color=color, lw=0.7, alpha=0.3)
            n = max(c["n"])
            legend = f"{by}={g} (n={n} seed{'s' if n != 1 else ''})"
            if key == "val_mean":  # sparse points: error bars read better than a band
                ax.errorbar(x, m, yerr=sd, fmt="o-", color=color, lw=2, ms=5, capsize=4, label=legend)
            else:
                ax.plot(x, m, "-", color=color, lw=2, label=legend)
                ax.fill_between(x, m - sd, m + sd, color=color, alpha=0.2)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("generation")
        ax.set_ylabel("episode return")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    fig.suptitle(f"{title} — mean ± sd over seeds", fontsize=11)
    fig.tight_layout()
    _save(fig, path)
    return path


def plot_test(agg: Mapping[str, Any], groups: Sequence[str], by: str, title: str, path: Path) -> Optional[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols: list[tuple[str, dict[str, Any]]] = []
    for env in agg["test_envs"]:
        cols.append((env, {g: agg["test"].get(g, {}).get(env) for g in groups}))
    if agg["random_damages"]:
        cols.append(("random damages", {g: agg["random_damages"].get(g) for g in groups}))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    color = {g: colors[i % len(colors)] for i, g in enumerate(groups)}  # as in the curves
    groups = [g for g in groups if any(entries.get(g) for _, entries in cols)]  # no gaps for groups without results
    if not cols or not groups:
        return None
    fig, ax = plt.subplots(figsize=(max(6.5, 1.1 * len(cols) * max(1, len(groups)) + 1.5), 4.2))
    width = 0.8 / max(1, len(groups))
    for j, g in enumerate(groups):
        xs, ms, sds = [], [], []
        for i, (_, entries) in enumerate(cols):
            e = entries.get(g)
            if e and e.get("mean") is not None:
                x = i - 0.4 + width * (j + 0.5)
                xs.append(x)
                ms.append(e["mean"])
                sds.append(e["sd"])
                vals = [v for v in e["values"] if v is not None]
                ax.plot([x] * len(vals), vals, "k.", ms=5, alpha=0.6, zorder=3)
        if xs:
            ax.bar(xs, ms, width * 0.9, yerr=sds, capsize=3, color=color[g], alpha=0.8, label=f"{by}={g}")
    labels = []
    for name, entries in cols:
        seen = {e.get("seen") for e in entries.values() if e}
        labels.append(f"{name}\n({'seen' if seen == {True} else 'unseen'})" if seen in ({True}, {False}) else name)
    threshold = solved_threshold(agg)
    if threshold is not None:
        ax.axhline(threshold, color="0.3", ls="--", lw=1, label=f"solved (≥ {fmt(threshold, 0)})")
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels(labels, fontsize=9)
    ax.set_ylabel("test mean return")
    ax.set_title(f"{title}\ntest mean by {by}: bar = mean ± sd over seeds, dots = single seeds", fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    _save(fig, path)
    return path


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    import io

    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    buf.seek(0)
    # a 128-colour palette: the plots have a few colours, and the page embeds them
    Image.open(buf).convert("RGB").quantize(colors=128).save(path, format="PNG", optimize=True)


# ---- W&B -----------------------------------------------------------------------------------


def wandb_target(runs: Sequence[Run], sweep_name: str) -> dict[str, Any]:
    """Project, entity, group and mode the runs logged with (logger.wandb.*); group defaults to sweep.name."""
    cfgs = [r.config.get("logger", {}).get("wandb") for r in runs if isinstance(r.config.get("logger"), dict)]
    cfgs = [c for c in cfgs if isinstance(c, dict)]
    first = cfgs[0] if cfgs else {}
    modes = {str(c.get("mode", "offline")) for c in cfgs}
    return {
        "logged": bool(cfgs),
        "mode": "online" if "online" in modes else (modes.pop() if len(modes) == 1 else "offline"),
        "project": first.get("project") or "hebbian_es",
        "entity": first.get("entity"),
        "group": first.get("group") or sweep_name,
    }


def group_keys(runs: Sequence[Run], by: str) -> list[str]:
    """W&B config keys that separate the groups: `<by>.name` where the group has a name,
    else the fewest leaves of config[<by>] that tell the groups apart."""
    members = [r for r in runs if r.config]
    if not members:
        return [f"config.{by}.name"]

    def leaves(d: Any, prefix: str) -> dict[str, Any]:
        if isinstance(d, dict):
            out: dict[str, Any] = {}
            for k, v in d.items():
                out.update(leaves(v, f"{prefix}.{k}"))
            return out
        return {prefix: json.dumps(d, sort_keys=True, default=str)}

    flat = [leaves(r.config.get(by), by) for r in members]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    target = [r.group for r in members]

    def separates(ks: Sequence[str]) -> bool:
        seen: dict[tuple, str] = {}
        for f, g in zip(flat, target):
            sig = tuple(f.get(k) for k in ks)
            if seen.setdefault(sig, g) != g:
                return False
        return True

    if f"{by}.name" in keys and separates([f"{by}.name"]):
        return [f"config.{by}.name"]
    for k in keys:
        if separates([k]):
            return [f"config.{k}"]
    chosen = [k for k in keys if len({f.get(k) for f in flat}) > 1]
    return [f"config.{k}" for k in chosen] or [f"config.{by}"]


def wandb_spec(
    runs: Sequence[Run], groups: Sequence[str], by: str, metric: str, agg: Mapping[str, Any], sweep_name: str,
    title: str, test_md: Optional[str], runs_md: str, entity: Optional[str] = None, project: Optional[str] = None,
) -> dict[str, Any]:
    """The W&B report as plain data (no network): what `build_wandb_report` turns into wr objects."""
    target = wandb_target(runs, sweep_name)
    keys = group_keys(runs, by)
    group = target["group"]
    quote = '"' if "'" in group else "'"
    line = {"groupby": keys[0] if len(keys) == 1 else None, "groupby_aggfunc": "mean", "groupby_rangefunc": "stddev"}
    panels: list[dict[str, Any]] = [
        {"type": "LinePlot", "title": f"{metric} by {by} (mean ± sd over seeds)", "x": "generation", "y": [metric], **line},
    ]
    if agg["validation"]:
        panels.append({"type": "LinePlot", "title": f"validation mean by {by} (mean ± sd over seeds)", "x": "generation", "y": ["val_mean"], **line})
    test_keys = [f"test/{env}/mean" for env in agg["test_envs"]]
    if test_keys:
        panels.append({"type": "BarPlot", "title": f"test mean by {by} (mean ± sd over seeds)", "metrics": test_keys, **line})
    panels.append({"type": "RunComparer", "diff_only": "split"})
    summaries = ["summary:generations_done", "summary:best_center_return", *[f"summary:{k}" for k in test_keys]]
    blocks: list[dict[str, Any]] = [
        {"type": "P", "text": f"Runs of the W&B group {group!r} (job type train), grouped by {', '.join(keys)}; "
                              f"{len(runs)} runs in the sweep dir, groups: {', '.join(groups)}."},
        {"type": "PanelGrid",
         "runset": {"name": sweep_name, "filters": f"Group == {quote}{group}{quote} and JobType == 'train'",
                    "groupby": keys, "pinned_columns": ["run:state", *summaries]},
         "panels": panels},
    ]
    if test_md:
        blocks += [{"type": "H2", "text": "Final test (finished runs; mean ± sd over seeds)"}, {"type": "MarkdownBlock", "text": test_md}]
    blocks += [{"type": "H2", "text": "Runs (failed and unfinished ones marked)"}, {"type": "MarkdownBlock", "text": runs_md}]
    return {
        "entity": entity or target["entity"],
        "project": project or target["project"],
        "group": group,
        "mode": target["mode"],
        "logged_to_wandb": target["logged"],
        "groupby": keys,
        "title": title[:128],
        "description": f"Sweep {sweep_name}: {by} comparison over seeds (hebbian_es.report).",
        "blocks": blocks,
    }


def build_wandb_report(spec: Mapping[str, Any], for_publish: bool = False, entity: Optional[str] = None) -> Any:
    """wr.Report from the plain spec.  Offline (for_publish=False) the run set names no
    entity/project (the report's own is used), so `report._to_model()` needs no server;
    the report's entity must then be given (spec or `entity`) or it is left empty."""
    import warnings

    with warnings.catch_warnings():  # its pydantic v1-style validators warn on import
        warnings.simplefilter("ignore", DeprecationWarning)
        import wandb_workspaces.reports.v2 as wr

    ent = entity or spec.get("entity") or ""
    project = spec["project"]
    blocks: list[Any] = []
    for b in spec["blocks"]:
        kind = b["type"]
        if kind in ("H1", "H2", "H3", "P"):
            blocks.append(getattr(wr, kind)(b["text"]))
        elif kind == "MarkdownBlock":
            blocks.append(wr.MarkdownBlock(b["text"]))
        elif kind == "PanelGrid":
            rs = dict(b["runset"])
            if for_publish:
                rs.update(entity=ent, project=project)
            panels = []
            for p in b["panels"]:
                p = dict(p)
                ptype = p.pop("type")
                if ptype == "BarPlot":
                    p["metrics"] = [wr.SummaryMetric(m) for m in p["metrics"]]
                panels.append(getattr(wr, ptype)(**{k: v for k, v in p.items() if v is not None}))
            blocks.append(wr.PanelGrid(runsets=[wr.Runset(**rs)], panels=panels))
        else:
            raise ValueError(f"unknown block type {kind!r}")
    return wr.Report(project=project, entity=ent, title=spec["title"], description=spec["description"], blocks=blocks)


def viewspec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The report body W&B would store, built offline (as JSON data)."""
    model = build_wandb_report(spec)._to_model()
    return json.loads(model.spec.model_dump_json(by_alias=True, exclude_none=True))


def api_key_configured() -> bool:
    """An API key in the environment or in ~/.netrc for the W&B host (no network)."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    import netrc
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    try:
        path = os.environ.get("NETRC") or os.path.expanduser("~/.netrc")
        return bool(os.path.exists(path) and netrc.netrc(path).authenticators(host))
    except (OSError, netrc.NetrcParseError):
        return False


def publish(spec: Mapping[str, Any], timeout: float = PUBLISH_TIMEOUT_S) -> str:
    """Save the report to W&B (needs the server); returns its URL.  Never waits past `timeout`."""
    result: dict[str, Any] = {}

    def work() -> None:
        try:
            import wandb

            entity = spec.get("entity") or wandb.Api(timeout=30).default_entity
            report = build_wandb_report(spec, for_publish=True, entity=entity)
            report.save()
            result["url"] = report.url
        except BaseException as exc:  # noqa: BLE001 - reported to the user as one line
            result["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"

    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise ConfigError(f"publishing the W&B report took over {timeout:.0f} s (no network?)")
    if "error" in result:
        raise ConfigError(f"publishing the W&B report failed: {result['error']}")
    return str(result["url"])


def wandb_decision(mode: str, spec: Mapping[str, Any]) -> tuple[bool, str]:
    """(publish?, why) for wandb=auto|on."""
    if mode == "on":
        return True, "wandb=on"
    env_mode = os.environ.get("WANDB_MODE", "").lower()
    if env_mode in ("offline", "disabled", "dryrun"):
        return False, f"WANDB_MODE={env_mode}"
    if not spec["logged_to_wandb"]:
        return False, "the runs were not logged to W&B (no logger.wandb in their config)"
    if spec["mode"] != "online":
        return False, f"the runs logged to W&B in {spec['mode']} mode (sync them, then wandb=on publishes)"
    if not api_key_configured():
        return False, "no W&B API key configured (WANDB_API_KEY or `wandb login`)"
    return True, "runs logged online and an API key is configured"


# ---- command -------------------------------------------------------------------------------


def sweep_command(sweep: Path) -> Optional[str]:
    """The multirun command that made the sweep, from multirun.yaml (when Hydra wrote one)."""
    path = sweep / "multirun.yaml"
    if not path.exists():
        return None
    try:
        from omegaconf import OmegaConf

        cfg = OmegaConf.load(path)
        task = list(OmegaConf.select(cfg, "hydra.overrides.task", default=[]) or [])
        hyd = [o for o in OmegaConf.select(cfg, "hydra.overrides.hydra", default=[]) or [] if o != "hydra.mode=MULTIRUN"]
    except Exception:
        return None
    return "python -m hebbian_es -m " + " ".join(shlex.quote(str(o)) for o in [*task, *hyd])


def make_report(args: ReportArgs, argv: Sequence[str] = ()) -> dict[str, Any]:
    sweep = Path(args.sweep).expanduser()  # type: ignore[arg-type]
    out = Path(args.out).expanduser() if args.out else sweep / "report"
    runs = load_runs(sweep, out)
    by = choose_by(runs, args.by)
    for r in runs:
        r.group = _group_value(r, by)
    groups = group_order(runs, sweep, by)
    metric_keys = sorted({k for r in runs for row in r.rows for k, v in row.items() if _num(v) is not None} - {"generation"})
    if metric_keys and args.metric not in metric_keys:
        raise ConfigError(f"metric={args.metric!r} is not in the runs' metrics.jsonl; allowed: {', '.join(metric_keys)}")
    names = {r.sweep.get("name") for r in runs if r.sweep.get("name")}
    sweep_name = names.pop() if len(names) == 1 else sweep.resolve().name
    title = args.title or f"{sweep_name}: comparison by {by}"
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
        commands["the sweep (from multirun.yaml)"] = made

    test_t = test_table(agg, groups, by)
    runs_t = runs_table(runs, by)
    wandb_note = "W&B: off (wandb=off)."
    spec = None
    published_url = None
    publish_error = None
    if args.wandb != "off":
        spec = wandb_spec(runs, groups, by, args.metric, agg, sweep_name, title,
                          markdown_table(test_t) if test_t else None, markdown_table(runs_t), args.entity, args.project)
        try:
            spec["viewspec"] = viewspec(spec)
        except ImportError as exc:  # wandb-workspaces missing: the plain spec still says it all
            spec["viewspec"] = None
            print(f"note: W&B view spec not built ({exc}); pip install wandb-workspaces")
        (out / "wandb_report_spec.json").write_text(json.dumps(spec, indent=2) + "\n")
        go, why = wandb_decision(args.wandb, spec)
        where = f"{spec['entity'] or '<default entity>'}/{spec['project']}, group {spec['group']!r}"
        if go:
            try:
                published_url = publish(spec)
                wandb_note = f"W&B report published: {published_url} ({where})."
            except ConfigError as exc:
                publish_error = str(exc)
                wandb_note = f"W&B report not published: {exc}; its spec is in wandb_report_spec.json."
        else:
            wandb_note = (f"W&B report not published ({why}); its spec ({where}, grouped by {', '.join(spec['groupby'])}) "
                          "is in wandb_report_spec.json: `python -m hebbian_es.report sweep=... wandb=on` publishes it.")

    doc = build_doc(sweep_name, runs, groups, by, args.metric, agg, images, commands, args.title, wandb_note)
    rel = {p: p.name for p in images.values()}
    (out / "report.md").write_text(to_markdown(doc, rel))
    (out / "report.html").write_text(to_html(doc))
    data = {
        "sweep": str(sweep), "sweep_name": sweep_name, "by": by, "metric": args.metric, "groups": groups,
        "runs": [
            {"name": r.name, "group": r.group, "seed": r.seed, "status": r.status, "included": r.included,
             "excluded": r.excluded, "generations_done": r.generations_done, "generations": r.generations,
             "best_center_return": r.best_center_return, "notes": r.notes}
            for r in runs
        ],
        "aggregates": agg,
        "wandb": {"note": wandb_note, "url": published_url, "error": publish_error},
        "commands": commands,
    }
    (out / "report.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    n_ex = sum(not r.included for r in runs)
    print(f"report: {len(runs)} runs ({n_ex} excluded), {len(groups)} groups by {by} -> {out / 'report.html'} and report.md")
    print(wandb_note)
    if publish_error and args.wandb == "on":
        raise PublishError(publish_error)
    return data


def main(argv: Sequence[str] | None = None) -> None:
    def command(args: list[str]) -> None:
        try:
            make_report(parse_args(args), args)
        except PublishError as exc:  # the local report is written; only W&B failed
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(1)

    run_command(__doc__, argv, command, needs_args=True)


if __name__ == "__main__":
    main()
