"""The topic contract of the meta-controller and the helpers for its stamps, free of ROS imports.

Every node, the recorder, the bag tools and the demo take topic names and message types from
here, so the contract has one definition. Nothing here imports rclpy, rosbags or ruamel: the
stamp helpers work on anything with ``sec``/``nanosec`` fields (an rclpy
``builtin_interfaces/Time`` as well as a rosbags message object), so the nodes can use them
without pulling in the bag libraries.
"""

from __future__ import annotations

from typing import Any

TOPIC_JOINT_STATES = "/joint_states"
TOPIC_PUCK_POSE = "/puck_pose"
TOPIC_GOAL_POSE = "/goal_pose"
TOPIC_COMMANDS = "/forward_position_controller/commands"
TOPIC_POLICY_ACTION = "/meta_controller/policy_action"
TOPIC_TRUE_DYNAMICS = "/true_dynamics"
TOPIC_ESTIMATE = "/dynamics_estimate"
TOPIC_ESTIMATE_STD = "/dynamics_estimate_std"
TOPIC_ESTIMATE_PHYSICAL = "/dynamics_estimate_physical"
"""The estimate in physical units, labelled ``name [units]``."""
TOPIC_ESTIMATE_PHYSICAL_LOW = "/dynamics_estimate_physical_low"
TOPIC_ESTIMATE_PHYSICAL_HIGH = "/dynamics_estimate_physical_high"
"""The estimate's one-standard-deviation interval in physical units (the normalised mean minus
and plus its std, mapped back; asymmetric for log-uniform parameters)."""
TOPIC_OOD = "/dynamics_ood"
TOPIC_OOD_SCORE = "/dynamics_ood_score"
"""``std_msgs/Float64``: the estimator's OOD score (``EstimatorRuntime``; above 1 is OOD)."""
TOPIC_E_STOP = "/e_stop"
TOPIC_CLOCK = "/clock"
TOPIC_DIAGNOSTICS = "/diagnostics"
TOPIC_JOINT_TRAJECTORY = "/joint_trajectory_controller/joint_trajectory"
"""``trajectory_msgs/JointTrajectory`` for ros2_control's joint_trajectory_controller (the
controller's ``command_mode: trajectory``; not recorded)."""
TOPIC_DRY_RUN_COMMANDS = "/meta_controller/dry_run/commands"
TOPIC_DRY_RUN_TRAJECTORY = "/meta_controller/dry_run/joint_trajectory"
"""Where a dry run publishes the commands it would have sent (forward / trajectory mode)."""
TOPIC_EPISODE_RESULT = "/sim_arm/episode_result"
"""Evaluation-only topic of the simulated arm (one labelled array per finished episode); not
recorded, so not in :data:`CONTRACT_TOPICS`."""

CONTRACT_TOPICS: dict[str, str] = {
    TOPIC_JOINT_STATES: "sensor_msgs/msg/JointState",
    TOPIC_PUCK_POSE: "geometry_msgs/msg/PoseStamped",
    TOPIC_GOAL_POSE: "geometry_msgs/msg/PoseStamped",
    TOPIC_COMMANDS: "std_msgs/msg/Float64MultiArray",
    TOPIC_POLICY_ACTION: "std_msgs/msg/Float64MultiArray",
    TOPIC_TRUE_DYNAMICS: "std_msgs/msg/Float64MultiArray",
    TOPIC_ESTIMATE: "std_msgs/msg/Float64MultiArray",
    TOPIC_ESTIMATE_STD: "std_msgs/msg/Float64MultiArray",
    TOPIC_ESTIMATE_PHYSICAL: "std_msgs/msg/Float64MultiArray",
    TOPIC_ESTIMATE_PHYSICAL_LOW: "std_msgs/msg/Float64MultiArray",
    TOPIC_ESTIMATE_PHYSICAL_HIGH: "std_msgs/msg/Float64MultiArray",
    TOPIC_OOD: "std_msgs/msg/Bool",
    TOPIC_OOD_SCORE: "std_msgs/msg/Float64",
    TOPIC_E_STOP: "std_msgs/msg/Bool",
    TOPIC_CLOCK: "rosgraph_msgs/msg/Clock",
    TOPIC_DIAGNOSTICS: "diagnostic_msgs/msg/DiagnosticArray",
}
"""Every recorded topic of the contract and its ROS 2 message type."""

SENSOR_TOPICS: frozenset[str] = frozenset({TOPIC_JOINT_STATES, TOPIC_PUCK_POSE})
"""Topics published with ``qos_profile_sensor_data`` (best effort, keep last 5)."""

STAMP_SEC_LABEL = "stamp_sec"
STAMP_NANOSEC_LABEL = "stamp_nanosec"
"""Labels of the optional ``layout.dim[1:3]`` of a policy action: their ``size`` fields carry the
header stamp of the joint state the action was computed from."""

_NS_PER_S = 1_000_000_000


def stamp_ns(stamp: Any) -> int:
    """Nanoseconds of a ``builtin_interfaces/Time`` (rclpy or rosbags message)."""
    return int(stamp.sec) * _NS_PER_S + int(stamp.nanosec)


def stamp_s(stamp: Any) -> float:
    """Seconds of a ``builtin_interfaces/Time`` (rclpy or rosbags message)."""
    return stamp.sec + stamp.nanosec * 1e-9


def s_to_sec_nanosec(t_s: float) -> tuple[int, int]:
    """Seconds -> the ``(sec, nanosec)`` fields of a ``builtin_interfaces/Time``, rounded to the
    nanosecond (``ros_common.s_to_stamp`` builds the message from them)."""
    ns = int(round(t_s * 1e9))
    return ns // _NS_PER_S, ns % _NS_PER_S


def action_input_stamp_ns(msg: Any) -> int:
    """The stamp (ns) of the joint state a policy action was computed from, carried in its
    layout (:data:`STAMP_SEC_LABEL`, :data:`STAMP_NANOSEC_LABEL`), or -1 when it has none.
    Works on rclpy and on rosbags messages alike."""
    dims = msg.layout.dim
    if (
        len(dims) >= 3
        and dims[1].label == STAMP_SEC_LABEL
        and dims[2].label == STAMP_NANOSEC_LABEL
    ):
        return int(dims[1].size) * _NS_PER_S + int(dims[2].size)
    return -1
