"""Beyond the paper's rule: neuromodulation, shared rules, sliding thresholds, weight regularisers.

`Plasticity` says how a network's plastic synapses use the rule (docs/plasticity.md):

- modulation: an evolved, static modulatory layer gates every update of a plastic layer,
  Δw_ij = m · Δw_ij(rule), with m_j(t) = tanh(v_j · x(t)) per post neuron ("neuron", v: (out, in)
  per layer) or one m(t) = tanh(v · x(t)) per layer ("layer", v: (in,)); x is the layer's
  pre-synaptic activity of that step (Soltoggio et al. 2008; Miconi et al. 2020, here evolved).
- sharing: K rules for the whole network instead of one per synapse (a genomic bottleneck,
  Palm et al. 2021): each plastic synapse reads the coefficients of rule assignment[l][j, i];
  "random" (a fixed, balanced random assignment from a seed), "post" (by post neuron), or
  "merged" (an assignment written by `python -m hebbian_es.merge`: Pedersen & Risi 2021).
- reward modulation ("reward", a three-factor rule): m_j(t) = tanh(g_j · r(t) + b_j) per post
  neuron, r(t) the reward the env returned for step t's action, g and b evolved ((2, out) per layer).
- BCM's threshold θ_j, a running mean of o_j² with a configured time constant τ (rule.bcm_tau);
  on rates (rule.bcm_rates): o_j → (o_j + 1)/2 for tanh units, so activity below θ_j depresses.
- eligibility traces (rules with `trace`: abcd_trace): e ← λ·e + Δw(rule), the weight changes by m·e.
- the plasticity clock (Dittrich et al.): the update runs after every P-th step (rule.update_every)
  with the activities averaged over the last M steps (rule.average_steps).
- regularisers of each plastic layer's weights after every update (network.normalize_weights).

Everything is batched over the population (the leading axis B).  With the defaults (no
modulation, no sharing) PolicyPopulation takes its original update path, bit for bit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from hebbian_es.core.rules import HebbianRule
from hebbian_es.errors import ConfigError

MODULATIONS = ("none", "neuron", "layer", "reward")
# rule.bcm_rates: a post-synaptic unit's activity as a non-negative rate, by its activation:
# tanh's (-1, 1) mapped onto (0, 1); sigmoid and relu are rates already; an identity unit's
# activity is rectified (CarRacing's raw outputs)
RATES = {"tanh": lambda y: (y + 1.0) * 0.5, "sigmoid": lambda y: y, "relu": lambda y: y, "identity": torch.relu}
SHARINGS = ("none", "random", "post", "merged")
# network.normalize_weights: false/none (the quadruped's), true/max_abs (W / max|W|, CarRacing's),
# clip (W clipped to [-1, 1]), tanh (W <- tanh(W)), row_var (each post neuron's incoming row
# rescaled to variance 1/in: unit-variance pre-activations for unit-variance inputs)
REGULARISERS = ("none", "max_abs", "clip", "tanh", "row_var")


def regulariser_name(value: Any) -> str:
    """network.normalize_weights as a regulariser name: booleans are the paper's off/on."""
    if value is True:
        return "max_abs"
    if value is False or value is None:
        return "none"
    if value in REGULARISERS:
        return str(value)
    raise ConfigError(f"network.normalize_weights={value!r}; allowed: [false, true, {', '.join(REGULARISERS)}]")


def regularise_(w: torch.Tensor, mode: str) -> None:
    """Regularise (B, out, in) weights in place, per individual and layer."""
    if mode == "max_abs":
        # max|W| per individual as max(max W, -min W): two fast reductions, no |W| temporary
        flat = w.reshape(w.shape[0], -1)
        scale = torch.maximum(flat.amax(dim=1), flat.amin(dim=1).neg_()).clamp_min_(1e-12)
        w.div_(scale.view(-1, 1, 1))
    elif mode == "clip":
        w.clamp_(-1.0, 1.0)
    elif mode == "tanh":
        torch.tanh_(w)
    elif mode == "row_var":
        sd = w.std(dim=2, unbiased=False, keepdim=True).clamp_min_(1e-12)
        w.div_(sd * w.shape[2] ** 0.5)


