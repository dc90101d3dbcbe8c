"""Networks whose synapses change during a lifetime, batched over a population.

A `NetworkSpec` says the shape (optional static conv stack, then bias-free tanh
fully-connected layers); a `ParamLayout` says where each evolved block lives in
the flat parameter vector that the optimiser sees; a `PolicyPopulation` runs B
individuals at once: every weight tensor carries a leading population axis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F

from hebbian_es.config import DistributionConfig
from hebbian_es.core import distributions
from hebbian_es.core.plasticity import DEFAULT, Plasticity, PlasticState, regulariser_name
from hebbian_es.core.rules import HebbianRule
from hebbian_es.numerics import pointwise

BASIC_TERMS = frozenset({"hebb", "pre", "post", "const"})  # the paper's terms: the original update path

# sigmoid through numerics.pointwise: torch's scalar tail would make a lifetime depend on its batch
ACTIVATIONS = {
    "tanh": torch.tanh,
    "identity": lambda x: x,
    "sigmoid": lambda x: pointwise(torch.sigmoid, x),
    "relu": torch.relu,
}


@dataclass(frozen=True)
class ConvSpec:
    out_channels: int
    kernel: int
    stride: int = 1
    pool: int = 2


@dataclass(frozen=True)
class NetworkSpec:
    input_shape: tuple[int, ...]  # (C, H, W) for pixels, (n,) for vectors
    output_size: int
    hidden: tuple[int, ...] = (128, 64)
    conv: tuple[ConvSpec, ...] = ()
    plastic_layers: tuple[int, ...] | None = None  # indices of FC layers; None = all
    hidden_activation: str = "tanh"
    output_activation: str = "identity"  # also the post-synaptic activity of the last layer
    # per plastic layer after each update: False, True (W <- W / max|W|) or a regulariser name
    # of core.plasticity.REGULARISERS (none, max_abs, clip, tanh, row_var)
    normalize_weights: bool | str = False

    @property
    def conv_shapes(self) -> list[tuple[int, int, int, int]]:
        shapes, channels = [], self.input_shape[0]
        for c in self.conv:
            shapes.append((c.out_channels, channels, c.kernel, c.kernel))
            channels = c.out_channels
        return shapes

    @property
    def feature_size(self) -> int:
        if not self.conv:
            size = 1
            for d in self.input_shape:
                size *= d
            return size
        channels, h, w = self.input_shape
        for c in self.conv:
            h, w = (h - c.kernel) // c.stride + 1, (w - c.kernel) // c.stride + 1
            h, w = h // c.pool, w // c.pool
            channels = c.out_channels
        return channels * h * w

    @property
    def fc_shapes(self) -> list[tuple[int, int]]:
        sizes = [self.feature_size, *self.hidden, self.output_size]
        return [(sizes[i + 1], sizes[i]) for i in range(len(sizes) - 1)]

    def plastic_indices(self, rule: HebbianRule) -> tuple[int, ...]:
        if not rule.plastic:
            return ()
        n = len(self.fc_shapes)
        return tuple(range(n)) if self.plastic_layers is None else tuple(sorted(self.plastic_layers))


@dataclass(frozen=True)
class Block:
    name: str
    shape: tuple[int, ...]
    kind: str  # "coefficients" (plasticity rule) or "weights" (evolved weights)

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass(frozen=True)
class ParamLayout:
    """Where each evolved block lives in the flat vector the optimiser sees."""

    blocks: tuple[Block, ...]
    offsets: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        offsets, o = [], 0
        for b in self.blocks:
            offsets.append(o)
            o += b.size
        object.__setattr__(self, "offsets", tuple(offsets))

    @property
    def size(self) -> int:
        return sum(b.size for b in self.blocks)

    def count(self, kind: str, prefix: str = "") -> int:
        return sum(b.size for b in self.blocks if b.kind == kind and b.name.startswith(prefix))

    def views(self, params: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split (B, D) into {name: (B, *shape)} views (no copies)."""
        out = {}
        for b, o in zip(self.blocks, self.offsets):
            out[b.name] = params[:, o : o + b.size].view(params.shape[0], *b.shape)
        return out

    def kinds(self) -> torch.Tensor:
        """Boolean mask over the flat vector: True where the entry is a rule coefficient."""
        mask = torch.zeros(self.size, dtype=torch.bool)
        for b, o in zip(self.blocks, self.offsets):
            mask[o : o + b.size] = b.kind == "coefficients"
        return mask

    def describe(self) -> str:
        return ";".join(f"{b.name}:{'x'.join(map(str, b.shape))}:{b.kind}" for b in self.blocks)


