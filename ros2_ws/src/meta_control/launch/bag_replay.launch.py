"""Bag replay: play a recorded bag on sim time and run the estimator (and optionally the
controller, inactive by default so it publishes no commands) on the recorded stream.

    ros2 launch meta_control bag_replay.launch.py bag:=/path/to/bag

(or ``ros2 launch launch/bag_replay.launch.py ...`` from the repository root).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    """``ros2 bag play --clock``, the estimator, and the controller if ``controller:=true``."""
    robot = LaunchConfiguration("robot")
    config = PathJoinSubstitution([FindPackageShare("meta_control"), "config"])
    return LaunchDescription(
        [
            DeclareLaunchArgument("bag"),
            DeclareLaunchArgument("robot", default_value="pusher"),
            DeclareLaunchArgument("estimator_path", default_value=""),
            DeclareLaunchArgument("controller", default_value="false"),
            ExecuteProcess(
                cmd=["ros2", "bag", "play", LaunchConfiguration("bag"), "--clock"],
                output="screen",
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
                        "use_sim_time": True,
                    },
                ],
                remappings=[
                    ("/dynamics_estimate", "/replay/dynamics_estimate"),
                    ("/dynamics_estimate_std", "/replay/dynamics_estimate_std"),
                    ("/dynamics_ood", "/replay/dynamics_ood"),
                ],
            ),
            Node(
                package="meta_control",
                executable="controller_node",
                name="meta_controller",
                condition=IfCondition(LaunchConfiguration("controller")),
                parameters=[
                    PathJoinSubstitution([config, "controller.yaml"]),
                    {"robot": robot, "use_sim_time": True, "autostart": False},
                ],
            ),
        ]
    )
