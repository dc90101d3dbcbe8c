"""Runs into groups, groups into mean ± sd over seeds, and those into tables."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from hebbian_es.errors import ConfigError
from hebbian_es.report.runs import Run, finite, num, read_multirun

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
    differ = [k for k in allowed if len({str(group_value(r, k)) for r in runs}) > 1]
    if len(differ) == 1:
        return differ[0]
    if len(differ) > 1:
        raise ConfigError(f"the runs differ in {', '.join(differ)} and name no sweep.compare; choose by=<group> ({', '.join(allowed)})")
    if "rule" in allowed or not allowed:
        return "rule"
    return allowed[0]


def group_value(run: Run, by: str) -> str:
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
    cfg = read_multirun(sweep)
    if cfg is not None:
        from omegaconf import OmegaConf

        try:
            for o in OmegaConf.select(cfg, "hydra.overrides.task", default=[]) or []:
                if str(o).startswith(f"{by}="):
                    order += str(o).split("=", 1)[1].split(",")
            params = OmegaConf.select(cfg, f"hydra.sweeper.params.{by}", default=None)
            if params:
                order += str(params).split(",")
        except Exception:  # an odd multirun.yaml only loses the order
            pass
    return [g for g in dict.fromkeys(o.strip() for o in order) if g in found] + [g for g in found if g not in order]


# ---- mean ± sd over seeds ------------------------------------------------------------------


def mean_sd(values: Sequence[Optional[float]]) -> dict[str, Any]:
    """Mean and population sd (numpy std, ddof=0: as the test protocol's sd) over the finite values."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if not len(v):
        return {"mean": None, "sd": None, "n": 0}
    return {"mean": float(v.mean()), "sd": float(v.std()), "n": int(len(v))}


def curve(runs: Sequence[Run], key: str) -> dict[str, list[Any]]:
    """Per generation: mean, sd and n over the runs that have `key` at that generation."""
    by_gen: dict[int, list[float]] = {}
    for r in runs:
        for row in r.rows:
            v = finite(row.get(key))
            if v is not None and "generation" in row:
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


def _test_entry(tested: Sequence[Run], env: str) -> Optional[dict[str, Any]]:
    with_env = [r for r in tested if env in r.test["envs"]]  # type: ignore[index]
    stats = [r.test["envs"][env] for r in with_env]  # type: ignore[index]
    if not stats:
        return None
    values = [num(s.get("mean")) for s in stats]
    entry = {**mean_sd(values), "seeds": [r.seed for r in with_env], "values": values}
    seen = {s.get("seen") for s in stats}
    if seen != {None}:
        entry["seen"] = seen.pop() if len(seen) == 1 else "mixed"
    if any("solved" in s for s in stats):
        entry["solved"] = sum(bool(s.get("solved")) for s in stats)
        entry["solved_threshold"] = stats[0].get("solved_threshold")
    return entry


def aggregate(runs: Sequence[Run], groups: Sequence[str], metric: str) -> dict[str, Any]:
    """Per group, over its included runs: the curves of `metric` and val_mean, each test env's
    test means and the random damages' mean of means."""
    out: dict[str, Any] = {"curves": {}, "validation": {}, "test": {}, "random_damages": {}}
    envs = test_envs([r for r in runs if r.included])
    for g in groups:
        members = [r for r in runs if r.group == g and r.included]
        out["curves"][g] = curve(members, metric)
        val = curve(members, "val_mean")
        if val["generation"]:
            out["validation"][g] = val
        tested = [r for r in members if r.test]
        entries = {env: _test_entry(tested, env) for env in envs}
        out["test"][g] = {env: e for env, e in entries.items() if e is not None}
        rds = [r.test["random_damages"] for r in tested if r.test.get("random_damages")]  # type: ignore[union-attr]
        if rds:
            values = [num(d.get("mean_of_means")) for d in rds]
            out["random_damages"][g] = {
                **mean_sd(values), "count": rds[0].get("count"), "values": values,
                "solved_fraction": float(np.mean([float(d.get("solved_fraction") or 0.0) for d in rds])),
                "seen": False,  # random damages are never trained on
            }
    out["test_envs"] = envs
    return out


def is_quadruped(agg: Mapping[str, Any]) -> bool:
    return any("seen" in e for g in agg["test"].values() for e in g.values()) or bool(agg["random_damages"])


def solved_threshold(agg: Mapping[str, Any]) -> Optional[float]:
    """The solved threshold when every env/body with one shares it."""
    found = {e.get("solved_threshold") for g in agg["test"].values() for e in g.values() if e.get("solved_threshold") is not None}
    return float(found.pop()) if len(found) == 1 else None


# ---- tables --------------------------------------------------------------------------------


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


def _run_test_cell(r: Run) -> str:
    if not r.test:
        return "–"
    rand = random_body_names(r)
    named = [(n, s) for n, s in r.test["envs"].items() if n not in rand]
    if len(named) == 1 and not r.test.get("random_damages"):
        return fmt(num(named[0][1].get("mean")))
    parts = [f"{n} {fmt(num(s.get('mean')))}" for n, s in named]
    if r.test.get("random_damages"):
        parts.append(f"random {fmt(num(r.test['random_damages'].get('mean_of_means')))}")
    return "; ".join(parts)


def runs_table(runs: Sequence[Run], by: str) -> Table:
    header = [by, "seed", "status", "generations", "best centre return", "test mean", "run dir", "note"]
    rows, marked = [], []
    for r in runs:
        done = f"{r.generations_done}/{r.generations}" if r.generations is not None else str(r.generations_done)
        status = r.status if r.included else f"{r.status.upper()} (excluded)"
        note = r.excluded or ""
        if r.included and not r.test:
            note = "no test results: left out of the test table"
        note = "; ".join(x for x in [note, *r.notes] if x)
        rows.append([r.group, fmt(r.seed), status, done, fmt(r.best_center_return), _run_test_cell(r), r.name, note])
        marked.append(not r.included)
    return Table(header, rows, marked)
