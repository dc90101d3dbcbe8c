"""The typed configs (hebbian_es.config): Hydra refuses a wrong type or an unknown key
while it composes, in one line and exit 2; valid commands still compose; the composed
config becomes objects once; a built task travels to workers whole."""

from __future__ import annotations

import pickle
import subprocess
import sys
from dataclasses import replace
from importlib.resources import files
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from hebbian_es import config
from hebbian_es.core.task import build_task
from hebbian_es.errors import ConfigError

# ---- the CLI: one line, exit 2, nothing written ---------------------------------------------------
# (overrides, the one stderr line); refused while Hydra composes, before any directory exists.
REFUSED = {
    "wrong_type": (["optimizer.popsize=abc"], "error: optimizer.popsize=abc: must be an integer"),
    "wrong_type_float": (["optimizer.sigma=big"], "error: optimizer.sigma=big: must be a number"),
    "wrong_type_bool": (["rule.use_eta=maybe"], "error: rule.use_eta=maybe: must be true or false"),
    "wrong_type_list": (["network.hidden=64"], "error: network.hidden=64: must be a list"),
    "null_not_allowed": (["seed=null"], "error: seed=null: must not be null"),
    "unknown_key": (
        ["optimizer.popsiz=10"],
        "error: optimizer.popsiz: unknown key (allowed: name, popsize, sigma, lr, lr_decay, lr_floor, "
        "sigma_decay, sigma_floor, antithetic, standardize, ties, shaping, step, momentum, beta1, beta2, eps, "
        "max_speed, weight_decay)",
    ),
    "unknown_nested_key": (["env.early_stop.patiense=3"], "error: env.early_stop.patiense: unknown key (allowed: patience, min_steps, window)"),
    "unknown_key_other_schema": (["optimizer=nevergrad", "optimizer.lr=0.1"], "error: optimizer.lr: unknown key (allowed: name, popsize, sigma, checkpoint_every, "),
    "unknown_root_key": (["generation=5"], "error: generation: unknown key (allowed: env, rule, network, init, optimizer, evaluator, "),
    "unknown_key_in_a_list": (["network.conv=[{out_channels:6,kernal:3}]"], "kernal: unknown key (allowed: out_channels, kernel, stride, pool)"),
    "multirun": (["-m", "rule=a,abcd", "optimizer.popsiz=10"], "error: optimizer.popsiz: unknown key (allowed: name, popsize"),
}
# Hydra's `+key=` adds a key without asking the schema: refused at the edge (config.to_object),
# where Hydra has made the (empty) run directory already.
REFUSED_AT_THE_EDGE = {
    "appended_unknown_key": (["+optimizer.popsiz=10"], "error: optimizer.popsiz: unknown key (allowed: name, popsize"),
    "appended_unknown_nested_key": (["+env.early_stop.patiense=3"], "error: env.early_stop.patiense: unknown key (allowed: patience, min_steps, window)"),
}


def _cli(base: Path, cases: dict[str, tuple[list[str], str]]) -> dict[str, SimpleNamespace]:
    procs = {}
    for name, (overrides, _) in cases.items():
        cwd = base / f"cwd_{name}"
        cwd.mkdir()
        cmd = [sys.executable, "-m", "hebbian_es", *overrides, f"hydra.run.dir={base / name}", f"hydra.sweep.dir={base / name}"]
        procs[name] = (cwd, subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    out = {}
    for name, (cwd, proc) in procs.items():
        stdout, stderr = proc.communicate(timeout=180)
        out[name] = SimpleNamespace(returncode=proc.returncode, stdout=stdout, stderr=stderr, cwd=cwd, run_dir=base / name)
    return out


@pytest.fixture(scope="module")
def refusals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SimpleNamespace]:
    return _cli(tmp_path_factory.mktemp("refused"), {**REFUSED, **REFUSED_AT_THE_EDGE})


@pytest.mark.parametrize("case", sorted({**REFUSED, **REFUSED_AT_THE_EDGE}))
def test_the_schema_refuses_in_one_line_with_exit_2(refusals: dict[str, SimpleNamespace], case: str) -> None:
    res = refusals[case]
    _, line = {**REFUSED, **REFUSED_AT_THE_EDGE}[case]
    assert res.returncode == 2, res.stderr
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("error: "), res.stderr
    assert line in res.stderr, res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    assert not any(res.cwd.iterdir()), sorted(res.cwd.rglob("*"))
    # refused while composing, or at the edge after Hydra made its output dir: no dir left
    assert not res.run_dir.exists(), sorted(res.run_dir.rglob("*"))