def build_layout(
    spec: NetworkSpec, rule: HebbianRule, coevolve_initial_weights: bool, plasticity: Plasticity = DEFAULT
) -> ParamLayout:
    """The evolved blocks; shared rules are one (C, K) block, modulatory weights count as rule coefficients."""
    blocks: list[Block] = []
    for k, shape in enumerate(spec.conv_shapes):
        blocks.append(Block(f"conv{k}.weight", shape, "weights"))
    plastic = spec.plastic_indices(rule)
    if plastic and plasticity.sharing != "none":
        blocks.append(Block("shared.coefficients", (rule.coefficients_per_synapse, plasticity.k), "coefficients"))
    for layer, shape in enumerate(spec.fc_shapes):
        if layer in plastic:
            if plasticity.sharing == "none":
                blocks.append(Block(f"fc{layer}.coefficients", (rule.coefficients_per_synapse, *shape), "coefficients"))
            if plasticity.modulation != "none":
                blocks.append(Block(f"fc{layer}.modulation", plasticity.modulation_shape(shape), "coefficients"))
            if coevolve_initial_weights:
                blocks.append(Block(f"fc{layer}.initial_weight", shape, "weights"))
        else:
            blocks.append(Block(f"fc{layer}.weight", shape, "weights"))
    return ParamLayout(tuple(blocks))


