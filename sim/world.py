"""The physics world of the push task, usable without the gym wrapper.

:class:`PushWorld` loads a robot, a table, a puck and a goal marker, and offers the verbs a
controller needs: ``set_dynamics``, ``reset``, ``apply_command``, ``step``, ``read_state``. The
gymnasium env (:mod:`sim.envs`) and the ROS 2 simulated arm node drive the same class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.dynamics import DynamicsSpace, peng_space
from sim.pybullet_client import PyBullet, pybullet
from sim.robots import RobotSpec, get_robot

NOMINAL_TABLE_HEIGHT_M = 0.75
PUCK_RADIUS_M = 0.03
PUCK_HEIGHT_M = 0.05
# The puck slides and spins on the table but does not tip: its inertia about the horizontal axes
# is scaled up by this factor (the MuJoCo pusher constrains its object to the plane the same
# way). A free 5 cm puck pushed by the pin topples once friction exceeds ~0.7, well inside
# Peng's [0.1, 5] friction range, which made many sampled tasks unsolvable.
PUCK_TILT_INERTIA_SCALE = 1000.0
# The puck's base rests on the table over its whole face, so friction also resists spinning
# about the vertical: torque (2/3) mu N R for a uniformly loaded disc. Bullet's cylinder touches
# the table at a few rim points, and without this torque a spun puck "rolls" on its rim with the
# contact point at rest, so sliding friction never stops it (a slightly tilted puck of
# friction 4 set sliding at 0.35 m/s, spinning at 14 rad/s, travelled 0.32 m in 1 s; see
# tests/sim/test_world.py). Bullet's spinning friction is that torque per unit normal force.
PUCK_SPIN_FRICTION_ARM_M = 2.0 / 3.0 * PUCK_RADIUS_M
TABLE_FRICTION = 1.0  # Bullet multiplies the two bodies' coefficients
BASE_CONTROL_PERIOD_S = 0.04  # Peng et al.: dt = 0.04 s + Exp(lambda)


class CommandError(ValueError):
    """A joint command had the wrong shape or non-finite values."""


@dataclass
class WorldState:
    """What the world's sensors read at one instant (true values, no noise)."""

    time_s: float
    joint_positions: np.ndarray
    joint_velocities: np.ndarray
    puck_position: np.ndarray
    puck_orientation: np.ndarray


