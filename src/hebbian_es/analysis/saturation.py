"""analysis=actuator_saturation (Fig. 3 right): every output forced to `value` during steps
[t0, t1); per-step reward of the same lifetimes with and without it, and the recovery."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hebbian_es.analysis import hooks
from hebbian_es.analysis.args import key
from hebbian_es.analysis.curves import CSV_HEADER, Perturbation, RecoveryArgs, perturb, recovery_line, recovery_summary
from hebbian_es.analysis.loaded import LoadedRun
from hebbian_es.analysis.outputs import Outputs, reward_rows, write_csv
from hebbian_es.analysis.plots import perturbation_plot
from hebbian_es.errors import ConfigError

SUMMARY = "outputs forced to 1.0 during [t0, t1): reward vs time, recovery (Fig. 3 right)"
CLAMPS = ("output", "action")


@dataclass
class Args(RecoveryArgs):
    t0: int = key(300, "first step of the window [t0, t1)")
    t1: int = key(400, "first step after the window")
    value: float = key(1.0, "the value forced during the window")
    clamp: str = key("output", "output: the output units (the last layer's Hebbian update sees them); action: the env action only", choices=CLAMPS)


def check_window(a: Any, horizon: int) -> None:
    if not 0 <= a.t0 < a.t1 <= horizon:
        raise ConfigError(
            f"t0={a.t0}, t1={a.t1}: the window [t0, t1) must lie inside the episode, 0 <= t0 < t1 <= {horizon} "
            f"(its length in steps)"
        )


def make_hooks(run: LoadedRun, a: Any) -> tuple[list[Any], tuple[int, int], dict[str, Any]]:
    clamp = hooks.ClampOutputs if a.clamp == "output" else hooks.ClampActions
    return [clamp(a.t0, a.t1, a.value)], (a.t0, a.t1), {}


def describe(a: Any) -> str:
    what = "output units" if a.clamp == "output" else "env actions"
    return f"all {what} forced to {a.value:g} during steps [{a.t0}, {a.t1})"


SATURATION = Perturbation("actuator_saturation", check_window, make_hooks, describe)


def analyse(run: LoadedRun, a: Args, out: Outputs) -> None:
    SATURATION.check_runs([run], a)
    curves = [perturb(run, env, a, SATURATION) for env in run.envs]
    rows = [r for c in curves for r in reward_rows([c.body], c.perturbed, c.unperturbed)]
    write_csv(out.path("actuator_saturation.csv"), ["body", *CSV_HEADER], rows)
    for c in curves:
        out.summary[c.body] = recovery_summary(c)
        out.say(recovery_line(c))
    perturbation_plot(
        {"": curves}, out.path("actuator_saturation.png"),
        run.title(f"actuator saturation: {describe(a)}"), a.smooth, run.reward_label,
    )
