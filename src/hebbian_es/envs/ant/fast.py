"""A lean pybullet quadruped: AntBulletEnv-v0's observations and rewards, less Python per step.

`gym.make("hebbian_es.envs.ant:FastAnt-v0", damages=[...])` takes the same kwargs as
`hebbian_es.envs.ant:MorphAnt-v0` (damages, random_damage, render_mode) and returns the
same observations, rewards (`rewards` list: alive, progress, electricity,
joints-at-limit, feet-collision), terminated flags and infos for the same seed and
actions (tests/envs/test_ant_fast.py steps both side by side; bit-identical here).  The
physics is the same pybullet world built by the same calls in the same order
(stadium plane, gravity, 0.0165 s steps of 4 substeps, 5 solver iterations, contact
ERP 0.9, deterministic overlapping pairs, the MJCF loaded with the same flags,
save/restoreState between episodes), in a private DIRECT client per env.  Only the
reading-back is lean: per step one getJointStates, one getLinkStates, one base
pose, one base velocity and one ant-vs-plane contact query instead of
pybullet_envs_gymnasium's per-joint, per-part and per-foot calls, and the
arithmetic in plain Python floats, numpy's roundings redone exactly (float32 casts
by array("f"), np.mean's pairwise sums, float32 comparisons): after a physics step
every numpy call runs on cold caches, and a handful of them cost more than the
arithmetic.  What stays numpy: the observation array and np.linalg.norm's BLAS dot
(whose rounding depends on the machine's BLAS kernel).  The one product written
out without BLAS is the body velocity's rotation, which only reaches the float32
observation (a last-bit float64 difference has not been seen to change it).

Quirks of AntBulletEnv-v0 kept on purpose, because they change numbers:
* `body_xyz` (whose x, y give the progress term and the angle to the target) is the
  mean of the parts' positions, and from the end of an env's first reset on the
  parts include the floor (pybullet_envs_gymnasium adds it to the robot's part
  dict), so the first reset of a (re)built body averages 21 points, every later
  state 22 (floor at the origin): the first episode's reset observation and first
  progress differ from a later episode's with the same seed.  With reset_as_built (the
  default) every reset is a first one, as in the reference code's new env per lifetime.
* The feet contacts in an observation are those found at the previous step (the
  env updates them after building the observation); zeros after a reset.
* The electricity cost uses the raw action, the torque the clipped one.
* feet_collision_cost is always 0 (commented out upstream).
"""

from __future__ import annotations

import math
import os
from array import array as _array
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
import pybullet as p

from hebbian_es.envs.ant.bullet import AntBodyEnv
from hebbian_es.envs.ant.morphology import Damage, generate_xml
from hebbian_es.envs.console import native_output_silenced

ENV_ID = "FastAnt-v0"

# pybullet_envs_gymnasium: WalkerBaseBulletEnv, Ant, WalkerBase, SinglePlayerStadiumScene
GRAVITY = 9.8
TIMESTEP = 0.0165 / 4
FRAME_SKIP = 4
DT = TIMESTEP * FRAME_SKIP  # the scene's dt, same expression (progress = -Δdist / dt)
SOLVER_ITERATIONS = 5
POWER = 2.5 * 100.0  # robot power x each joint's power_coef, multiplied in that order
ELECTRICITY_COST = -2.0
STALL_TORQUE_COST = -0.1
JOINTS_AT_LIMIT_COST = -0.1
WALK_TARGET_X = 1e3
WALK_TARGET_Y = 0
ROBOT_NAME = "torso"
FOOT_LIST = ("front_left_foot", "front_right_foot", "left_back_foot", "right_back_foot")
LOAD_FLAGS = p.URDF_USE_SELF_COLLISION | p.URDF_USE_SELF_COLLISION_EXCLUDE_ALL_PARENTS | p.URDF_GOOGLEY_UNDEFINED_COLORS

# bound once: attribute lookups cost in a loop this short
_getJointStates = p.getJointStates
_getLinkStates = p.getLinkStates
_getBasePositionAndOrientation = p.getBasePositionAndOrientation
_getBaseVelocity = p.getBaseVelocity
_getEulerFromQuaternion = p.getEulerFromQuaternion
_getContactPoints = p.getContactPoints
_setJointMotorControlArray = p.setJointMotorControlArray
_stepSimulation = p.stepSimulation
_TORQUE_CONTROL = p.TORQUE_CONTROL
_add_reduce = np.add.reduce
_F32 = np.dtype(np.float32)


