"""A task: env + network + rule + parameter layout, built and validated from the typed config.

`build_task` is where bad configuration is caught, before anything is written.  A
built task pickles: worker processes receive it whole, never the config.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from hebbian_es.config import DistributionConfig, InitConfig, MorphologyConfig, NetworkConfig, TrainConfig, VariationConfig
from hebbian_es.core import distributions
from hebbian_es.envs.spec import EnvSpec, build_env_spec
from hebbian_es.errors import ConfigError
from hebbian_es.core.network import ACTIVATIONS, ConvSpec, NetworkSpec, ParamLayout, PolicyPopulation, build_layout
from hebbian_es.core.plasticity import DEFAULT, Plasticity, regulariser_name
from hebbian_es.core.rules import RULES, HebbianRule, get_rule

NETWORK_KINDS = ("auto", "mlp", "cnn_mlp")
# seed streams: env seeds of each lie in a disjoint range; SELECTION: the fresh validation lifetimes
# on which a checkpoint is selected after training (run/selection.py), never a test lifetime
TRAIN, VALIDATION, TEST, SELECTION = 0, 1, 2, 3


@dataclass(frozen=True)
class Task:
    envs: tuple[EnvSpec, ...]  # training envs (fitness = mean over them)
    network: NetworkSpec
    rule: HebbianRule
    layout: ParamLayout
    weight_init: InitConfig  # fresh initial weights of every lifetime (or of the co-evolved ones)
    coefficient_init: DistributionConfig  # starting point of the rule coefficients
    max_steps: int
    evolved_init: DistributionConfig | None = None  # starting point of evolved weights (None: weight_init)
    l2_coefficients_only: bool = False  # the L2 term's mean(h^2) over the rule coefficients only
    plasticity: Plasticity = DEFAULT  # modulation and shared rules (core/plasticity.py)

    def policy(self, params: torch.Tensor) -> PolicyPopulation:
        return PolicyPopulation(self.network, self.rule, self.layout, params, self.weight_init, self.plasticity)

    def initial_center(self, seed: int) -> torch.Tensor:
        """Coefficients from `coefficient_init`; evolved weights from `evolved_init` (default: the lifetime init)."""
        gen = torch.Generator().manual_seed(int(seed) + 0x5EED)
        parts = []
        for block in self.layout.blocks:
            dist = self.coefficient_init if block.kind == "coefficients" else (self.evolved_init or self.weight_init)
            parts.append(distributions.sample(dist, block.shape, gen).reshape(-1))
        return torch.cat(parts) if parts else torch.zeros(0)

    def counts(self) -> dict[str, int]:
        lay = self.layout
        counts = {
            "plastic_coefficients": sum(b.size for b in lay.blocks if b.name.endswith(".coefficients")),
            "static_conv_params": lay.count("weights", "conv"),
            "static_fc_weights": sum(b.size for b in lay.blocks if b.name.endswith(".weight") and b.name.startswith("fc")),
            "coevolved_initial_weights": sum(b.size for b in lay.blocks if b.name.endswith("initial_weight")),
            "plastic_synapses": sum(
                self.network.fc_shapes[l][0] * self.network.fc_shapes[l][1] for l in self.network.plastic_indices(self.rule)
            ),
            "evolved_total": lay.size,
        }
        p = self.plasticity
        if p.sharing != "none":  # what the rule would cost per synapse, and how many rules share it
            counts["shared_rules"] = p.k
            counts["unshared_coefficients"] = counts["plastic_synapses"] * self.rule.coefficients_per_synapse
        if p.modulation != "none":
            counts["modulation_weights"] = sum(b.size for b in lay.blocks if b.name.endswith(".modulation"))
        return counts

    def plasticity_summary(self) -> str | None:
        """One line on what sharing and modulation cost, e.g. "61,440 -> 16 x 5 = 80"; None by default."""
        p, c = self.plasticity, self.counts()
        parts = []
        if p.sharing != "none":
            per = self.rule.coefficients_per_synapse
            parts.append(
                f"rule.sharing={p.sharing}: {c['unshared_coefficients']:,} per-synapse coefficients -> "
                f"{p.k:,} x {per} = {p.k * per:,} shared over {c['plastic_synapses']:,} synapses"
            )
        if p.modulation != "none":
            parts.append(f"rule.modulation={p.modulation}: +{c['modulation_weights']:,} modulatory weights")
        return "; ".join(parts) or None

    def with_shared_rules(self, k: int, assignment: np.ndarray) -> "Task":
        """This task with K shared rules, `assignment` (every plastic synapse's rule, layer by
        layer, (out, in) row-major) as sharing=merged: what a merge turns a run into."""
        from hebbian_es.core.plasticity import build_assignment

        shapes = [self.network.fc_shapes[l] for l in self.network.plastic_indices(self.rule)]
        k, parts = build_assignment("merged", k, shapes, loaded=assignment)
        plasticity = replace(self.plasticity, sharing="merged", k=k, assignment=parts)
        layout = build_layout(self.network, self.rule, coevolve_initial_weights=self.weight_init.coevolve, plasticity=plasticity)
        return replace(self, plasticity=plasticity, layout=layout)

    def fingerprint(self) -> dict[str, Any]:
        """What a checkpoint must match to be loaded into this task."""
        return {
            "rule": self.rule.name,
            "coefficients": list(self.rule.coefficient_names),
            "fc_shapes": [list(s) for s in self.network.fc_shapes],
            "conv_shapes": [list(s) for s in self.network.conv_shapes],
            "layout": self.layout.describe(),
            # only beyond the paper's rule, so the checkpoints of default runs keep their fingerprint
            **({} if self.plasticity.is_default else {"plasticity": self.plasticity.fingerprint()}),
            **({"rule_options": self.rule.options()} if self.rule.options() else {}),
        }


def episode_seeds(seed: int, stream: int, index: int, n: int, first: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(env reset seed, initial-weight seed) of lifetimes first..first+n-1 of round `index`
    (a generation, a validation round, the test protocol) of a stream.

    Lifetime i's pair depends on (seed, stream, index, i) alone, so asking for more
    lifetimes extends a shorter list instead of redrawing it.  Env seeds of the training,
    validation and test streams lie in disjoint ranges, so test episodes never replay a
    training track or start state."""
    raw = np.array(
        [np.random.SeedSequence([int(seed), int(stream), int(index), i]).generate_state(2, dtype=np.uint32) for i in range(first, first + n)],
        dtype=np.int64,
    ).reshape(n, 2)
    env = raw[:, 0] % (1 << 29) + stream * (1 << 29)
    return env, raw[:, 1].copy()


