"""Acrobot-v1 (gymnasium.envs.classic_control.acrobot.AcrobotEnv, book dynamics, no torque noise)
for B episodes at once; gymnasium's rk4 step on (B, 5) arrays."""

from __future__ import annotations

import numpy as np
from numpy import cos, pi, sin
from numpy.random import Generator

from hebbian_es.envs.vector.base import BatchEnv, square


class Acrobot(BatchEnv):
    discrete_actions = 3
    dt = 0.2
    LINK_LENGTH_1 = 1.0
    LINK_MASS_1 = 1.0
    LINK_MASS_2 = 1.0
    LINK_COM_POS_1 = 0.5
    LINK_COM_POS_2 = 0.5
    LINK_MOI = 1.0
    MAX_VEL_1 = 4 * pi
    MAX_VEL_2 = 9 * pi
    AVAIL_TORQUE = np.array([-1.0, 0.0, +1])

    def _reset(self, rngs: list[Generator]) -> np.ndarray:
        # gymnasium keeps the reset state as float32 (its first observation's cos/sin are float32's)
        start = np.stack([rng.uniform(low=-0.1, high=0.1, size=(4,)).astype(np.float32) for rng in rngs])
        self.state = start.astype(np.float64)
        return np.stack([cos(start[:, 0]), sin(start[:, 0]), cos(start[:, 1]), sin(start[:, 1]), start[:, 2], start[:, 3]], axis=1).astype(np.float32)

    def _dsdt(self, s_augmented: np.ndarray) -> np.ndarray:
        m1, m2 = self.LINK_MASS_1, self.LINK_MASS_2
        l1 = self.LINK_LENGTH_1
        lc1, lc2 = self.LINK_COM_POS_1, self.LINK_COM_POS_2
        I1 = I2 = self.LINK_MOI
        g = 9.8
        a = s_augmented[:, -1]
        theta1, theta2, dtheta1, dtheta2 = s_augmented[:, 0], s_augmented[:, 1], s_augmented[:, 2], s_augmented[:, 3]
        d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * cos(theta2)) + I1 + I2
        d2 = m2 * (lc2**2 + l1 * lc2 * cos(theta2)) + I2
        phi2 = m2 * lc2 * g * cos(theta1 + theta2 - pi / 2.0)
        phi1 = (
            -m2 * l1 * lc2 * square(dtheta2) * sin(theta2)
            - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * sin(theta2)
            + (m1 * lc1 + m2 * l1) * g * cos(theta1 - pi / 2)
            + phi2
        )
        ddtheta2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * square(dtheta1) * sin(theta2) - phi2) / (m2 * lc2**2 + I2 - square(d2) / d1)
        ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
        return np.stack((dtheta1, dtheta2, ddtheta1, ddtheta2, np.zeros_like(a)), axis=1)

    def step(self, actions: np.ndarray, rows: "np.ndarray | slice") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n, rows = len(actions), self.rows(rows)
        torque = self.AVAIL_TORQUE[np.asarray(actions, dtype=np.int64)]
        y0 = np.concatenate([self.state[rows], torque[:, None]], axis=1)
        dt = self.dt - 0  # gymnasium: t[i + 1] - t[i] of [0, dt]
        dt2 = dt / 2.0
        k1 = self._dsdt(y0)
        k2 = self._dsdt(y0 + dt2 * k1)
        k3 = self._dsdt(y0 + dt2 * k2)
        k4 = self._dsdt(y0 + dt * k3)
        ns = (y0 + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4))[:, :4]
        for col in (0, 1):  # gymnasium's wrap(x, -pi, pi): whole turns, one at a time
            x = ns[:, col]
            while (x > pi).any():
                x[x > pi] -= 2 * pi
            while (x < -pi).any():
                x[x < -pi] += 2 * pi
        ns[:, 2] = np.minimum(np.maximum(ns[:, 2], -self.MAX_VEL_1), self.MAX_VEL_1)
        ns[:, 3] = np.minimum(np.maximum(ns[:, 3], -self.MAX_VEL_2), self.MAX_VEL_2)
        self.state[rows] = ns
        terminated = -cos(ns[:, 0]) - cos(ns[:, 1] + ns[:, 0]) > 1.0
        reward = np.where(terminated, 0.0, -1.0)
        obs = np.stack([cos(ns[:, 0]), sin(ns[:, 0]), cos(ns[:, 1]), sin(ns[:, 1]), ns[:, 2], ns[:, 3]], axis=1)
        return obs.astype(np.float32), reward, terminated
