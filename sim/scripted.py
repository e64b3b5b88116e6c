"""A privileged scripted pusher: a sanity check that the task is solvable, and a demo baseline.

It reads the true puck position from the world (not the noisy observation) and uses PyBullet's
inverse kinematics, so it is not a deployable policy; it shows what success looks like and how
it degrades with the randomized dynamics.
"""

from __future__ import annotations

import numpy as np

from sim.envs import PushEnv


class ScriptedPusher:
    """Go behind the puck (opposite the goal), then push through it towards the goal.

    Args:
        env: the (unwrapped) push env whose world is read.
        standoff_m: distance from the puck centre to the pre-push point.
    """

    def __init__(self, env: PushEnv, standoff_m: float = 0.07) -> None:
        self.env = env
        self.standoff_m = standoff_m
        self._phase = "approach"

    def reset(self) -> None:
        self._phase = "approach"

    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        world = self.env.world
        puck = world.puck_xy()
        goal = np.asarray(obs["desired_goal"], dtype=np.float64)
        to_goal = goal - puck
        dist = np.linalg.norm(to_goal)
        direction = to_goal / max(dist, 1e-6)
        ee = world.ee_position()[:2]
        side = np.array([-direction[1], direction[0]])
        if np.dot(ee - puck, side) < 0:
            side = -side
        behind = puck - direction * self.standoff_m
        waypoints = {
            "approach": puck + side * 0.12,  # beside the puck, on the arm's side
            "around": puck + side * 0.12 - direction * 0.1,
            "line_up": behind,
        }
        order = ["approach", "around", "line_up", "push"]
        while self._phase != "push":
            if np.linalg.norm(ee - waypoints[self._phase]) > 0.02:
                break
            self._phase = order[order.index(self._phase) + 1]
        if self._phase == "push":
            target = puck + direction * min(dist, 0.03)
            lateral = abs(np.dot(ee - puck, side))
            if np.dot(ee - puck, direction) > 0.0 or lateral > 0.03:
                self._phase = "approach"  # lost the puck
        else:
            target = waypoints[self._phase]
        # Small Cartesian increments keep the tip on a straight line (no sweeping arcs).
        delta = target - ee
        target = ee + delta * min(1.0, 0.03 / max(np.linalg.norm(delta), 1e-9))
        z = world.table_height_m + 0.025
        q_target = self._ik(np.array([target[0], target[1], z]))
        q = world.joint_positions()
        return np.clip(q_target - q, -self.env.max_offset, self.env.max_offset).astype(np.float32)

    def _ik(self, target_xyz: np.ndarray) -> np.ndarray:
        world = self.env.world
        c = world.sim.client
        kw = {}
        if world.spec.name == "panda":
            kw["targetOrientation"] = c.getQuaternionFromEuler([np.pi, 0.0, 0.0])
        q = c.calculateInverseKinematics(
            world.robot_uid, world.ee_index, list(target_xyz), maxNumIterations=50, **kw
        )
        return np.asarray(q[: world.n_joints])
