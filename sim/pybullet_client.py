"""One object that owns a PyBullet physics client and addresses bodies and joints by name.

Following panda-gym's design: no module-level simulator connection; every world creates its own
client, so several envs can live in one process (vector envs, tests) without sharing state.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from dataclasses import dataclass

import numpy as np


@contextlib.contextmanager
def _silenced(fd: int):
    """Point a file descriptor at /dev/null for a moment: PyBullet's C code prints a build banner
    (stderr) on import and ``argv[0]=`` (stdout) on every connection, which would interleave with
    the tables our commands print."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


with _silenced(2):
    import pybullet
import pybullet_data  # noqa: E402
from pybullet_utils import bullet_client  # noqa: E402


@dataclass(frozen=True)
class JointInfo:
    """Static description of one joint, read from the loaded model."""

    index: int
    name: str
    link_name: str
    lower: float
    upper: float
    max_force: float
    max_velocity: float


class PyBullet:
    """Owns one PyBullet client; bodies are registered under names.

    Args:
        render: open the GUI (needs a display) instead of a headless DIRECT client.
        timestep_s: physics substep in seconds (panda-gym and Peng et al. use 2 ms).
        solver_iterations: constraint solver iterations per substep.
    """

    def __init__(
        self, render: bool = False, timestep_s: float = 0.002, solver_iterations: int = 50
    ) -> None:
        mode = pybullet.GUI if render else pybullet.DIRECT
        with _silenced(1):
            self.client = bullet_client.BulletClient(connection_mode=mode)
        self.client.setAdditionalSearchPath(pybullet_data.getDataPath())
        self.timestep_s = float(timestep_s)
        self.client.setTimeStep(self.timestep_s)
        self.client.setPhysicsEngineParameter(
            numSolverIterations=int(solver_iterations), deterministicOverlappingPairs=1
        )
        self.client.setGravity(0.0, 0.0, -9.81)
        self.bodies: dict[str, int] = {}
        self._closed = False
        # BulletClient resolves every call through __getattr__ + functools.partial; the hot
        # calls are bound once (about 0.6 us saved per call, measured by bench/bench_sim.py).
        cid = self.client._client
        self.step_simulation = functools.partial(pybullet.stepSimulation, physicsClientId=cid)
        self.get_joint_states = functools.partial(pybullet.getJointStates, physicsClientId=cid)
        self.get_base_pose = functools.partial(
            pybullet.getBasePositionAndOrientation, physicsClientId=cid
        )
        self.set_joint_motor_control_array = functools.partial(
            pybullet.setJointMotorControlArray, physicsClientId=cid
        )

    # --- bodies -------------------------------------------------------------------------------
    def load_urdf(self, name: str, path: str, base_position, fixed_base: bool = True, **kw) -> int:
        """Load a URDF (path relative to pybullet_data or absolute) under ``name``."""
        uid = self.client.loadURDF(
            path, basePosition=list(base_position), useFixedBase=fixed_base, **kw
        )
        self.bodies[name] = uid
        return uid

    def create_box(
        self, name: str, half_extents, mass: float, position, rgba, collide=True
    ) -> int:
        """Create a box body (mass 0 = static)."""
        col = (
            self.client.createCollisionShape(pybullet.GEOM_BOX, halfExtents=list(half_extents))
            if collide
            else -1
        )
        vis = self.client.createVisualShape(
            pybullet.GEOM_BOX, halfExtents=list(half_extents), rgbaColor=list(rgba)
        )
        uid = self.client.createMultiBody(mass, col, vis, basePosition=list(position))
        self.bodies[name] = uid
        return uid

    def create_cylinder(
        self, name: str, radius: float, height: float, mass: float, position, rgba, collide=True
    ) -> int:
        """Create an upright cylinder body (mass 0 = static)."""
        col = (
            self.client.createCollisionShape(pybullet.GEOM_CYLINDER, radius=radius, height=height)
            if collide
            else -1
        )
        vis = self.client.createVisualShape(
            pybullet.GEOM_CYLINDER, radius=radius, length=height, rgbaColor=list(rgba)
        )
        uid = self.client.createMultiBody(mass, col, vis, basePosition=list(position))
        self.bodies[name] = uid
        return uid

    def joints(self, body: str) -> list[JointInfo]:
        """All non-fixed joints of a body, in model order."""
        uid = self.bodies[body]
        out = []
        for j in range(self.client.getNumJoints(uid)):
            info = self.client.getJointInfo(uid, j)
            if info[2] == pybullet.JOINT_FIXED:
                continue
            out.append(
                JointInfo(
                    index=j,
                    name=info[1].decode(),
                    link_name=info[12].decode(),
                    lower=float(info[8]),
                    upper=float(info[9]),
                    max_force=float(info[10]),
                    max_velocity=float(info[11]),
                )
            )
        return out

    def link_index(self, body: str, link_name: str) -> int:
        """Index of a link by name (-1 for the base)."""
        uid = self.bodies[body]
        for j in range(self.client.getNumJoints(uid)):
            if self.client.getJointInfo(uid, j)[12].decode() == link_name:
                return j
        raise KeyError(f"body {body!r} has no link named {link_name!r}")

    # --- state --------------------------------------------------------------------------------
    def base_pose(self, body: str) -> tuple[np.ndarray, np.ndarray]:
        """Position (3) and quaternion xyzw (4) of a body's base."""
        pos, quat = self.client.getBasePositionAndOrientation(self.bodies[body])
        return np.asarray(pos), np.asarray(quat)

    def set_base_pose(self, body: str, position, quaternion=(0.0, 0.0, 0.0, 1.0)) -> None:
        """Teleport a body's base and zero its velocity."""
        uid = self.bodies[body]
        self.client.resetBasePositionAndOrientation(uid, list(position), list(quaternion))
        self.client.resetBaseVelocity(uid, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])

    def step(self, n_substeps: int) -> None:
        """Advance physics by ``n_substeps`` substeps of ``timestep_s``."""
        step = self.step_simulation
        for _ in range(n_substeps):
            step()

    def save_state(self) -> int:
        """Snapshot the world in memory (positions, velocities, contact caches)."""
        return self.client.saveState()

    def restore_state(self, state_id: int) -> None:
        """Restore a snapshot taken by :meth:`save_state`; makes resets exactly reproducible."""
        self.client.restoreState(stateId=state_id)

    def close(self) -> None:
        """Disconnect the client (idempotent)."""
        if not self._closed:
            try:
                self.client.disconnect()
            except pybullet.error:
                pass
            self._closed = True
