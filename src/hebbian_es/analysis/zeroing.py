"""analysis=weight_zeroing (Fig. 4): a fraction of each layer's weights set to 0 before the
forward pass of step t; reward with and without it, the recovery, heatmaps around step t."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from hebbian_es.analysis import hooks
from hebbian_es.analysis.args import key
from hebbian_es.analysis.curves import CSV_HEADER, Perturbation, RecoveryArgs, perturb, recovery_line, recovery_summary
from hebbian_es.analysis.loaded import LoadedRun
from hebbian_es.analysis.measures import snapshot_arrays
from hebbian_es.analysis.outputs import Outputs, reward_rows, write_csv
from hebbian_es.analysis.plots import zeroing_plot
from hebbian_es.errors import ConfigError

SUMMARY = "a fraction of the weights zeroed at step t: reward, heatmaps, recovery (Fig. 4)"


@dataclass
class Args(RecoveryArgs):
    t: int = key(300, "the step whose forward pass first sees the zeroed weights")
    fraction: float = key(1 / 3, "fraction of each layer's weights zeroed", low=0.0, high=1.0)
    mode: str = key("band", "band: one contiguous run of weights; random: a random subset", choices=hooks.ZERO_MODES)
    position: float = key(0.5, "band: where it lies, 0 (first weights) .. 1 (last)", low=0.0, high=1.0)
    mask_seed: int = key(0, "random: layer l's subset is drawn from seed mask_seed + l", low=0)
    after: int = key(10, "heatmaps at t - 1, t and t + after", low=1)


def check_window(a: Any, horizon: int) -> None:
    if not 0 <= a.t < horizon:
        raise ConfigError(f"t={a.t}: the zeroing step must lie inside the episode, 0 <= t < {horizon} (its length in steps)")
    if a.t + a.after >= horizon:
        raise ConfigError(f"after={a.after}: t + after = {a.t + a.after} must be < {horizon} (the episode's length in steps)")


def make_hooks(run: LoadedRun, a: Any) -> tuple[list[Any], tuple[int, int], dict[str, Any]]:
    layers = run.perturbed_layers()
    shapes = run.task.network.fc_shapes
    masks = {l: hooks.zero_mask(shapes[l][0] * shapes[l][1], a.fraction, a.mode, a.position, a.mask_seed + l) for l in layers}
    snaps = hooks.WeightSnapshots([s for s in (a.t - 1, a.t, a.t + a.after) if s >= 0])
    return [hooks.ZeroWeights(a.t, masks), snaps], (a.t, a.t), {"masks": masks, "layers": layers, "snapshots": snaps}


def describe(a: Any) -> str:
    how = "one contiguous band" if a.mode == "band" else "at random"
    return f"{a.fraction:.1%} of each layer's weights zeroed ({how}) at step {a.t}"


ZEROING = Perturbation("weight_zeroing", check_window, make_hooks, describe, start_key="t")


def analyse(run: LoadedRun, a: Args, out: Outputs) -> None:
    ZEROING.check_runs([run], a)
    shapes = run.task.network.fc_shapes
    rows: list[list[Any]] = []
    for env in run.envs:
        c = perturb(run, env, a, ZEROING)
        rows += reward_rows([c.body], c.perturbed, c.unperturbed)
        snaps: hooks.WeightSnapshots = c.extra["snapshots"]
        layers, masks = c.extra["layers"], c.extra["masks"]
        zeroed = sum(len(m) for m in masks.values())
        total = sum(shapes[l][0] * shapes[l][1] for l in layers)
        out.summary[c.body] = {**recovery_summary(c), "zeroed_weights": zeroed, "of_weights": total, "layers": layers}
        out.say(f"{c.body}: zeroed {zeroed:,} of {total:,} weights ({zeroed / total:.1%}) in layers {layers} at step {a.t}")
        out.say(recovery_line(c))
        heat = {s: [w[0] for w in ws] for s, ws in sorted(snaps.taken.items())}  # lifetime 0
        npz = {"layers": np.asarray(layers), "steps": np.asarray(sorted(heat)), **snapshot_arrays(heat, layers)}
        npz.update({f"mask_fc{l}": masks[l] for l in layers})
        npz["rewards"], npz["rewards_unperturbed"] = c.perturbed, c.unperturbed
        np.savez_compressed(out.path(f"weight_zeroing_{c.body}.npz"), **npz)
        zeroing_plot(
            c, {s: [ws[l] for l in layers] for s, ws in heat.items()}, [f"fc{l}" for l in layers], a,
            out.path(f"weight_zeroing_{c.body}.png"), run.title(f"{c.body}: {describe(a)}"), run.reward_label,
        )
    write_csv(out.path("weight_zeroing.csv"), ["body", *CSV_HEADER], rows)
