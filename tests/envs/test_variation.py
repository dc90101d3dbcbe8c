"""Hidden per-lifetime variation (envs/variation.py, conf/variation/*.yaml): declared as bodies
are, drawn from the reset seed, the same on the batched path as on one gymnasium env per
lifetime, marked seen/unseen by the training support; bad declarations are one line."""

from __future__ import annotations


import numpy as np
import pytest

from hebbian_es import config
from hebbian_es.core.task import build_task
from hebbian_es.envs.runner import EnvRunner, VectorRunner
from hebbian_es.errors import ConfigError

pytestmark = pytest.mark.filterwarnings("ignore:.*step\\(\\)' even though this environment has already returned terminated")


def task(*overrides: str, phase: str = "train"):
    return build_task(config.to_object(config.compose(["run_dir=unused", "network=small", *overrides])), phase)


@pytest.mark.parametrize(
    "env, variation",
    [("cartpole", "cartpole_physics"), ("cartpole", "cartpole_reversal"), ("cartpole", "cartpole_permutation"),
     ("pendulum", "pendulum_physics"), ("pendulum", "pendulum_reversal")],
)  # fmt: skip
def test_batched_variation_equals_varied_gymnasium_envs(env: str, variation: str) -> None:
    """Every train and test variant: a VectorRunner and one varied gymnasium env per lifetime
    give the same observations, rewards and ends, row for row, to the end of every episode."""
    specs = task(f"env={env}", f"variation={variation}").envs + task(f"env={env}", f"variation={variation}", phase="test").envs
    rng = np.random.default_rng(0)
    for spec in specs:
        seeds = rng.integers(0, 2**31, size=8)
        vec = VectorRunner(spec)
        ref = [EnvRunner(spec) for _ in seeds]  # an EnvRunner is one gymnasium env, whatever env.vector says
        assert np.array_equal(vec.reset(seeds), np.stack([r.reset(int(s)) for r, s in zip(ref, seeds)]))
        alive = np.ones(len(seeds), dtype=bool)
        while alive.any():
            if spec.action.kind == "discrete":
                actions = np.where(rng.random(len(seeds)) < 0.3, rng.integers(0, 2, len(seeds)), (vec.obs[:, 2] > 0).astype(np.int64))
            else:
                actions = rng.uniform(-2.5, 2.5, size=(len(seeds), 1)).astype(np.float32)
            rows = np.flatnonzero(alive)
            rew, done = vec.step(actions, rows)
            for k, i in enumerate(rows):
                o, r, d = ref[i].step(actions[i])
                assert np.array_equal(o, vec.obs[i]) and r == rew[k] and d == done[k], (spec.name, i)
            alive[rows[done]] = False
        for r in ref:
            r.close()


def test_values_come_from_the_reset_seed() -> None:
    (spec,) = task("variation=cartpole_physics").envs
    assert spec.variation is not None
    a, b = spec.variation.draw(123), spec.variation.draw(124)
    assert a == spec.variation.draw(123) and a != b
    assert 0.25 <= a["length"] <= 0.75 and 7.0 <= a["force_mag"] <= 13.0
    vec = VectorRunner(spec)
    vec.reset(np.array([124, 123]))
    assert vec.env.params["length"][1] == a["length"] and vec.env.params["length"][0] == b["length"]


def test_test_variants_are_marked_seen_by_the_training_support() -> None:
    seen = {e.name: e.seen for e in task("variation=cartpole_physics", phase="test").envs}
    assert seen == {"nominal": True, "short_light": True, "long_heavy": False, "weak_push": False, "high_gravity": False}
    seen = {e.name: e.seen for e in task("variation=cartpole_permutation", phase="test").envs}
    assert seen == {"nominal": True, "swapped_pairs": True, "held_out_a": False, "held_out_b": False}
    seen = {e.name: e.seen for e in task("variation=cartpole_reversal", phase="test").envs}
    assert seen == {"nominal": True, "reversed": True, "reversed_long_heavy": False}
    # trained on the nominal pole only: a reversed one was never met
    seen = {e.name: e.seen for e in task("variation=cartpole_reversal", "variation.train=[nominal]", phase="test").envs}
    assert seen == {"nominal": True, "reversed": False, "reversed_long_heavy": False}


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["variation.random.length=[0.8,0.3]"], r"variation.random.length=\[0.8, 0.3\]: low is above high"),
        (["+variation.random.wingspan=[1,2]"], r"unknown parameter 'wingspan'; allowed: \['force_mag', 'gravity', 'length', 'masscart', 'masspole', 'action_sign'"),
        (["variation.test=[nominal,moon]"], r"variation.test entry 'moon' is not known; allowed: \["),
        (["variation.presets.swapped_pairs.obs_permutation=[0,0,1,2]"], r"must be a permutation of 0..3"),
        (["env=LunarLander-v3"], r"variation sets .* but env LunarLander-v3 has no batched implementation"),
    ],
)  # fmt: skip
def test_bad_variation_is_one_line(overrides: list[str], message: str) -> None:
    base = "variation=cartpole_permutation" if "swapped" in overrides[0] else "variation=cartpole_physics"
    with pytest.raises(ConfigError, match=message) as err:
        task(base, *overrides, phase="test")
    assert "\n" not in str(err.value)
