"""A privileged scripted pusher: a sanity check that the task is solvable, and a demo baseline.

It reads the true puck position from the world (not the noisy observation) and uses PyBullet's
inverse kinematics, so it is not a deployable policy; it shows what success looks like and how
it degrades with the randomized dynamics.
"""

from __future__ import annotations

import numpy as np

from sim.envs import PushEnv
from sim.world import PUCK_RADIUS_M

# Radius of the pushing pin and of the Panda's closed fingertips, near enough (m).
TIP_RADIUS_M = 0.012


class ScriptedPusher:
    """Go behind the puck (opposite the goal), line up, then push it towards the goal.

    The push is closed loop: the tip aims at the contact point behind the puck on the current
    puck-goal line, advances at ``min(push_speed_m, push_gain * distance)`` per step (slow near
    the goal, so a sliding puck does not overshoot) and backs off once the puck is within
    ``done_m``. A tip more than ``realign_m`` off the line steps back behind the puck onto it
    before pushing on; losing the puck (tip beside or ahead of it) restarts the approach.

    Args:
        env: the (unwrapped) push env whose world is read.
        standoff_m: distance from the puck centre to the pre-push point.
        push_speed_m: largest advance of the tip per control step while pushing (m).
        push_gain: advance per step as a fraction of the remaining puck-goal distance.
        done_m: puck-goal distance below which the tip backs off.
        realign_m: lateral offset from the puck-goal line that interrupts the push to re-align.
        lost_m: lateral offset at which the puck counts as lost.
    """

    def __init__(
        self,
        env: PushEnv,
        standoff_m: float = 0.07,
        push_speed_m: float = 0.015,
        push_gain: float = 0.3,
        done_m: float = 0.015,
        realign_m: float = 0.01,
        lost_m: float = 0.045,
    ) -> None:
        self.env = env
        self.standoff_m = standoff_m
        self.push_speed_m = push_speed_m
        self.push_gain = push_gain
        self.done_m = done_m
        self.realign_m = realign_m
        self.lost_m = lost_m
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
        rel = ee - puck
        side = np.array([-direction[1], direction[0]])
        if np.dot(rel, side) < 0:
            side = -side
        waypoints = {
            "approach": puck + side * 0.12,  # beside the puck, on the arm's side
            "around": puck + side * 0.12 - direction * 0.1,
            "line_up": puck - direction * self.standoff_m,
        }
        order = ["approach", "around", "line_up", "push"]
        already_behind = np.dot(rel, direction) < -0.04 and abs(np.dot(rel, side)) < 0.05
        if self._phase in ("approach", "around") and already_behind:
            self._phase = "line_up"
        while self._phase != "push":
            if np.linalg.norm(ee - waypoints[self._phase]) > 0.02:
                break
            self._phase = order[order.index(self._phase) + 1]
        speed = 0.03
        contact = PUCK_RADIUS_M + TIP_RADIUS_M
        if self._phase == "push":
            lateral = abs(np.dot(rel, side))
            if np.dot(rel, direction) > -0.01 or lateral > self.lost_m:
                self._phase = "approach"  # lost the puck
                target = waypoints["approach"]
            elif dist < self.done_m:
                target = puck - direction * (contact + 0.03)  # done: back off
            elif lateral > self.realign_m:
                target = puck - direction * (contact + 0.015)  # back onto the line
                speed = self.push_speed_m
            else:
                advance = min(self.push_speed_m, self.push_gain * dist)
                target = puck - direction * (contact - advance)
                speed = self.push_speed_m
        else:
            target = waypoints[self._phase]
        # Small Cartesian increments keep the tip on a straight line (no sweeping arcs).
        delta = target - ee
        target = ee + delta * min(1.0, speed / max(np.linalg.norm(delta), 1e-9))
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
