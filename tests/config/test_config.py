"""The Hydra config tree: every shipped choice composes and builds; bad input raises ConfigError."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from hebbian_es import config
from hebbian_es.config import OpenAIESConfig, TrainConfig
from hebbian_es.core.task import build_task
from hebbian_es.errors import ConfigError
from hebbian_es.es import make_optimizer


def _group(name: str) -> list[str]:
    return sorted(p.name[: -len(".yaml")] for p in (files("hebbian_es.conf") / name).iterdir() if p.name.endswith(".yaml"))


RULE_FILES = _group("rule")
INIT_FILES = _group("init")
# observation size (features after the conv stack for pixels), number of network outputs
ENVS = {"cartpole": (4, 2), "pendulum": (3, 1), "lunarlander": (8, 2), "carracing": (648, 3)}
NETWORKS = {
    "cartpole": ["auto", "small", "mlp"],
    "pendulum": ["auto", "small", "mlp"],
    "lunarlander": ["auto", "small", "mlp"],
    "carracing": ["auto", "small", "cnn_mlp"],
}
HIDDEN = {"auto": (128, 64), "mlp": (128, 64), "cnn_mlp": (128, 64), "small": (32, 16)}


def test_groups_are_the_expected_ones():
    assert {"a", "ad", "abc", "abcd", "abcd_d_out", "abcd_d_in_out", "static"} <= set(RULE_FILES)
    assert {"uniform", "normal", "coevolve", "xavier", "kaiming", "sparse", "zeros", "ones"} <= set(INIT_FILES)
    assert set(ENVS) <= set(_group("env"))
    assert {"auto", "small", "mlp", "cnn_mlp"} <= set(_group("network"))


def validate(cfg: TrainConfig):
    """What a run checks before it writes anything: the task and the optimiser."""
    task = build_task(cfg)
    make_optimizer(cfg.optimizer)
    return task


def _cases():
    cases = []
    # cartpole: the full rule x init product, networks rotating through the grid
    for r, rule in enumerate(RULE_FILES):
        for i, init in enumerate(INIT_FILES):
            cases.append(("cartpole", rule, init, NETWORKS["cartpole"][(r + i) % 3]))
    # every other env: each rule, each init and each network at least once
    for env in ("pendulum", "lunarlander", "carracing"):
        for k in range(max(len(RULE_FILES), len(INIT_FILES))):
            cases.append((env, RULE_FILES[k % len(RULE_FILES)], INIT_FILES[k % len(INIT_FILES)], NETWORKS[env][k % 3]))
    return cases


@pytest.mark.parametrize("env,rule,init,network", _cases())
def test_every_choice_composes_and_builds(compose_config, env, rule, init, network):
    cfg = compose_config(f"env={env}", f"rule={rule}", f"init={init}", f"network={network}")
    task = validate(cfg)
    n_features, n_out = ENVS[env]
    hidden = HIDDEN[network]
    sizes = [n_features, *hidden, n_out]
    synapses = sum(sizes[k] * sizes[k + 1] for k in range(len(sizes) - 1))
    counts = task.counts()
    conv = 162 + 1_200 if env == "carracing" else 0

    assert task.rule.name == cfg.rule.name
    assert task.network.hidden == hidden
    assert task.network.feature_size == n_features and task.network.output_size == n_out
    assert counts["static_conv_params"] == conv
    if task.rule.plastic:
        assert counts["plastic_synapses"] == synapses
        rules = synapses if cfg.rule.sharing == "none" else cfg.rule.shared_k  # shared rules: K of them
        assert counts["plastic_coefficients"] == task.rule.coefficients_per_synapse * rules
        assert counts["coevolved_initial_weights"] == (synapses if init == "coevolve" else 0)
        assert counts["static_fc_weights"] == 0
    else:
        assert counts["plastic_coefficients"] == 0 == counts["coevolved_initial_weights"]
        assert counts["static_fc_weights"] == synapses
    assert counts["evolved_total"] == task.layout.size == sum(
        counts[k] for k in ("plastic_coefficients", "static_conv_params", "static_fc_weights", "coevolved_initial_weights", "modulation_weights")
        if k in counts
    )

    # the built task runs: a population of 2 from the initial centre gives finite outputs
    center = task.initial_center(seed=0)
    assert center.shape == (task.layout.size,) and torch.isfinite(center).all()
    policy = task.policy(center.repeat(2, 1))
    policy.reset([0, 1])
    out = policy.forward(torch.rand(2, *task.network.input_shape))
    assert out.shape == (2, n_out) and torch.isfinite(out).all()


def test_carracing_counts_through_the_config(compose_config):
    for overrides in (["env=carracing"], ["experiment=carracing_paper"]):
        cfg = compose_config(*overrides)
        task = validate(cfg)
        counts = task.counts()
        assert counts["plastic_coefficients"] == 456_640
        assert counts["static_conv_params"] == 1_362
        assert counts["plastic_synapses"] == 91_328
        assert task.network.input_shape == (3, 84, 84) and task.network.feature_size == 648
        assert task.network.normalize_weights is True
        env = task.envs[0]
        assert env.id == "CarRacing-v3"
        assert env.action.squash == ("tanh", "sigmoid", "sigmoid")
        assert env.early_stop.patience == 20
    assert cfg.optimizer.popsize == 200


def test_paper_es_defaults(compose_config):
    opt = compose_config().optimizer
    es = make_optimizer(opt)
    assert (es.sigma, es.lr, es.lr_decay, es.lr_floor, es.sigma_decay, es.sigma_floor) == (
        0.1, 0.2, 0.995, 0.001, 0.999, 0.01,
    )
    assert es.antithetic and es.popsize % 2 == 0


@pytest.mark.parametrize(
    "overrides,check",
    [
        (["debug=default"], lambda c: c.optimizer.popsize == 8 and c.generations == 3 and c.evaluator.workers == 1),
        (["evaluator=serial"], lambda c: c.evaluator.workers == 1),
        (["evaluator=local"], lambda c: c.evaluator.workers == "auto"),
        (["logger=wandb"], lambda c: c.logger.wandb.mode == "offline" and c.logger.wandb.name == "cartpole_abcd_s0"),
        (["logger=csv"], lambda c: c.logger.wandb is None),
        (["rule=abcd", "rule.use_eta=false"], lambda c: c.rule == config.RuleConfig(name="abcd", use_eta=False)),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else "",
)
def test_other_groups_compose(compose_config, overrides, check):
    cfg = compose_config(*overrides)
    assert check(cfg)
    task = validate(cfg)
    if "rule.use_eta=false" in overrides:
        assert task.rule.coefficients_per_synapse == 4


def _leaves(node, prefix=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, prefix + (k,))
    else:
        yield prefix, node


@pytest.mark.parametrize("env", _group("env_defaults") if (files("hebbian_es.conf") / "env_defaults").is_dir() else [])
def test_env_defaults_apply_to_their_env_only(compose_config, env):
    own = OmegaConf.to_container(OmegaConf.load(str(files("hebbian_es.conf") / "env_defaults" / f"{env}.yaml")))
    cfg = compose_config(f"env={env}")
    for path, value in _leaves(own):
        node = cfg
        for k in path:
            node = getattr(node, k)
        assert node == value, path
    validate(cfg)
    # the command line still wins over the env's defaults
    assert compose_config(f"env={env}", "optimizer.popsize=10").optimizer.popsize == 10


def test_static_carracing_evolves_92690_weights(compose_config):
    task = validate(compose_config("env=carracing", "rule=static"))
    assert task.layout.size == 92_690 and task.counts()["plastic_coefficients"] == 0


@pytest.mark.parametrize(
    "env_id,kind,n_in,action_kind,n_out",
    [
        ("Acrobot-v1", "vector", 6, "discrete", 3),
        ("MountainCarContinuous-v0", "vector", 2, "box", 1),
        ("FrozenLake-v1", "onehot", 16, "discrete", 4),
    ],
)
def test_any_gymnasium_id_composes_via_the_generic_template(compose_config, env_id, kind, n_in, action_kind, n_out):
    cfg = compose_config(f"env={env_id}", "rule=abcd")
    assert cfg.env.id == env_id and cfg.env.name == env_id
    task = validate(cfg)
    env = task.envs[0]
    assert env.observation.kind == kind and env.observation.shape == (n_in,)
    assert env.action.kind == action_kind and env.action.size == n_out
    if action_kind == "box":
        assert env.action.squash == ("clip",)
    assert task.counts()["plastic_synapses"] == n_in * 128 + 128 * 64 + 64 * n_out


def test_shipped_env_files_still_win_over_the_generic_template(compose_config):
    cfg = compose_config("env=carracing", "rule=abcd")
    assert cfg.env.name == "carracing" and cfg.env.action.squash == ["tanh", "sigmoid", "sigmoid"]


@pytest.mark.parametrize(
    "overrides,key",
    [
        (["init.kind=foo"], "init.kind"),
        (["coefficient_init.kind=foo"], "coefficient_init.kind"),
        (["optimizer.popsize=7"], "optimizer.popsize"),
        (["optimizer.popsize=0"], "optimizer.popsize"),
        (["optimizer.sigma=0"], "optimizer.sigma"),
        (["optimizer.name=cma"], "optimizer.name"),
        (["network.input_size=5"], "network.input_size"),
        (["env=carracing", "network=mlp"], "network.kind"),
        (["env=cartpole", "network=cnn_mlp"], "network.kind"),
        (["network.kind=transformer"], "network.kind"),
        (["network.plastic_layers=[3]"], "network.plastic_layers"),
        (["env=generic", "env.id=Nope-v9"], "env.id"),
        (["env=pendulum", "env.action.squash=foo"], "env.action.squash"),
        (["env=carracing", "env.action.squash=[tanh,sigmoid,wobble]"], "env.action.squash"),
        (["rule.name=abcde"], "rule.name"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else v,
)
def test_bad_input_raises_config_error_naming_the_key(compose_config, overrides, key):
    cfg = compose_config(*overrides)
    with pytest.raises(ConfigError) as info:
        validate(cfg)
    assert key in str(info.value), str(info.value)


def test_generic_env_without_id_raises_config_error(compose_config):
    with pytest.raises(ConfigError, match=r"env\.id"):
        compose_config("env=generic")


def test_network_input_size_matching_the_env_is_accepted(compose_config):
    assert validate(compose_config("env=carracing", "network.input_size=648")).network.feature_size == 648
    assert validate(compose_config("env=cartpole", "network.input_size=4")).network.feature_size == 4


def test_unknown_names_list_the_allowed_values(compose_config):
    with pytest.raises(ConfigError) as info:
        validate(compose_config("init.kind=foo"))
    for allowed in ("uniform", "normal", "xavier", "kaiming", "sparse"):
        assert allowed in str(info.value)
    with pytest.raises(ConfigError) as info:
        validate(compose_config("env=pendulum", "env.action.squash=foo"))
    for allowed in ("tanh", "sigmoid", "clip", "rescale"):
        assert allowed in str(info.value)
    with pytest.raises(ConfigError) as info:
        make_optimizer(OpenAIESConfig(name="nevergrad"))
    assert "openai_es" in str(info.value)


@pytest.mark.parametrize("sweep", _group("sweep"))
def test_every_named_sweep_composes_with_deterministic_dirs(compose_config, sweep):
    cfg = compose_config.raw(f"sweep={sweep}", return_hydra_config=True)
    compare = cfg.sweep.compare
    params = cfg.hydra.sweeper.params
    assert compare in params and "seed" in params and len(str(params.seed).split(",")) == 3
    for choice in str(params[compare]).split(","):  # every swept choice exists and composes
        compose_config(f"sweep={sweep}", f"{compare}={choice}")
    assert "${now" not in OmegaConf.to_yaml(cfg.hydra.sweep)  # no timestamp: a rerun finds (and resumes) its runs
    assert cfg.hydra.sweep.dir == f"outputs/sweeps/{cfg.sweep.name}"
    assert cfg.sweep.name.startswith(sweep)


def test_every_named_sweep_has_its_script_in_sweeps():
    scripts = sorted(Path(__file__).resolve().parents[2].glob("sweeps/*.sh"))
    assert sorted(p.stem for p in scripts) == sorted(_group("sweep"))
    for script in scripts:
        assert f"-m hebbian_es -m sweep={script.stem} " in script.read_text() and script.stat().st_mode & 0o111


def test_launcher_configs_requeue_and_take_site_overrides(compose_config):
    cfg = compose_config.raw("hydra/launcher=slurm", return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.startswith("hydra_plugins.") and launcher._target_.endswith("SlurmLauncher")
    assert launcher.max_num_timeout > 0 and launcher.partition is None  # required: the launcher refuses it unset
    assert launcher.cpus_per_task == 1 and launcher.tasks_per_node == 1
    local = compose_config.raw("hydra/launcher=local", return_hydra_config=True)
    assert local.hydra.launcher._target_.endswith("LocalLauncher")