def _network_spec(cfg: NetworkConfig, env: EnvSpec) -> NetworkSpec:
    kind = cfg.kind
    if kind not in NETWORK_KINDS:
        raise ConfigError(f"network.kind={kind!r}; allowed: {list(NETWORK_KINDS)}")
    pixels = env.observation.kind == "pixels"
    if kind == "auto":
        kind = "cnn_mlp" if pixels else "mlp"
    if kind == "mlp" and pixels:
        raise ConfigError(f"network.kind=mlp cannot read pixel observations of {env.id}; allowed: cnn_mlp, auto")
    if kind == "cnn_mlp" and not pixels:
        raise ConfigError(f"network.kind=cnn_mlp needs pixel observations; {env.id} gives vectors; allowed: mlp, auto")
    conv = tuple(ConvSpec(c.out_channels, c.kernel, c.stride, c.pool) for c in cfg.conv) if kind == "cnn_mlp" else ()
    hidden = tuple(cfg.hidden)
    if any(h < 1 for h in hidden):
        raise ConfigError(f"network.hidden={list(hidden)}: every size must be >= 1")
    for key in ("hidden_activation", "output_activation"):
        if getattr(cfg, key) not in ACTIVATIONS:
            raise ConfigError(f"network.{key}={getattr(cfg, key)!r}; allowed: {sorted(ACTIVATIONS)}")
    n_layers = len(hidden) + 1
    plastic = None if cfg.plastic_layers is None else tuple(cfg.plastic_layers)
    if plastic is not None:
        bad = [p for p in plastic if not 0 <= p < n_layers]
        if bad:
            raise ConfigError(f"network.plastic_layers={list(plastic)}: allowed layer indices 0..{n_layers - 1}")
    spec = NetworkSpec(
        input_shape=env.observation.shape,
        output_size=env.action.size,
        hidden=hidden,
        conv=conv,
        plastic_layers=plastic,
        hidden_activation=cfg.hidden_activation,
        output_activation=cfg.output_activation,
        normalize_weights=cfg.normalize_weights,
    )
    regulariser_name(cfg.normalize_weights)  # an unknown regulariser is a ConfigError here
    if conv and spec.feature_size < 1:
        raise ConfigError(f"network.conv shrinks the {env.observation.shape} input to nothing")
    if cfg.input_size is not None and cfg.input_size != spec.feature_size:
        raise ConfigError(
            f"network.input_size={cfg.input_size} does not fit env {env.id}: its features have size {spec.feature_size}"
        )
    return spec


