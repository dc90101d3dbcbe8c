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

    def delta(self, coeffs: torch.Tensor, pre: torch.Tensor, post: torch.Tensor) -> torch.Tensor:
        """Weight change for a population.

        coeffs: (B, K, out, in) in the order of `coefficient_names`;
        pre: (B, in); post: (B, out).  Returns (B, out, in).
        """
        pre_b = pre.unsqueeze(1)  # (B, 1, in)
        post_b = post.unsqueeze(2)  # (B, out, 1)
        k = 0
        inner = _weighted_terms(self.inner, coeffs, k, pre_b, post_b)
        k += len(self.inner)
        outer = _weighted_terms(self.outer, coeffs, k, pre_b, post_b)
        k += len(self.outer)
        if inner is not None and self.use_eta:
            inner = inner.mul_(coeffs[:, k])
        if inner is None:
            return outer
        return inner if outer is None else inner.add_(outer)


# Each term as a function of pre (B, 1, in) and post (B, out, 1), and whether that
# function returns a fresh tensor (which may then be scaled in place); None = the constant 1.
TERM_VALUES = {
    "hebb": (lambda pre_b, post_b: post_b * pre_b, True),
    "pre": (lambda pre_b, post_b: pre_b, False),
    "post": (lambda pre_b, post_b: post_b, False),
    "const": (None, False),
}


def _weighted_terms(
    terms: tuple[tuple[str, str], ...],
    coeffs: torch.Tensor,
    offset: int,
    pre_b: torch.Tensor,
    post_b: torch.Tensor,
) -> torch.Tensor | None:
    """Σ c·term with one (B, out, in) allocation: the first term makes it, the rest accumulate in place."""
    acc: torch.Tensor | None = None
    for idx, (_, term) in enumerate(terms):
        c = coeffs[:, offset + idx]
        fn, fresh = TERM_VALUES[term]
        if acc is None:
            if fn is None:
                acc = c.clone()
            elif fresh:
                acc = fn(pre_b, post_b).mul_(c)
            else:
                acc = torch.mul(c, fn(pre_b, post_b))
        elif fn is None:
            acc.add_(c)
        else:
            acc.addcmul_(c, fn(pre_b, post_b))
    return acc


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