@dataclass(frozen=True)
class Plasticity:
    """How the plastic layers use the rule; the defaults are the paper's."""

    modulation: str = "none"
    sharing: str = "none"
    k: int = 0  # shared rules (sharing != none)
    assignment: tuple[torch.Tensor, ...] = ()  # per plastic layer (sorted): (out, in) int64 rule index
    bcm_tau: float = 100.0  # BCM: θ_j <- θ_j + (o_j² - θ_j) / τ each step
    bcm_rates: bool = False  # BCM on rates: o_j -> RATES[activation](o_j) before the rule reads it
    average_steps: int = 1  # M: the update reads the activities averaged over the last M steps
    update_every: int = 1  # P: the update runs after every P-th step (a slower plasticity clock)

    @property
    def is_default(self) -> bool:
        return self.modulation == "none" and self.sharing == "none" and not self.clocked and not self.bcm_rates

    @property
    def clocked(self) -> bool:
        """The Hebbian update does not simply read each step's activities (M > 1 or P > 1)."""
        return self.average_steps > 1 or self.update_every > 1

    def assignment_sha256(self) -> str:
        h = hashlib.sha256()
        for a in self.assignment:
            h.update(np.ascontiguousarray(a.numpy().astype(np.int64)).tobytes())
        return h.hexdigest()

    def fingerprint(self) -> dict[str, Any]:
        """What a checkpoint must match besides the layout: the rule assignment itself."""
        out: dict[str, Any] = {"modulation": self.modulation, "sharing": self.sharing}
        if self.sharing != "none":
            out.update(k=self.k, assignment_sha256=self.assignment_sha256())
        # only where set, so the checkpoints of earlier modulated or shared runs keep their fingerprint
        if self.bcm_rates:
            out["bcm_rates"] = True
        if self.average_steps > 1:
            out["average_steps"] = self.average_steps
        if self.update_every > 1:
            out["update_every"] = self.update_every
        return out

    def modulation_shape(self, fc_shape: tuple[int, int]) -> tuple[int, ...]:
        out, inp = fc_shape
        if self.modulation == "reward":
            return (2, out)  # gain g_j and bias b_j of every post neuron
        return (out, inp) if self.modulation == "neuron" else (inp,)


DEFAULT = Plasticity()


def flat_assignment(plasticity: Plasticity) -> np.ndarray:
    """Every plastic synapse's rule, layer by layer, each (out, in) row-major (merge's .npy order)."""
    return np.concatenate([a.numpy().reshape(-1) for a in plasticity.assignment]).astype(np.int64)


