"""EnvPool: env instances live across generations, and a bound on how many bodies keep theirs
(the test protocol runs 23 bodies one after another; at 29 MB per pybullet instance an
unbounded pool held 16 GB and was killed)."""

from __future__ import annotations

import pytest

from hebbian_es.envs import runner as runner_module
from hebbian_es.envs.runner import EnvPool
from hebbian_es.envs.spec import EnvSpec


@pytest.fixture
def closed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the specs whose runners were closed, one entry per runner."""
    names: list[str] = []
    original = runner_module.EnvRunner.close

    def close(self: runner_module.EnvRunner) -> None:
        names.append(self.spec.name)
        original(self)

    monkeypatch.setattr(runner_module.EnvRunner, "close", close)
    return names


def body(name: str) -> EnvSpec:
    return EnvSpec(id="CartPole-v1", name=name)


def test_an_unbounded_pool_keeps_every_spec_and_reuses_instances(closed: list[str]) -> None:
    pool = EnvPool()
    a = pool.get(body("a"), 3)
    pool.get(body("b"), 2)
    assert pool.get(body("a"), 2) == a[:2]  # the same instances, not new ones
    assert len(pool) == 5 and closed == []
    pool.close()
    assert sorted(closed) == ["a"] * 3 + ["b"] * 2 and len(pool) == 0


def test_a_bounded_pool_closes_the_least_recently_used_spec(closed: list[str]) -> None:
    pool = EnvPool(max_specs=2)
    pool.get(body("a"), 2)
    pool.get(body("b"), 1)
    pool.get(body("a"), 1)  # a is now the most recent
    pool.get(body("c"), 1)  # one spec too many: b goes
    assert closed == ["b"] and len(pool) == 3
    pool.get(body("d"), 1)  # then a
    assert closed == ["b", "a", "a"] and len(pool) == 2
    pool.close()


def test_a_pool_bound_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_specs=0"):
        EnvPool(max_specs=0)


def test_the_test_protocol_keeps_only_the_current_bodys_envs(compose_config, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three bodies, 3 lifetimes each: at most one body's instances are alive at any time,
    and the results are those of an unbounded pool (the same lifetimes, reused or not)."""
    import dataclasses

    from hebbian_es.core.task import build_task
    from hebbian_es.run import protocol

    live: list[int] = [0]
    peak: list[int] = [0]
    init, close = runner_module.EnvRunner.__init__, runner_module.EnvRunner.close

    def counted_init(self: runner_module.EnvRunner, spec: EnvSpec) -> None:
        init(self, spec)
        live[0] += 1
        peak[0] = max(peak[0], live[0])

    def counted_close(self: runner_module.EnvRunner) -> None:
        live[0] -= 1
        close(self)

    monkeypatch.setattr(runner_module.EnvRunner, "__init__", counted_init)
    monkeypatch.setattr(runner_module.EnvRunner, "close", counted_close)
    # one gymnasium env per lifetime (env.vector=null): the instances this pool bounds
    cfg = compose_config("env=cartpole", "env.vector=null", "evaluator=serial", "evaluator.batch_size=8")
    task = build_task(cfg, phase="test")
    task = dataclasses.replace(task, envs=tuple(dataclasses.replace(task.envs[0], name=n) for n in "xyz"))
    params = task.initial_center(0)
    bounded = protocol.run_protocol(cfg.evaluator, task, params, 3, 0, False)
    assert peak[0] == 3 and live[0] == 0  # one body's 3 instances at a time, all closed at the end

    pool_init = EnvPool.__init__
    monkeypatch.setattr(EnvPool, "__init__", lambda self, max_specs=None: pool_init(self, None))  # the old, unbounded pool
    peak[0] = 0
    unbounded = protocol.run_protocol(cfg.evaluator, task, params, 3, 0, False)
    assert peak[0] == 9
    assert bounded["envs"] == unbounded["envs"]
