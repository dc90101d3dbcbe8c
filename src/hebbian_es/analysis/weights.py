"""analysis=weights (Fig. 1): heatmaps of every plastic layer at chosen steps of one lifetime,
over its cumulative reward."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from hebbian_es.analysis import hooks
from hebbian_es.analysis.args import CommonArgs, key
from hebbian_es.analysis.loaded import LoadedRun
from hebbian_es.analysis.measures import snapshot_arrays
from hebbian_es.analysis.outputs import Outputs
from hebbian_es.analysis.plots import weights_plot
from hebbian_es.errors import ConfigError

SUMMARY = "weight heatmaps at chosen steps over the reward curve (Fig. 1)"
DEFAULT_STEPS = (0, 10, 30, 100)  # and the episode's end


@dataclass
class Args(CommonArgs):
    episode: int = key(0, "the test lifetime", low=0)
    steps: Optional[List[int]] = key(None, "the steps shown; null: 0, 10, 30, 100 and the episode's end")


def analyse(run: LoadedRun, a: Args, out: Outputs) -> None:
    env_seeds, init_seeds = run.lifetimes(1, a.episode)
    layers = run.perturbed_layers()
    for env in run.envs:
        h = run.horizon(env)
        steps = a.steps if a.steps is not None else sorted({s for s in DEFAULT_STEPS if s < h} | {h})
        bad = [s for s in steps if not 0 <= s <= h]
        if bad:
            raise ConfigError(f"steps={bad}: each step must be in 0..{h} (the episode's length in steps)")
        snaps = hooks.WeightSnapshots(steps)
        res, policy = run.rollout(env, run.params, env_seeds, init_seeds, [snaps])
        length = int(res.steps[0])
        final = [w[0].numpy().copy() for w in policy.weights]
        shown: dict[int, list[np.ndarray]] = {}
        for s in steps:  # a step at or after the end shows the weights after the last step
            ws = snaps.taken.get(s)
            shown[min(s, length) if ws is None else s] = [w[0] for w in ws] if ws is not None else final
        npz = {"steps": np.asarray(sorted(shown)), "rewards": res.rewards[0], "layers": np.asarray(layers)}
        np.savez_compressed(out.path(f"weights_{env.name}.npz"), **npz, **snapshot_arrays(shown, layers))
        ret = float(res.returns[0])
        out.summary[env.name] = {"steps": sorted(shown), "return": ret, "episode_steps": length}
        ended = "" if length >= max(steps) else f" (the episode ended after {length} steps)"
        out.say(f"{env.name}: weights at steps {sorted(shown)}{ended}; return {ret:.1f}")
        weights_plot(
            {s: [ws[l] for l in layers] for s, ws in sorted(shown.items())}, [f"fc{l}" for l in layers], res.rewards[0],
            out.path(f"weights_{env.name}.png"),
            run.title(f"{env.name}: weights during test lifetime {a.episode}" + ("" if run.plastic else " (static: constant)")),
            run.reward_label,
        )
