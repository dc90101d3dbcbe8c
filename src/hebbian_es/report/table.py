"""`python -m hebbian_es.report.table NAME=RESULTS[,RESULTS...] [NAME=...] [paper=quadruped|carracing] [out=TABLE.md]`

Test results side by side, one column per NAME, beside the paper's Table 1 (paper=): per
body (or env) mean ± sd over the test lifetimes with the bootstrap 95 % interval of the mean
(hebbian_es.stats), the lifetime count, and whether it counts as solved; the fixed random
damages as the distribution of their means (single-env results share one row, e.g. one
agent on carracing_fast and on CarRacing-v3, and each later column gets a line: its
difference from the first, within one sd or beyond).  RESULTS is a run directory (its
test_last.json: the training's test protocol, or a zoo entry's) or one results file (what
`python -m hebbian_es.evaluate` wrote under <run>/evaluations/).

Several RESULTS for one NAME, comma-separated, are runs of one setting with different training
seeds. They are reported both ways:
- "best of k": the paper's way (its section 4: the highest-performing of k runs), chosen by a
  validation score fixed in advance, never by the test: each run's tested checkpoint scored by
  the selection of `python -m hebbian_es.select` (selection.json) where it made one, else by
  its validation during training at that generation (validation.jsonl);
- "mean of k": the mean over the runs of their test means, with the bootstrap 95 % interval
  over the runs (seeds).
The table is printed, and written to out= as Markdown when given.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence

from hebbian_es import cli_args
from hebbian_es.cli_args import key
from hebbian_es.errors import ConfigError
from hebbian_es.run.protocol import lifetime_ci
from hebbian_es.run.rundir import RunDir
from hebbian_es.stats import format_ci, mean_ci

# The paper's Table 1 (Najarro & Risi 2020; ../shared/SPEC.md): (mean, sd, solved) per body,
# 100 test lifetimes each.  "*" is the row of a single-env task, whatever the env's name.
PAPER: Dict[str, Dict[str, Dict[str, tuple[float, float, Optional[bool]]]]] = {
    "quadruped": {
        "paper: Hebbian ABCD": {
            "standard": (1051, 113, None), "front_right_short": (1019, 116, None), "front_left_short": (452, 95, True),
        },
        "paper: static": {
            "standard": (1604, 171, None), "front_right_short": (1431, 54, None), "front_left_short": (68, 56, False),
        },
    },
    "carracing": {"paper: Hebbian ABCD": {"*": (872, 11, None)}, "paper: static": {"*": (711, 16, None)}},
}


@dataclass
class TableArgs:
    results: Dict[str, str] = key(
        {}, "NAME=RESULTS[,RESULTS...]: a run directory (its test_last.json) or a results JSON file; several: one setting's seeds",
        extra=True,
    )
    paper: Optional[str] = key(None, f"the paper's columns beside them: {' | '.join(PAPER)}")
    out: Optional[str] = key(None, "also write the table as Markdown here")


@dataclass
class Column:
    """One column of the table: a result, with where it came from."""

    name: str
    results: Mapping[str, Any]
    note: str = ""  # how it was made (best of k: which run; mean of k: the runs)
    ci_over: str = "lifetimes"


def run_dir_of(path: str) -> Path:
    """The run directory a RESULTS argument belongs to (a results file sits in it or in its evaluations/)."""
    p = Path(path)
    if p.is_dir():
        return p
    return p.parent.parent if p.parent.name == "evaluations" else p.parent


def read_results(path: str) -> dict[str, Any]:
    """A run directory's test_last.json, or a results file; ConfigError naming what is missing."""
    p = Path(path)
    file = p if p.is_file() else RunDir(p).test_results("last")
    try:
        results = json.loads(file.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path!r}: no {file.name} (run the test protocol: python -m hebbian_es.evaluate run={path})") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{file}: not a results file ({exc})") from None
    if not isinstance(results, dict) or not isinstance(results.get("envs"), dict):
        raise ConfigError(f"{file}: not a results file (no 'envs')")
    return results


def validation_score(path: str, results: Mapping[str, Any]) -> tuple[float, str] | None:
    """The validation score of the checkpoint `results` tested: (score, what it is), or None."""
    rd = RunDir(run_dir_of(path))
    generation = results.get("checkpoint_generation")
    if generation is None:
        return None
    try:
        selection = json.loads(rd.selection.read_text())
        for cand in selection.get("candidates", []):
            if int(cand["generation"]) == int(generation) and math.isfinite(cand["selection_mean"]):
                return float(cand["selection_mean"]), "selection lifetimes (python -m hebbian_es.select)"
    except (OSError, ValueError, KeyError, TypeError):
        pass
    for row in rd.validation_rows():
        if int(row.get("generation", -1)) == int(generation) and math.isfinite(float(row.get("val_mean", math.nan))):
            return float(row["val_mean"]), "validation during training"
    return None


