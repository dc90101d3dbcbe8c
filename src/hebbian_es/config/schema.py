"""The schema of every config group: one dataclass per group (Hydra structured configs),
the one home of the config's defaults.  `hebbian_es.config` registers them and converts
the composed config into them; nothing here imports more than the standard library and
OmegaConf."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from omegaconf import II, MISSING

# the rule group's schema lives in rule_schema.py (this module's length); it is part of this one home
from hebbian_es.config.rule_schema import MergeConfig, RuleConfig  # noqa: F401

# --------------------------------------------------------------------------- env


@dataclass
class ObservationConfig:
    """How a raw observation becomes network input (hebbian_es.envs.spec)."""

    kind: str = "auto"  # auto (pixels for rank-3 Box observations, else vector) | vector | pixels
    resize: Optional[List[int]] = None  # pixels: (H, W) after the crop
    crop: Optional[List[int]] = None  # pixels: top, bottom, left, right (pixels kept)
    scale: Optional[float] = None  # observations are divided by this; null: 255 for pixels, 1 for vectors
    interpolation: str = "area"  # area (cv2 INTER_AREA, shrinking only) | bilinear_antialias
    # true: the env's last reward (0 after reset) is appended to a 1-D observation: the one way a
    # reward reaches the network during a lifetime (off by default: the paper's lifetimes are reward-free)
    append_reward: bool = False


@dataclass
class ActionConfig:
    # Box actions: one squash for every output, or one per output (a list);
    # identity | tanh | sigmoid | clip | rescale.  Discrete actions are the argmax.
    squash: Any = "clip"


@dataclass
class EarlyStopConfig:
    """Stop an episode once more than `patience` consecutive steps had negative
    reward, checked only after `min_steps` steps; patience null: never."""

    patience: Optional[int] = None
    min_steps: int = 0
    # all_steps: the streak counts every step, the stop is checked once steps > min_steps;
    # after_min_steps: only steps t > min_steps count (t = acting step from 0): the reference code's
    # Bullet rule (min_steps 200: a streak from t = 150 stops at t = 231, not at t = 200)
    window: str = "all_steps"


@dataclass
class PolicyConfig:
    """What the env asks of the network (read by the network group's defaults)."""

    output_activation: str = "tanh"  # bounded post-synaptic activity of the output layer
    # per plastic layer after each update: false | true (W <- W / max|W|, the paper's CarRacing) |
    # none | max_abs (= true) | clip | tanh | row_var (docs/plasticity.md)
    normalize_weights: Any = False


@dataclass
class EnvConfig:
    name: str = "${.id}"
    id: str = MISSING  # a gymnasium id ("module:Id" imports module first)
    make_kwargs: Dict[str, Any] = field(default_factory=dict)
    max_episode_steps: Optional[int] = None  # null: the env's own limit
    step_limit: int = 100_000  # hard cap on a lifetime, whatever the env does
    morphology_kwarg: Optional[str] = None  # make kwarg taking a list of damages (envs with bodies)
    end_on_terminated: bool = True  # false: only truncation and early stop end an episode
    # The env's terminated flag ends a lifetime only at acting steps t > terminated_after (t from 0);
    # null: at any step.  The reference code's Bullet rule: 200.
    terminated_after: Optional[int] = None
    solved_threshold: Optional[float] = None  # a mean test return at or above this counts as solved ...
    # ... with monotone progress (docs/protocol.md): a lifetime is solved when its running return
    # reaches solved_threshold and never falls more than solved_tolerance below its running maximum after
    solved_tolerance: float = 10.0
    reward_label: str = "reward"  # what a per-step reward is called in analysis plots
    wrappers: List[Any] = field(default_factory=list)  # Hydra `_target_` entries, applied in order
    vector: Optional[str] = None  # <module>:<Class> of a batched numpy env (hebbian_es.envs.vector); null: a gym env each
    observation: ObservationConfig = field(default_factory=ObservationConfig)
    action: ActionConfig = field(default_factory=ActionConfig)
    early_stop: EarlyStopConfig = field(default_factory=EarlyStopConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)


# --------------------------------------------------------------------------- rule, network, init


@dataclass
class ConvConfig:
    out_channels: int = MISSING
    kernel: int = MISSING
    stride: int = 1
    pool: int = 2


def _paper_conv() -> List[ConvConfig]:
    return [ConvConfig(out_channels=6, kernel=3, stride=1, pool=2), ConvConfig(out_channels=8, kernel=5, stride=2, pool=2)]


@dataclass
class NetworkConfig:
    kind: str = "auto"  # auto (cnn_mlp for pixels, else mlp) | mlp | cnn_mlp
    hidden: List[int] = field(default_factory=lambda: [128, 64])
    conv: List[ConvConfig] = field(default_factory=_paper_conv)  # cnn_mlp only
    plastic_layers: Optional[List[int]] = None  # FC layer indices that are plastic; null: all
    hidden_activation: str = "tanh"
    # Post-synaptic activity of the output layer = the output after this activation.
    output_activation: str = II("env.policy.output_activation")
    normalize_weights: Any = II("env.policy.normalize_weights")
    input_size: Optional[int] = None  # optional check against the env's feature size


@dataclass
class DistributionConfig:
    """A named weight distribution (hebbian_es.core.distributions); each kind reads its own keys."""

    kind: str = "uniform"  # uniform | normal | xavier | kaiming | torch_default | sparse | zeros | ones
    low: float = -0.1  # uniform
    high: float = 0.1  # uniform
    mean: float = 0.0  # normal
    std: float = 0.1  # normal, sparse
    gain: float = 1.0  # xavier
    sparsity: float = 0.5  # sparse: fraction of zeros in each column


@dataclass
class InitConfig(DistributionConfig):
    """The initial weights of every lifetime."""

    coevolve: bool = False  # true: the ES evolves the initial weights, drawn once from this distribution


# --------------------------------------------------------------------------- optimizer, evaluator


# The seed-based ES (openai_es, pgpe, snes: hebbian_es.es.gaussian) each compose a fitness shaping and
# an update step, chosen by name (optimizer.shaping, optimizer.step); docs/optimizers.md has the equations.


@dataclass
class OpenAIESConfig:
    """OpenAI-ES (Salimans et al. 2017) with the paper's settings (Najarro & Risi 2020)."""

    name: str = "openai_es"
    popsize: int = 200  # even with antithetic sampling
    sigma: float = 0.1
    lr: float = 0.2
    lr_decay: float = 0.995  # lr *= lr_decay while lr > lr_floor
    lr_floor: float = 0.001
    sigma_decay: float = 0.999  # sigma *= sigma_decay while sigma > sigma_floor
    sigma_floor: float = 0.01
    antithetic: bool = True
    standardize: bool = True  # centred ranks, then standardised
    ties: str = "ordinal"  # ordinal | average
    shaping: str = "centered_ranks"  # centered_ranks (the paper's) | nes | z_score | raw
    step: str = "sgd"  # sgd (the paper's) | momentum | adam | clipup
    momentum: float = 0.9  # step=momentum and step=clipup: the velocity's decay, in [0, 1)
    beta1: float = 0.9  # step=adam (torch.optim.Adam's betas), in [0, 1)
    beta2: float = 0.999
    eps: float = 1e-8  # step=adam
    max_speed: Optional[float] = None  # step=clipup: the largest update norm; null: 2 x lr (Toklu et al.)
    weight_decay: float = 0.0  # the step follows g - weight_decay * centre (0: off)


@dataclass
class PGPEConfig:
    """PGPE (Sehnke et al. 2010): symmetric sampling, a sigma per parameter, ClipUp's step (Toklu et al. 2020)."""

    name: str = "pgpe"
    popsize: int = 200  # even: symmetric pairs (+eps, -eps)
    sigma: float = 0.1  # the initial sigma of every parameter
    # step=clipup's step size alpha; null: Toklu et al.'s rule, max_speed = |sigma_0| / 15 (|sigma_0| = sigma x
    # sqrt(parameters), the initial radius) and lr = max_speed / 2.  Any other step needs a number.
    lr: Optional[float] = None
    lr_decay: float = 1.0  # lr *= lr_decay while lr > lr_floor (1: constant)
    lr_floor: float = 0.0
    sigma_lr: float = 0.1  # sigma_i += sigma_lr x the sigma gradient (then clipped to sigma_max_change)
    sigma_max_change: Optional[float] = 0.2  # each sigma_i changes by at most this fraction per generation; null: no limit
    sigma_decay: float = 1.0  # after adaptation, sigma_i *= sigma_decay while sigma_i > sigma_floor (1: off)
    sigma_floor: float = 0.0  # ... and sigma_i never falls below sigma_floor
    standardize: bool = False  # the shaped fitness standardised (evotorch's PGPE: centred ranks, not standardised)
    ties: str = "ordinal"  # ordinal | average
    shaping: str = "centered_ranks"  # centered_ranks | nes | z_score | raw
    step: str = "clipup"  # sgd | momentum | adam | clipup
    momentum: float = 0.9  # step=momentum and step=clipup, in [0, 1)
    beta1: float = 0.9  # step=adam, in [0, 1)
    beta2: float = 0.999
    eps: float = 1e-8
    max_speed: Optional[float] = None  # step=clipup: the largest update norm; null: 2 x lr
    weight_decay: float = 0.0  # the step follows g - weight_decay * centre (0: off)


@dataclass
class SNESConfig:
    """SNES (Schaul et al. 2011): separable natural ES, a sigma per parameter adapted multiplicatively."""

    name: str = "snes"
    popsize: int = 200  # the paper's default is 4 + floor(3 ln n): 37 at n = 61,440
    sigma: float = 0.1  # the initial sigma of every parameter
    lr: float = 1.0  # eta_mu: centre += lr x sigma * sum_k u_k z_k (the paper's 1)
    lr_decay: float = 1.0  # lr *= lr_decay while lr > lr_floor (1: constant)
    lr_floor: float = 0.0
    sigma_lr: Optional[float] = None  # eta_sigma; null: the paper's (3 + ln n) / (5 sqrt(n))
    sigma_decay: float = 1.0  # after adaptation, sigma_i *= sigma_decay while sigma_i > sigma_floor (1: off)
    sigma_floor: float = 0.0  # ... and sigma_i never falls below sigma_floor
    antithetic: bool = False  # true: mirrored pairs (+z, -z); the paper samples independently
    standardize: bool = False
    ties: str = "ordinal"  # ordinal | average
    shaping: str = "nes"  # nes (the paper's utilities) | centered_ranks | z_score | raw
    step: str = "sgd"  # sgd (the paper's) | momentum | adam | clipup
    momentum: float = 0.9  # step=momentum and step=clipup, in [0, 1)
    beta1: float = 0.9  # step=adam, in [0, 1)
    beta2: float = 0.999
    eps: float = 1e-8
    max_speed: Optional[float] = None  # step=clipup: the largest update norm; null: 2 x lr
    weight_decay: float = 0.0  # the step follows g - weight_decay * centre (0: off)


@dataclass
class NevergradConfig:
    name: str = "TwoPointsDE"  # an exposed Nevergrad algorithm (hebbian_es.es.nevergrad.EXPOSED)
    popsize: int = 64
    sigma: float = 0.1
    checkpoint_every: int = 10
    archive_min_len: int = 4
    archive_max_len: int = 32
    max_popsize_growth: int = 4
    center: str = "auto"  # auto | recommendation
    budget: Optional[int] = None  # total candidates; only NGOpt uses it


@dataclass
class LocalEvaluatorConfig:
    """evaluator=local and evaluator=serial: worker processes on this machine (1: in-process)."""

    workers: Any = "auto"  # an integer >= 1, or auto (one per core)
    batch_size: int = 64  # lifetimes a worker runs together
    threads_per_worker: int = 1


@dataclass
class DistributedEvaluatorConfig:
    """evaluator=distributed: one share of every generation per torch.distributed rank."""

    distributed: bool = True  # false: this process's own evaluator only (a world of one)
    backend: str = "gloo"
    timeout_s: float = 600.0
    workers_per_rank: int = 1  # >1: each rank also runs its own worker processes
    batch_size: int = 64
    threads_per_worker: int = 1


# --------------------------------------------------------------------------- logger, morphology


@dataclass
class WandbConfig:
    mode: str = "offline"  # offline | online | disabled
    project: str = "hebbian_es"
    entity: Optional[str] = None
    group: Optional[str] = None
    name: Optional[str] = "${env.name}_${rule.name}_s${seed}"
    tags: List[str] = field(default_factory=list)
    dir: Optional[str] = None  # null: the run dir
    id: Optional[str] = None


@dataclass
class LoggerConfig:
    wandb: Optional[WandbConfig] = None  # null: metrics files only


@dataclass
class RandomDamageConfig:
    """One leg, one segment, a length scale drawn uniformly in [scale_low, scale_high]."""

    legs: List[str] = field(default_factory=lambda: ["front_left", "front_right", "back_left", "back_right"])
    segments: List[str] = field(default_factory=lambda: ["hip", "upper", "lower"])
    scale_low: float = 0.25
    scale_high: float = 1.0


@dataclass
class RandomEvalConfig:
    count: int = 20  # fixed random test damages (all unseen)
    seed: int = 12345


@dataclass
class MorphologyConfig:
    """Bodies of envs that have them (env.morphology_kwarg); the paper's by default."""

    train: List[str] = field(default_factory=lambda: ["standard", "front_right_short"])
    test: List[str] = field(default_factory=lambda: ["standard", "front_right_short", "front_left_short"])
    presets: Dict[str, Any] = field(default_factory=dict)  # name -> [{leg, segment, scale}, ...]
    random: RandomDamageConfig = field(default_factory=RandomDamageConfig)
    random_eval: RandomEvalConfig = field(default_factory=RandomEvalConfig)


@dataclass
class VariationConfig:
    """Hidden per-lifetime variation (hebbian_es.envs.variation; docs/benchmark.md)."""

    train: List[str] = field(default_factory=lambda: ["random"])  # presets, or random: drawn per lifetime
    test: List[str] = field(default_factory=lambda: ["nominal"])  # presets; seen/unseen by the training support
    # name -> {parameter: value}: the env's physical ones (BatchEnv.PARAMETERS), action_sign, action_gain, obs_permutation
    presets: Dict[str, Any] = field(default_factory=dict)
    random: Dict[str, Any] = field(default_factory=dict)  # parameter -> [low, high] or {choices: [...]}, per lifetime


# --------------------------------------------------------------------------- root


@dataclass
class SweepConfig:
    name: Optional[str] = None  # set by conf/sweep/<name>.yaml
    compare: Optional[str] = None  # the config group its runs differ in


@dataclass
class FitnessConfig:
    episodes: int = 1  # lifetimes per candidate per generation (mean is the fitness)
    l2_penalty: float = 0.01  # fitness = return - l2_penalty * mean(h^2)
    # all: h = every evolved parameter; coefficients: the Hebbian coefficients only (the reference
    # code: conv and co-evolved weights go unpenalised, and a static run has no penalty)
    l2_params: str = "all"
    # which lifetimes the members of a generation meet: common (the same ones for every member:
    # common random numbers, this project's default) | per_candidate (each its own tracks and
    # initial weights, as the reference code draws them)
    draws: str = "common"


@dataclass
class ValidationConfig:
    every: int = 10  # evaluate the centre every k generations (0: never) ...
    episodes: int = 5  # ... on this many fresh lifetimes
    # keep the validated centre's checkpoint (checkpoints/validation/gen<g>.pt) at every
    # validation, so a checkpoint can be selected by validation afterwards (docs/protocol.md)
    keep_checkpoints: bool = True


@dataclass
class TestConfig:
    __test__ = False  # not a pytest class

    after_fit: bool = True
    checkpoint: str = "last"  # last | best
    episodes: int = 100


def _coefficient_init() -> DistributionConfig:
    return DistributionConfig(kind="normal", low=0.0, high=1.0, mean=0.0, std=1.0)  # the reference code's N(0, 1)


@dataclass
class TrainConfig:
    """The composed config of `python -m hebbian_es` (conf/train.yaml)."""

    env: EnvConfig = MISSING
    rule: RuleConfig = MISSING
    network: NetworkConfig = MISSING
    init: InitConfig = MISSING
    optimizer: Any = MISSING  # a schema of OPTIMIZER_CONFIGS (by optimizer.name)
    evaluator: Any = MISSING  # LocalEvaluatorConfig | DistributedEvaluatorConfig
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    morphology: Optional[MorphologyConfig] = None  # null: the env's own body
    variation: Optional[VariationConfig] = None  # null: the same env every lifetime
    seed: int = 0
    generations: int = 100
    sweep: SweepConfig = field(default_factory=SweepConfig)
    run_dir: str = "${hydra:runtime.output_dir}"
    resume: str = "auto"  # auto | never
    torch_threads: int = 1
    # Stop cleanly at the first generation boundary after this many minutes of this process
    # (status `stopped`; the same command continues the run, also on another machine). null: no budget.
    stop_after_minutes: Optional[float] = None
    progress_bar: bool = True  # one progress line per generation (and per test body) on the console and in train.log
    coefficient_init: DistributionConfig = field(default_factory=_coefficient_init)
    # Where evolved weights start (conv layers, static-baseline weights, co-evolved initial
    # weights); null: the lifetime init distribution (`init`).  Reference code: N(0, 1).
    evolved_init: Optional[DistributionConfig] = None
    fitness: FitnessConfig = field(default_factory=FitnessConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    test: TestConfig = field(default_factory=TestConfig)


# Schemas of the files of each group: conf/<group>/<file>.yaml starts from
# `/schema/<group>/<name>@_here_`.
SCHEMAS: dict[str, dict[str, type]] = {
    "env": {"env": EnvConfig},
    "rule": {"rule": RuleConfig},
    "network": {"network": NetworkConfig},
    "init": {"init": InitConfig},
    "optimizer": {"openai_es": OpenAIESConfig, "pgpe": PGPEConfig, "snes": SNESConfig, "nevergrad": NevergradConfig},
    "evaluator": {"local": LocalEvaluatorConfig, "distributed": DistributedEvaluatorConfig},
    "logger": {"logger": LoggerConfig},
    "morphology": {"morphology": MorphologyConfig},
    "variation": {"variation": VariationConfig},
}

# The Nevergrad algorithms exposed by name (hebbian_es.es.nevergrad.EXPOSED has one entry for each).
NEVERGRAD_NAMES = ("TwoPointsDE", "TBPSA", "DiagonalCMA", "CMA", "NGOpt")
# Every optimizer.name and the schema its settings load as: a saved run's config.yaml reads back as
# its own optimizer's type (the name picks it; a name not here is refused with the allowed ones).
OPTIMIZER_CONFIGS: dict[str, type] = {
    "openai_es": OpenAIESConfig,
    "pgpe": PGPEConfig,
    "snes": SNESConfig,
    **{name: NevergradConfig for name in NEVERGRAD_NAMES},
}
