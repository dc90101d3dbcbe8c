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

Weights are stored (out, in), so synapse (pre i, post j) lives at W[j, i].
Every tensor here carries a leading population axis B: the update runs for the
whole population being evaluated together.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hebbian_es.errors import ConfigError

@dataclass(frozen=True)
class HebbianRule:
    """A plasticity rule.  `plastic=False` is the static-weight baseline."""

    name: str
    inner: tuple[tuple[str | None, str], ...] = ()  # (coefficient name, term) scaled by η; None: factor 1
    outer: tuple[tuple[str | None, str], ...] = ()  # (coefficient name, term) not scaled by η
    use_eta: bool = True

    @property
    def plastic(self) -> bool:
        return bool(self.inner or self.outer)

    @property
    def coefficient_names(self) -> tuple[str, ...]:
        names = tuple(n for n, _ in self.inner + self.outer if n is not None)
        return names + (("eta",) if self.use_eta and self.plastic else ())

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
        named = sum(1 for n, _ in self.inner + self.outer if n is not None)
        eta = coeffs[:, named] if self.use_eta and self.inner else None
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
    # Δw = η·o_i·o_j·(o_j − θ_j); each evolves η alone, per synapse.
    "oja": HebbianRule("oja", inner=((None, "hebb"), (None, "oja"))),
    "bcm": HebbianRule("bcm", inner=((None, "bcm"),)),
    "static": HebbianRule("static"),
}


def get_rule(name: str, use_eta: bool = True) -> HebbianRule:
    """Look a rule up by name; `use_eta=False` drops the per-synapse learning rate."""
    try:
        rule = RULES[name]
    except KeyError:
        raise ConfigError(f"rule.name={name!r} is not a known rule; allowed: {sorted(RULES)}") from None
    if not use_eta and rule.plastic:
        rule = HebbianRule(rule.name, rule.inner, rule.outer, use_eta=False)
        if not rule.coefficient_names:
            with_own = sorted(n for n, r in RULES.items() if any(c is not None for c, _ in r.inner + r.outer))
            raise ConfigError(
                f"rule.use_eta=false leaves rule.name={name!r} nothing to evolve (η is its only coefficient); "
                f"use rule.use_eta=true, or a rule with coefficients of its own: {with_own}"
            )
    return rule