def columns_of(name: str, paths: Sequence[str]) -> list[Column]:
    """One column for one run; two for several runs of a setting: best of k (by validation) and mean of k."""
    runs = [read_results(p) for p in paths]
    if len(runs) == 1:
        return [Column(name, runs[0])]
    scores = [validation_score(p, r) for p, r in zip(paths, runs)]
    missing = [p for p, s in zip(paths, scores) if s is None]
    if missing:
        raise ConfigError(
            f"{name}: best of {len(runs)} runs needs a validation score of each run's tested checkpoint; {missing[0]!r} has none "
            "(select its checkpoint with python -m hebbian_es.select and test checkpoint=selected, or test a validated generation)"
        )
    best = max(range(len(runs)), key=lambda i: scores[i][0])  # type: ignore[index]
    by = {s[1] for s in scores}  # type: ignore[index]
    best_col = Column(
        f"{name}: best of {len(runs)} by validation", runs[best],
        note=f"{name}: best of {len(runs)} runs = {paths[best]} (validation score {scores[best][0]:.1f}; scores by {', '.join(sorted(by))}: "  # type: ignore[index]
        + ", ".join(f"{s[0]:.1f}" for s in scores) + ")",  # type: ignore[index]
    )
    return [best_col, Column(f"{name}: mean of {len(runs)} runs", mean_of_runs(runs), f"{name}: mean of {len(runs)} runs = {', '.join(paths)}", "seeds")]


