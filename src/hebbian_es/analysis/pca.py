"""analysis=pca (Fig. 5): the plastic weights over one lifetime projected on their first three
principal components, with the evolved rule coefficients and with random ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hebbian_es.analysis.args import CommonArgs, key
from hebbian_es.analysis.loaded import LoadedRun
from hebbian_es.analysis.measures import first_nonfinite, flatten_weights, pca
from hebbian_es.analysis.outputs import Outputs
from hebbian_es.analysis.plots import pca_plot
from hebbian_es.core import distributions
from hebbian_es.core.rollout import RecordSpec
from hebbian_es.errors import ConfigError

SUMMARY = "3-D PCA trajectory of the plastic weights, evolved vs random rule (Fig. 5)"


@dataclass
class Args(CommonArgs):
    episode: int = key(0, "the test lifetime", low=0)
    every: int = key(1, "record the weights every k steps", low=1)
    random_seed: int = key(0, "seed of the random coefficients", low=0)


def random_coefficients(run: LoadedRun, seed: int) -> torch.Tensor:
    """The evolved parameters with every rule coefficient redrawn from the run's coefficient_init."""
    params = run.params.clone()
    gen = torch.Generator().manual_seed(int(seed))
    lay = run.task.layout
    for block, offset in zip(lay.blocks, lay.offsets):
        if block.kind == "coefficients":
            params[offset : offset + block.size] = distributions.sample(run.task.coefficient_init, block.shape, gen).reshape(-1)
    return params


def analyse(run: LoadedRun, a: Args, out: Outputs) -> None:
    if not run.plastic:
        raise ConfigError(f"analysis=pca needs plastic weights; run={str(run.dir)!r} has rule={run.rule}")
    env_seeds, init_seeds = run.lifetimes(1, a.episode)
    both = torch.stack([run.params, random_coefficients(run, a.random_seed)])
    panels: dict[str, dict[str, Any]] = {}
    npz: dict[str, np.ndarray] = {}
    for env in run.envs:
        res, _ = run.rollout(
            env, both, [env_seeds[0]] * 2, [init_seeds[0]] * 2, record=RecordSpec(rewards=True, weights=True, every=a.every)
        )
        assert res.weight_steps is not None
        for row, kind in enumerate(("evolved", "random")):
            traj = flatten_weights(res.weights, row)
            n = first_nonfinite(traj)
            steps = res.weight_steps[:n]
            p = pca(traj[:n], k=10)
            evr = p.explained_variance_ratio
            ret = float(np.nansum(res.rewards[row]))
            panels.setdefault(env.name, {})[kind] = {"projection": p.projection[:, :3], "steps": steps, "evr": evr, "return": ret}
            prefix = f"{env.name}/{kind}"
            npz[f"{prefix}/projection"] = p.projection.astype(np.float32)
            npz[f"{prefix}/steps"] = steps
            npz[f"{prefix}/explained_variance_ratio"] = evr
            npz[f"{prefix}/components"] = p.components[:3].astype(np.float32)
            npz[f"{prefix}/mean"] = p.mean.astype(np.float32)
            npz[f"{prefix}/rewards"] = res.rewards[row]
            out.summary.setdefault(env.name, {})[kind] = {
                "explained_variance_ratio": [float(x) for x in evr], "first3": float(evr[:3].sum()),
                "return": ret, "points": int(n), "weights": int(traj.shape[1]),
            }
            cut = "" if n == len(traj) else f" (weights non-finite from step {int(res.weight_steps[n])}: trajectory cut there)"
            out.say(
                f"{env.name}, {kind} coefficients: explained variance PC1-3 = "
                f"{', '.join(f'{x:.1%}' for x in evr[:3])} (sum {evr[:3].sum():.1%}); return {ret:.1f}{cut}"
            )
    np.savez_compressed(out.path("pca.npz"), **npz)
    pca_plot(panels, out.path("pca.png"), run.title(f"PCA of the plastic weights over one lifetime (test lifetime {a.episode})"))