def build_assignment(
    mode: str, k: int | None, shapes: Sequence[tuple[int, int]], seed: int = 0, loaded: np.ndarray | None = None
) -> tuple[int, tuple[torch.Tensor, ...]]:
    """(K, per-layer (out, in) rule indices) of a sharing mode; `shapes`: the plastic layers' (out, in).

    random: a balanced random assignment (every rule serves ⌊N/K⌋ or ⌈N/K⌉ synapses) from `seed`;
    post: rule = post neuron j mod K (k None: one rule per post neuron of every layer, K = Σ out);
    merged: `loaded`, a flat array over all plastic synapses in layer order."""
    sizes = [o * i for o, i in shapes]
    n = sum(sizes)
    if mode == "post" and k is None:
        k = sum(o for o, _ in shapes)
        offsets = np.cumsum([0] + [o for o, _ in shapes])
        flat = np.concatenate([np.repeat(np.arange(o) + off, i) for (o, i), off in zip(shapes, offsets)])
    else:
        if mode == "merged":
            assert loaded is not None
            flat = np.asarray(loaded, dtype=np.int64).reshape(-1)
            if len(flat) != n:
                raise ConfigError(f"rule.assignment has {len(flat):,} entries; this network has {n:,} plastic synapses")
            if len(flat) and flat.min() < 0:
                raise ConfigError("rule.assignment has negative rule indices")
            if k is None:
                k = int(flat.max()) + 1 if len(flat) else 0
        if k is None:
            raise ConfigError(f"rule.shared_k is required with rule.sharing={mode}: an integer in 1..{n:,}")
        if not 1 <= k <= n:
            raise ConfigError(f"rule.shared_k={k}: must be in 1..{n:,} (the plastic synapses)")
        if mode == "random":
            perm = np.random.default_rng(int(seed)).permutation(n)
            flat = np.empty(n, dtype=np.int64)
            flat[perm] = np.arange(n) % k
        elif mode == "post":
            flat = np.concatenate([np.repeat(np.arange(o) % k, i) for o, i in shapes])
        elif flat.max() >= k:
            raise ConfigError(f"rule.assignment uses rule {int(flat.max())}; rule.shared_k={k} allows 0..{k - 1}")
    parts, start = [], 0
    for (o, i), size in zip(shapes, sizes):
        parts.append(torch.from_numpy(np.ascontiguousarray(flat[start : start + size].reshape(o, i))).to(torch.int64))
        start += size
    return int(k), tuple(parts)


