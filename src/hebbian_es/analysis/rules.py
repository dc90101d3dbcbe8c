"""analysis=rules: each rule's Δw as a function of pre- and post-synaptic activity.

For a run with shared rules (rule.sharing, merged during evolution or by `python -m hebbian_es.merge`)
one heatmap per rule; for per-synapse rules the distinct ones serving most synapses.  Δw is
evaluated through the rule's own update code (core/merging.delta_grid: η's map included; Oja's term
at w = 0.5, BCM's at θ = 0.25, on rates where the run's BCM reads them; a trace rule's after one step,
its τ in the title).  No lifetime runs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hebbian_es.analysis.args import CommonArgs, key
from hebbian_es.analysis.loaded import LoadedRun
from hebbian_es.analysis.outputs import Outputs
from hebbian_es.analysis.plots import rules_plot
from hebbian_es.errors import ConfigError

SUMMARY = "each rule's Δw over pre- and post-synaptic activity, one heatmap per rule (merged or shared rules)"


@dataclass
class Args(CommonArgs):
    max_rules: int = key(64, "the most rules shown: those serving most synapses", low=1)
    points: int = key(41, "activity values per axis", low=3)
    pre_max: float = key(1.0, "pre-synaptic activity from -pre_max to pre_max (the first layer reads observations)", low=0.0)


def rule_table(run: LoadedRun) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rules (K, C) float64, synapses per rule (K,), index of each rule) of the run's centre, the
    rules serving most synapses first (ties: the lower index)."""
    from hebbian_es.core.merging import per_synapse_coefficients

    coeffs = per_synapse_coefficients(run.task, run.params)
    rules, inverse, counts = np.unique(coeffs, axis=0, return_inverse=True, return_counts=True)
    order = np.lexsort((np.arange(len(counts)), -counts))
    return rules[order], counts[order], order


def analyse(run: LoadedRun, a: Args, out: Outputs) -> None:
    from hebbian_es.core.merging import delta_grid

    if not run.plastic:
        raise ConfigError(f"analysis=rules needs a plastic run; run={run.name!r} has rule.name={run.rule!r}")
    rules, counts, _ = rule_table(run)
    shown = min(len(rules), a.max_rules)
    pre = np.linspace(-a.pre_max, a.pre_max, a.points)
    post = np.linspace(-1.0, 1.0, a.points)
    grid = delta_grid(run.task, rules[:shown], pre, post)[:, 0]  # (K, pre, post)
    rule = run.task.rule
    labels = []
    for r in range(shown):
        c = dict(zip(rule.coefficient_names, rules[r]))
        tau = f", τ={1 + np.exp(c['tau']):.3g}" if "tau" in c else (f", τ={rule.trace_tau:g}" if rule.trace else "")
        labels.append(f"rule {r}: {int(counts[r]):,} synapses{tau}")
    np.savez_compressed(
        out.path("rules.npz"), delta=grid, pre=pre, post=post, coefficients=rules[:shown], synapses=counts[:shown],
        coefficient_names=np.asarray(rule.coefficient_names),
    )
    total = int(counts.sum())
    out.summary.update(
        rules=int(len(rules)), shown=int(shown), synapses=total, coefficient_names=list(rule.coefficient_names),
        synapses_per_rule=[int(c) for c in counts[:shown]], max_abs_delta=[float(np.abs(g).max()) for g in grid],
    )
    out.say(f"{len(rules):,} distinct rules over {total:,} synapses; showing {shown}")
    post_label = "post-synaptic activity o_j" + (" (read as the rate (o_j+1)/2)" if run.task.plasticity.bcm_rates else "")
    rules_plot(
        grid, pre, post, labels, out.path("rules.png"),
        run.title(f"Δw of each rule over pre- and post-synaptic activity ({shown} of {len(rules):,} rules; red > 0 > blue, "
                  "each panel on its own scale, black: Δw = 0)"), post_label,
    )
