"""Node running the exported dynamics estimator on the controller's input stream.

Every joint state, paired with the latest puck pose and the latest policy action, goes through
:class:`EstimatorRuntime`. In lock-step (deterministic evaluation) the pairing is exact whatever
order the topics arrive in: the puck pose of equal stamp, and as previous action the one the
controller computed from the previous state (actions carry their input's stamp); a state of the
next episode waits for its goal, and states that arrive before their episode's goal are kept
for it (:data:`~meta_control.config.LOCK_STEP_EPISODE_GAP_S`). The node publishes the
normalised estimate of ``mu`` on ``/dynamics_estimate`` and its standard deviation on
``/dynamics_estimate_std`` (both labelled with the comma-joined ``mu_names``), the estimate in
physical units on ``/dynamics_estimate_physical`` with its one-standard-deviation interval on
``/dynamics_estimate_physical_low`` and ``_high`` (labelled ``name [units]``), the OOD score
on ``/dynamics_ood_score`` and the out-of-distribution flag (score above 1, after
``ood_ignore_steps``) on ``/dynamics_ood``. A new goal resets the recurrent state; refused
inputs are skipped (nothing is published for them) and counted. ``joint_names`` maps the
model's joints to the robot's names, as the controller's parameter does.
"""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64, Float64MultiArray

from meta_control.config import LOCK_STEP_EPISODE_GAP_S, EstimatorConfig
from meta_control.limits import parse_joint_map
from meta_control.observation import (
    JointMapper,
    ObservationAssembler,
    ObservationError,
    ObsTermError,
)
from meta_control.paths import default_model
from meta_control.ros_common import declare_config, labelled_array, spin_node
from meta_control.runtime import EstimatorRuntime, InputRejected, ModelError
from meta_control.topics import (
    TOPIC_ESTIMATE,
    TOPIC_ESTIMATE_PHYSICAL,
    TOPIC_ESTIMATE_PHYSICAL_HIGH,
    TOPIC_ESTIMATE_PHYSICAL_LOW,
    TOPIC_ESTIMATE_STD,
    TOPIC_OOD,
    TOPIC_OOD_SCORE,
    action_input_stamp_ns,
    stamp_ns,
)

NODE_NAME = "dynamics_estimator"

LOCK_STEP_MAX_WAITING = 10
"""Lock-step: once this many states wait for the previous action of the oldest, that action is
taken to be missing (a controller hold publishes none) and the latest action stands in."""

