"""A task: env + network + rule + parameter layout, built and validated from config.

`build_task` is where bad configuration is caught, before anything is written.
It is light enough to run in every worker process (no Lightning import).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping

import numpy as np
import torch

from hebbian_es import distributions
from hebbian_es.envs import EnvSpec, build_env_spec
from hebbian_es.errors import ConfigError
from hebbian_es.network import ACTIVATIONS, ConvSpec, NetworkSpec, ParamLayout, PolicyPopulation, build_layout
from hebbian_es.rules import HebbianRule, get_rule

NETWORK_KINDS = ("auto", "mlp", "cnn_mlp")
TRAIN, VALIDATION, TEST = 0, 1, 2  # seed streams: env seeds of each lie in a disjoint range


@dataclass(frozen=True)
class Task:
    envs: tuple[EnvSpec, ...]  # training envs (fitness = mean over them)
    network: NetworkSpec
    rule: HebbianRule
    layout: ParamLayout
    weight_init: Mapping[str, Any]  # fresh initial weights of every lifetime
    coefficient_init: Mapping[str, Any]  # starting point of the rule coefficients
    max_steps: int

    def policy(self, params: torch.Tensor) -> PolicyPopulation:
        return PolicyPopulation(self.network, self.rule, self.layout, params, self.weight_init)

    def initial_center(self, seed: int) -> torch.Tensor:
        """Coefficients from `coefficient_init`; evolved weights from the lifetime init distribution."""
        gen = torch.Generator().manual_seed(int(seed) + 0x5EED)
        parts = []
        for block in self.layout.blocks:
            dist = self.coefficient_init if block.kind == "coefficients" else self.weight_init
            parts.append(distributions.sample(dist, block.shape, gen).reshape(-1))
        return torch.cat(parts) if parts else torch.zeros(0)

    def counts(self) -> dict[str, int]:
        lay = self.layout
        return {
            "plastic_coefficients": lay.count("coefficients"),
            "static_conv_params": lay.count("weights", "conv"),
            "static_fc_weights": sum(b.size for b in lay.blocks if b.name.endswith(".weight") and b.name.startswith("fc")),
            "coevolved_initial_weights": sum(b.size for b in lay.blocks if b.name.endswith("initial_weight")),
            "plastic_synapses": sum(
                self.network.fc_shapes[l][0] * self.network.fc_shapes[l][1] for l in self.network.plastic_indices(self.rule)
            ),
            "evolved_total": lay.size,
        }

    def fingerprint(self) -> dict[str, Any]:
        """What a checkpoint must match to be loaded into this task."""
        return {
            "rule": self.rule.name,
            "coefficients": list(self.rule.coefficient_names),
            "fc_shapes": [list(s) for s in self.network.fc_shapes],
            "conv_shapes": [list(s) for s in self.network.conv_shapes],
            "layout": self.layout.describe(),
        }


def episode_seeds(seed: int, stream: int, index: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n (env reset seed, initial-weight seed) pairs for generation/round `index` of a stream.

    Env seeds of the training, validation and test streams lie in disjoint ranges,
    so test episodes never replay a training track or start state."""
    raw = np.random.SeedSequence([int(seed), int(stream), int(index)]).generate_state(2 * n, dtype=np.uint32)
    env = (raw[:n] % (1 << 29)).astype(np.int64) + stream * (1 << 29)
    return env, raw[n:].astype(np.int64)


def _network_spec(cfg: Mapping[str, Any], env: EnvSpec) -> NetworkSpec:
    kind = cfg.get("kind", "auto")
    if kind not in NETWORK_KINDS:
        raise ConfigError(f"network.kind={kind!r}; allowed: {list(NETWORK_KINDS)}")
    pixels = env.observation.kind == "pixels"
    if kind == "auto":
        kind = "cnn_mlp" if pixels else "mlp"
    if kind == "mlp" and pixels:
        raise ConfigError(f"network.kind=mlp cannot read pixel observations of {env.id}; allowed: cnn_mlp, auto")
    if kind == "cnn_mlp" and not pixels:
        raise ConfigError(f"network.kind=cnn_mlp needs pixel observations; {env.id} gives vectors; allowed: mlp, auto")
    conv = tuple(ConvSpec(**dict(c)) for c in (cfg.get("conv") or ())) if kind == "cnn_mlp" else ()
    hidden = tuple(int(h) for h in (cfg.get("hidden") or ()))
    if any(h < 1 for h in hidden):
        raise ConfigError(f"network.hidden={list(hidden)}: every size must be >= 1")
    for key in ("hidden_activation", "output_activation"):
        if cfg.get(key, "tanh") not in ACTIVATIONS:
            raise ConfigError(f"network.{key}={cfg.get(key)!r}; allowed: {sorted(ACTIVATIONS)}")
    plastic = cfg.get("plastic_layers")
    n_layers = len(hidden) + 1
    if plastic is not None:
        plastic = tuple(int(p) for p in plastic)
        bad = [p for p in plastic if not 0 <= p < n_layers]
        if bad:
            raise ConfigError(f"network.plastic_layers={list(plastic)}: allowed layer indices 0..{n_layers - 1}")
    spec = NetworkSpec(
        input_shape=env.observation.shape,
        output_size=env.action.size,
        hidden=hidden,
        conv=conv,
        plastic_layers=plastic,
        hidden_activation=cfg.get("hidden_activation", "tanh"),
        output_activation=cfg.get("output_activation", "identity"),
        normalize_weights=bool(cfg.get("normalize_weights", False)),
    )
    if conv and spec.feature_size < 1:
        raise ConfigError(f"network.conv shrinks the {env.observation.shape} input to nothing")
    expected = cfg.get("input_size")
    if expected is not None and int(expected) != spec.feature_size:
        raise ConfigError(
            f"network.input_size={expected} does not fit env {env.id}: its features have size {spec.feature_size}"
        )
    return spec


