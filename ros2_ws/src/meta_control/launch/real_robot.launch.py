"""Real hardware: controller + estimator only, wired to the arm's ros2_control controllers.

The arm's ``joint_state_broadcaster`` publishes ``/joint_states``. By default the controller
sends ``trajectory_msgs/JointTrajectory`` to a ``joint_trajectory_controller``
(``command_mode:=trajectory``, ``trajectory_topic``) and starts as a DRY RUN: everything runs,
the would-be commands go to ``/meta_controller/dry_run/joint_trajectory`` and nothing reaches
the arm until ``dry_run:=false``. ``command_mode:=forward`` sends absolute joint targets to a
``forward_position_controller`` (``command_topic``) instead. The README's "On a real arm" walks
through a first run: dry run, slow mode (``velocity_scale:=0.1 acceleration_scale:=0.25``), full
speed.

    ros2 launch meta_control real_robot.launch.py policy_path:=/path/model.onnx       # panda
    ros2 launch meta_control real_robot.launch.py policy_path:=/path/model.onnx \
        limits:=fr3 urdf_path:=fr3.urdf \
        joint_names:=fr3_joint1,fr3_joint2,fr3_joint3,fr3_joint4,fr3_joint5,fr3_joint6,fr3_joint7 \
        trajectory_topic:=/fr3_arm_controller/joint_trajectory dry_run:=false velocity_scale:=0.1

(or ``ros2 launch launch/real_robot.launch.py ...`` from the repository root).

At 500 Hz and above, run the controller under real-time scheduling (as ros2_control runs its own
loop), e.g. ``controller_prefix:='chrt -f 50'`` (needs CAP_SYS_NICE or an rtprio limit in
/etc/security/limits.conf); docs/benchmarks_ros.md has the measured difference.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

TRAJECTORY_TOPIC = "/joint_trajectory_controller/joint_trajectory"
COMMAND_TOPIC = "/forward_position_controller/commands"
"""The controller's default output topics (controller.yaml), remapped to the launch arguments."""

ARGUMENTS = {
    # name: (default, description, controller parameter type or None if not a parameter)
    "robot": ("panda", "picks the default model and config/limits/<robot>.yaml", str),
    "policy_path": ("", "ONNX policy; empty: the shipped models/<robot>_policy.onnx", str),
    "estimator_path": ("", "ONNX estimator; empty: the shipped one", None),
    "joint_states_topic": ("/joint_state_broadcaster/joint_states", "joint states in", None),
    "command_mode": ("trajectory", "trajectory (JointTrajectory) | forward (targets)", str),
    "trajectory_topic": (
        TRAJECTORY_TOPIC,
        "the joint_trajectory_controller's topic (command_mode trajectory)",
        None,
    ),
    "command_topic": (
        COMMAND_TOPIC,
        "the forward_position_controller's topic (command_mode forward)",
        None,
    ),
    "dry_run": ("true", "true: commands go to /meta_controller/dry_run/* only", bool),
    "velocity_scale": ("1.0", "fraction of the velocity limits (slow mode: 0.1)", float),
    "acceleration_scale": ("1.0", "fraction of the acceleration limits (slow mode)", float),
    "limits": ("", "limits file: empty (the robot's), a name (fr3) or a path", str),
    "joint_names": (
        "",
        "the robot's names for the model's joints, comma-separated in model order "
        "(fr3_joint1,...,fr3_joint7 for the FR3 under franka_ros2); empty: the model's "
        "(panda_joint1..7, as franka_ros and MoveIt name them)",
        str,
    ),
    "frame_id": ("", "frame of the puck and goal poses; empty: the limits file's", str),
    "urdf_path": ("", "the arm's URDF for the workspace guard; empty: the limits file's", str),
    "on_ood": (
        "slow",
        "what a sustained out-of-distribution flag of the estimator does: continue | slow | hold",
        str,
    ),
    "ood_release": ("episode", "what releases it: episode (next goal) | operator", str),
    "controller_prefix": ("", "command prefix of the controller process, e.g. 'chrt -f 50'", None),
}
"""Launch arguments: default, description, and the controller parameter each one sets."""


def generate_launch_description() -> LaunchDescription:
    """Controller (autostart, fixed-rate timer loop) and estimator on the robot's topics."""
    robot = LaunchConfiguration("robot")
    config = PathJoinSubstitution([FindPackageShare("meta_control"), "config"])
    joint_states = ("/joint_states", LaunchConfiguration("joint_states_topic"))
    controller_params = {
        name: ParameterValue(LaunchConfiguration(name), value_type=kind)
        for name, (_, _, kind) in ARGUMENTS.items()
        if kind is not None
    }
    return LaunchDescription(
        [
            *(
                DeclareLaunchArgument(name, default_value=default, description=description)
                for name, (default, description, _) in ARGUMENTS.items()
            ),
            Node(
                package="meta_control",
                executable="controller_node",
                name="meta_controller",
                prefix=LaunchConfiguration("controller_prefix"),
                parameters=[
                    PathJoinSubstitution([config, "controller.yaml"]),
                    {**controller_params, "trigger": "timer", "autostart": True},
                ],
                remappings=[
                    joint_states,
                    (TRAJECTORY_TOPIC, LaunchConfiguration("trajectory_topic")),
                    (COMMAND_TOPIC, LaunchConfiguration("command_topic")),
                ],
            ),
            Node(
                package="meta_control",
                executable="estimator_node",
                name="dynamics_estimator",
                parameters=[
                    PathJoinSubstitution([config, "estimator.yaml"]),
                    {
                        "robot": robot,
                        "estimator_path": LaunchConfiguration("estimator_path"),
                        "joint_names": ParameterValue(
                            LaunchConfiguration("joint_names"), value_type=str
                        ),
                    },
                ],
                remappings=[joint_states],
            ),
        ]
    )
