"""The lean quadruped (FastAnt-v0) against AntBulletEnv-v0 (MorphAnt-v0), step by step.

Both envs get the same seed and the same actions; every observation, every reward
term, the total reward, terminated, truncated and info must agree.  Tolerances:
observations 1e-6 absolute and reward terms and the total 1e-9 absolute, flags and
infos exactly; here everything comes out bit-identical (max difference 0).  The
margins are for other machines: the body velocity is rotated without BLAS, whose
float64 rounding may differ in the last bit, which has not been seen to reach the
float32.  The action sequences hit the joint limits and the floor with every
foot, make the torso touch down (terminated) and include out-of-range, zero,
float64 and list actions; a nan state is checked too.  The numpy roundings
FastAnt-v0 redoes in Python (pairwise mean, float32 sums and comparisons) are
checked against numpy directly.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import hebbian_es.envs.ant.bullet  # noqa: F401  (registers MorphAnt-v0)
import hebbian_es.envs.ant.fast  # noqa: F401  (registers FastAnt-v0)
from hebbian_es.envs.ant import morphology as morph
from hebbian_es.envs.ant.bullet import ProgressReward, SettleSteps
from hebbian_es.envs.spec import build_env_spec

ROOT = Path(__file__).resolve().parents[2]
BASE_ID, FAST_ID = "hebbian_es.envs.ant:MorphAnt-v0", "hebbian_es.envs.ant:FastAnt-v0"
OBS_ATOL, REWARD_ATOL = 1e-6, 1e-9


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HEBBIAN_ES_CACHE", str(tmp_path / "cache"))


def action_sequence(seed: int = 0) -> list:
    """460 steps: a hip swing that brings the torso down (terminated), random actions (some
    beyond [-1, 1]), zeros, random again; a float64 array and a list among them."""
    rng = np.random.default_rng(seed)
    hips = np.array([1.0, 0.0] * 4, dtype=np.float32)
    acts = [hips * (1 if (t // 20) % 2 == 0 else -1) for t in range(100)]
    acts += list(rng.uniform(-1.3, 1.3, size=(200, 8)).astype(np.float32))
    acts += [np.zeros(8, dtype=np.float32)] * 60
    acts += list(rng.uniform(-1.0, 1.0, size=(100, 8)).astype(np.float32))
    acts[10] = acts[10].astype(np.float64)
    acts[11] = [float(v) for v in acts[11]]
    return acts


def trajectory(env_id: str, actions: list, seeds=(0,), **kwargs) -> list:
    env = gym.make(env_id, max_episode_steps=10_000, **kwargs)
    out = []
    try:
        for seed in seeds:
            obs, info = env.reset(seed=seed)
            out.append(("reset", obs, info))
            for a in actions:
                obs, r, terminated, truncated, info = env.step(a)
                out.append((obs, r, terminated, truncated, info, list(env.unwrapped.rewards)))
    finally:
        env.close()
    return out


def assert_same(base: list, fast: list) -> dict:
    assert len(base) == len(fast)
    stats = {"obs": 0.0, "reward": 0.0, "terminated": 0, "feet": np.zeros(4), "at_limit": 0}
    for k, (b, f) in enumerate(zip(base, fast)):
        if isinstance(b[0], str):
            assert isinstance(f[0], str)
            assert f[1].dtype == b[1].dtype == np.float32 and f[1].shape == b[1].shape == (28,)
            np.testing.assert_allclose(f[1], b[1], rtol=0, atol=OBS_ATOL, err_msg=f"reset obs, entry {k}")
            assert f[2] == b[2], k
            continue
        (bo, br, bte, btr, binfo, bterms), (fo, fr, fte, ftr, finfo, fterms) = b, f
        assert fo.dtype == bo.dtype == np.float32 and fo.shape == bo.shape == (28,)
        np.testing.assert_allclose(fo, bo, rtol=0, atol=OBS_ATOL, err_msg=f"obs at entry {k}")
        np.testing.assert_allclose(fterms, bterms, rtol=0, atol=REWARD_ATOL, err_msg=f"reward terms at entry {k}")
        assert abs(fr - br) <= REWARD_ATOL, k
        assert (fte, ftr, finfo) == (bte, btr, binfo), k
        assert type(fte) is type(bte) is bool and type(fr) is type(br)
        stats["obs"] = max(stats["obs"], float(np.abs(fo - bo).max()))
        stats["reward"] = max(stats["reward"], float(np.abs(np.subtract(fterms, bterms)).max()), abs(fr - br))
        stats["terminated"] += bte
        stats["feet"] += bo[24:]
        stats["at_limit"] += bterms[3] != 0
    return stats


@pytest.mark.parametrize("preset,reset_as_built", [("standard", True), ("front_right_short", True), ("standard", False)])
def test_same_observations_rewards_and_flags_as_antbulletenv(preset, reset_as_built):
    damages = morph.resolve(preset).as_kwargs()
    acts = action_sequence()
    # seeds 0, 1, 0: the first reset of a built body, later ones (restoreState), a repeat;
    # reset_as_built=False: AntBulletEnv-v0's own later resets (the floor among the parts)
    base = trajectory(BASE_ID, acts, seeds=(0, 1, 0), damages=damages, reset_as_built=reset_as_built)
    fast = trajectory(FAST_ID, acts, seeds=(0, 1, 0), damages=damages, reset_as_built=reset_as_built)
    stats = assert_same(base, fast)
    # the sequences reach what they are meant to: terminations, every foot on the floor, joint limits
    assert stats["terminated"] > 0 and (stats["feet"] > 0).all() and stats["at_limit"] > 0
    print(f"{preset}: max |obs diff| {stats['obs']:.3g}, max |reward diff| {stats['reward']:.3g}")


def test_a_short_run_matches_with_the_project_wrappers():
    """ProgressReward(index=1) and SettleSteps work unchanged on FastAnt-v0."""

    def run(env_id):
        env = SettleSteps(ProgressReward(gym.make(env_id, max_episode_steps=100)), steps=40)
        try:
            out = [env.reset(seed=5)[0]]
            for a in action_sequence(1)[:80]:
                obs, r, te, tr, info = env.step(a)
                out.append((obs, r, te, tr, info["total_reward"]))
                if tr:
                    break
            return out
        finally:
            env.close()

    base, fast = run(BASE_ID), run(FAST_ID)
    np.testing.assert_allclose(fast[0], base[0], rtol=0, atol=OBS_ATOL)
    assert len(fast) == len(base) == 61, "40 settling steps count in the 100-step limit"
    for (bo, br, bte, btr, btot), (fo, fr, fte, ftr, ftot) in zip(base[1:], fast[1:]):
        np.testing.assert_allclose(fo, bo, rtol=0, atol=OBS_ATOL)
        assert abs(fr - br) <= REWARD_ATOL and abs(ftot - btot) <= REWARD_ATOL and (fte, ftr) == (bte, btr)


def test_observations_beyond_the_clip_match():
    """Throw the body (the same base velocity set in both worlds) so the rotated speeds pass ±5."""
    import pybullet

    def run(env_id, push):
        env = gym.make(env_id, max_episode_steps=1000)
        out = []
        try:
            env.reset(seed=2)
            for t, a in enumerate(action_sequence(5)[:80]):
                if t % 10 == 5:
                    push(env.unwrapped, [40.0 - t, -30.0, 25.0])
                obs, r, te, _, _ = env.step(a)
                out.append((obs, list(env.unwrapped.rewards), te))
        finally:
            env.close()
        return out

    base = run(BASE_ID, lambda e, v: e.inner.robot.robot_body.reset_velocity(linearVelocity=v))
    fast = run(FAST_ID, lambda e, v: pybullet.resetBaseVelocity(e._ant, v, [0, 0, 0], physicsClientId=e._cid))
    for (bo, bterms, bte), (fo, fterms, fte) in zip(base, fast):
        np.testing.assert_allclose(fo, bo, rtol=0, atol=OBS_ATOL)
        np.testing.assert_allclose(fterms, bterms, rtol=0, atol=REWARD_ATOL)
        assert fte == bte
    assert sum(int((np.abs(o) == 5).sum()) for o, _, _ in fast) > 5, "some values were clipped"


def test_random_damage_rebuilds_only_when_the_body_changes_and_matches():
    spec = {"legs": ["back_right"], "segments": ["lower"]}
    acts = action_sequence(2)[:30]
    base = trajectory(BASE_ID, acts, seeds=(3, 3, 4, 3), random_damage=spec)
    fast = trajectory(FAST_ID, acts, seeds=(3, 3, 4, 3), random_damage=spec)
    assert_same(base, fast)
    env = gym.make(FAST_ID, random_damage=spec)
    try:
        a = env.reset(seed=3)[1]["damages"]
        builds = env.unwrapped.builds
        assert env.reset(seed=3)[1]["damages"] == a and env.unwrapped.builds == builds, "same body: no rebuild"
        b = env.reset(seed=4)[1]["damages"]
        assert b != a and env.unwrapped.builds == builds + 1, "a new body is a new world"
        assert a[0][:2] == ("back_right", "lower") and 0.25 <= a[0][2] <= 1.0
    finally:
        env.close()


@pytest.mark.parametrize("env_id", [FAST_ID, BASE_ID])
def test_the_same_seed_gives_the_same_trajectory_whatever_ran_before_on_the_instance(env_id):
    """Every reset is the first reset of a newly built env (reset_as_built, the default), as
    in the reference code's new env per lifetime: a lifetime's numbers cannot depend on which
    lifetimes an instance ran before (a resumed training run equals an uninterrupted one)."""
    acts = action_sequence(3)[:60]

    def episode(env, seed):
        obs, rewards = [env.reset(seed=seed)[0]], []
        for a in acts:
            o, r, *_ = env.step(a)
            obs.append(o)
            rewards.append(r)
        return np.array(obs), np.array(rewards)

    def episodes(reset_as_built):
        env, fresh = gym.make(env_id, reset_as_built=reset_as_built), gym.make(env_id, reset_as_built=reset_as_built)
        try:
            return [episode(env, seed) for seed in (7, 7, 8, 7)], episode(fresh, 7)
        finally:
            env.close()
            fresh.close()

    (first, again, other, after_other), new = episodes(True)
    for run in (again, after_other, new):
        for x, y in zip(first, run):
            np.testing.assert_array_equal(x, y)
    assert not np.allclose(other[0][0], first[0][0]), "the initial joint angles come from the seed"
    assert np.abs(other[0] - first[0]).max() > 1e-3
    # AntBulletEnv-v0's own behaviour (reset_as_built=False; the equivalence test checks both envs
    # do the same): the first reset of a built world averages the parts without the floor, later
    # ones with it, so only the reset's sin(angle to target) and the first step's progress differ.
    (first, again, _, after_other), new = episodes(False)
    for x, y in zip(again, after_other):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(first, new):
        np.testing.assert_array_equal(x, y)
    (obs1, r1), (obs2, r2) = first, again
    assert [tuple(i) for i in np.argwhere(obs1 != obs2)] == [(0, 1)]
    assert np.flatnonzero(r1 != r2).tolist() == [0]


# ---- FastAnt-v0 redoes a few numpy operations in Python (cheaper per step); they must round as numpy
@pytest.mark.parametrize("n", [8, 13, 16, 21, 22, 23, 64, 127])
def test_the_parts_mean_sums_as_numpy_does(n):
    """body_xyz is np.mean over the parts' positions: numpy's pairwise summation."""
    from hebbian_es.envs.ant.fast import _pairwise_sum

    rng = np.random.default_rng(n)
    for _ in range(2000):
        a = rng.normal(size=n) * 10.0 ** rng.integers(-8, 4, size=n)
        total = _pairwise_sum(tuple(a.tolist()))
        assert total == float(np.add.reduce(a)) and total / n == float(np.mean(a))
        strided = np.zeros(3 * n)
        strided[0::3] = a  # the layout pybullet_envs_gymnasium takes the mean of
        assert total / n == float(strided[0::3].mean())


def test_the_electricity_means_round_as_numpy_float32_does():
    """np.abs(a * joint_speeds).mean() and np.square(a).mean() on float32 arrays of 8."""
    from hebbian_es.envs.ant.fast import _f32_mean8_pair

    rng = np.random.default_rng(0)
    for k in range(20_000):
        a = (rng.uniform(-1.5, 1.5, 8) * 10.0 ** rng.integers(-6, 1, 8)).astype(np.float32)
        speeds = (rng.normal(size=8) * 10.0 ** rng.integers(-8, 2, 8)).astype(np.float32)
        if k % 5 == 0:
            a[rng.integers(8)] = 0.0
        if k % 7 == 0:
            speeds[:] = 0.0
        got = _f32_mean8_pair(a.tolist(), speeds.tolist())
        assert got == (float(np.abs(a * speeds).mean()), float(np.square(a).mean()))
    tiny = np.full(8, 1e-20, dtype=np.float32)  # a sum below float32's normal range
    assert _f32_mean8_pair(tiny.tolist(), tiny.tolist())[0] == float(np.abs(tiny * tiny).mean())


def test_joints_at_the_limit_compare_in_float32_as_numpy_does():
    from hebbian_es.envs.ant.fast import _AT_LIMIT

    t = np.float32(0.99)
    edges = [float(t), float(np.nextafter(t, np.float32(2))), 0.99, (float(t) + float(np.nextafter(t, np.float32(2)))) / 2]
    edges += [float(np.nextafter(e, 2.0)) for e in edges] + [float(np.nextafter(e, 0.0)) for e in edges]
    x = np.concatenate([np.random.default_rng(0).uniform(0.985, 0.995, 100_000), edges])
    x = np.concatenate([x, -x])
    numpy_says = np.abs(x.astype(np.float32)) > 0.99
    assert ((x > _AT_LIMIT) | (x < -_AT_LIMIT)).tolist() == numpy_says.tolist()


def test_a_nan_state_is_terminated_as_in_antbulletenv(monkeypatch):
    """A non-finite body velocity: the original prints ~INF~ and ends the episode."""
    import pybullet

    import hebbian_es.envs.ant.fast as ant_fast

    acts = action_sequence(4)[:6]

    def run(env_id):
        env = gym.make(env_id, max_episode_steps=100)
        try:
            env.reset(seed=0)
            out = [env.step(a)[:3] + (list(env.unwrapped.rewards),) for a in acts[:5]]
            real = pybullet.getBaseVelocity
            with monkeypatch.context() as m:
                nan_velocity = lambda *a, **k: ((float("nan"), 0.0, 0.0), real(*a, **k)[1])  # noqa: E731
                m.setattr(pybullet, "getBaseVelocity", nan_velocity)
                m.setattr(ant_fast, "_getBaseVelocity", nan_velocity)
                out.append(env.step(acts[5])[:3] + (list(env.unwrapped.rewards),))
            return out
        finally:
            env.close()

    base, fast = run(BASE_ID), run(FAST_ID)
    for (bo, br, bte, bterms), (fo, fr, fte, fterms) in zip(base, fast):
        np.testing.assert_allclose(fo, bo, rtol=0, atol=OBS_ATOL)  # nan where nan
        np.testing.assert_allclose(fterms, bterms, rtol=0, atol=REWARD_ATOL)
        assert fte == bte
    assert np.isnan(fast[-1][0][3:6]).all() and fast[-1][2] is True  # the three rotated speeds


def test_spaces_several_envs_in_one_process_rendering_and_bad_actions():
    a, b = gym.make(FAST_ID, render_mode="rgb_array"), gym.make(FAST_ID)
    base = gym.make(BASE_ID)
    try:
        assert a.observation_space == base.observation_space and a.action_space == base.action_space
        oa, ob = a.reset(seed=0)[0], b.reset(seed=1)[0]
        assert not np.array_equal(oa, ob)
        for _ in range(5):
            a.step(np.ones(8, dtype=np.float32))
        assert np.array_equal(b.step(np.zeros(8, dtype=np.float32))[0], trajectory(FAST_ID, [np.zeros(8, dtype=np.float32)], seeds=(1,))[1][0])
        frame = a.render()
        assert frame.shape == (240, 320, 3) and frame.dtype == np.uint8 and frame.std() > 0
        assert b.render() is None
        with pytest.raises(AssertionError):
            b.step(np.array([np.nan] + [0.0] * 7, dtype=np.float32))
        with pytest.raises(AssertionError):
            base.reset(seed=0)
            base.step(np.array([np.nan] + [0.0] * 7, dtype=np.float32))
    finally:
        for env in (a, b, base):
            env.close()


def test_env_ant_fast_is_env_ant_with_another_id(compose_config):
    fast = compose_config("env=ant_fast", "morphology=paper")
    slow = compose_config("env=ant", "morphology=paper")
    paper = compose_config("experiment=ant_damage_paper", "env=ant_fast")
    assert (fast.env.id, fast.env.name) == (FAST_ID, "ant_fast")
    assert replace(fast, env=replace(fast.env, id=slow.env.id, name=slow.env.name)) == slow
    assert paper.env.id == FAST_ID and paper.morphology.train == ["standard", "front_right_short"]
    spec = build_env_spec(fast.env)
    assert spec.observation.shape == (28,) and spec.action.size == 8


def test_the_benchmark_prints_its_table():
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_ant_env.py"), "--steps", "50", "--warmup", "5", "--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    rows = done.stdout.strip().splitlines()[-4:]
    assert [r.split()[0] for r in rows] == ["AntBulletEnv-v0", "FastAnt-v0", "physics", "physics"]
    assert rows[0].endswith("1.00x")
