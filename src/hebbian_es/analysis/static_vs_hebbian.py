"""analysis=static_vs_hebbian: one perturbation (actuator_saturation or weight_zeroing, with
its keys) on a Hebbian run (run=) and a rule=static run (static=), overlaid."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from hebbian_es.analysis import saturation, zeroing
from hebbian_es.analysis.args import key
from hebbian_es.analysis.curves import CSV_HEADER, Curves, perturb, recovery_line, recovery_summary
from hebbian_es.analysis.loaded import LoadedRun
from hebbian_es.analysis.outputs import Outputs, reward_rows, write_csv
from hebbian_es.analysis.plots import perturbation_plot
from hebbian_es.errors import ConfigError

SUMMARY = "one perturbation on a Hebbian and a static run (static=<dir>), overlaid"
PERTURBATIONS = {p.name: p for p in (saturation.SATURATION, zeroing.ZEROING)}


@dataclass
class Args(zeroing.Args, saturation.Args):
    static: Optional[str] = key(None, "the rule=static run directory (required)")
    perturbation: str = key("actuator_saturation", "the perturbation, with its keys", choices=tuple(PERTURBATIONS))

    def check(self) -> None:
        if not self.static:
            raise ConfigError("static=<run dir of a rule=static run> is required for analysis=static_vs_hebbian")


def load_static(run: LoadedRun, a: Args) -> LoadedRun:
    """The static run, checked against the Hebbian one (same env, same bodies)."""
    static = LoadedRun(a.static, a.checkpoint, a.seed, a.early_stop, a.bodies, a.batch_size, key="static")
    try:
        if static.rule != "static":
            raise ConfigError(f"static={a.static!r} has rule={static.rule}; it must be a rule=static run")
        if static.task.envs[0].id != run.task.envs[0].id:
            raise ConfigError(f"static={a.static!r} ran env {static.task.envs[0].id}, run= ran {run.task.envs[0].id}; they must match")
        names = [e.name for e in run.envs]
        if [e.name for e in static.envs] != names:
            raise ConfigError(f"the runs' test bodies differ ({names} vs {[e.name for e in static.envs]}); choose common ones with bodies=[...]")
    except ConfigError:
        static.close()
        raise
    return static


def analyse(run: LoadedRun, a: Args, out: Outputs) -> None:
    if not run.plastic:
        raise ConfigError(f"run={str(run.dir)!r} has rule={run.rule}; give the Hebbian run as run= and the static one as static=")
    static = load_static(run, a)
    try:
        kind = PERTURBATIONS[a.perturbation]
        kind.check_runs([run, static], a)
        result: dict[str, list[Curves]] = {}
        rows: list[list[Any]] = []
        for label, r in (("hebbian", run), ("static", static)):
            result[f"Hebbian ({r.rule})" if r.plastic else "static"] = curves = [perturb(r, env, a, kind) for env in r.envs]
            for c in curves:
                rows += reward_rows([label, c.body], c.perturbed, c.unperturbed)
                out.summary.setdefault(label, {"run": str(r.dir), "rule": r.rule})[c.body] = recovery_summary(c)
                out.say(recovery_line(c, f"{label}: "))
        write_csv(out.path("static_vs_hebbian.csv"), ["run", "body", *CSV_HEADER], rows)
        perturbation_plot(
            result, out.path("static_vs_hebbian.png"),
            run.title(f"Hebbian vs static ({static.name}): {kind.describe(a)}"), a.smooth, run.reward_label,
        )
    finally:
        static.close()
