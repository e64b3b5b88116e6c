"""Node running the exported dynamics estimator on the controller's input stream.

Every joint state (paired with the latest puck pose, or with the one of equal stamp in
lock-step) and the policy's previous raw action go through :class:`EstimatorRuntime`. The node
publishes the normalised estimate of ``mu`` on ``/dynamics_estimate`` and its standard deviation
on ``/dynamics_estimate_std`` (both labelled with the comma-joined ``mu_names``) and an
out-of-distribution flag on ``/dynamics_ood``. A new goal resets the recurrent state; refused
inputs are skipped (nothing is published for them) and counted.
"""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64MultiArray

from meta_control.config import (
    TOPIC_ESTIMATE,
    TOPIC_ESTIMATE_STD,
    TOPIC_OOD,
    EstimatorConfig,
)
from meta_control.observation import JointMapper, ObservationError, assemble, check_terms
from meta_control.paths import default_model
from meta_control.ros_common import declare_config, labelled_array, spin_node, stamp_to_s
from meta_control.runtime import EstimatorRuntime, InputRejected, ModelError

NODE_NAME = "dynamics_estimator"


class EstimatorNode(Node):
    """The dynamics estimator (see the module docstring)."""

    def __init__(self, **kwargs) -> None:
        """Load the estimator and create publishers and subscriptions."""
        super().__init__(NODE_NAME, **kwargs)
        self.cfg = declare_config(self, EstimatorConfig)
        path = self.cfg.estimator_path or str(default_model(self.cfg.robot, "estimator"))
        self.runtime = EstimatorRuntime(path, range_margin=self.cfg.range_margin)
        meta = self.runtime.metadata
        try:
            check_terms(meta.obs_terms, len(meta.joint_names))
        except ValueError as exc:
            raise ModelError(f"{path}: {exc}") from exc
        self.mu_names = list(meta.mu_names)
        self.mapper = JointMapper(meta.joint_names)
        self._prev_action = np.zeros(meta.act_dim)
        self._puck: np.ndarray | None = None
        self._puck_stamp: float | None = None
        self._pending: tuple[float, np.ndarray, np.ndarray] | None = None
        self._queue: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._actions: list[np.ndarray] = []
        self.steps_since_reset = 0
        self.rejected = 0
        qos = QoSProfile(depth=10)
        self._pub_mean = self.create_publisher(Float64MultiArray, TOPIC_ESTIMATE, qos)
        self._pub_std = self.create_publisher(Float64MultiArray, TOPIC_ESTIMATE_STD, qos)
        self._pub_ood = self.create_publisher(Bool, TOPIC_OOD, qos)
        self.create_subscription(
            JointState, self.cfg.joint_state_topic, self._on_joint_state, qos_profile_sensor_data
        )
        self.create_subscription(
            PoseStamped, self.cfg.puck_topic, self._on_puck, qos_profile_sensor_data
        )
        self.create_subscription(PoseStamped, self.cfg.goal_topic, self._on_goal, 10)
        self.create_subscription(Float64MultiArray, self.cfg.action_topic, self._on_action, 10)
        self.get_logger().info(f"estimating {self.mu_names} with {path}")

    def _on_goal(self, msg: PoseStamped) -> None:
        self.get_logger().info(
            f"new goal: last episode {self.steps_since_reset} steps ({len(self._queue)} queued, "
            f"{len(self._actions)} actions), {self.rejected} refused so far"
        )
        self.runtime.reset()
        self._prev_action = np.zeros(self._prev_action.size)
        self.steps_since_reset = 0
        self._pending = None
        self._queue.clear()
        self._actions.clear()

    def _on_action(self, msg: Float64MultiArray) -> None:
        if len(msg.data) == self._prev_action.size:
            action = np.asarray(msg.data, dtype=np.float64)
            if self.cfg.lock_step:
                self._actions.append(action)
            else:
                self._actions[:] = [action]
            self._drain()

    def _drain(self) -> None:
        """Step the queued states whose previous action is known (lock-step pairing).

        The state published after the ``i``-th command of an episode is paired with the
        ``i``-th action, whichever arrives first; free-running, the latest action is used.
        """
        while self._queue:
            i = self.steps_since_reset
            if i == 0:
                prev = np.zeros_like(self._prev_action)
            elif len(self._actions) >= i:
                prev = self._actions[i - 1]
            elif not self.cfg.lock_step or len(self._queue) > 2:
                prev = self._actions[-1] if self._actions else self._prev_action
            else:
                return  # wait for the action that produced this state
            q, dq, puck = self._queue.pop(0)
            self._prev_action = prev
            self._step(q, dq, puck)

    def _on_puck(self, msg: PoseStamped) -> None:
        p = msg.pose.position
        self._puck = np.array([p.x, p.y, p.z], dtype=np.float64)
        self._puck_stamp = stamp_to_s(msg.header.stamp)
        if self._pending is not None and self._pending[0] == self._puck_stamp:
            _, q, dq = self._pending
            self._pending = None
            self._queue.append((q, dq, self._puck))
            self._drain()

    def _on_joint_state(self, msg: JointState) -> None:
        try:
            q, dq = self.mapper.map(msg.name, msg.position, msg.velocity)
        except ObservationError:
            self.rejected += 1
            return
        stamp = stamp_to_s(msg.header.stamp)
        if self._puck is None or self._puck_stamp is None:
            self._pending = (stamp, q, dq) if self.cfg.lock_step else None
            return
        if self.cfg.lock_step and self._puck_stamp != stamp:
            self._pending = (stamp, q, dq)  # its puck pose is still on the way
            return
        if abs(stamp - self._puck_stamp) > self.cfg.max_input_age_s:
            self.rejected += 1
            return
        self._queue.append((q, dq, self._puck))
        self._drain()

    def _step(self, q: np.ndarray, dq: np.ndarray, puck: np.ndarray) -> None:
        obs = assemble(self.runtime.metadata.obs_terms, q, dq, puck)
        try:
            mean, std = self.runtime.step(obs, self._prev_action)
        except (InputRejected, ModelError):
            self.rejected += 1
            self.steps_since_reset += 1
            return
        self.steps_since_reset += 1
        ood = self.steps_since_reset > self.cfg.ood_ignore_steps and self.runtime.ood(mean, std)
        self._pub_mean.publish(labelled_array(self.mu_names, mean))
        self._pub_std.publish(labelled_array(self.mu_names, std))
        self._pub_ood.publish(Bool(data=bool(ood)))


def main(args: list[str] | None = None) -> None:
    """Console script ``estimator_node``."""
    spin_node(EstimatorNode, args)


if __name__ == "__main__":
    main()