def test_an_unknown_group_choice_is_one_line_naming_the_allowed_configs(tmp_path: Path) -> None:
    res = _cli(tmp_path, {"unknown_choice": (["rule=nope"], "")})["unknown_choice"]
    assert res.returncode == 2
    line = res.stderr.strip()
    assert line.startswith("error: rule=nope: no such rule config (allowed: a, abc, abcd, ") and "\n" not in line, line
    assert line.endswith(", static)") and "oja" in line
    assert not res.run_dir.exists()


# ---- valid commands compose -------------------------------------------------------------------------
VALID = {
    "gymnasium_id": ["env=Acrobot-v1"],
    "experiment": ["experiment=ant_damage_paper"],
    "experiment_static": ["experiment=ant_damage_paper_static"],
    "experiment_pixels": ["experiment=carracing_paper"],
    "own_body": ["env=ant", "morphology=paper", "+morphology.presets.my_body=[{leg: back_left, segment: upper, scale: 0.5}]", "morphology.test=[my_body]"],
    "sweep": ["sweep=rule_ablation"],
    "nevergrad": ["optimizer=nevergrad", "optimizer.name=TBPSA", "optimizer.budget=640"],
    "distributed": ["evaluator=distributed", "evaluator.workers_per_rank=2"],
    "wandb": ["logger=wandb", "logger.wandb.tags=[a,b]"],
    "debug": ["debug=default"],
    "launcher": ["hydra/launcher=local"],
}


@pytest.fixture(scope="module")
def shown(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SimpleNamespace]:
    """`python -m hebbian_es --cfg job --resolve <overrides>` of every valid case, run at once."""
    base = tmp_path_factory.mktemp("shown")
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "hebbian_es", "--cfg", "job", "--resolve", *overrides, "run_dir=unused"],
            cwd=base, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for name, overrides in VALID.items()
    }  # fmt: skip
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=180)
        out[name] = SimpleNamespace(returncode=proc.returncode, stdout=stdout, stderr=stderr)
    return out


@pytest.mark.parametrize("case", sorted(VALID))
def test_valid_commands_compose_through_the_cli(shown: dict[str, SimpleNamespace], case: str) -> None:
    res = shown[case]
    assert res.returncode == 0, res.stderr
    typed = config.to_object(OmegaConf.create(res.stdout))  # as a saved config.yaml reads back
    assert isinstance(typed, config.TrainConfig)
    if case == "gymnasium_id":
        assert typed.env.id == typed.env.name == "Acrobot-v1"
    if case == "own_body":
        assert typed.morphology.presets["my_body"] == [{"leg": "back_left", "segment": "upper", "scale": 0.5}]
        assert [e.name for e in build_task(typed, "test").envs][0] == "my_body"
    if case == "nevergrad":
        assert isinstance(typed.optimizer, config.NevergradConfig) and typed.optimizer.budget == 640
    if case == "distributed":
        assert isinstance(typed.evaluator, config.DistributedEvaluatorConfig) and typed.evaluator.workers_per_rank == 2


@pytest.mark.slow
def test_a_multirun_over_rules_runs_each_job(tmp_path: Path) -> None:
    cmd = [
        sys.executable, "-m", "hebbian_es", "-m", "rule=a,abcd", "debug=default", "generations=1",
        "test.after_fit=false", "validation.every=0", f"hydra.sweep.dir={tmp_path}",
    ]  # fmt: skip
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for job, rule in ((0, "a"), (1, "abcd")):
        assert config.load(tmp_path / str(job) / "config.yaml").rule.name == rule


# ---- in process: the edge --------------------------------------------------------------------------
def test_to_object_gives_the_schemas_of_the_chosen_files(compose_config) -> None:
    cfg = compose_config()
    assert isinstance(cfg, config.TrainConfig)
    assert isinstance(cfg.optimizer, config.OpenAIESConfig) and isinstance(cfg.evaluator, config.LocalEvaluatorConfig)
    assert isinstance(cfg.env, config.EnvConfig) and isinstance(cfg.env.early_stop, config.EarlyStopConfig)
    assert isinstance(cfg.init, config.InitConfig) and type(cfg.coefficient_init) is config.DistributionConfig
    assert cfg.morphology is None and cfg.logger.wandb is None
    # the network's output activation is the env's (the schema's one default)
    assert cfg.network.output_activation == cfg.env.policy.output_activation == "tanh"
    assert compose_config("env=carracing").network.output_activation == "identity"