def _float32_above_threshold(limit: float) -> float:
    """t such that |x| > t exactly when float32(|x|) > float32(limit), for a float64 x (numpy
    compares a float32 array with a Python float in float32): x rounds above float32(limit)
    from the midpoint to the next float32 up, ties going to the even one."""
    lo = np.float32(limit)
    hi = np.nextafter(lo, np.float32(np.inf))
    mid = (float(lo) + float(hi)) / 2  # exact in float64
    return math.nextafter(mid, 0.0) if float(np.float32(mid)) == float(hi) else mid


_AT_LIMIT = _float32_above_threshold(0.99)  # WalkerBase: np.abs(j[0::2]) > 0.99


def _pairwise_sum(a: Sequence[float]) -> float:
    """np.add.reduce of a 1-D float64 array of 8 to 128 values, operation for operation: numpy's
    pairwise summation (8 running sums, combined pairwise, then the remainder in order).
    tests/envs/test_ant_fast.py checks it against numpy."""
    n = len(a)
    if not 8 <= n <= 128:  # pragma: no cover - the ant has 21 or 22 parts
        return float(_add_reduce(np.array(a, dtype=np.float64)))
    r0, r1, r2, r3, r4, r5, r6, r7 = a[:8]
    end = n - n % 8
    for i in range(8, end, 8):
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for i in range(end, n):
        res += a[i]
    return res


def _f32(values: Sequence[float]) -> list[float]:
    """Each value rounded to float32 (C's double -> float cast: IEEE round to nearest even)."""
    return _array("f", values).tolist()


def _f32_div8(s: float) -> float:
    """float32(s) / 8 in float32 for a float32 value s: exact in float64 unless it falls below
    float32's normal range."""
    return s / 8 if s == 0.0 or abs(s) >= 2.0**-123 else float(np.float32(s) / np.float32(8))


