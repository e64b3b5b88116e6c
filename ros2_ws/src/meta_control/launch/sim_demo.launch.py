"""Simulated demo: PyBullet arm + policy controller + dynamics estimator (free-running, sim time).

    ros2 launch meta_control sim_demo.launch.py robot:=pusher

(installed into ``share/meta_control/launch``; from the repository root,
``ros2 launch launch/sim_demo.launch.py`` runs the same file through its symlink).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    """Three nodes on sim time; the controller configures and activates itself."""
    robot = LaunchConfiguration("robot")
    config = PathJoinSubstitution([FindPackageShare("meta_control"), "config"])
    return LaunchDescription(
        [
            DeclareLaunchArgument("robot", default_value="pusher"),
            DeclareLaunchArgument("policy_path", default_value=""),
            DeclareLaunchArgument("estimator_path", default_value=""),
            Node(
                package="meta_control",
                executable="sim_arm_node",
                name="sim_arm",
                parameters=[
                    PathJoinSubstitution([config, "sim_arm.yaml"]),
                    {"robot": robot, "lock_step": False},
                ],
            ),
            Node(
                package="meta_control",
                executable="controller_node",
                name="meta_controller",
                parameters=[
                    PathJoinSubstitution([config, "controller.yaml"]),
                    {
                        "robot": robot,
                        "policy_path": LaunchConfiguration("policy_path"),
                        "use_sim_time": True,
                        "autostart": True,
                        # the simulated arm jumps to its start pose at every reset
                        "reanchor_on_goal": True,
                    },
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
                        "use_sim_time": True,
                    },
                ],
            ),
        ]
    )