PHASES = ("train", "test")


def env_variants(cfg: Mapping[str, Any], env: EnvSpec, phase: str) -> tuple[EnvSpec, ...]:
    """The envs of a phase: one per body for envs with morphologies, else the env itself.

    Training fitness is the mean over `morphology.train`; the test phase covers
    `morphology.test` (each marked seen/unseen by what the body is, not its name)
    plus `morphology.random_eval.count` fixed random damages, all unseen."""
    from hebbian_es import morphology as morph

    mcfg = cfg.get("morphology") or {}
    if not mcfg:
        return (env,)
    if env.morphology_kwarg is None:
        raise ConfigError(f"morphology is set but env {env.id} has no bodies to vary (env.morphology_kwarg is null)")
    presets = mcfg.get("presets") or {}
    train_names = list(mcfg.get("train") or [])
    if not train_names:
        raise ConfigError("morphology.train is empty; give at least one body, e.g. [standard]")
    random_spec = morph.RandomDamageSpec.from_config(mcfg.get("random"))
    kwarg = env.morphology_kwarg

    def variant(body: morph.Morphology, seen: bool | None) -> EnvSpec:
        kwargs = {**env.make_kwargs, kwarg: body.as_kwargs()}
        return replace(env, make_kwargs=kwargs, name=body.name, seen=seen)

    train = []
    for name in train_names:
        if name == "random":  # a new damage every episode, drawn from the reset seed
            kwargs = {**env.make_kwargs, "random_damage": random_spec.as_kwargs()}
            train.append(replace(env, make_kwargs=kwargs, name="random", seen=True))
        else:
            train.append(variant(morph.resolve(name, presets), True))
    if phase == "train":
        return tuple(train)
    train_bodies = {morph.resolve(n, presets).key: n for n in train_names if n != "random"}
    test = []
    for name in mcfg.get("test") or []:
        body = morph.resolve(name, presets)
        twin = train_bodies.get(body.key)
        if twin is not None and twin != name:
            raise ConfigError(
                f"morphology.test entry {name!r} is the training body {twin!r} under another name; use {twin!r}"
            )
        test.append(variant(body, twin is not None))
    rand = mcfg.get("random_eval") or {}
    count = int(rand.get("count", 0))
    if count < 0:
        raise ConfigError(f"morphology.random_eval.count={count}: must be >= 0")
    rng = np.random.default_rng(int(rand.get("seed", 0)))
    for k in range(count):
        body = variant(morph.Morphology(f"random_{k:02d}", random_spec.sample(rng)), False)
        test.append(replace(body, random_eval=True))
    if not test:
        raise ConfigError("morphology.test is empty and morphology.random_eval.count is 0: nothing to test")
    return tuple(test)


def build_task(cfg: Mapping[str, Any], phase: str = "train") -> Task:
    """Build and validate everything the run needs from the composed config.

    phase="test" gives the test envs (e.g. every test morphology) instead of the training ones."""
    rule_cfg = cfg["rule"]
    rule = get_rule(rule_cfg["name"], bool(rule_cfg.get("use_eta", True)))
    init = dict(cfg["init"])
    distributions.check_distribution(init, "init")
    coeff_init = dict(cfg["coefficient_init"])
    distributions.check_distribution(coeff_init, "coefficient_init")
    env = build_env_spec(cfg["env"])
    network = _network_spec(cfg["network"], env)
    layout = build_layout(network, rule, coevolve_initial_weights=bool(init.get("coevolve", False)))
    if layout.size == 0:
        raise ConfigError("the configuration evolves nothing: no plastic layers and no static weights")
    max_steps = int(cfg["env"].get("step_limit", 100_000))
    if phase not in PHASES:
        raise ValueError(f"phase={phase!r}; allowed: {PHASES}")
    return Task(env_variants(cfg, env, phase), network, rule, layout, init, coeff_init, max_steps)
