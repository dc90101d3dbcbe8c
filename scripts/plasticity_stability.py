"""How large the plastic weights grow over one quadruped lifetime, by rule and η parametrisation.

    python scripts/plasticity_stability.py [lifetimes=8]

Runs the real quadruped (env=ant_fast: AntBulletEnv-v0's observations, clipped to ±5 by the env;
the 28-128-64-8 tanh network; 1,000 env steps with the env's termination and early stop off, of
which the first 40 are the settling steps: 960 acting steps) and prints, for each case, max|w| over
every plastic layer and lifetime at steps 100, 500 and the end, and how many lifetimes went
non-finite.  The numbers in docs/plasticity.md come from this script.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from hebbian_es import config
from hebbian_es.core.rollout import run_lifetimes
from hebbian_es.core.task import build_task
from hebbian_es.envs.runner import EnvPool
from hebbian_es.envs.spec import ActionMapper, ObservationBatcher

STEPS = 1_000
SHOWN = (100, 500)


class Peak:
    """max|w| of every lifetime at the steps shown and at the end."""

    def __init__(self) -> None:
        self.at: dict[int, torch.Tensor] = {}
        self.last: torch.Tensor | None = None

    def on_weights(self, t: int, policy) -> None:
        self.last = torch.stack([w.abs().amax(dim=(1, 2)) for w in policy.plastic_weights()]).amax(dim=0)
        if t in SHOWN:
            self.at[t] = self.last


def task_of(*overrides: str):
    cfg = config.compose(["env=ant_fast", "network=mlp", "run_dir=unused", "env.end_on_terminated=false",
                          "env.early_stop.patience=null", f"env.max_episode_steps={STEPS}", *overrides])  # fmt: skip
    return build_task(config.to_object(cfg))


def show(label: str, task, params: torch.Tensor) -> None:
    b = params.shape[0]
    spec, pool, hook = task.envs[0], EnvPool(), Peak()
    t0 = time.perf_counter()
    try:
        res = run_lifetimes(task.policy(params), pool.get(spec, b), list(range(100, 100 + b)), list(range(b)),
                            ObservationBatcher(spec.observation), ActionMapper(spec.action), STEPS, hooks=[hook])  # fmt: skip
    finally:
        pool.close()

    def fmt(p: torch.Tensor | None) -> str:
        if p is None:
            return "–"
        finite = p[torch.isfinite(p)]
        return f"{float(finite.max()):.3g}" if len(finite) == len(p) else f"non-finite ({len(p) - len(finite)})"

    ended = "" if res.steps.min() == res.steps.max() else f", lifetimes ended at steps {int(res.steps.min())}–{int(res.steps.max())}"
    print(f"| {label} | {fmt(hook.at.get(100))} | {fmt(hook.at.get(500))} | {fmt(hook.last)} | "
          f"{int(np.isnan(res.returns).sum())} of {b}{ended} |  ({time.perf_counter() - t0:.0f} s)", flush=True)  # fmt: skip


def main(argv: list[str]) -> None:
    b = int(dict(a.split("=", 1) for a in argv).get("lifetimes", 8))
    torch.set_num_threads(1)
    print("| rule, η | max\\|w\\| at step 100 | at 500 | at the end | non-finite lifetimes |")
    print("|---|---|---|---|---|")
    raw = task_of("rule=oja", "rule.eta_map=identity")  # η = h as evolved (the first pass's Oja)
    gen = torch.Generator().manual_seed(0)
    centre = torch.rand(raw.layout.size, generator=gen) * 0.1  # h ~ U[0, 0.1]
    eps = torch.randn(b, raw.layout.size, generator=gen)
    show("oja, η = h, h ~ U[0, 0.1] (η ≥ 0)", raw, centre.expand(b, -1).clone())
    noisy = centre + 0.1 * eps
    show(f"oja, η = h + σε, h ~ U[0, 0.1], σ = 0.1 ({float((noisy < 0).float().mean()):.0%} of η < 0)", raw, noisy)
    consts = torch.tensor([0.5, 1.0, 1.5, 1.9, 2.1, 2.5, 3.0, 4.0])[:b]
    for c in consts.tolist():
        show(f"oja, η = {c:g} at every synapse", raw, torch.full((1, raw.layout.size), c))
    h = torch.randn(raw.layout.size, generator=gen) + 0.1 * eps  # N(0, 1) (coefficient_init) + σε
    show("oja, η = softplus(h + σε), h ~ N(0, 1)", raw, torch.nn.functional.softplus(h))
    show("oja, η = exp(h + σε), h ~ N(0, 1)", raw, torch.exp(h))
    extreme = h.clone()
    extreme[-1] = 8.0  # one lifetime with every η at the top of sigmoid's range
    for rule in ("oja", "bcm", "bcm_rates"):
        task = task_of(f"rule={rule}")  # η = sigmoid(h), the default
        show(f"{rule}, η = sigmoid(h + σε), h ~ N(0, 1); one lifetime with h = 8 (η ≈ 1)", task, extreme)


if __name__ == "__main__":
    main(sys.argv[1:])