def test_a_saved_config_reads_back_equal(compose_config) -> None:
    for overrides in ((), ("experiment=ant_damage_paper", "logger=wandb"), ("optimizer=nevergrad", "evaluator=distributed")):
        raw = compose_config.raw(*overrides)
        saved = OmegaConf.create(OmegaConf.to_yaml(raw, resolve=True))  # what a run writes to config.yaml
        assert config.to_object(saved) == config.to_object(raw)
        assert config.from_container(OmegaConf.to_container(saved)) == config.to_object(raw)


def test_appended_keys_are_refused_at_the_edge(compose_config) -> None:
    with pytest.raises(ConfigError, match=r"^optimizer\.popsiz: unknown key \(allowed: name, popsize"):
        compose_config("++optimizer.popsiz=3")
    with pytest.raises(ConfigError, match=r"^env\.id is missing"):
        compose_config("env=generic")


@pytest.mark.parametrize(
    "overrides, line",
    [
        (["optimizer.popsize=abc"], "optimizer.popsize=abc: must be an integer"),
        (["optimizer.popsiz=10"], "optimizer.popsiz: unknown key (allowed: name, popsize, "),
        (["env.observation.kind=3", "env.observation=3"], "env.observation=3: must be a mapping of kind, resize, crop, scale, interpolation"),
        (["morphology=paper", "morphology.random.legs=front_left"], "morphology.random.legs=front_left: must be a list"),
        (["logger=wandb", "logger.wandb.mod=online"], "logger.wandb.mod: unknown key (allowed: mode, project, "),
    ],
)
def test_error_line_names_the_key(compose_config, overrides: list[str], line: str) -> None:
    with pytest.raises(ConfigCompositionException) as info:
        compose_config.raw(*overrides)
    assert config.error_line(info.value).startswith(line)


def test_error_line_is_none_for_other_errors() -> None:
    assert config.error_line(ValueError("x")) is None
    assert config.error_line(ConfigCompositionException("Could not find 'rule/nope'")) is None


# ---- files that restate the schema agree with it --------------------------------------------------
AGREEING = {
    "train.yaml": config.TrainConfig,
    "optimizer/openai_es.yaml": config.OpenAIESConfig,
    "optimizer/nevergrad.yaml": config.NevergradConfig,
    "optimizer/pgpe.yaml": config.PGPEConfig,
    "optimizer/snes.yaml": config.SNESConfig,
    "evaluator/local.yaml": config.LocalEvaluatorConfig,
    "evaluator/distributed.yaml": config.DistributedEvaluatorConfig,
    "morphology/paper.yaml": config.MorphologyConfig,
    "network/auto.yaml": config.NetworkConfig,
    "init/uniform.yaml": config.InitConfig,
    "logger/wandb.yaml": config.LoggerConfig,
}


def _leaves(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(_leaves(v, f"{prefix}.{k}" if prefix else str(k)))
        return out or {prefix: {}}
    return {prefix: node}


@pytest.mark.parametrize("path", sorted(AGREEING))
def test_files_that_restate_the_schema_agree_with_it(path: str) -> None:
    text = (files("hebbian_es.conf") / path).read_text()
    own = OmegaConf.to_container(OmegaConf.create(text))
    own.pop("defaults", None)
    own.pop("hydra", None)
    schema = OmegaConf.to_container(OmegaConf.structured(AGREEING[path]))
    if path == "logger/wandb.yaml":
        schema = {"wandb": OmegaConf.to_container(OmegaConf.structured(config.WandbConfig))}
    mine = _leaves(own)
    theirs = _leaves(schema)
    assert {k: theirs.get(k, "<not in the schema>") for k in mine} == mine


# ---- workers receive the built task ----------------------------------------------------------------
@pytest.mark.parametrize("overrides", [("network=small",), ("env=carracing", "network=small"), ("env=ant_fast", "morphology=random")])
def test_a_built_task_pickles(compose_config, overrides: tuple[str, ...]) -> None:
    task = build_task(compose_config(*overrides), "test" if "morphology=random" in overrides else "train")
    again = pickle.loads(pickle.dumps(task))
    assert again.fingerprint() == task.fingerprint() and again.envs == task.envs
    assert again.weight_init == task.weight_init and again.coefficient_init == task.coefficient_init
    assert again.initial_center(3).equal(task.initial_center(3))


def test_the_test_protocols_config_is_a_replace_away(compose_config) -> None:
    cfg = compose_config("env=carracing", "network=small")
    off = replace(cfg, env=replace(cfg.env, early_stop=config.EarlyStopConfig()))
    assert build_task(off).envs[0].early_stop.patience is None and build_task(cfg).envs[0].early_stop.patience == 20
