"""CartPole-v1 (gymnasium.envs.classic_control.cartpole.CartPoleEnv) for B episodes at once."""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
from numpy.random import Generator

from hebbian_es.envs.vector.base import BatchEnv


class CartPole(BatchEnv):
    # gymnasium's attribute names; total_mass and polemass_length derive from them
    PARAMETERS = {"gravity": 9.8, "masscart": 1.0, "masspole": 0.1, "length": 0.5, "force_mag": 10.0}
    MAKE_KWARGS = {"sutton_barto_reward": False}
    discrete_actions = 2
    tau = 0.02
    theta_threshold_radians = 12 * 2 * math.pi / 360
    x_threshold = 2.4

    def _reset(self, rngs: list[Generator]) -> np.ndarray:
        self.state = np.stack([rng.uniform(low=-0.05, high=0.05, size=(4,)) for rng in rngs])
        self.beyond = np.full(self.batch, -1, dtype=np.int64)  # steps_beyond_terminated; -1: None
        return self.state.astype(np.float32)

    @classmethod
    def apply_to_gym(cls, unwrapped: Any, values: Mapping[str, float]) -> None:
        super().apply_to_gym(unwrapped, values)
        unwrapped.total_mass = unwrapped.masspole + unwrapped.masscart
        unwrapped.polemass_length = unwrapped.masspole * unwrapped.length

    def step(self, actions: np.ndarray, rows: "np.ndarray | slice") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n, rows = len(actions), self.rows(rows)
        p = {k: v[rows] for k, v in self.params.items()}
        total_mass = p["masspole"] + p["masscart"]
        polemass_length = p["masspole"] * p["length"]
        x, x_dot, theta, theta_dot = self.state[rows].T
        force = np.where(np.asarray(actions) == 1, p["force_mag"], -p["force_mag"])
        costheta = np.cos(theta)
        sintheta = np.sin(theta)
        temp = (force + polemass_length * np.square(theta_dot) * sintheta) / total_mass
        thetaacc = (p["gravity"] * sintheta - costheta * temp) / (
            p["length"] * (4.0 / 3.0 - p["masspole"] * np.square(costheta) / total_mass)
        )
        xacc = temp - polemass_length * thetaacc * costheta / total_mass
        x = x + self.tau * x_dot
        x_dot = x_dot + self.tau * xacc
        theta = theta + self.tau * theta_dot
        theta_dot = theta_dot + self.tau * thetaacc
        state = np.stack((x, x_dot, theta, theta_dot), axis=1)
        self.state[rows] = state
        terminated = (
            (x < -self.x_threshold) | (x > self.x_threshold)
            | (theta < -self.theta_threshold_radians) | (theta > self.theta_threshold_radians)
        )  # fmt: skip
        beyond = self.beyond[rows]
        first = terminated & (beyond < 0)  # the pole just fell
        later = terminated & (beyond >= 0)  # stepped on after terminated (end_on_terminated=false)
        sb = bool(self.options["sutton_barto_reward"])
        reward = np.where(terminated, -1.0 if sb else 1.0, 0.0 if sb else 1.0)
        reward[later] = -1.0 if sb else 0.0
        beyond[first] = 0
        beyond[later] += 1
        self.beyond[rows] = beyond
        return state.astype(np.float32), reward, terminated