class PushWorld:
    """A robot arm, a table and a puck in PyBullet, with Peng-style randomizable dynamics.

    Args:
        robot: a :class:`RobotSpec` or its name (``"panda"``, ``"pusher"``).
        render: open the PyBullet GUI.
        timestep_s: physics substep (2 ms, as panda-gym and Peng).
        solver_iterations: constraint-solver iterations per substep.
    """

    def __init__(
        self,
        robot: RobotSpec | str = "pusher",
        render: bool = False,
        timestep_s: float = 0.002,
        solver_iterations: int = 50,
    ) -> None:
        self.spec = get_robot(robot) if isinstance(robot, str) else robot
        self.sim = PyBullet(
            render=render, timestep_s=timestep_s, solver_iterations=solver_iterations
        )
        self._load()
        self.dynamics_space: DynamicsSpace = peng_space(
            self.spec.dynamic_links, self.spec.joint_names
        )
        self.mu = self.dynamics_space.nominal
        self.time_s = 0.0
        self.set_dynamics(self.mu)
        self._snapshot = self.sim.save_state()

    # --- loading ------------------------------------------------------------------------------
    def _load(self) -> None:
        spec, sim = self.spec, self.sim
        c = sim.client
        base = np.array(spec.base_position, dtype=float) + [0.0, 0.0, NOMINAL_TABLE_HEIGHT_M]
        self.robot_uid = sim.load_urdf(
            "robot",
            spec.urdf_path(),
            base,
            fixed_base=True,
            flags=pybullet.URDF_USE_INERTIA_FROM_FILE,
        )
        joints = {j.name: j for j in sim.joints("robot")}
        missing = [n for n in spec.joint_names if n not in joints]
        if missing:
            raise ValueError(f"robot {spec.name!r} model lacks joints {missing}")
        self.joint_indices = [joints[n].index for n in spec.joint_names]
        self.joint_lower = np.array([joints[n].lower for n in spec.joint_names])
        self.joint_upper = np.array([joints[n].upper for n in spec.joint_names])
        self.joint_max_force = np.array([joints[n].max_force for n in spec.joint_names])
        self.joint_max_velocity = np.array([joints[n].max_velocity for n in spec.joint_names])
        self.extra_indices = [joints[n].index for n in spec.extra_joints]
        self._extra_targets = list(spec.extra_joints.values())
        self._extra_forces = [joints[n].max_force for n in spec.extra_joints]
        self._all_indices = self.joint_indices + self.extra_indices
        self.ee_index = sim.link_index("robot", spec.ee_link)
        self.link_indices = [sim.link_index("robot", n) for n in spec.dynamic_links]
        self._default_mass = []
        self._default_inertia = []
        for li in self.link_indices:
            info = c.getDynamicsInfo(self.robot_uid, li)
            self._default_mass.append(info[0])
            self._default_inertia.append(np.array(info[2]))
        cx, cy = spec.puck_area_center
        self.table_uid = sim.create_box(
            "table",
            (0.55, 0.5, 0.025),
            0.0,
            (cx, cy, NOMINAL_TABLE_HEIGHT_M - 0.025),
            (0.75, 0.7, 0.6, 1.0),
        )
        c.changeDynamics(self.table_uid, -1, lateralFriction=TABLE_FRICTION)
        self.puck_uid = sim.create_cylinder(
            "puck",
            PUCK_RADIUS_M,
            PUCK_HEIGHT_M,
            0.25,
            (cx, cy, NOMINAL_TABLE_HEIGHT_M + PUCK_HEIGHT_M / 2),
            (0.9, 0.2, 0.2, 1.0),
        )
        self._puck_default_inertia = (
            np.array(c.getDynamicsInfo(self.puck_uid, -1)[2]) / 0.25
        ) * np.array([PUCK_TILT_INERTIA_SCALE, PUCK_TILT_INERTIA_SCALE, 1.0])
        self.goal_uid = sim.create_cylinder(
            "goal",
            PUCK_RADIUS_M,
            0.002,
            0.0,
            (cx, cy, NOMINAL_TABLE_HEIGHT_M + 0.001),
            (0.2, 0.9, 0.2, 0.6),
            collide=False,
        )
        for i, q in zip(self.joint_indices, self.spec.rest_q, strict=True):
            c.resetJointState(self.robot_uid, i, q)
        for i, q in zip(self.extra_indices, self._extra_targets, strict=True):
            c.resetJointState(self.robot_uid, i, q)
        # Position motors of every commanded joint; the default velocity motors would fight them.
        self._kp = np.full(len(self.joint_indices), spec.position_gain)
        self._kd = np.full(len(self.joint_indices), spec.velocity_gain)

    @property
    def joint_names(self) -> list[str]:
        """Commanded joints in action order."""
        return list(self.spec.joint_names)

    @property
    def n_joints(self) -> int:
        return len(self.joint_indices)

    # --- dynamics -----------------------------------------------------------------------------
    def set_dynamics(self, mu: np.ndarray) -> None:
        """Apply a physical dynamics vector (order of :attr:`dynamics_space`)."""
        space = self.dynamics_space
        mu = np.asarray(mu, dtype=np.float64)
        if mu.shape != (space.dim,) or not np.all(np.isfinite(mu)):
            raise ValueError(f"mu must be {space.dim} finite values, got shape {mu.shape}")
        c, rid = self.sim.client, self.robot_uid
        n_links, n_j = len(self.link_indices), self.n_joints
        mass_scale = mu[:n_links]
        damping_scale = mu[n_links : n_links + n_j]
        gain_scale = mu[n_links + n_j : n_links + 2 * n_j]
        for li, m0, i0, s in zip(
            self.link_indices, self._default_mass, self._default_inertia, mass_scale, strict=True
        ):
            c.changeDynamics(rid, li, mass=m0 * s, localInertiaDiagonal=list(i0 * s))
        for ji, s in zip(self.joint_indices, damping_scale, strict=True):
            c.changeDynamics(rid, ji, jointDamping=self.spec.joint_damping * s)
        self._kp = self.spec.position_gain * gain_scale
        self._kd = np.full(n_j, self.spec.velocity_gain)
        n_extra = len(self.extra_indices)
        # Argument lists of the motor command, built once per dynamics sample (hot path).
        self._motor_kp = list(self._kp) + [0.3] * n_extra
        self._motor_kd = list(self._kd) + [1.0] * n_extra
        self._motor_forces = list(self.joint_max_force) + self._extra_forces
        self._motor_zero_vel = [0.0] * (n_j + n_extra)
        puck_mass = mu[space.index("puck_mass")]
        c.changeDynamics(
            self.puck_uid,
            -1,
            mass=puck_mass,
            localInertiaDiagonal=list(self._puck_default_inertia * puck_mass),
            lateralFriction=mu[space.index("puck_friction")],
            spinningFriction=mu[space.index("puck_friction")] * PUCK_SPIN_FRICTION_ARM_M,
            linearDamping=mu[space.index("puck_damping")],
            angularDamping=mu[space.index("puck_damping")],
        )
        self.mu = mu.copy()

    @property
    def table_height_m(self) -> float:
        return float(self.mu[self.dynamics_space.index("table_height")])

    def sample_substeps(self, rng: np.random.Generator) -> int:
        """Substeps of the next control step: dt = 0.04 s + Exp(lambda) (Peng et al.)."""
        lam = self.mu[self.dynamics_space.index("action_timestep_rate")]
        dt = BASE_CONTROL_PERIOD_S + rng.exponential(1.0 / lam)
        return max(1, int(round(dt / self.sim.timestep_s)))

    @property
    def nominal_substeps(self) -> int:
        return int(round(BASE_CONTROL_PERIOD_S / self.sim.timestep_s))

    # --- episode ------------------------------------------------------------------------------
    def reset(self, puck_xy, goal_xy, mu: np.ndarray | None = None) -> None:
        """Restore the initial world, apply dynamics, place robot (rest pose), puck and goal."""
        # restoreState does not clear Bullet's persistent contact manifolds, which then
        # warm-start the next episode's contacts differently depending on how the previous one
        # ended. Moving the puck far away and running collision detection drops them, so
        # seeded resets reproduce trajectories exactly whatever came before.
        self.sim.set_base_pose("puck", (50.0, 50.0, 50.0))
        self.sim.client.performCollisionDetection()
        self.sim.restore_state(self._snapshot)
        if mu is not None:
            self.set_dynamics(mu)
        else:
            self.set_dynamics(self.mu)
        c = self.sim.client
        top = self.table_height_m
        cx, cy = self.spec.puck_area_center
        self.sim.set_base_pose("table", (cx, cy, top - 0.025))
        if self.spec.mounted_on_table:
            bx, by, bz = self.spec.base_position
            self.sim.set_base_pose("robot", (bx, by, top + bz))
        for i, q in zip(self.joint_indices, self.spec.rest_q, strict=True):
            c.resetJointState(self.robot_uid, i, q, 0.0)
        self.sim.set_base_pose("puck", (puck_xy[0], puck_xy[1], top + PUCK_HEIGHT_M / 2))
        self.set_goal(goal_xy)
        self.time_s = 0.0
        self.hold()

    def set_goal(self, goal_xy) -> None:
        """Move the (visual-only) goal marker."""
        self.goal_xy = np.asarray(goal_xy, dtype=np.float64)[:2].copy()
        self.sim.set_base_pose(
            "goal", (self.goal_xy[0], self.goal_xy[1], self.table_height_m + 0.001)
        )

    # --- control ------------------------------------------------------------------------------
    def apply_command(self, target_positions) -> np.ndarray:
        """Send joint position targets (rad, action order), clamped to the joint limits.

        Returns the clamped targets. Non-finite or wrongly shaped commands raise CommandError:
        a real position controller drops them too.
        """
        target = np.asarray(target_positions, dtype=np.float64)
        if target.shape != (self.n_joints,):
            raise CommandError(
                f"command must have {self.n_joints} values ({', '.join(self.joint_names)}), "
                f"got shape {target.shape}"
            )
        if not np.all(np.isfinite(target)):
            raise CommandError(f"command has non-finite values: {target.tolist()}")
        target = np.clip(target, self.joint_lower, self.joint_upper)
        self.sim.set_joint_motor_control_array(
            self.robot_uid,
            self._all_indices,
            pybullet.POSITION_CONTROL,
            targetPositions=target.tolist() + self._extra_targets,
            targetVelocities=self._motor_zero_vel,
            positionGains=self._motor_kp,
            velocityGains=self._motor_kd,
            forces=self._motor_forces,
        )
        return target

    def hold(self) -> None:
        """Command the current joint positions (the safe 'hold' command)."""
        self.apply_command(self.joint_positions())

    def step(self, n_substeps: int | None = None) -> None:
        """Advance physics by ``n_substeps`` (default: one nominal 40 ms control period)."""
        n = self.nominal_substeps if n_substeps is None else int(n_substeps)
        self.sim.step(n)
        self.time_s += n * self.sim.timestep_s

    # --- sensing ------------------------------------------------------------------------------
    def joint_positions(self) -> np.ndarray:
        states = self.sim.get_joint_states(self.robot_uid, self.joint_indices)
        return np.array([s[0] for s in states])

    def read_state(self) -> WorldState:
        """Joint positions/velocities and puck pose (true values)."""
        states = self.sim.get_joint_states(self.robot_uid, self.joint_indices)
        pos, quat = self.sim.get_base_pose(self.puck_uid)
        return WorldState(
            time_s=self.time_s,
            joint_positions=np.array([s[0] for s in states]),
            joint_velocities=np.array([s[1] for s in states]),
            puck_position=np.array(pos),
            puck_orientation=np.array(quat),
        )

    def tool_touches_puck(self) -> bool:
        """Whether any link of the robot is in contact with the puck now."""
        return bool(self.sim.client.getContactPoints(bodyA=self.robot_uid, bodyB=self.puck_uid))

    def puck_xy(self) -> np.ndarray:
        return np.array(self.sim.client.getBasePositionAndOrientation(self.puck_uid)[0][:2])

    def ee_position(self) -> np.ndarray:
        return np.array(
            self.sim.client.getLinkState(
                self.robot_uid, self.ee_index, computeForwardKinematics=True
            )[4]
        )

    def close(self) -> None:
        self.sim.close()