_GAP_NS = int(0.5 * LOCK_STEP_EPISODE_GAP_S * 1e9)


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
            self.assembler = ObservationAssembler.for_model(meta)
        except ObsTermError as exc:
            raise ModelError(f"{path}: {exc}") from exc
        self.mu_names = list(meta.mu_names)
        units = meta.mu_units or [""] * len(self.mu_names)
        self.physical_labels = [f"{n} [{u}]" if u else n
                                for n, u in zip(self.mu_names, units, strict=True)]
        self.mapper = JointMapper(parse_joint_map(self.cfg.joint_names, meta.joint_names))
        self._zero_action = np.zeros(meta.act_dim)
        self._latest_action = self._zero_action
        self._puck: np.ndarray | None = None
        self._puck_ns: int | None = None
        # Lock-step bookkeeping (stamps in ns): the state waiting for its puck pose, paired
        # states waiting to be stepped, actions by the stamp of the state they came from.
        self._pending: tuple[int, np.ndarray, np.ndarray] | None = None
        self._queue: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
        self._actions: dict[int, np.ndarray] = {}
        self._goal_ns: int | None = None
        self._last_ns: int | None = None
        self.steps_since_reset = 0
        self.rejected = 0
        self.unpaired = 0
        qos = QoSProfile(depth=10)
        self._pub_mean = self.create_publisher(Float64MultiArray, TOPIC_ESTIMATE, qos)
        self._pub_std = self.create_publisher(Float64MultiArray, TOPIC_ESTIMATE_STD, qos)
        self._pub_ood = self.create_publisher(Bool, TOPIC_OOD, qos)
        self._pub_score = self.create_publisher(Float64, TOPIC_OOD_SCORE, qos)
        self._pub_phys = self.create_publisher(Float64MultiArray, TOPIC_ESTIMATE_PHYSICAL, qos)
        self._pub_low = self.create_publisher(Float64MultiArray, TOPIC_ESTIMATE_PHYSICAL_LOW, qos)
        self._pub_high = self.create_publisher(
            Float64MultiArray, TOPIC_ESTIMATE_PHYSICAL_HIGH, qos
        )
        # Lock-step evaluation must see every state and action even when this process falls
        # behind: reliable and deep. Free-running: the latest sample is what matters.
        inputs = QoSProfile(depth=200) if self.cfg.lock_step else qos_profile_sensor_data
        self.create_subscription(
            JointState, self.cfg.joint_state_topic, self._on_joint_state, inputs
        )
        self.create_subscription(PoseStamped, self.cfg.puck_topic, self._on_puck, inputs)
        self.create_subscription(PoseStamped, self.cfg.goal_topic, self._on_goal, 10)
        self.create_subscription(
            Float64MultiArray, self.cfg.action_topic, self._on_action,
            QoSProfile(depth=200) if self.cfg.lock_step else 10,
        )
        self.get_logger().info(f"estimating {self.mu_names} with {path}")

    def _on_goal(self, msg: PoseStamped) -> None:
        self.get_logger().info(
            f"new goal: last episode {self.steps_since_reset} steps ({len(self._queue)} queued, "
            f"{len(self._actions)} actions), {self.rejected} refused, {self.unpaired} steps "
            f"without their action so far"
        )
        self.runtime.reset()
        self.steps_since_reset = 0
        self._latest_action = self._zero_action
        self._goal_ns = stamp_ns(msg.header.stamp)
        self._last_ns = None
        # What arrived ahead of this goal belongs to its episode; the rest is the last one's.
        self._queue = [e for e in self._queue if e[0] >= self._goal_ns]
        self._actions = {k: a for k, a in self._actions.items() if k >= self._goal_ns}
        if self._pending is not None and self._pending[0] < self._goal_ns:
            self._pending = None
        self._drain()

    def _on_action(self, msg: Float64MultiArray) -> None:
        if len(msg.data) != self._zero_action.size:
            return
        action = np.asarray(msg.data, dtype=np.float64)
        if self.cfg.lock_step:
            self._actions[action_input_stamp_ns(msg)] = action
            self._drain()
        self._latest_action = action

    def _on_puck(self, msg: PoseStamped) -> None:
        p = msg.pose.position
        self._puck = np.array([p.x, p.y, p.z], dtype=np.float64)
        self._puck_ns = stamp_ns(msg.header.stamp)
        if self._pending is not None and self._pending[0] == self._puck_ns:
            ns, q, dq = self._pending
            self._pending = None
            self._queue.append((ns, q, dq, self._puck))
            self._drain()

    def _on_joint_state(self, msg: JointState) -> None:
        try:
            q, dq = self.mapper.map(msg.name, msg.position, msg.velocity)
        except ObservationError:
            self.rejected += 1
            return
        ns = stamp_ns(msg.header.stamp)
        if self.cfg.lock_step:
            if self._puck_ns == ns:
                self._queue.append((ns, q, dq, self._puck))
                self._drain()
            else:
                self._pending = (ns, q, dq)  # its puck pose is still on the way
            return
        if self._puck is None or self._puck_ns is None:
            return
        if abs(ns - self._puck_ns) > self.cfg.max_input_age_s * 1e9:
            self.rejected += 1
            return
        self._step(q, dq, self._puck, self._latest_action)

    def _drain(self) -> None:
        """Lock-step: step the queued states of the current episode, in stamp order, each
        with the action computed from the state before it."""
        self._queue.sort(key=lambda e: e[0])
        while self._queue:
            ns = self._queue[0][0]
            if self._goal_ns is None or ns < self._goal_ns:
                self._queue.pop(0)  # before any goal, or the last episode's: not estimated
                continue
            if self._last_ns is None:
                prev = self._zero_action  # the episode's first state
            elif ns <= self._last_ns:
                self._queue.pop(0)  # a republished state: stepped already
                continue
            elif ns - self._last_ns > _GAP_NS:
                return  # the next episode's first state, ahead of its goal
            elif self._last_ns in self._actions:
                prev = self._actions.pop(self._last_ns)
            elif len(self._queue) >= LOCK_STEP_MAX_WAITING:
                prev = self._latest_action  # its action never came (a hold publishes none)
                self.unpaired += 1
            else:
                return  # wait for the action that produced this state
            _, q, dq, puck = self._queue.pop(0)
            self._last_ns = ns
            self._step(q, dq, puck, prev)

    def _step(self, q: np.ndarray, dq: np.ndarray, puck: np.ndarray, prev: np.ndarray) -> None:
        obs = self.assembler.fill(q, dq, puck)
        try:
            mean, std = self.runtime.step(obs, prev)
        except (InputRejected, ModelError):
            self.rejected += 1
            self.steps_since_reset += 1
            return
        self.steps_since_reset += 1
        score = self.runtime.ood_score if self.steps_since_reset > self.cfg.ood_ignore_steps \
            else 0.0
        to_phys = self.runtime.to_physical
        self._pub_mean.publish(labelled_array(self.mu_names, mean))
        self._pub_std.publish(labelled_array(self.mu_names, std))
        self._pub_phys.publish(labelled_array(self.physical_labels, to_phys(mean)))
        self._pub_low.publish(labelled_array(self.physical_labels, to_phys(mean - std)))
        self._pub_high.publish(labelled_array(self.physical_labels, to_phys(mean + std)))
        self._pub_score.publish(Float64(data=float(score)))
        self._pub_ood.publish(Bool(data=bool(score > 1.0)))


def main(args: list[str] | None = None) -> None:
    """Console script ``estimator_node``."""
    spin_node(EstimatorNode, args)


if __name__ == "__main__":
    main()
