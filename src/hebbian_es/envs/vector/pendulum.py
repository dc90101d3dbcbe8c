"""Pendulum-v1 (gymnasium.envs.classic_control.pendulum.PendulumEnv) for B episodes at once."""

from __future__ import annotations

import numpy as np
from numpy.random import Generator

from hebbian_es.envs.vector.base import BatchEnv, square


class Pendulum(BatchEnv):
    PARAMETERS = {"g": 10.0, "m": 1.0, "l": 1.0, "max_torque": 2.0}
    MAKE_KWARGS = {"g": 10.0}
    max_speed = 8
    dt = 0.05

    def defaults(self) -> dict[str, float]:
        return {**self.PARAMETERS, "g": float(self.options["g"])}

    def _reset(self, rngs: list[Generator]) -> np.ndarray:
        high = np.array([np.pi, 1.0])
        self.state = np.stack([rng.uniform(low=-high, high=high) for rng in rngs])
        return self._obs(self.state)

    @staticmethod
    def _obs(state: np.ndarray) -> np.ndarray:
        theta, thetadot = state.T
        return np.stack([np.cos(theta), np.sin(theta), thetadot], axis=1).astype(np.float32)

    def step(self, actions: np.ndarray, rows: "np.ndarray | slice") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n, rows = len(actions), self.rows(rows)
        th, thdot = self.state[rows].T
        g, m, l, max_torque = (self.params[k][rows] for k in ("g", "m", "l", "max_torque"))
        u = np.asarray(actions, dtype=np.float32).reshape(n, -1)[:, 0]
        # gymnasium clips the float32 action against Python-float bounds: a float32 result
        u = np.clip(u.astype(np.float64), -max_torque, max_torque).astype(np.float32)
        costs = square(angle_normalize(th)) + 0.1 * square(thdot) + np.float32(0.001) * square(u)
        # 3.0 / (m * l**2) is a Python float in gymnasium: times the float32 u it is float32 arithmetic
        newthdot = thdot + (3 * g / (2 * l) * np.sin(th) + (3.0 / (m * square(l))).astype(np.float32) * u) * self.dt
        newthdot = np.clip(newthdot, -self.max_speed, self.max_speed)
        newth = th + newthdot * self.dt
        state = np.stack([newth, newthdot], axis=1)
        self.state[rows] = state
        return self._obs(state), -costs, np.zeros(n, dtype=bool)


def angle_normalize(x: np.ndarray) -> np.ndarray:
    return ((x + np.pi) % (2 * np.pi)) - np.pi
