"""Each episode-protocol option does exactly what it says (docs/protocol.md), on a scripted env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from hebbian_es.envs.ant.bullet import SettleSteps
from hebbian_es.envs.runner import EnvRunner
from hebbian_es.envs.spec import EarlyStop, EnvSpec


class ScriptedEnv(gym.Env):
    """Reward +1, or -1 from step `negative_from` on; terminated from step `terminated_from` on."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def __init__(self, negative_from: int = 10**9, terminated_from: int = 10**9) -> None:
        self.negative_from, self.terminated_from = negative_from, terminated_from
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        t, self.t = self.t, self.t + 1
        reward = -1.0 if t >= self.negative_from else 1.0
        return np.ones(1, np.float32), reward, t >= self.terminated_from, False, {}


gym.register(id="HebbianEsScripted-v0", entry_point=ScriptedEnv, max_episode_steps=1000)


def lifetime_steps(**spec: object) -> int:
    make_kwargs = spec.pop("make_kwargs")
    runner = EnvRunner(EnvSpec(id="HebbianEsScripted-v0", make_kwargs=make_kwargs, **spec))  # type: ignore[arg-type]
    runner.reset(0)
    done = False
    while not done:
        _, _, done = runner.step(np.zeros(1, np.float32))
    return runner.steps


REFERENCE = dict(end_on_terminated=True, terminated_after=200)


def test_terminated_from_t250_ends_at_251_steps_under_the_reference_rule() -> None:
    assert lifetime_steps(make_kwargs={"terminated_from": 250}, **REFERENCE) == 251


def test_terminated_before_t201_is_ignored_under_the_reference_rule() -> None:
    assert lifetime_steps(make_kwargs={"terminated_from": 0}, **REFERENCE) == 202  # ends at t = 201


def test_terminated_runs_to_the_limit_when_not_ending_lifetimes() -> None:
    assert lifetime_steps(make_kwargs={"terminated_from": 250}, end_on_terminated=False) == 1000


def test_terminated_ends_at_once_without_a_threshold() -> None:
    assert lifetime_steps(make_kwargs={"terminated_from": 5}, end_on_terminated=True) == 6


def test_negative_streak_from_t150_stops_at_232_under_the_reference_window() -> None:
    stop = EarlyStop(patience=30, min_steps=200, window="after_min_steps")
    assert lifetime_steps(make_kwargs={"negative_from": 150}, early_stop=stop) == 232  # stop at t = 231


def test_negative_streak_from_t150_stops_at_201_counting_every_step() -> None:
    stop = EarlyStop(patience=30, min_steps=200, window="all_steps")
    assert lifetime_steps(make_kwargs={"negative_from": 150}, early_stop=stop) == 201  # stop at t = 200


def test_a_positive_step_resets_the_streak_inside_the_window() -> None:
    stop = EarlyStop(patience=30, min_steps=200, window="after_min_steps")
    assert lifetime_steps(make_kwargs={"negative_from": 600}, early_stop=stop) == 631  # t = 600..630: 31 negative steps


@pytest.mark.parametrize("observe, first", [("reset", 0.0), ("settled", 1.0)])
def test_settle_steps_first_observation(observe: str, first: float) -> None:
    env = SettleSteps(ScriptedEnv(), steps=3, count_in_limit=False, observe=observe)
    obs, _ = env.reset(seed=0)
    assert float(obs[0]) == first
    assert env.unwrapped.t == 3  # the body settled either way


def test_settle_steps_refuses_an_unknown_observe() -> None:
    with pytest.raises(ValueError, match="observe='last'; allowed"):
        SettleSteps(ScriptedEnv(), observe="last")


def test_l2_term_over_coefficients_only(compose_config) -> None:
    from hebbian_es.core.task import build_task
    from hebbian_es.es.evaluators import _Workspace

    for scope, want in (("all", None), ("coefficients", 1.0)):
        task = build_task(compose_config("init=coevolve", "network=small", f"fitness.l2_params={scope}"))
        kinds = task.layout.kinds()
        params = torch.where(kinds, torch.tensor(1.0), torch.tensor(3.0)).unsqueeze(0)
        got = float(_Workspace(task)._mean_sq(params)[0])
        expected = want if want is not None else float(params.pow(2).mean())
        assert got == pytest.approx(expected)
    static = build_task(compose_config("rule=static", "network=small", "fitness.l2_params=coefficients"))
    assert float(_Workspace(static)._mean_sq(torch.ones(1, static.layout.size))[0]) == 0.0


def test_drawdown_after_reaching_the_threshold() -> None:
    from hebbian_es.core.rollout import drawdown_after

    nan = float("nan")
    rows = np.array([
        [50, 60, 10, 5, nan],      # reaches 110 at t=1, then only forward: drawdown 0
        [50, 60, -15, 30, nan],    # reaches 110, falls to 95 (15 below its max), recovers: 15
        [50, -20, 60, -5, nan],    # reaches 90 only... then 85: never 100: NaN
        [120, -30, nan, nan, nan],  # reaches 120 at once, ends at 90 (the trace ends at the NaN): 30
        [-30, 60, 80, nan, nan],   # 110 at t=2 (the dip before does not count): 0
    ])
    got = drawdown_after(rows, 100.0)
    assert got[0] == 0 and got[1] == 15 and np.isnan(got[2]) and got[3] == 30 and got[4] == 0


def test_monotone_solved_per_lifetime() -> None:
    from hebbian_es.run.protocol import monotone_solved

    returns = np.array([125.0, 125.0, 95.0, 150.0, float("nan")])
    drawdown = np.array([0.0, 15.0, 0.0, 10.0, 0.0])
    assert monotone_solved(returns, drawdown, 100.0, 10.0).tolist() == [True, False, False, True, False]


def test_a_body_is_solved_when_the_mean_is_reached_and_most_lifetimes_moved_monotonically() -> None:
    from hebbian_es.run.protocol import env_stats

    spec = EnvSpec(id="HebbianEsScripted-v0", solved_threshold=100.0, solved_tolerance=10.0)
    r = np.array([150.0, 150.0, 150.0, 150.0])
    assert env_stats(spec, r, np.array([0.0, 5.0, 20.0, 30.0]))["solved"] is True  # 2 of 4 monotone
    back_and_forth = env_stats(spec, r, np.array([0.0, 50.0, 20.0, 30.0]))
    assert back_and_forth["solved"] is False and back_and_forth["monotone_lifetimes"] == 1
    assert env_stats(spec, np.array([90.0, 90.0]), np.zeros(2))["solved"] is False  # mean below 100