PHASES = ("train", "test")
L2_PARAMS = ("all", "coefficients")


def env_variants(mcfg: MorphologyConfig | None, env: EnvSpec, phase: str) -> tuple[EnvSpec, ...]:
    """The envs of a phase: one per body for envs with morphologies, else the env itself.

    Training fitness is the mean over `morphology.train`; the test phase covers
    `morphology.test` (each marked seen/unseen by what the body is, not its name)
    plus `morphology.random_eval.count` fixed random damages, all unseen."""
    from hebbian_es.envs.ant import morphology as morph

    if mcfg is None:
        return (env,)
    if env.morphology_kwarg is None:
        raise ConfigError(f"morphology is set but env {env.id} has no bodies to vary (env.morphology_kwarg is null)")
    presets = mcfg.presets
    train_names = list(mcfg.train)
    if not train_names:
        raise ConfigError("morphology.train is empty; give at least one body, e.g. [standard]")
    random_spec = morph.RandomDamageSpec.from_config(mcfg.random)
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
    for name in mcfg.test:
        body = morph.resolve(name, presets)
        twin = train_bodies.get(body.key)
        if twin is not None and twin != name:
            raise ConfigError(
                f"morphology.test entry {name!r} is the training body {twin!r} under another name; use {twin!r}"
            )
        test.append(variant(body, twin is not None))
    count = mcfg.random_eval.count
    if count < 0:
        raise ConfigError(f"morphology.random_eval.count={count}: must be >= 0")
    rng = np.random.default_rng(mcfg.random_eval.seed)
    for k in range(count):
        body = variant(morph.Morphology(f"random_{k:02d}", random_spec.sample(rng)), False)
        test.append(replace(body, random_eval=True))
    if not test:
        raise ConfigError("morphology.test is empty and morphology.random_eval.count is 0: nothing to test")
    return tuple(test)


