"""Typed configs: the schema of every config group, the one home of defaults.

Every group in conf/ has a dataclass here (Hydra structured configs).  `register()`
stores them in Hydra's ConfigStore under `schema/<group>` (a group no user picks)
and every YAML of a group starts from its schema:

    # conf/optimizer/openai_es.yaml
    defaults:
      - /schema/optimizer/openai_es@_here_
      - _self_

so Hydra itself rejects a wrong type or an unknown key when it composes the config
(`optimizer.popsize=abc`, `optimizer.popsiz=10`), and a key missing from a YAML
takes the schema's default.  The root schema `TrainConfig` comes first in
train.yaml's defaults; the `@package _global_` overlays (experiment, sweep, debug,
env_defaults) merge into it and are checked by it.

The composed DictConfig becomes objects once, at the edge: `to_object(cfg)` gives a
`TrainConfig` whose fields are these dataclasses (the optimizer and evaluator fields
hold the schema of the chosen file).  Below the edge (core/, envs/, es/) code reads
attributes, never a config dict, and restates no default.

The package: schema.py (the dataclasses), messages.py (the one-line errors),
gymnasium.py (the `env=<gymnasium id>` config source) and here the edge (`to_object`,
`load`, `compose`) and `register()`.  It imports only the standard library, OmegaConf,
Hydra and hebbian_es.errors (gymnasium lazily): it sits below everything else.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from hebbian_es.config.messages import error_line, fields_of
from hebbian_es.config.schema import (  # the schema classes are this package's API
    SCHEMAS,
    ObservationConfig,
    ActionConfig,
    EarlyStopConfig,
    PolicyConfig,
    EnvConfig,
    MergeConfig,
    RuleConfig,
    ConvConfig,
    NetworkConfig,
    DistributionConfig,
    InitConfig,
    OpenAIESConfig,
    PGPEConfig,
    SNESConfig,
    NevergradConfig,
    NEVERGRAD_NAMES,
    OPTIMIZER_CONFIGS,
    LocalEvaluatorConfig,
    DistributedEvaluatorConfig,
    WandbConfig,
    LoggerConfig,
    RandomDamageConfig,
    RandomEvalConfig,
    MorphologyConfig,
    VariationConfig,
    SweepConfig,
    FitnessConfig,
    ValidationConfig,
    TestConfig,
    TrainConfig,
)
from hebbian_es.errors import ConfigError

__all__ = [
    "SCHEMAS",
    "ObservationConfig",
    "ActionConfig",
    "EarlyStopConfig",
    "PolicyConfig",
    "EnvConfig",
    "MergeConfig",
    "RuleConfig",
    "ConvConfig",
    "NetworkConfig",
    "DistributionConfig",
    "InitConfig",
    "OpenAIESConfig",
    "PGPEConfig",
    "SNESConfig",
    "NevergradConfig",
    "NEVERGRAD_NAMES",
    "OPTIMIZER_CONFIGS",
    "LocalEvaluatorConfig",
    "DistributedEvaluatorConfig",
    "WandbConfig",
    "LoggerConfig",
    "RandomDamageConfig",
    "RandomEvalConfig",
    "MorphologyConfig",
    "VariationConfig",
    "SweepConfig",
    "FitnessConfig",
    "ValidationConfig",
    "TestConfig",
    "TrainConfig",
    "error_line",
    "optimizer_schema",
    "to_object",
    "from_container",
    "load",
    "compose",
    "launcher_rank",
    "rank_suffix",
    "register",
]

# --------------------------------------------------------------------------- the edge


def to_object(cfg: DictConfig | Mapping[str, Any]) -> TrainConfig:
    """The composed config as a `TrainConfig`, resolved and checked against the schema.

    Takes Hydra's composed DictConfig, or plain data (a run's saved config.yaml): plain
    data is merged onto the schema first, the optimizer's and evaluator's schemas chosen
    by their content (`optimizer.name` through OPTIMIZER_CONFIGS, `evaluator.distributed`).  A missing or
    unresolvable value, a key the schema does not have (`+optimizer.popsiz=10` gets past
    Hydra) or a value it refuses is a ConfigError naming the key."""
    if isinstance(cfg, DictConfig) and OmegaConf.get_type(cfg) is TrainConfig:
        node = cfg
        if "hydra" in node:  # compose(..., return_hydra_config=True)
            node = copy.deepcopy(node)
            with open_dict(node):
                del node["hydra"]
    else:
        data = OmegaConf.to_container(cfg) if isinstance(cfg, DictConfig) else dict(cfg)
        data.pop("hydra", None)  # type: ignore[union-attr]
        node = _typed(data)  # type: ignore[arg-type]
    _check_keys(node)
    if OmegaConf.is_missing(node.env, "id"):
        raise ConfigError("env.id is missing; set env=<config or gymnasium id> or env.id=<gymnasium id>")
    try:
        out = OmegaConf.to_object(node)
    except MissingMandatoryValue as exc:
        raise ConfigError(f"{exc.full_key} is missing; set {exc.full_key}=<value>") from None
    except OmegaConfBaseException as exc:
        raise ConfigError(error_line(exc) or str(exc).splitlines()[0]) from None
    assert isinstance(out, TrainConfig)
    return out


def _check_keys(node: Any, path: str = "") -> None:
    """Every key of a schema node is a field of its schema (Hydra's `+key=...` and
    `++key=...` add keys without asking the schema)."""
    if isinstance(node, DictConfig):
        allowed = fields_of(OmegaConf.get_type(node))
        for key in node.keys():
            full = f"{path}.{key}" if path else str(key)
            if allowed is not None and key not in allowed:
                raise ConfigError(f"{full}: unknown key (allowed: {', '.join(allowed)})")
            if not OmegaConf.is_missing(node, key) and not OmegaConf.is_interpolation(node, key):
                _check_keys(node._get_node(key), full)
    elif isinstance(node, ListConfig):
        for i in range(len(node)):
            if not OmegaConf.is_missing(node, i) and not OmegaConf.is_interpolation(node, i):
                _check_keys(node._get_node(i), f"{path}[{i}]")


def from_container(data: Mapping[str, Any]) -> TrainConfig:
    """Plain config data (a run's config.yaml, read back) as a TrainConfig: `to_object`."""
    return to_object(data)


def load(path: str | Path) -> TrainConfig:
    """A saved config.yaml (a run directory's) as a TrainConfig."""
    return from_container(OmegaConf.to_container(OmegaConf.load(path)))  # type: ignore[arg-type]


def compose(overrides: Sequence[str] = (), *, return_hydra_config: bool = False) -> DictConfig:
    """The config `python -m hebbian_es <overrides>` composes, outside the app (tests,
    benchmarks, notebooks).  Outside an app `run_dir` has no Hydra output dir to default
    to: pass `run_dir=<dir>` before `to_object`."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():  # left over from another in-process compose or app
        GlobalHydra.instance().clear()
    with initialize_config_module(version_base="1.3", config_module="hebbian_es.conf"):
        return hydra_compose("train", overrides=list(overrides), return_hydra_config=return_hydra_config)


def optimizer_schema(name: Any) -> type:
    """The schema optimizer.name=`name` loads as; an unknown name is a ConfigError naming the allowed ones."""
    if not isinstance(name, str) or name not in OPTIMIZER_CONFIGS:
        raise ConfigError(f"optimizer.name={name!r} is not known; allowed: {sorted(OPTIMIZER_CONFIGS)}")
    return OPTIMIZER_CONFIGS[name]


def _typed(data: Mapping[str, Any]) -> DictConfig:
    optimizer = data.get("optimizer")
    evaluator = data.get("evaluator")
    name = optimizer.get("name", OpenAIESConfig.name) if isinstance(optimizer, Mapping) else OpenAIESConfig.name
    schema = TrainConfig(
        optimizer=optimizer_schema(name)(),
        evaluator=DistributedEvaluatorConfig() if isinstance(evaluator, Mapping) and "distributed" in evaluator else LocalEvaluatorConfig(),
    )
    try:
        return OmegaConf.merge(OmegaConf.structured(schema), data)  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        raise ConfigError(error_line(exc) or str(exc).splitlines()[0]) from None


# --------------------------------------------------------------------------- registration


def _int_env(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else None


def launcher_rank() -> tuple[int, int]:
    """(rank, world size) from the launcher's environment alone (1 process if none):
    torchrun's RANK / WORLD_SIZE, or a task of a multi-task SLURM job step."""
    rank, world = _int_env("RANK"), _int_env("WORLD_SIZE")
    if rank is not None and world is not None:
        return rank, world
    # A task of a multi-task job step (srun, as submitit starts jobs); a plain shell
    # inside an allocation has no step and stays a single process.
    tasks, procid = _int_env("SLURM_STEP_NUM_TASKS"), _int_env("SLURM_PROCID")
    if tasks is not None and tasks > 1 and procid is not None:
        return procid, tasks
    return 0, 1


def rank_suffix() -> str:
    """'' on rank 0 (and single-process runs), '.rank<k>' elsewhere: for per-rank log files."""
    rank, _ = launcher_rank()
    return "" if rank == 0 else f".rank{rank}"


def register() -> None:
    """What `hebbian_es.conf` needs before Hydra composes: the schemas in the ConfigStore,
    the `hebbian_es.rank_suffix` resolver and the `env=<gymnasium id>` config source."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(group="schema", name="train", node=TrainConfig)
    for group, nodes in SCHEMAS.items():
        for name, node in nodes.items():
            cs.store(group=f"schema/{group}", name=name, node=node)
    # '' on rank 0, '.rank<k>' on other ranks of a distributed run: per-rank log files
    OmegaConf.register_new_resolver("hebbian_es.rank_suffix", rank_suffix, replace=True)
    from hebbian_es.config.gymnasium import register as register_gymnasium_source

    register_gymnasium_source()
