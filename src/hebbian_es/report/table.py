"""`python -m hebbian_es.report.table NAME=RESULTS [NAME=RESULTS ...] [paper=quadruped|carracing] [out=TABLE.md]`

Test results side by side, one column per NAME, beside the paper's Table 1 (paper=): per
body (or env) mean ± sd over the test lifetimes, the lifetime count, and whether it counts
as solved; the fixed random damages as the distribution of their means (single-env results
share one row, e.g. one agent on carracing_fast and on CarRacing-v3, and each later column
gets a line: its difference from the first, within one sd or beyond).  RESULTS is a run
directory (its test_last.json: the training's test protocol, or a zoo entry's) or one
results file (what `python -m hebbian_es.evaluate` wrote under <run>/evaluations/).  The
table is printed, and written to out= as Markdown when given.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence

from hebbian_es import cli_args
from hebbian_es.cli_args import key
from hebbian_es.errors import ConfigError
from hebbian_es.run.rundir import RunDir

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
    results: Dict[str, str] = key({}, "NAME=RESULTS: a run directory (its test_last.json) or a results JSON file", extra=True)
    paper: Optional[str] = key(None, f"the paper's columns beside them: {' | '.join(PAPER)}")
    out: Optional[str] = key(None, "also write the table as Markdown here")


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


def _cell(mean: Any, sd: Any, solved: Any, decimals: int = 1) -> str:
    if mean is None or mean != mean:  # missing or NaN
        return "—"
    text = f"{mean:.{decimals}f} ± {sd:.{decimals}f}"
    return text if solved is None else text + (", solved" if solved else ", not solved")


def markdown(results: Mapping[str, Mapping[str, Any]], paper: Optional[str] = None) -> str:
    """One row per body/env that is not a random damage (first run's order first), then one
    row for the random damages; one column per run, then the paper's."""
    rows: list[str] = []
    for res in results.values():
        rows += [n for n in res["envs"] if n not in rows and not _is_random(n, res)]
    # single-env tasks share one row whatever each env is called (an agent tested on
    # carracing_fast and on CarRacing-v3: the transfer check side by side)
    single = all(len(res["envs"]) == 1 for res in results.values())
    if single:
        results = {name: {"envs": {" / ".join(rows): next(iter(res["envs"].values()))}} for name, res in results.items()}
        rows = [" / ".join(rows)]
    paper_cols = PAPER[paper] if paper else {}
    head = ["body" if any("seen" in st for r in results.values() for st in r["envs"].values()) else "env", "seen?"]
    head += [f"{name} (n)" for name in results] + list(paper_cols)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        seen = next((r["envs"][row].get("seen") for r in results.values() if row in r["envs"]), None)
        cells = [row, {True: "seen", False: "unseen"}.get(seen, "")]
        for res in results.values():
            st = res["envs"].get(row)
            cells.append(f"{_cell(st['mean'], st['sd'], st.get('solved'))} ({st['episodes']})" if st else "—")
        for col in paper_cols.values():
            ref = col.get(row) or (col.get("*") if single else None)
            cells.append(_cell(*ref, decimals=0) if ref else "—")  # as the paper prints them
        lines.append("| " + " | ".join(cells) + " |")
    if any(res.get("random_damages") for res in results.values()):
        cells = ["random damages: mean of means ± sd (bodies)", "unseen"]
        for res in results.values():
            rd = res.get("random_damages")
            cells.append(
                f"{rd['mean_of_means']:.1f} ± {rd['sd_of_means']:.1f} ({rd['count']}), solved {rd['solved_fraction']:.0%}"
                if rd and rd.get("mean_of_means") is not None else "—"
            )
        cells += ["—"] * len(paper_cols)  # the paper has no random damages
        lines.append("| " + " | ".join(cells) + " |")
    if single and len(results) > 1:
        lines += ["", *_transfer_lines(results, rows[0])]
    return "\n".join(lines) + "\n"


def _transfer_lines(results: Mapping[str, Mapping[str, Any]], row: str) -> list[str]:
    """Each later column against the first: the difference of means and whether it lies
    within one standard deviation (of the first column's lifetimes): the transfer check."""
    (first, ref), *others = [(n, r["envs"][row]) for n, r in results.items()]
    out = []
    for name, st in others:
        diff = st["mean"] - ref["mean"]
        within = abs(diff) <= ref["sd"]
        out.append(f"{name} − {first}: {diff:+.1f} ({'within' if within else 'beyond'} one sd of {first}, {ref['sd']:.1f})")
    return out


def _is_random(name: str, res: Mapping[str, Any]) -> bool:
    return bool(res.get("random_damages")) and name.startswith("random_")


def table(args: TableArgs) -> str:
    if not args.results:
        raise ConfigError("no results: give one or more NAME=RESULTS (a run directory or a results file)")
    if args.paper is not None and args.paper not in PAPER:
        raise ConfigError(f"paper={args.paper!r}; allowed: {list(PAPER)}")
    text = markdown({name: read_results(path) for name, path in args.results.items()}, args.paper)
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