class PlasticState:
    """The per-lifetime side of the extended update: per-synapse coefficients gathered from the
    shared rules, the modulatory weights, BCM thresholds, eligibility traces and the plasticity
    clock's activity history.  Owned by a PolicyPopulation."""

    def __init__(
        self, rule: HebbianRule, plasticity: Plasticity, blocks: dict[str, torch.Tensor], plastic: Sequence[int],
        activations: Sequence[str] = (),
    ) -> None:
        self.rule, self.p = rule, plasticity
        self.layers = sorted(plastic)
        self.modulators = {l: blocks[f"fc{l}.modulation"] for l in self.layers} if plasticity.modulation != "none" else {}
        # BCM on rates: each plastic layer's post-synaptic activation (activations[l]: layer l's units)
        self.rates = {l: RATES[activations[l]] for l in self.layers} if plasticity.bcm_rates and rule.needs_threshold else {}
        self.theta: dict[int, torch.Tensor] = {}
        self.deltas: dict[int, torch.Tensor] = {}
        self.traces: dict[int, torch.Tensor] = {}
        self.decay: dict[int, torch.Tensor | float] = {}
        self.history: dict[int, torch.Tensor] = {}  # activation index -> (M, B, n), the last M steps
        self.steps = 0

    def coefficients(self, blocks: dict[str, torch.Tensor], layer: int) -> torch.Tensor:
        """(B, C, out, in) coefficients of a plastic layer: its own block, or the shared rules
        gathered through the assignment (a copy, made once per lifetime like η's folding)."""
        if self.p.sharing == "none":
            return blocks[f"fc{layer}.coefficients"]
        return blocks["shared.coefficients"][:, :, self.p.assignment[self.layers.index(layer)]]

    def reset(self, batch: int, fc_shapes: Sequence[tuple[int, int]], coefficients: dict[int, torch.Tensor] | None = None) -> None:
        """A new lifetime.  coefficients: each plastic layer's (B, C, out, in), for an evolved trace decay."""
        # θ starts at 0: the first steps are Hebbian (Δw = η x y²) until θ has tracked y²
        self.theta = {l: torch.zeros(batch, fc_shapes[l][0]) for l in self.layers} if self.rule.needs_threshold else {}
        # the modulated update's Δw, one buffer per layer for the lifetime (not one tensor a step)
        buffered = self.p.modulation != "none" or self.rule.trace
        self.deltas = {l: torch.empty(batch, *fc_shapes[l]) for l in self.layers} if buffered else {}
        # eligibility traces start at 0 in every lifetime; λ per layer (a number, or per synapse)
        self.traces = {l: torch.zeros(batch, *fc_shapes[l]) for l in self.layers} if self.rule.trace else {}
        if self.rule.trace:
            assert coefficients is not None or not self.rule.evolved_tau
            self.decay = {l: self.rule.trace_decay(coefficients[l] if coefficients else torch.empty(0)) for l in self.layers}
        sizes = [fc_shapes[0][1]] + [o for o, _ in fc_shapes]  # activation index a: layer a's input (a = 0) or output
        used = sorted({a for l in self.layers for a in (l, l + 1)})
        m = self.p.average_steps
        self.history = {a: torch.zeros(m, batch, sizes[a]) for a in used} if m > 1 else {}
        self.steps = 0

    def update(
        self, weights: Sequence[torch.Tensor], acts: Sequence[torch.Tensor], folded: dict[int, dict[str, torch.Tensor]], mode: str,
        scratch: dict[int, torch.Tensor], reward: torch.Tensor | None = None,
    ) -> None:
        """The end of one step: record its activities; on a plasticity tick (every P-th step) update
        every plastic layer with the activities averaged over the last M steps."""
        self.steps += 1
        m = self.p.average_steps
        if m > 1:  # a ring of the last M steps; before M steps have passed, the mean of those so far
            slot = (self.steps - 1) % m
            for a, ring in self.history.items():
                ring[slot].copy_(acts[a])
        if self.steps % self.p.update_every:
            return
        if m > 1:
            filled = min(self.steps, m)
            acts = list(acts)
            for a, ring in self.history.items():
                acts[a] = ring[:filled].sum(dim=0) / filled
        for layer in self.layers:
            self.update_layer(layer, weights[layer], folded[layer], acts[layer], acts[layer + 1], mode, scratch.get(layer), reward)

    def update_layer(
        self, layer: int, w: torch.Tensor, folded: dict[str, torch.Tensor], pre: torch.Tensor, post: torch.Tensor, mode: str,
        scratch: torch.Tensor | None = None, reward: torch.Tensor | None = None,
    ) -> None:
        """One plasticity step of one layer: w += m ∘ Δw(rule) (or m ∘ e, through the trace), then the regulariser."""
        theta = None
        if layer in self.rates:
            post = self.rates[layer](post)
        if layer in self.theta:
            theta = self.theta[layer]
            theta.add_((post.square() - theta) / self.p.bcm_tau)  # the running mean first, then Δw reads it
        if self.p.modulation == "none" and not self.rule.trace:
            self.rule.apply_all_(w, w, folded, pre, post, theta, scratch)
        else:
            delta = self.deltas[layer].zero_()
            self.rule.apply_all_(delta, w, folded, pre, post, theta, scratch)
            if self.rule.trace:  # e <- λ e + Δw(rule); the weight changes by m·e
                delta = self.traces[layer].mul_(self.decay[layer]).add_(delta)
            if self.p.modulation == "none":
                w.add_(delta)
            else:
                w.addcmul_(delta, self.signal(layer, pre, reward).unsqueeze(2))
        regularise_(w, mode)

    def signal(self, layer: int, pre: torch.Tensor, reward: torch.Tensor | None = None) -> torch.Tensor:
        """The modulatory signal: (B, out) per post neuron, or (B, 1) per layer."""
        v = self.modulators[layer]
        if self.p.modulation == "reward":
            assert reward is not None, "rule.modulation=reward needs the step's reward"
            return torch.tanh(torch.addcmul(v[:, 1], v[:, 0], reward.unsqueeze(1)))  # tanh's tail is vectorised (numerics.py)
        if self.p.modulation == "neuron":
            return torch.tanh(torch.bmm(v, pre.unsqueeze(2)).squeeze(2))
        return torch.tanh((v * pre).sum(dim=1, keepdim=True))