class PolicyPopulation:
    """B networks evaluated together; weights and activations carry a population axis."""

    def __init__(
        self,
        spec: NetworkSpec,
        rule: HebbianRule,
        layout: ParamLayout,
        params: torch.Tensor,
        weight_init: DistributionConfig,
        plasticity: Plasticity = DEFAULT,
    ) -> None:
        self.spec, self.rule, self.layout = spec, rule, layout
        self.batch = params.shape[0]
        self.blocks = layout.views(params)
        self.weight_init = weight_init
        self.plastic = set(spec.plastic_indices(rule))
        self.hidden_act = ACTIVATIONS[spec.hidden_activation]
        self.output_act = ACTIVATIONS[spec.output_activation]
        b = self.batch
        # Grouped convolution runs one conv stack per individual in a single call, on
        # channels-last tensors: (H, W, B*C) memory, where CPU conv and max-pool are
        # several times faster than on (B*C, H, W) for these shapes.
        self.conv_weights = [
            self.blocks[f"conv{k}.weight"].reshape(b * s[0], *s[1:]).contiguous(memory_format=torch.channels_last)
            for k, s in enumerate(spec.conv_shapes)
        ]
        self.regulariser = regulariser_name(spec.normalize_weights)
        # Anything beyond the paper's rule (modulation, shared rules, Oja/BCM terms, other
        # regularisers) takes the extended update (core/plasticity.py); the paper's keeps its own.
        self.extended: PlasticState | None = None
        if self.plastic and not (
            plasticity.is_default and rule.terms <= BASIC_TERMS and not rule.trace and self.regulariser in ("none", "max_abs")
        ):
            n_fc = len(spec.fc_shapes)
            units = [spec.output_activation if l == n_fc - 1 else spec.hidden_activation for l in range(n_fc)]
            self.extended = PlasticState(rule, plasticity, self.blocks, self.plastic, units)
        self.coefficients = (
            {l: self.blocks[f"fc{l}.coefficients"] for l in self.plastic} if plasticity.sharing == "none" else {}
        )
        self.folded: dict[int, dict[str, torch.Tensor]] = {}  # per plastic layer, η folded in (rule.fold)
        self.weights: list[torch.Tensor] = []
        self.activations: list[torch.Tensor] = []

    def reset(self, init_seeds: Sequence[int]) -> None:
        """Fresh initial weights for a new lifetime, one seed per individual."""
        weights: list[torch.Tensor] = []
        fresh = self._fresh_initial_weights(init_seeds) if self.plastic else {}
        for layer, shape in enumerate(self.spec.fc_shapes):
            if layer not in self.plastic:
                weights.append(self.blocks[f"fc{layer}.weight"])
            elif f"fc{layer}.initial_weight" in self.blocks:
                weights.append(self.blocks[f"fc{layer}.initial_weight"].clone())
            else:
                weights.append(fresh[layer])
        self.weights = weights
        # the update's (B, out, in) temporary, one per plastic layer for the whole lifetime
        self.scratch = {l: torch.empty_like(weights[l]) for l in self.plastic}
        self.activations = []
        # η is constant within a lifetime: fold it into the other coefficients once per lifetime
        if self.extended is None:
            self.folded = {l: self.rule.fold(self.coefficients[l]) for l in self.plastic}
        else:
            coefficients = {l: self.extended.coefficients(self.blocks, l) for l in self.plastic}
            self.folded = {l: self.rule.fold(c) for l, c in coefficients.items()}
            self.extended.reset(self.batch, self.spec.fc_shapes, coefficients)

    def _fresh_initial_weights(self, init_seeds: Sequence[int]) -> dict[int, torch.Tensor]:
        layers = [l for l in sorted(self.plastic) if f"fc{l}.initial_weight" not in self.blocks]
        shapes = self.spec.fc_shapes
        out = {l: torch.empty((self.batch, *shapes[l])) for l in layers}
        cache: dict[int, list[torch.Tensor]] = {}  # common env seeds repeat across the population
        for row, seed in enumerate(init_seeds):
            seed = int(seed)
            if seed not in cache:
                gen = torch.Generator().manual_seed(seed)
                cache[seed] = [distributions.sample(self.weight_init, shapes[l], gen) for l in layers]
            for l, w in zip(layers, cache[seed]):
                out[l][row] = w
        return out

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if not self.spec.conv:
            return x.reshape(self.batch, -1)
        b = self.batch
        # (B, C, H, W) -> (1, B*C, H, W), channels-last: a view when x's memory is already
        # (H, W, B, C), as ObservationBatcher returns it, otherwise one copy
        h = x.reshape(1, b * x.shape[1], *x.shape[2:]).contiguous(memory_format=torch.channels_last)
        for conv, w in zip(self.spec.conv, self.conv_weights):
            # tanh is increasing, so pool-then-tanh equals tanh-then-pool exactly, on 4x fewer values
            h = torch.tanh(F.max_pool2d(F.conv2d(h, w, stride=conv.stride, groups=b), conv.pool))
        return h.contiguous().reshape(b, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, *input_shape) -> outputs (B, output_size); remembers activations for `update`."""
        h = self.features(x)
        acts = [h]
        last = len(self.weights) - 1
        for layer, w in enumerate(self.weights):
            # (B, 1, in) @ (B, in, out): several times faster on CPU than (B, out, in) @ (B, in, 1)
            z = torch.bmm(h.unsqueeze(1), w.transpose(1, 2)).squeeze(1)
            h = self.output_act(z) if layer == last else self.hidden_act(z)
            acts.append(h)
        self.activations = acts
        return h

    @property
    def needs_reward(self) -> bool:
        """The update reads the step's reward (a three-factor rule: rule.modulation=reward)."""
        return self.extended is not None and self.extended.p.modulation == "reward"

    def update(self, reward: torch.Tensor | None = None) -> None:
        """One Hebbian step with the activations of the last forward pass; reward: (B,), the reward
        of the step just taken, for a rule that reads it (needs_reward), else ignored."""
        acts = self.activations
        if self.extended is not None:
            self.extended.update(self.weights, acts, self.folded, self.regulariser, self.scratch, reward)
            return
        for layer in self.plastic:
            w = self.weights[layer]
            self.rule.apply_(w, self.folded[layer], acts[layer], acts[layer + 1], self.scratch[layer])
            if self.regulariser == "max_abs":
                # max|W| per individual as max(max W, -min W): two fast reductions, no |W| temporary
                flat = w.reshape(w.shape[0], -1)
                scale = torch.maximum(flat.amax(dim=1), flat.amin(dim=1).neg_()).clamp_min_(1e-12)
                w.div_(scale.view(-1, 1, 1))

    def plastic_weights(self) -> list[torch.Tensor]:
        return [self.weights[l] for l in sorted(self.plastic)]
