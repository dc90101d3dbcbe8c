"""The one rollout loop: training, evaluation and analysis all run lifetimes here.

A lifetime: fresh random initial weights, then at every step a forward pass,
the action sent to the env, and a Hebbian update of every plastic synapse with
that step's activations.  No reward reaches the network, except where the rule asks
for it (a three-factor rule, rule.modulation=reward: the update reads the reward of
the step just taken; 0 for lifetimes that have ended).  B lifetimes run
together: the network work is batched over the population; the envs step one by one
(a gymnasium env per lifetime), or all together as arrays where the env config declares
a batched env (`env.vector`: envs/vector, envs/runner.VectorRunner).  Either way the loop
sees the same two calls (envs/runner.batch_of): reset(seeds) and step(actions, rows).

Hooks let analyses perturb a lifetime without a second loop (hebbian_es.analysis.hooks
has the ones `python -m hebbian_es.analyze` uses).  A hook may implement any of,
called in this order at every step t = 0, 1, ... and in the order the hooks are given:

- `on_weights(t, policy)`: before the forward pass; may change `policy.weights`
  (the weights recorded for step t are the ones after these hooks).
- `on_outputs(t, outputs) -> outputs`: after the forward pass; the returned (B, n)
  tensor replaces the output layer's activity: the action is computed from it and
  the Hebbian update of the last layer sees it as its post-synaptic activity.
- `on_actions(t, actions) -> actions`: the env actions, after squashing; the
  network does not see the change.
- `plasticity_enabled(t)`: after the env step; whether the Hebbian update of step
  t runs: a bool for every lifetime, or a (B,) bool array, one per lifetime (rows
  with False keep their weights).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from hebbian_es.envs.runner import EnvRunner, VectorRunner, batch_of
from hebbian_es.envs.spec import ActionMapper, ObservationBatcher
from hebbian_es.core.network import PolicyPopulation


@dataclass(frozen=True)
class RecordSpec:
    """What to keep besides the returns (all optional: traces cost memory)."""

    rewards: bool = False
    actions: bool = False  # the env actions, after squashing and the action hooks
    weights: bool = False  # plastic weights before each step and after the last
    activations: bool = False
    every: int = 1  # keep traces every k steps


@dataclass
class LifetimeResult:
    returns: np.ndarray  # (B,) float64; NaN where the network blew up
    steps: np.ndarray  # (B,) env steps taken
    rewards: np.ndarray | None = None  # (B, T) per-step rewards, NaN after the end
    actions: np.ndarray | None = None  # (B, T, ...) per-step env actions, NaN after the end
    weights: list[np.ndarray] = field(default_factory=list)  # per plastic layer (T', B, out, in)
    activations: list[np.ndarray] = field(default_factory=list)  # per layer (T', B, n)
    weight_steps: np.ndarray | None = None  # step index of each weights entry (last = after the end)
    activation_steps: np.ndarray | None = None  # step index of each activations entry


def run_lifetimes(
    policy: PolicyPopulation,
    runners: Sequence[EnvRunner] | VectorRunner,
    env_seeds: Sequence[int],
    init_seeds: Sequence[int],
    observe: ObservationBatcher,
    act: ActionMapper,
    max_steps: int,
    hooks: Sequence[Any] = (),
    record: RecordSpec = RecordSpec(),
) -> LifetimeResult:
    """Run one lifetime per row of `policy` (row b in `runners[b]`, or row b of one VectorRunner)
    until every episode ends."""
    b = policy.batch
    envs = batch_of(runners)
    assert (isinstance(runners, VectorRunner) or len(runners) == b) and b == len(env_seeds) == len(init_seeds)
    policy.reset(init_seeds)
    envs.reset(env_seeds)
    returns = np.zeros(b)
    steps = np.zeros(b, dtype=np.int64)
    alive = np.ones(b, dtype=bool)
    rewards: list[np.ndarray] = []
    action_trace: list[np.ndarray] = []
    w_trace: list[list[np.ndarray]] = []
    a_trace: list[list[np.ndarray]] = []
    w_steps: list[int] = []
    a_steps: list[int] = []
    gate = [h.plasticity_enabled for h in hooks if hasattr(h, "plasticity_enabled")]
    weight_hooks = [h.on_weights for h in hooks if hasattr(h, "on_weights")]
    output_hooks = [h.on_outputs for h in hooks if hasattr(h, "on_outputs")]
    action_hooks = [h.on_actions for h in hooks if hasattr(h, "on_actions")]

    t = 0
    with torch.no_grad():
        while alive.any() and t < max_steps:
            for hook in weight_hooks:
                hook(t, policy)
            keep = (record.weights or record.activations) and t % record.every == 0
            if keep and record.weights:
                w_trace.append([w.numpy().copy() for w in policy.plastic_weights()])
                w_steps.append(t)
            out = policy.forward(observe(envs.obs))
            blown = ~torch.isfinite(out).all(dim=1).numpy()
            if blown.any():
                hit = blown & alive
                returns[hit] = np.nan
                alive &= ~blown
                out = torch.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)
            if output_hooks:
                for hook in output_hooks:
                    out = hook(t, out)
                policy.activations[-1] = out
            if keep and record.activations:
                a_trace.append([a.numpy().copy() for a in policy.activations])
                a_steps.append(t)
            actions = act(out)
            for hook in action_hooks:
                actions = hook(t, actions)
            if record.actions:
                kept_actions = np.array(actions, dtype=np.float64)
                kept_actions[~alive] = np.nan
                action_trace.append(kept_actions)
            rows = np.flatnonzero(alive)
            r, done = envs.step(actions, rows)
            returns[rows] += r
            steps[rows] += 1
            alive[rows[done]] = False
            third_factor = None
            if policy.needs_reward:  # the reward the update reads: the step's, 0 where a lifetime has ended
                third_factor = np.zeros(b)
                third_factor[rows] = r
            if record.rewards:
                step_rewards = np.full(b, np.nan)
                step_rewards[rows] = r
                rewards.append(step_rewards)
            if policy.plastic:
                reward = None if third_factor is None else torch.as_tensor(third_factor, dtype=torch.float32)
                _hebbian_step(policy, [g(t) for g in gate], reward)
            t += 1
    if record.weights:
        w_trace.append([w.numpy().copy() for w in policy.plastic_weights()])
        w_steps.append(t)
    result = LifetimeResult(returns=returns, steps=steps)
    if record.rewards:
        result.rewards = np.stack(rewards, axis=1) if rewards else np.zeros((b, 0))
    if record.actions:
        result.actions = np.stack(action_trace, axis=1) if action_trace else np.zeros((b, 0))
    if w_trace:
        result.weights = [np.stack([snap[k] for snap in w_trace]) for k in range(len(w_trace[0]))]
        result.weight_steps = np.asarray(w_steps)
    if a_trace:
        result.activations = [np.stack([snap[k] for snap in a_trace]) for k in range(len(a_trace[0]))]
        result.activation_steps = np.asarray(a_steps)
    return result


def _hebbian_step(policy: PolicyPopulation, gates: list[Any], reward: torch.Tensor | None = None) -> None:
    """The Hebbian update, for the lifetimes every gate lets through (a bool or a (B,) mask each);
    reward: the step's reward, for a rule that reads it."""
    if not gates:
        policy.update(reward)
        return
    enabled = np.ones(policy.batch, dtype=bool)
    for g in gates:
        enabled &= np.broadcast_to(np.asarray(g, dtype=bool), enabled.shape)
    if enabled.all():
        policy.update(reward)
    elif enabled.any():
        frozen = torch.from_numpy(~enabled)
        kept = [w[frozen].clone() for w in policy.plastic_weights()]
        policy.update(reward)
        for w, k in zip(policy.plastic_weights(), kept):
            w[frozen] = k


def drawdown_after(rewards: np.ndarray, threshold: float) -> np.ndarray:
    """Per lifetime (row of per-step rewards, NaN after its end): once the running total
    D(t) = r_0 + ... + r_t first reaches `threshold`, the most it ever falls below its
    running maximum after that, max_t (max_{s<=t} D(s) - D(t)); NaN where D never reaches
    the threshold.  0 means it only went forward from there.  The trace ends at the first
    non-finite reward (the end of the lifetime, or where it blew up: its return is NaN)."""
    out = np.full(len(rewards), np.nan)
    for b, row in enumerate(np.asarray(rewards, dtype=np.float64)):
        finite = np.isfinite(row)
        n = len(row) if finite.all() else int(np.argmax(~finite))
        total = np.cumsum(row[:n])
        reached = np.flatnonzero(total >= threshold)
        if len(reached):
            tail = total[reached[0] :]
            out[b] = float((np.maximum.accumulate(tail) - tail).max())
    return out