def _f32_mean8_pair(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """(mean |a * b|, mean a * a) of 8 float32 values each, rounded as numpy's float32
    multiply, add.reduce (pairwise: ((0+1)+(2+3))+((4+5)+(6+7))) and mean do.  Products and
    sums of two float32 values are exact in float64 (or too lopsided for the second rounding to
    matter), so rounding each result once to float32 is numpy's float32 arithmetic.
    tests/envs/test_ant_fast.py checks it against numpy."""
    p = _f32([abs(x * y) for x, y in zip(a, b)] + [x * x for x in a])
    q = _f32([p[0] + p[1], p[2] + p[3], p[4] + p[5], p[6] + p[7], p[8] + p[9], p[10] + p[11], p[12] + p[13], p[14] + p[15]])
    q = _f32([q[0] + q[1], q[2] + q[3], q[4] + q[5], q[6] + q[7]])
    s_ab, s_aa = _f32([q[0] + q[1], q[2] + q[3]])
    return _f32_div8(s_ab), _f32_div8(s_aa)


class FastAntEnv(AntBodyEnv):
    """AntBulletEnv-v0 (as MorphAntEnv builds it) with batched state queries."""

    def _setup(self) -> None:
        high = np.ones(8, dtype=np.float32)
        self.action_space = gym.spaces.Box(-high, high, dtype=np.float32)
        high = np.inf * np.ones(28, dtype=np.float32)
        self.observation_space = gym.spaces.Box(-high, high, dtype=np.float32)
        self._cid = -1
        self.builds = 0  # worlds built so far (random_damage rebuilds only when the body changes)
        self._build(self.body.damages)
        self.rewards: list[float] = [0.0] * 5
        self.body_xyz: tuple[float, float, float] = (0.0, 0.0, 0.0)
        self.body_real_xyz: tuple[float, float, float] = (0.0, 0.0, 0.0)

    # ---- the world ---------------------------------------------------------------------------
    def _clean_everything(self) -> None:
        """scene_abstract.World.clean_everything."""
        cid = self._cid
        p.setGravity(0, 0, -GRAVITY, physicsClientId=cid)
        p.setDefaultContactERP(0.9, physicsClientId=cid)
        p.setPhysicsEngineParameter(
            fixedTimeStep=TIMESTEP * FRAME_SKIP, numSolverIterations=SOLVER_ITERATIONS, numSubSteps=FRAME_SKIP, physicsClientId=cid
        )

    def _build(self, damages: Sequence[Damage]) -> None:
        """The world as MJCFBaseBulletEnv/WalkerBaseBulletEnv build it on their first reset."""
        import pybullet_data

        self._close_sim()
        self.builds += 1
        self._pid = os.getpid()
        with native_output_silenced():
            cid = self._cid = p.connect(p.DIRECT)
        p.resetSimulation(physicsClientId=cid)
        p.setPhysicsEngineParameter(deterministicOverlappingPairs=1, physicsClientId=cid)
        p.configureDebugVisualizer(p.COV_ENABLE_GUI, 0, physicsClientId=cid)
        self._clean_everything()  # Scene.__init__
        self._clean_everything()  # StadiumScene.episode_restart
        plane = p.loadSDF(os.path.join(pybullet_data.getDataPath(), "plane_stadium.sdf"), physicsClientId=cid)
        for i in plane:
            p.changeDynamics(i, -1, lateralFriction=0.8, restitution=0.5, physicsClientId=cid)
            p.changeVisualShape(i, -1, rgbaColor=[1, 1, 1, 0.8], physicsClientId=cid)
            p.configureDebugVisualizer(p.COV_ENABLE_PLANAR_REFLECTION, i, physicsClientId=cid)
        (self._plane,) = plane
        (ant,) = p.loadMJCF(str(generate_xml(damages)), flags=LOAD_FLAGS, physicsClientId=cid)
        self._ant = ant
        # XmlBasedRobot.addToScene: every joint's motor off; parts = every link by name, with
        # the base ("torso") inserted after link 0; motors = joints not named jointfix*/ignore*.
        part_order, motors, lows, highs, names = [], [], [], [], []
        for j in range(p.getNumJoints(ant, physicsClientId=cid)):
            p.setJointMotorControl2(ant, j, p.POSITION_CONTROL, positionGain=0.1, velocityGain=0.1, force=0, physicsClientId=cid)
            info = p.getJointInfo(ant, j, physicsClientId=cid)
            joint_name, link_name = info[1].decode("utf8"), info[12].decode("utf8")
            names.append(link_name)
            part_order.append(j)
            if j == 0 and link_name != ROBOT_NAME:
                part_order.append(-1)
            if joint_name[:6] == "ignore":  # pragma: no cover - none in ant.xml
                raise RuntimeError(f"unexpected joint {joint_name} in the ant")
            if joint_name[:8] != "jointfix":
                motors.append(j)
                lows.append(info[8])
                highs.append(info[9])
        if len(set(names)) != len(names) or ROBOT_NAME in names or len(motors) != 8:  # pragma: no cover
            raise RuntimeError("the generated ant does not have AntBulletEnv-v0's structure")
        self._links = [j for j in part_order if j >= 0]
        # index of the base in the parts order (the part list is [link 0, base, link 1, ...])
        self._base_slot = part_order.index(-1)
        self._motors = motors
        self._low_list = list(lows)
        self._span_list = [hi - lo for lo, hi in zip(lows, highs)]  # upperLimit - lowerLimit
        self._feet = [names.index(f) for f in FOOT_LIST]
        self._floor_xyz = p.getBasePositionAndOrientation(self._plane, physicsClientId=cid)[0]
        self._with_floor = False  # the floor joins the parts at the end of the first reset
        self._state_id = -1
        self._initial_z: float | None = None
        self._feet_contact = [0.0] * 4
        self._has_nan = False
        self._z32 = 0.0
        self._speeds32 = [0.0] * 8
        self._target_delta = np.zeros(2)  # [dy, dx] to the walk target, for np.linalg.norm's dot

    def _close_sim(self) -> None:
        if self._cid >= 0 and self._pid == os.getpid():
            try:
                p.disconnect(physicsClientId=self._cid)
            except p.error:  # pragma: no cover - already gone
                pass
        self._cid = -1

    # ---- gym API -----------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        if self.body.redraw(seed):
            self._build(self.body.damages)
        cid, ant = self._cid, self._ant
        if self._state_id >= 0:
            p.restoreState(self._state_id, physicsClientId=cid)
        super().reset(seed=seed)
        self._clean_everything()
        rng = self.np_random
        for j in self._motors:  # WalkerBase.robot_specific_reset, one draw per joint in order
            p.resetJointState(ant, j, targetValue=rng.uniform(low=-0.1, high=0.1), targetVelocity=0, physicsClientId=cid)
            p.setJointMotorControl2(
                ant, j, controlMode=p.POSITION_CONTROL, targetPosition=0, targetVelocity=0,
                positionGain=0.1, velocityGain=0.1, force=0, physicsClientId=cid,
            )  # fmt: skip
        self._feet_contact = [0.0] * 4
        self._initial_z = None
        if self.reset_as_built:
            self._with_floor = False  # as on a newly built world (MorphAntEnv pops the floor part)
        state = self._calc_state()
        self._potential = -self._walk_target_dist / DT
        self._with_floor = True
        if self._state_id < 0:
            self._state_id = p.saveState(physicsClientId=cid)
        info = {"damages": self.body.info()}
        return state.astype(np.float32), info

    def _calc_state(self) -> np.ndarray:
        """WalkerBase.calc_state with one query per kind of state; also sets the float32 joint
        speeds, joints_at_limit, body_xyz, body_rpy and the walk-target distance.

        Pure Python but for the observation array and the distance's BLAS dot (after the
        physics step every numpy call runs on cold caches); each float32 rounding numpy
        would do is done by array("f") (IEEE round to nearest, as numpy's casts)."""
        cid, ant = self._cid, self._ant
        # every query first, then the arithmetic
        joints = _getJointStates(ant, self._motors, cid)
        (bx, by, bz), orn = _getBasePositionAndOrientation(ant, cid)
        links = _getLinkStates(ant, self._links, 0, 0, cid)
        (vx, vy, vz), _ = _getBaseVelocity(ant, cid)
        # body_xyz: mean x, y of the parts (link 0, the base, links 1.., then the floor), torso z
        xs = [s[0][0] for s in links]
        ys = [s[0][1] for s in links]
        k = self._base_slot
        xs.insert(k, bx)
        ys.insert(k, by)
        if self._with_floor:
            xs.append(self._floor_xyz[0])
            ys.append(self._floor_xyz[1])
        n = len(xs)
        x, y = _pairwise_sum(xs) / n, _pairwise_sum(ys) / n  # np.mean
        self.body_xyz = (x, y, bz)
        self.body_real_xyz = (bx, by, bz)
        r, pitch, yaw = self.body_rpy = _getEulerFromQuaternion(orn)
        if self._initial_z is None:
            self._initial_z = bz
        dy, dx = WALK_TARGET_Y - y, WALK_TARGET_X - x
        d = self._target_delta
        d[0] = dy
        d[1] = dx
        self._walk_target_dist = math.sqrt(d.dot(d))  # np.linalg.norm([dy, dx]): BLAS dot, sqrt
        angle_to_target = math.atan2(dy, dx) - yaw
        # np.dot(rot_speed, speed), rot_speed = [[c, -s, 0], [s, c, 0], [0, 0, 1]] (c, s of -yaw),
        # written out: BLAS may round the float64 differently (FMA), never seen to change the
        # float32; `zero` is the zero entries' products: 0, or nan where a speed is not finite
        c, s = math.cos(-yaw), math.sin(-yaw)
        zero = 0.0 * (vx + vy + vz)
        vals = [
            bz - self._initial_z,
            math.sin(angle_to_target),
            math.cos(angle_to_target),
            0.3 * (c * vx - s * vy + zero),
            0.3 * (s * vx + c * vy + zero),
            0.3 * (vz + zero),
            r,
            pitch,
        ]
        # joints: (2 (q - low) / (high - low) - 1, 0.1 q') in float64, interleaved; at the limit:
        # |float32(position)| > float32(0.99), as numpy compares
        add = vals.append
        speeds = [vals[0]]  # float32 of these below: the state's z term, then the joint speeds
        keep = speeds.append
        at_limit = 0
        for (q, v, _, _), low, span in zip(joints, self._low_list, self._span_list):
            pos = 2 * (q - low) / span - 1.0
            vel = 0.1 * v
            add(pos)
            add(vel)
            keep(vel)
            if pos > _AT_LIMIT or pos < -_AT_LIMIT:
                at_limit += 1
        vals += self._feet_contact  # those of the previous step, as the original
        self.joints_at_limit = at_limit
        # np.clip(state, -5, +5) before the float32 cast: the same (±5 are float32, rounding is
        # monotone); nan stays nan, and survives as the only non-finite value
        finite = math.isfinite(sum(vals))
        if not finite or max(vals) > 5.0 or min(vals) < -5.0:
            vals = [-5.0 if v < -5.0 else 5.0 if v > 5.0 else v for v in vals]
            speeds[0] = vals[0]
        self._has_nan = not finite and not math.isfinite(sum(vals))
        f32 = _f32(speeds)
        self._z32 = f32[0]  # state[0]
        self._speeds32 = f32[1:]  # joint_speeds (float32, unclipped)
        return np.array(vals, dtype=np.float32)

    @property
    def joint_speeds(self) -> np.ndarray:
        """WalkerBase.joint_speeds: the scaled joint speeds as float32."""
        return np.array(self._speeds32, dtype=np.float32)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        a = action
        fast = type(a) is np.ndarray and a.dtype == _F32 and a.shape == (8,)  # what rollouts pass
        if fast:
            acts = a.tolist()
            if not math.isfinite(sum(acts)):  # inf or nan somewhere
                assert np.isfinite(a).all()
            torques = [POWER * (-1.0 if v < -1.0 else 1.0 if v > 1.0 else v) for v in acts]
        else:  # anything else, exactly as WalkerBase.apply_action
            assert np.isfinite(a).all()
            torques = [POWER * float(np.clip(a[n], -1, +1)) for n in range(8)]
        cid, ant = self._cid, self._ant
        _setJointMotorControlArray(ant, self._motors, _TORQUE_CONTROL, forces=torques, physicsClientId=cid)
        _stepSimulation(cid)
        contacts = _getContactPoints(ant, self._plane, -2, -2, cid)

        state = self._calc_state()
        alive = 1.0 if self._z32 + self._initial_z > 0.26 else -1.0  # torso z above 0.26
        done = alive < 0
        if self._has_nan and np.isnan(state).any():
            done = True
        potential_old = self._potential
        self._potential = -self._walk_target_dist / DT
        progress = self._potential - potential_old

        touching = {c[3] for c in contacts}  # linkIndexA of each
        self._feet_contact = [1.0 if link in touching else 0.0 for link in self._feet]

        if fast:  # np.abs(a * joint_speeds).mean(), np.square(a).mean() in float32
            s_el, s_sq = _f32_mean8_pair(acts, self._speeds32)
            electricity_cost = ELECTRICITY_COST * s_el
            electricity_cost += STALL_TORQUE_COST * s_sq
        else:
            electricity_cost = ELECTRICITY_COST * float(np.abs(a * self.joint_speeds).mean())
            electricity_cost += STALL_TORQUE_COST * float(np.square(a).mean())
        joints_at_limit_cost = JOINTS_AT_LIMIT_COST * self.joints_at_limit
        self.rewards = [alive, progress, electricity_cost, joints_at_limit_cost, 0.0]
        return state, sum(self.rewards), done, False, {}

    def render(self) -> Any:
        """MJCFBaseBulletEnv.render's rgb_array camera: 3 m behind, 30° down, 320x240."""
        if self.render_mode != "rgb_array":
            return None
        cid = self._cid
        view = p.computeViewMatrixFromYawPitchRoll(
            cameraTargetPosition=list(self.body_real_xyz), distance=3, yaw=0, pitch=-30, roll=0, upAxisIndex=2, physicsClientId=cid
        )
        proj = p.computeProjectionMatrixFOV(fov=60, aspect=320 / 240, nearVal=0.1, farVal=100.0, physicsClientId=cid)
        _, _, px, _, _ = p.getCameraImage(
            width=320, height=240, viewMatrix=view, projectionMatrix=proj, renderer=p.ER_BULLET_HARDWARE_OPENGL, physicsClientId=cid
        )
        return np.reshape(np.asarray(px, dtype=np.uint8), (240, 320, -1))[:, :, :3]

    def close(self) -> None:
        self._close_sim()

    def __del__(self) -> None:
        try:
            self._close_sim()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass


gym.register(id=ENV_ID, entry_point="hebbian_es.envs.ant.fast:FastAntEnv", max_episode_steps=1000)