def variation_variants(vcfg: VariationConfig, env: EnvSpec, phase: str) -> tuple[EnvSpec, ...]:
    """The envs of a phase with hidden per-lifetime variation (envs/variation.py), as bodies are
    declared: `variation.train` (presets, or `random`: values drawn per lifetime from
    `variation.random`), `variation.test` presets, each marked seen when every value lies inside
    the training support (the ranges, choices and values training met), else unseen."""
    from hebbian_es.envs import variation as var

    physical = var.parameters_of(env.vector)
    obs_size = int(np.prod(env.observation.raw_shape)) if env.observation.raw_shape else env.observation.shape[0]
    discrete = env.action.kind == "discrete"
    presets = {"nominal": {}, **{str(k): dict(v or {}) for k, v in vcfg.presets.items()}}

    def variant(name: str, key: str) -> var.Variation:
        if name == "random":
            if not vcfg.random:
                raise ConfigError(f"{key} has 'random' but variation.random is empty; give parameter ranges there")
            return var.build_variation({}, vcfg.random, "variation.random", physical, obs_size, discrete)
        if name not in presets:
            raise ConfigError(f"{key} entry {name!r} is not known; allowed: {sorted(presets)} or 'random'")
        return var.build_variation(presets[name], {}, f"variation.presets.{name}", physical, obs_size, discrete)

    needs_physics = [n for n in {*vcfg.random, *(k for p in presets.values() for k in p)} if n not in var.GENERIC]
    if needs_physics and env.vector is None:
        raise ConfigError(
            f"variation sets {sorted(needs_physics)} but env {env.id} has no batched implementation to vary "
            "(env.vector is null); allowed without it: action_sign, action_gain, obs_permutation"
        )
    if vcfg.random:  # checked whichever phase is built: a bad range is one line before anything runs
        var.build_variation({}, vcfg.random, "variation.random", physical, obs_size, discrete)
    if not vcfg.train:
        raise ConfigError("variation.train is empty; give at least one variant, e.g. [random] or [nominal]")
    train = [(n, variant(n, "variation.train")) for n in vcfg.train]
    if phase == "train":
        return tuple(replace(env, variation=v, name=n, seen=True) for n, v in train)
    if not vcfg.test:
        raise ConfigError("variation.test is empty: nothing to test; give presets, e.g. [nominal]")
    defaults = {**physical, **(_batch_defaults(env) if env.vector else {}), **var.generic_defaults(obs_size)}
    out = []
    for name in vcfg.test:
        v = variant(name, "variation.test")
        out.append(replace(env, variation=v, name=name, seen=var.support_contains([t for _, t in train], v, defaults)))
    return tuple(out)


def _batch_defaults(env: EnvSpec) -> dict[str, float]:
    from hebbian_es.envs.vector import load_batch_env

    return load_batch_env(str(env.vector))(**dict(env.make_kwargs)).defaults()


def build_task(cfg: TrainConfig, phase: str = "train") -> Task:
    """Build and validate everything the run needs from the typed config (`hebbian_es.config.to_object`).

    phase="test" gives the test envs (e.g. every test morphology) instead of the training ones."""
    if phase not in PHASES:
        raise ValueError(f"phase={phase!r}; allowed: {PHASES}")
    r = cfg.rule
    rule = get_rule(r.name, r.use_eta, eta_map=r.eta_map, eta_scale=r.eta_scale, trace_tau=r.trace_tau)
    distributions.check_distribution(cfg.init, "init")
    distributions.check_distribution(cfg.coefficient_init, "coefficient_init")
    if cfg.evolved_init is not None:
        distributions.check_distribution(cfg.evolved_init, "evolved_init")
    if cfg.fitness.l2_params not in L2_PARAMS:
        raise ConfigError(f"fitness.l2_params={cfg.fitness.l2_params!r}; allowed: {list(L2_PARAMS)}")
    env = build_env_spec(cfg.env)
    network = _network_spec(cfg.network, env)
    plasticity = build_plasticity(cfg, network, rule)
    layout = build_layout(network, rule, coevolve_initial_weights=cfg.init.coevolve, plasticity=plasticity)
    if layout.size == 0:
        raise ConfigError("the configuration evolves nothing: no plastic layers and no static weights")
    if cfg.morphology is not None and cfg.variation is not None:
        raise ConfigError("morphology and variation are both set; choose one (morphology=null or variation=null)")
    envs = variation_variants(cfg.variation, env, phase) if cfg.variation is not None else env_variants(cfg.morphology, env, phase)
    return Task(
        envs, network, rule, layout, cfg.init, cfg.coefficient_init, cfg.env.step_limit,
        evolved_init=cfg.evolved_init, l2_coefficients_only=cfg.fitness.l2_params == "coefficients",
        plasticity=plasticity,
    )


