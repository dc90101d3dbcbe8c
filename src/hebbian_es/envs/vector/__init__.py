"""Batched numpy versions of gymnasium's classic-control envs: B episodes stepped as arrays.

Each class equals its gymnasium env step for step (tests/envs/test_vector_envs.py): the same
reset seed gives the same start state (gymnasium's own `np_random`, one per row), the same
actions give the same observations, rewards and terminations, float for float: every
expression is gymnasium's, in its order and dtypes, evaluated on arrays.  An env config
declares one with `env.vector: <module>:<Class>` (conf/env/cartpole.yaml); the rollout loop
then steps the lifetimes of a batch together (envs/runner.VectorRunner) instead of one
gymnasium env per lifetime.  What is not the env's own (the time limit, early stop, hidden
per-lifetime variation) is the runner's, the same for every class here.
"""

from __future__ import annotations

from hebbian_es.envs.vector.base import BatchEnv, load_batch_env

__all__ = ["BatchEnv", "load_batch_env"]
