"""The rule group's schema (conf/rule/): the paper's rule and everything beyond it (docs/plasticity.md).
Part of hebbian_es.config.schema, the one home of the config's defaults (kept in its own module for
length); nothing here imports more than the standard library and OmegaConf."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from omegaconf import MISSING


@dataclass
class MergeConfig:
    """Merging during evolution (Pedersen & Risi 2021; docs/plasticity.md): every `every` generations
    the centre's rules are clustered by what they do and the run continues with the K shared rules."""

    every: int = 0  # generations between merges; 0: never (the default)
    start: Optional[int] = None  # the generation before which the first merge runs; null: `every`
    # the K of each merge, in order (non-increasing); empty: K = ceil(current rules / factor) per merge
    # until k_min is reached
    k: List[int] = field(default_factory=list)
    factor: float = 4.0  # with k empty: each merge divides the number of rules by this (> 1)
    k_min: int = 16  # with k empty: the number of rules merging stops at
    features: str = "update"  # update: cluster each rule's Δw on a grid of activities | coefficients (raw)
    n_init: int = 1  # k-means runs from different k-means++ starts; the lowest inertia wins
    max_iter: int = 100  # Lloyd iterations per k-means run


@dataclass
class RuleConfig:
    name: str = MISSING  # a rule of hebbian_es.core.rules.RULES
    use_eta: bool = True  # false drops the per-synapse learning rate
    # η = eta_scale * map(h) for the evolved h: identity (the paper's) | softplus | exp | sigmoid;
    # null: the rule's own (identity; oja and bcm: sigmoid, so 0 < η < eta_scale)
    eta_map: Optional[str] = None
    eta_scale: Optional[float] = None  # null: the rule's own (1)
    # rules with an eligibility trace (abcd_trace): τ in plasticity steps (>= 1); null: evolved per synapse
    trace_tau: Optional[float] = None
    # Beyond the paper (docs/plasticity.md).  modulation: none | neuron (m_j = tanh(v_j . x) gates
    # post neuron j's updates) | layer (one m = tanh(v . x) per layer); v evolved, static |
    # reward (a three-factor rule: m_j = tanh(g_j r + b_j), r the step's reward; g, b evolved)
    modulation: str = "none"
    # none (a rule per synapse) | random (K rules, fixed balanced random assignment from sharing_seed) |
    # post (rule = post neuron j mod K; shared_k null: one per post neuron of each layer) | merged
    # (the assignment file `python -m hebbian_es.merge` writes)
    sharing: str = "none"
    shared_k: Optional[int] = None  # K, the number of shared rules
    sharing_seed: int = 0  # sharing=random: the assignment's seed
    assignment: Optional[str] = None  # sharing=merged: .npy of rule indices; relative: to run_dir
    bcm_tau: float = 100.0  # rule=bcm: θ_j <- θ_j + (o_j² - θ_j) / bcm_tau every step (configured, not evolved)
    bcm_rates: bool = False  # rule=bcm: post-synaptic activity as a rate, (o_j + 1)/2 for tanh units
    # The plasticity clock (Dittrich et al.): the update runs after every update_every-th step, with the
    # activities averaged over the last average_steps steps (1, 1: every step, that step's activities)
    average_steps: int = 1
    update_every: int = 1
    merge: MergeConfig = field(default_factory=MergeConfig)