def build_plasticity(cfg: TrainConfig, network: NetworkSpec, rule: HebbianRule) -> Plasticity:
    """rule.modulation / sharing / shared_k / assignment / bcm_tau / bcm_rates / average_steps / update_every,
    checked (ConfigError naming the key)."""
    from hebbian_es.core.plasticity import MODULATIONS, SHARINGS, build_assignment

    from hebbian_es.core.plasticity import RATES

    r = cfg.rule
    if r.modulation not in MODULATIONS:
        raise ConfigError(f"rule.modulation={r.modulation!r}; allowed: {list(MODULATIONS)}")
    if r.sharing not in SHARINGS:
        raise ConfigError(f"rule.sharing={r.sharing!r}; allowed: {list(SHARINGS)}")
    if not r.bcm_tau >= 1:
        raise ConfigError(f"rule.bcm_tau={r.bcm_tau}: must be >= 1 (steps)")
    for key in ("average_steps", "update_every"):
        if getattr(r, key) < 1:
            raise ConfigError(f"rule.{key}={getattr(r, key)}: must be >= 1 (steps)")
    if r.sharing == "none" and r.shared_k is not None:
        raise ConfigError(f"rule.shared_k={r.shared_k} needs rule.sharing; allowed: {list(SHARINGS[1:])} (or rule.shared_k=null)")
    plastic = network.plastic_indices(rule)
    if r.bcm_rates:
        if not rule.needs_threshold:
            with_threshold = sorted(n for n, x in RULES.items() if x.needs_threshold)
            raise ConfigError(f"rule.bcm_rates=true needs a rule with BCM's threshold; allowed: rule.name in {with_threshold}")
        n_fc = len(network.fc_shapes)
        for layer in plastic:
            key = "output_activation" if layer == n_fc - 1 else "hidden_activation"
            if getattr(network, key) not in RATES:
                raise ConfigError(
                    f"rule.bcm_rates=true needs rate units: network.{key}={getattr(network, key)!r} has no rate; allowed: {sorted(RATES)}"
                )
    common = dict(bcm_tau=r.bcm_tau, bcm_rates=r.bcm_rates, average_steps=r.average_steps, update_every=r.update_every)
    if r.modulation == "none" and r.sharing == "none":
        return Plasticity(**common)
    if not plastic:
        key, value = ("rule.modulation", r.modulation) if r.modulation != "none" else ("rule.sharing", r.sharing)
        raise ConfigError(f"{key}={value!r} needs plasticity; rule.name={rule.name!r} has no plastic synapses (allowed: none)")
    if r.sharing == "none":
        return Plasticity(modulation=r.modulation, **common)
    shapes = [network.fc_shapes[l] for l in plastic]
    loaded = None
    if r.sharing == "merged":
        loaded = _load_assignment(r.assignment, cfg.run_dir)
    k, assignment = build_assignment(r.sharing, r.shared_k, shapes, r.sharing_seed, loaded)
    return Plasticity(modulation=r.modulation, sharing=r.sharing, k=k, assignment=assignment, **common)


def _load_assignment(path: str | None, run_dir: str) -> np.ndarray:
    """rule.assignment: an .npy of rule indices (relative paths are inside the run directory)."""
    from pathlib import Path

    if not path:
        raise ConfigError("rule.sharing=merged needs rule.assignment=<.npy written by python -m hebbian_es.merge>")
    full = Path(path) if Path(path).is_absolute() else Path(run_dir) / path
    try:
        data = np.load(full, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"rule.assignment={path!r}: cannot read {full} ({exc})") from None
    if data.dtype.kind not in "iu":
        raise ConfigError(f"rule.assignment={path!r}: {full} holds {data.dtype} values, not rule indices")
    return data.astype(np.int64)
