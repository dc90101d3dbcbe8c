"""Hebbian plasticity rules: one registry, each rule described as data.

A rule is a sum of terms over the pre-synaptic activity o_i and post-synaptic
activity o_j of every synapse w_ij, each term scaled by that synapse's own
coefficient.  Terms inside the learning rate are multiplied by the synapse's η;
terms outside it are not (the reference code's `abcd_d_out` variants)::

    Δw_ij = η_ij · Σ_inner c_ij · term(o_i, o_j) + Σ_outer c_ij · term(o_i, o_j)

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
    inner: tuple[tuple[str, str], ...] = ()  # (coefficient name, term) scaled by η
    outer: tuple[tuple[str, str], ...] = ()  # (coefficient name, term) not scaled by η
    use_eta: bool = True

    @property
    def plastic(self) -> bool:
        return bool(self.inner or self.outer)

    @property
    def coefficient_names(self) -> tuple[str, ...]:
        names = tuple(n for n, _ in self.inner) + tuple(n for n, _ in self.outer)
        return names + (("eta",) if self.use_eta and self.plastic else ())

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
        eta = coeffs[:, len(self.inner) + len(self.outer)] if self.use_eta and self.inner else None
        folded: dict[str, torch.Tensor] = {}
        for k, (_, term) in enumerate(self.inner + self.outer):
            c = coeffs[:, k]
            if eta is not None and k < len(self.inner):
                c = c * eta
            folded[term] = folded[term] + c if term in folded else c.contiguous()
        return folded  # read-only from here on; a factor may share memory with `coeffs`

    @staticmethod
    def apply_(w: torch.Tensor, folded: dict[str, torch.Tensor], pre: torch.Tensor, post: torch.Tensor) -> None:
        """w += Δw in place, with `folded` from `fold`; pre: (B, in), post: (B, out).

        Δw = hebb∘(post⊗pre) + pre_f∘(1⊗pre) + post_f∘(post⊗1) + const, evaluated as
        w += (hebb·post + pre_f)·pre, w += post_f·post, w += const: four passes over
        (B, out, in) memory and one temporary, which is what the per-step cost is made of.
        """
        pre_b = pre.unsqueeze(1)  # (B, 1, in)
        post_b = post.unsqueeze(2)  # (B, out, 1)
        hebb, pre_f = folded.get("hebb"), folded.get("pre")
        if hebb is not None:
            t = torch.mul(hebb, post_b) if pre_f is None else torch.addcmul(pre_f, hebb, post_b)
            w.addcmul_(t, pre_b)
        elif pre_f is not None:
            w.addcmul_(pre_f, pre_b)
        if "post" in folded:
            w.addcmul_(folded["post"], post_b)
        if "const" in folded:
            w.add_(folded["const"])

    def delta(self, coeffs: torch.Tensor, pre: torch.Tensor, post: torch.Tensor) -> torch.Tensor:
        """Weight change for a population (the same arithmetic as a population's update).

        coeffs: (B, K, out, in) in the order of `coefficient_names`;
        pre: (B, in); post: (B, out).  Returns (B, out, in).
        """
        out = coeffs.new_zeros(coeffs.shape[0], *coeffs.shape[2:])
        self.apply_(out, self.fold(coeffs), pre, post)
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
    return rule
