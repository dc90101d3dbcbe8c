"""Hebbian plasticity rules: one registry, each rule described as data.

A rule is a sum of terms over the pre-synaptic activity o_i and post-synaptic
activity o_j of every synapse w_ij, each term scaled by that synapse's own
coefficient.  Terms inside the learning rate are multiplied by the synapse's η;
terms outside it are not (the reference code's `abcd_d_out` variants)::

    Δw_ij = η_ij · Σ_inner c_ij · term(o_i, o_j) + Σ_outer c_ij · term(o_i, o_j)

Terms: hebb = o_i·o_j, pre = o_i, post = o_j, const = 1, and two that read more than
the step's activities: oja = −o_j²·w_ij (Oja's forgetting term, from the weight before
this step's change) and bcm = o_i·o_j·(o_j − θ_j) (θ_j: the post neuron's sliding
threshold, a running mean of o_j², kept by the network: core/plasticity.py).  A term
whose coefficient name is None has the fixed factor 1 (only η scales it): Oja's and
BCM's rules evolve η alone.

η's parametrisation (`eta_map`): the evolved value h is used as η itself ("identity", the
paper's), or through a positive map, η = eta_scale · map(h) with map softplus, exp or
sigmoid (bounded: η in (0, eta_scale)).  Oja's and BCM's rules default to sigmoid: a negative
η turns Oja's decay into growth, and η·o_j² > 2 makes its discrete-time update oscillate with
growing amplitude (docs/plasticity.md has the measurement).

Eligibility traces (`trace=True`, e.g. abcd_trace): the rule's terms accumulate into a
per-synapse trace e ← λ·e + Δw(rule), λ = 1 − 1/τ, and the weight changes by m·e (m: the
modulatory signal, 1 without modulation).  τ is set (`trace_tau`) or evolved per synapse
(a coefficient "tau" after η: λ = sigmoid(h), i.e. τ = 1 + exp(h)).

Weights are stored (out, in), so synapse (pre i, post j) lives at W[j, i].
Every tensor here carries a leading population axis B: the update runs for the
whole population being evaluated together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

import torch
import torch.nn.functional as F

from hebbian_es.errors import ConfigError
# sigmoid, softplus, exp of a batch-sized tensor through numerics.pointwise: torch's scalar tail
# would tie a lifetime's η (or trace decay) to the size of its batch
from hebbian_es.numerics import pointwise

# rule.eta_map: η = eta_scale · map(h) for the evolved value h
ETA_MAPS: dict[str, Callable[[torch.Tensor], torch.Tensor] | None] = {
    "identity": None,  # η = h (the paper's): a negative η flips the rule's sign
    "softplus": F.softplus,  # η = log(1 + e^h) > 0
    "exp": torch.exp,  # η = e^h > 0
    "sigmoid": torch.sigmoid,  # η in (0, eta_scale): bounded above as well
}


@dataclass(frozen=True)
class HebbianRule:
    """A plasticity rule.  `plastic=False` is the static-weight baseline."""

    name: str
    inner: tuple[tuple[str | None, str], ...] = ()  # (coefficient name, term) scaled by η; None: factor 1
    outer: tuple[tuple[str | None, str], ...] = ()  # (coefficient name, term) not scaled by η
    use_eta: bool = True
    eta_map: str = "identity"  # η = eta_scale · map(h): identity (the paper's), softplus, exp, sigmoid
    eta_scale: float = 1.0
    trace: bool = False  # an eligibility trace e ← (1 − 1/τ)·e + Δw(rule); the weight changes by m·e
    trace_tau: float | None = None  # τ in plasticity steps; None (with trace): evolved per synapse ("tau")

    @property
    def plastic(self) -> bool:
        return bool(self.inner or self.outer)

    @property
    def coefficient_names(self) -> tuple[str, ...]:
        names = tuple(n for n, _ in self.inner + self.outer if n is not None)
        names += ("eta",) if self.use_eta and self.plastic else ()
        return names + (("tau",) if self.evolved_tau else ())

    @property
    def evolved_tau(self) -> bool:
        """The trace's time constant is evolved per synapse (a coefficient "tau")."""
        return self.trace and self.trace_tau is None and self.plastic

    @property
    def maps_eta(self) -> bool:
        return self.eta_map != "identity" or self.eta_scale != 1.0

    def options(self) -> dict[str, object]:
        """What differs from the paper's form of the rule (η as evolved, no trace): part of a
        checkpoint's fingerprint, so a checkpoint is never read with another η map or trace."""
        out: dict[str, object] = {}
        if self.maps_eta and self.use_eta:
            out["eta_map"] = self.eta_map
            out["eta_scale"] = self.eta_scale
        if self.trace:
            out["trace_tau"] = "evolved" if self.trace_tau is None else self.trace_tau
        return out

    def eta(self, coeffs: torch.Tensor) -> torch.Tensor:
        """The learning rate η of every synapse, (B, out, in), from coeffs (B, K, out, in)."""
        h = coeffs[:, self.coefficient_names.index("eta")]
        fn = ETA_MAPS[self.eta_map]
        if fn is not None:
            h = pointwise(fn, h)
        return h * self.eta_scale if self.eta_scale != 1.0 else h

    def trace_decay(self, coeffs: torch.Tensor) -> torch.Tensor | float:
        """λ = 1 − 1/τ: a number for a set τ, (B, out, in) for an evolved one (λ = sigmoid(h))."""
        assert self.trace
        if self.trace_tau is not None:
            return 1.0 - 1.0 / self.trace_tau
        return pointwise(torch.sigmoid, coeffs[:, self.coefficient_names.index("tau")])

    @property
    def terms(self) -> frozenset[str]:
        return frozenset(t for _, t in self.inner + self.outer)

    @property
    def needs_threshold(self) -> bool:
        """The rule reads a per-post-neuron sliding threshold θ_j (BCM)."""
        return "bcm" in self.terms

    @property
    def coefficients_per_synapse(self) -> int:
        return len(self.coefficient_names)

    def fold(self, coeffs: torch.Tensor) -> dict[str, torch.Tensor]:
        """The rule's per-synapse factor of each term, with η multiplied in: {term: (B, out, in)}.

        η is constant within a lifetime, so a population folds it in once per lifetime
        (`PolicyPopulation.reset`) and every step then reads at most four tensors
        (one per term: hebb, pre, post, const); terms that appear both inside and
        outside η (abcd_d_in_out's D_in and D_out) are summed into one factor.
        coeffs: (B, K, out, in) in the order of `coefficient_names`; never written.
        Folding reorders float operations (η·A·o_i·o_j as (η·A)·o_j·o_i), so results
        agree with the unfolded formula to rounding, not bit for bit.
        """
        eta = None
        if self.use_eta and self.inner:  # the evolved η, or its positive map
            eta = self.eta(coeffs) if self.maps_eta else coeffs[:, self.coefficient_names.index("eta")]
        folded: dict[str, torch.Tensor] = {}
        k = 0  # index of the next named coefficient
        for t, (name, term) in enumerate(self.inner + self.outer):
            if name is None:  # a fixed factor 1: η alone (or 1 outside η)
                c = eta if eta is not None and t < len(self.inner) else coeffs.new_ones(coeffs.shape[0], *coeffs.shape[2:])
            else:
                c = coeffs[:, k]
                k += 1
                if eta is not None and t < len(self.inner):
                    c = c * eta
            folded[term] = folded[term] + c if term in folded else c.contiguous()
        return folded  # read-only from here on; a factor may share memory with `coeffs`

    @staticmethod
    def apply_(
        w: torch.Tensor, folded: dict[str, torch.Tensor], pre: torch.Tensor, post: torch.Tensor,
        scratch: torch.Tensor | None = None,
    ) -> None:
        """w += Δw in place, with `folded` from `fold`; pre: (B, in), post: (B, out).

        Δw = hebb∘(post⊗pre) + pre_f∘(1⊗pre) + post_f∘(post⊗1) + const, evaluated as
        w += (hebb·post + pre_f)·pre, w += post_f·post, w += const: four passes over
        (B, out, in) memory and one temporary, which is what the per-step cost is made of.
        scratch: a tensor shaped like w for that temporary (a lifetime reuses one instead of
        allocating a (B, out, in) tensor every step: core/memory.py says why that matters).
        """
        pre_b = pre.unsqueeze(1)  # (B, 1, in)
        post_b = post.unsqueeze(2)  # (B, out, 1)
        hebb, pre_f = folded.get("hebb"), folded.get("pre")
        if hebb is not None:
            # out=None allocates: the same arithmetic with or without a scratch tensor
            t = torch.mul(hebb, post_b, out=scratch) if pre_f is None else torch.addcmul(pre_f, hebb, post_b, out=scratch)
            w.addcmul_(t, pre_b)
        elif pre_f is not None:
            w.addcmul_(pre_f, pre_b)
        if "post" in folded:
            w.addcmul_(folded["post"], post_b)
        if "const" in folded:
            w.add_(folded["const"])

    @staticmethod
    def apply_all_(
        out: torch.Tensor, w: torch.Tensor, folded: dict[str, torch.Tensor], pre: torch.Tensor, post: torch.Tensor,
        theta: torch.Tensor | None = None, scratch: torch.Tensor | None = None,
    ) -> None:
        """out += Δw for every term, the weight-dependent ones included; `w` is the weight the
        oja term reads (out may be w itself: the oja term is added first, elementwise, so it
        reads each weight before this step changes it).  theta: (B, out), for the bcm term;
        scratch: as in apply_."""
        post_b = post.unsqueeze(2)
        if "oja" in folded:
            out.addcmul_(folded["oja"] * post_b.square(), w, value=-1.0)
        if "bcm" in folded:
            assert theta is not None, "the bcm term needs the sliding threshold theta"
            out.addcmul_(folded["bcm"] * (post * (post - theta)).unsqueeze(2), pre.unsqueeze(1))
        HebbianRule.apply_(out, folded, pre, post, scratch)

    def delta(
        self, coeffs: torch.Tensor, pre: torch.Tensor, post: torch.Tensor,
        w: torch.Tensor | None = None, theta: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Weight change for a population (the same arithmetic as a population's update).

        coeffs: (B, K, out, in) in the order of `coefficient_names`;
        pre: (B, in); post: (B, out); w: (B, out, in), the weights (for the oja term);
        theta: (B, out), the sliding threshold (for the bcm term).  Returns (B, out, in).
        """
        out = coeffs.new_zeros(coeffs.shape[0], *coeffs.shape[2:])
        if "oja" in self.terms and w is None:
            raise ValueError(f"rule {self.name!r} reads the weights: pass w")
        self.apply_all_(out, out if w is None else w, self.fold(coeffs), pre, post, theta)
        return out


# The registry.  Names follow the paper (A, AD, ABC, ABCD = Eq. 1) and the
# reference code (abcd_d_out, abcd_d_in_out).
RULES: dict[str, HebbianRule] = {
    "a": HebbianRule("a", inner=(("A", "hebb"),)),
    "ad": HebbianRule("ad", inner=(("A", "hebb"), ("D", "const"))),
    "abc": HebbianRule("abc", inner=(("A", "hebb"), ("B", "pre"), ("C", "post"))),
    "abcd": HebbianRule("abcd", inner=(("A", "hebb"), ("B", "pre"), ("C", "post"), ("D", "const"))),
    "abcd_d_out": HebbianRule(
        "abcd_d_out", inner=(("A", "hebb"), ("B", "pre"), ("C", "post")), outer=(("D", "const"),)
    ),
    "abcd_d_in_out": HebbianRule(
        "abcd_d_in_out",
        inner=(("A", "hebb"), ("B", "pre"), ("C", "post"), ("D_in", "const")),
        outer=(("D_out", "const"),),
    ),
    # Beyond the paper (docs/plasticity.md): Oja's rule Δw = η(o_i·o_j − o_j²·w_ij) and BCM
    # Δw = η·o_i·o_j·(o_j − θ_j); each evolves η alone, per synapse, as η = sigmoid(h) in (0, 1)
    # (negative η turns Oja into anti-Oja growth; η·o_j² > 2 makes its update oscillate and grow).
    "oja": HebbianRule("oja", inner=((None, "hebb"), (None, "oja")), eta_map="sigmoid"),
    "bcm": HebbianRule("bcm", inner=((None, "bcm"),), eta_map="sigmoid"),
    # ABCD through an eligibility trace: e <- (1 - 1/τ)·e + η(A o_i o_j + B o_i + C o_j + D),
    # Δw = m·e; τ evolved per synapse (τ = 1 + exp(h)) unless rule.trace_tau sets it
    "abcd_trace": HebbianRule(
        "abcd_trace", inner=(("A", "hebb"), ("B", "pre"), ("C", "post"), ("D", "const")), trace=True
    ),
    "static": HebbianRule("static"),
}


def get_rule(
    name: str, use_eta: bool = True, eta_map: str | None = None, eta_scale: float | None = None, trace_tau: float | None = None,
) -> HebbianRule:
    """Look a rule up by name; `use_eta=False` drops the per-synapse learning rate; eta_map /
    eta_scale (None: the rule's own) reparametrise η; trace_tau sets a trace rule's τ (None: evolved)."""
    try:
        rule = RULES[name]
    except KeyError:
        raise ConfigError(f"rule.name={name!r} is not a known rule; allowed: {sorted(RULES)}") from None
    if eta_map is not None and eta_map not in ETA_MAPS:
        raise ConfigError(f"rule.eta_map={eta_map!r}; allowed: {list(ETA_MAPS)}")
    if eta_scale is not None and not (math.isfinite(eta_scale) and eta_scale > 0):
        raise ConfigError(f"rule.eta_scale={eta_scale}: must be a positive number")
    if trace_tau is not None:
        if not rule.trace:
            traced = sorted(n for n, r in RULES.items() if r.trace)
            raise ConfigError(f"rule.trace_tau={trace_tau} needs a rule with an eligibility trace; allowed: rule.name in {traced}")
        if not (math.isfinite(trace_tau) and trace_tau >= 1):
            raise ConfigError(f"rule.trace_tau={trace_tau}: must be >= 1 (plasticity steps), or null (evolved per synapse)")
    if rule.plastic:
        rule = replace(
            rule, eta_map=rule.eta_map if eta_map is None else eta_map, eta_scale=rule.eta_scale if eta_scale is None else float(eta_scale),
            trace_tau=trace_tau,
        )
    if not use_eta and rule.plastic:
        rule = replace(rule, use_eta=False)
        if not rule.coefficient_names:
            with_own = sorted(n for n, r in RULES.items() if any(c is not None for c, _ in r.inner + r.outer))
            raise ConfigError(
                f"rule.use_eta=false leaves rule.name={name!r} nothing to evolve (η is its only coefficient); "
                f"use rule.use_eta=true, or a rule with coefficients of its own: {with_own}"
            )
    return rule