def mean_of_runs(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per env: the mean of the runs' test means, the sd of those means and their bootstrap interval over runs."""
    import numpy as np

    envs: dict[str, Any] = {}
    for env in runs[0]["envs"]:
        stats = [r["envs"][env] for r in runs if env in r["envs"]]
        means = np.array([s["mean"] for s in stats], dtype=np.float64)
        cell: dict[str, Any] = {
            "mean": float(np.nanmean(means)), "sd": float(np.nanstd(means)), "ci95": list(mean_ci(means)),
            "episodes": sum(int(s["episodes"]) for s in stats), "runs": len(stats),
        }
        if "seen" in stats[0]:
            cell["seen"] = stats[0]["seen"]
        if any("solved" in s for s in stats):
            cell["solved_runs"] = sum(bool(s.get("solved")) for s in stats)
        envs[env] = cell
    out: dict[str, Any] = {"envs": envs}
    rds = [r.get("random_damages") for r in runs]
    if all(rds):
        means = np.array([rd["mean_of_means"] for rd in rds], dtype=np.float64)  # type: ignore[index]
        out["random_damages"] = {
            "count": rds[0]["count"], "mean_of_means": float(means.mean()), "sd_of_means": float(means.std()),  # type: ignore[index]
            "ci95": list(mean_ci(means)), "solved_fraction": float(np.mean([rd["solved_fraction"] for rd in rds])),  # type: ignore[index]
            "runs": len(rds),
        }
    return out


def _cell(st: Mapping[str, Any]) -> str:
    """mean ± sd [95 % CI] and solved, for one column's env (the sd: of lifetimes, or of runs' means)."""
    mean, sd = st.get("mean"), st.get("sd")
    if mean is None or mean != mean:
        return "—"
    ci = format_ci(lifetime_ci(st))
    text = f"{mean:.1f} ± {sd:.1f}" + (f" {ci}" if ci != "—" else "")
    if "solved_runs" in st:
        text += f", solved in {st['solved_runs']} of {st['runs']} runs"
    elif st.get("solved") is not None:
        text += ", solved" if st["solved"] else ", not solved"
    return text + (f" ({st['runs']} runs)" if "runs" in st else f" ({st['episodes']})")


def _paper_cell(mean: float, sd: float, solved: Optional[bool]) -> str:
    text = f"{mean:.0f} ± {sd:.0f}"  # as the paper prints them
    return text if solved is None else text + (", solved" if solved else ", not solved")


def markdown(results: Mapping[str, Any], paper: Optional[str] = None) -> str:
    """One row per body/env that is not a random damage (first column's order first), then one
    row for the random damages; one column per result (a Column, or a plain results dict), then
    the paper's."""
    cols = [c if isinstance(c, Column) else Column(name, c) for name, c in results.items()]
    rows: list[str] = []
    for col in cols:
        rows += [n for n in col.results["envs"] if n not in rows and not _is_random(n, col.results)]
    # single-env tasks share one row whatever each env is called (an agent tested on
    # carracing_fast and on CarRacing-v3: the transfer check side by side)
    single = all(len(c.results["envs"]) == 1 for c in cols)
    if single:
        joined = " / ".join(rows)
        cols = [Column(c.name, {"envs": {joined: next(iter(c.results["envs"].values()))}}, c.note, c.ci_over) for c in cols]
        rows = [joined]
    paper_cols = PAPER[paper] if paper else {}
    bodies = any("seen" in st for c in cols for st in c.results["envs"].values())
    head = ["body" if bodies else "env", "seen?"] + [f"{c.name} (n)" for c in cols] + list(paper_cols)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        seen = next((c.results["envs"][row].get("seen") for c in cols if row in c.results["envs"]), None)
        cells = [row, {True: "seen", False: "unseen"}.get(seen, "")]
        cells += [_cell(c.results["envs"][row]) if row in c.results["envs"] else "—" for c in cols]
        for col in paper_cols.values():
            ref = col.get(row) or (col.get("*") if single else None)
            cells.append(_paper_cell(*ref) if ref else "—")
        lines.append("| " + " | ".join(cells) + " |")
    if any(c.results.get("random_damages") for c in cols):
        cells = ["random damages: mean of means ± sd (bodies)", "unseen"]
        for c in cols:
            rd = c.results.get("random_damages")
            if not rd or rd.get("mean_of_means") is None:
                cells.append("—")
                continue
            bodies_means = [st["mean"] for n, st in c.results["envs"].items() if _is_random(n, c.results)]
            ci = format_ci(rd.get("ci95") or (mean_ci(bodies_means) if bodies_means else None))
            ci = "" if ci == "—" else ci
            cells.append(f"{rd['mean_of_means']:.1f} ± {rd['sd_of_means']:.1f}{' ' + ci if ci else ''} ({rd['count']}), solved {rd['solved_fraction']:.0%}")
        cells += ["—"] * len(paper_cols)  # the paper has no random damages
        lines.append("| " + " | ".join(cells) + " |")
    notes = [c.note for c in cols if c.note]
    intervals = "95 % intervals: bootstrap over test lifetimes (random damages: over the bodies' means)" + (
        "; over runs (training seeds) for a mean of k runs" if any(c.ci_over == "seeds" for c in cols) else ""
    ) + " (hebbian_es.stats, scipy.stats.bootstrap)."
    lines += ["", intervals, *notes]
    if single and len(cols) > 1:
        lines += ["", *_transfer_lines(cols, rows[0])]
    return "\n".join(lines) + "\n"


def _transfer_lines(cols: Sequence[Column], row: str) -> list[str]:
    """Each later column against the first: the difference of means and whether it lies
    within one standard deviation (of the first column's lifetimes): the transfer check."""
    first, *others = cols
    ref = first.results["envs"][row]
    out = []
    for col in others:
        st = col.results["envs"][row]
        diff = st["mean"] - ref["mean"]
        within = abs(diff) <= ref["sd"]
        out.append(f"{col.name} − {first.name}: {diff:+.1f} ({'within' if within else 'beyond'} one sd of {first.name}, {ref['sd']:.1f})")
    return out


def _is_random(name: str, res: Mapping[str, Any]) -> bool:
    return bool(res.get("random_damages")) and name.startswith("random_")


def table(args: TableArgs) -> str:
    if not args.results:
        raise ConfigError("no results: give one or more NAME=RESULTS (a run directory or a results file)")
    if args.paper is not None and args.paper not in PAPER:
        raise ConfigError(f"paper={args.paper!r}; allowed: {list(PAPER)}")
    cols: dict[str, Column] = {}
    for name, spec in args.results.items():
        paths = [p for p in spec.split(",") if p]
        if not paths:
            raise ConfigError(f"{name}= names no results; give a run directory or a results file")
        for col in columns_of(name, paths):
            cols[col.name] = col
    text = markdown(cols, args.paper)
    if args.out:
        from hebbian_es.files import write_text_atomic

        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(Path(args.out), text)
    sys.stdout.write(text)
    return text


def main(argv: Sequence[str] | None = None) -> None:
    cli_args.main(__doc__ or "", TableArgs, argv, table)


if __name__ == "__main__":
    main()
