"""The quadruped: generated morphologies, the real pybullet env, seen/unseen bodies, bad input."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET

import gymnasium as gym
import numpy as np
import pytest
import torch
from hebbian_es.config import DistributionConfig, EnvConfig
from hebbian_es.envs.ant import morphology as morph
from hebbian_es.envs.ant.bullet import ProgressReward, SettleSteps
from hebbian_es.envs.runner import EnvRunner
from hebbian_es.envs.spec import ActionMapper, ObservationBatcher, build_env_spec
from hebbian_es.errors import ConfigError
from hebbian_es.core.network import NetworkSpec, PolicyPopulation, build_layout
from hebbian_es.core.rollout import run_lifetimes
from hebbian_es.core.rules import get_rule
from hebbian_es.core.task import build_task

LOWER = {leg: segs["lower"] for leg, segs in morph.LEG_GEOMS.items()}
ORIGINAL_LOWER_END = {
    "front_left": (0.4, 0.4),
    "back_left": (-0.4, 0.4),
    "back_right": (-0.4, -0.4),
    "front_right": (0.4, -0.4),
}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HEBBIAN_ES_CACHE", str(tmp_path / "cache"))


def lower_leg_ends(path) -> dict[str, tuple[float, float]]:
    root = ET.parse(path).getroot()
    out = {}
    for leg, geom in LOWER.items():
        v = [float(x) for x in root.find(f".//geom[@name='{geom}']").get("fromto").split()]
        assert v[:3] == [0.0, 0.0, 0.0]
        out[leg] = (v[3], v[4])
    return out


@pytest.mark.parametrize(
    "preset, damaged, end",
    [("standard", None, None), ("front_right_short", "front_right", (0.1, -0.1)), ("front_left_short", "front_left", (0.1, 0.1))],
)
def test_presets_change_exactly_the_intended_lower_leg(preset, damaged, end, tmp_path):
    path = morph.generate_xml(morph.resolve(preset).damages)
    assert str(path).startswith(str(tmp_path / "cache")), "generated files go to the cache, not the source tree"
    ends = lower_leg_ends(path)
    for leg, original in ORIGINAL_LOWER_END.items():
        expected = end if leg == damaged else original
        assert ends[leg] == pytest.approx(expected), leg
    # radius unchanged
    root = ET.parse(path).getroot()
    assert all(root.find(f".//geom[@name='{g}']").get("size") == "0.08" for g in LOWER.values())


def test_a_shortened_upper_leg_keeps_its_lower_leg_attached():
    path = morph.generate_xml((morph.Damage("back_left", "upper", 0.5),))
    root = ET.parse(path).getroot()
    geom = root.find(".//geom[@name='right_leg_geom']")
    parent = next(b for b in root.iter("body") if geom in list(b))
    child = next(c for c in parent if c.tag == "body")
    assert [float(x) for x in geom.get("fromto").split()][3:5] == pytest.approx([-0.1, 0.1])
    assert [float(x) for x in child.get("pos").split()][:2] == pytest.approx([-0.1, 0.1])
    assert lower_leg_ends(path)["back_left"] == pytest.approx((-0.4, 0.4)), "the lower leg itself keeps its length"


def make_ant(damages=None, settle=0, count_in_limit=True, max_steps=1000):
    env = gym.make("hebbian_es.envs.ant:MorphAnt-v0", damages=damages, max_episode_steps=max_steps)
    env = ProgressReward(env)
    return SettleSteps(env, settle, count_in_limit) if settle else env


@pytest.mark.parametrize("preset", ["standard", "front_right_short", "front_left_short"])
def test_the_simulator_loads_every_preset_with_28_observations_and_8_actions(preset):
    env = make_ant(morph.resolve(preset).as_kwargs())
    try:
        obs, info = env.reset(seed=0)
        assert obs.shape == (28,) and env.action_space.shape == (8,)
        assert info["damages"] == [(d.leg, d.segment, d.scale) for d in morph.resolve(preset).damages]
        obs, r, *_ = env.step(np.zeros(8, dtype=np.float32))
        assert np.isfinite(obs).all() and np.isfinite(r)
    finally:
        env.close()


@pytest.mark.parametrize("direction", [1.0, -1.0])
def test_pushing_the_body_along_x_gives_distance_of_that_sign(direction):
    env = make_ant()
    try:
        env.reset(seed=0)
        body = env.unwrapped.inner.robot.robot_body
        total = 0.0
        for _ in range(20):
            body.reset_velocity(linearVelocity=[2.0 * direction, 0.0, 0.0])
            _, r, _, _, info = env.step(np.zeros(8, dtype=np.float32))
            total += r
            assert "total_reward" in info
        assert np.sign(total) == direction and abs(total) > 10
    finally:
        env.close()


@pytest.mark.parametrize("count_in_limit, acting_steps", [(True, 60), (False, 100)])
def test_settling_steps_count_toward_the_limit_only_when_asked(count_in_limit, acting_steps):
    env = make_ant(settle=40, count_in_limit=count_in_limit, max_steps=100)
    try:
        env.reset(seed=0)
        steps, truncated = 0, False
        while not truncated:
            _, _, _, truncated, _ = env.step(np.zeros(8, dtype=np.float32))
            steps += 1
        assert steps == acting_steps
    finally:
        env.close()


def test_random_damage_is_drawn_from_the_reset_seed():
    env = gym.make("hebbian_es.envs.ant:MorphAnt-v0", random_damage={"legs": ["back_right"], "segments": ["lower"]})
    try:
        a = env.reset(seed=3)[1]["damages"]
        b = env.reset(seed=4)[1]["damages"]
        c = env.reset(seed=3)[1]["damages"]
        assert a == c != b and a[0][:2] == ("back_right", "lower") and 0.25 <= a[0][2] <= 1.0
    finally:
        env.close()


# ---- configs: seen/unseen, bad input -------------------------------------------------------
def test_paper_bodies_seen_and_unseen_and_counts(compose_config):
    cfg = compose_config("experiment=ant_damage_paper", "morphology.random_eval.count=3")
    train = build_task(cfg, "train")
    assert [e.name for e in train.envs] == ["standard", "front_right_short"]
    assert train.counts()["plastic_coefficients"] == 61_440
    test = build_task(cfg, "test")
    assert [(e.name, e.seen) for e in test.envs] == [
        ("standard", True),
        ("front_right_short", True),
        ("front_left_short", False),
        ("random_00", False),
        ("random_01", False),
        ("random_02", False),
    ]
    again = build_task(cfg, "test")
    assert [e.make_kwargs for e in again.envs] == [e.make_kwargs for e in test.envs], "random test bodies are seeded"


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["+morphology.presets.bad=[{leg: middle, segment: lower, scale: 0.5}]", "morphology.test=[bad]"], "leg"),
        (["+morphology.presets.bad=[{leg: front_left, segment: toe, scale: 0.5}]", "morphology.test=[bad]"], "segment"),
        (["+morphology.presets.bad=[{leg: front_left, segment: lower, scale: 0}]", "morphology.test=[bad]"], "scale"),
        (["+morphology.presets.bad=[{leg: front_left, segment: lower, scale: 2.5}]", "morphology.test=[bad]"], "scale"),
        (["morphology.train=[]"], "morphology.train"),
        (["+morphology.presets.plain=[]", "morphology.test=[plain]"], "another name"),
        (["morphology.test=[nope]"], "allowed"),
        (["morphology.random.scale_low=0"], "scale"),
    ],
)
def test_bad_bodies_are_one_clear_error(compose_config, overrides, key):
    with pytest.raises(ConfigError, match=key):
        build_task(compose_config("experiment=ant_damage_paper", *overrides), "test")


def test_morphology_on_an_env_without_bodies_is_refused(compose_config):
    cfg = compose_config("morphology=paper")
    with pytest.raises(ConfigError, match="morphology"):
        build_task(cfg)


# ---- an unstable simulator ends the lifetime, ranks worst, and is logged ------------------------
class NanAfter(gym.Wrapper):
    def __init__(self, env, step):
        super().__init__(env)
        self.at, self.t = step, 0

    def reset(self, **kw):
        self.t = 0
        return self.env.reset(**kw)

    def step(self, action):
        obs, r, te, tr, info = self.env.step(action)
        self.t += 1
        if self.t >= self.at:
            obs = np.full_like(obs, np.nan)
        return obs, r, te, tr, info


def test_a_nan_state_ends_that_lifetime_with_nan_return_and_a_warning(caplog):
    spec = build_env_spec(EnvConfig(name="ant", id="hebbian_es.envs.ant:MorphAnt-v0", max_episode_steps=50, end_on_terminated=False))
    runners = [EnvRunner(spec), EnvRunner(spec)]
    runners[1].env = NanAfter(runners[1].env, 5)
    net = NetworkSpec(input_shape=(28,), output_size=8, hidden=(8,), output_activation="tanh")
    rule = get_rule("abcd")
    layout = build_layout(net, rule, False)
    params = torch.randn(2, layout.size) * 0.1
    policy = PolicyPopulation(net, rule, layout, params, DistributionConfig(kind="uniform", low=-0.1, high=0.1))
    with caplog.at_level(logging.WARNING):
        res = run_lifetimes(
            policy, runners, [0, 0], [1, 1], ObservationBatcher(spec.observation), ActionMapper(spec.action), 10_000
        )
    assert np.isfinite(res.returns[0]) and res.steps[0] == 50
    assert np.isnan(res.returns[1]) and res.steps[1] == 5
    assert any("non-finite" in r.getMessage() for r in caplog.records)
    for r in runners:
        r.close()
