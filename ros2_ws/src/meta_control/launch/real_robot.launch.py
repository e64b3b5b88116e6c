"""Real hardware: controller + estimator only, wired to the arm's ros2_control controllers.

The arm's ``joint_state_broadcaster`` publishes ``/joint_states``; commands go to its
``forward_position_controller`` (remap ``command_topic`` to another controller if needed).

    ros2 launch meta_control real_robot.launch.py robot:=panda \
        command_topic:=/forward_position_controller/commands

(or ``ros2 launch launch/real_robot.launch.py ...`` from the repository root).

At 500 Hz and above, run the controller under real-time scheduling (as ros2_control runs its own
loop), e.g. ``controller_prefix:='chrt -f 50'`` (needs CAP_SYS_NICE or an rtprio limit in
/etc/security/limits.conf); docs/benchmarks_ros.md has the measured difference.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    """Controller (autostart, fixed-rate timer loop) and estimator on the robot's topics."""
    robot = LaunchConfiguration("robot")
    joint_states = LaunchConfiguration("joint_states_topic")
    commands = LaunchConfiguration("command_topic")
    config = PathJoinSubstitution([FindPackageShare("meta_control"), "config"])
    remaps = [
        ("/joint_states", joint_states),
        ("/forward_position_controller/commands", commands),
    ]
    return LaunchDescription(
        [
            DeclareLaunchArgument("robot", default_value="panda"),
            DeclareLaunchArgument("policy_path", default_value=""),
            DeclareLaunchArgument("estimator_path", default_value=""),
            DeclareLaunchArgument(
                "joint_states_topic", default_value="/joint_state_broadcaster/joint_states"
            ),
            DeclareLaunchArgument(
                "command_topic", default_value="/forward_position_controller/commands"
            ),
            DeclareLaunchArgument(
                "controller_prefix",
                default_value="",
                description="command prefix of the controller process, e.g. 'chrt -f 50'",
            ),
            Node(
                package="meta_control",
                executable="controller_node",
                name="meta_controller",
                prefix=LaunchConfiguration("controller_prefix"),
                parameters=[
                    PathJoinSubstitution([config, "controller.yaml"]),
                    {
                        "robot": robot,
                        "policy_path": LaunchConfiguration("policy_path"),
                        "trigger": "timer",
                        "autostart": True,
                    },
                ],
                remappings=remaps,
            ),
            Node(
                package="meta_control",
                executable="estimator_node",
                name="dynamics_estimator",
                parameters=[
                    PathJoinSubstitution([config, "estimator.yaml"]),
                    {"robot": robot, "estimator_path": LaunchConfiguration("estimator_path")},
                ],
                remappings=remaps[:1],
            ),
        ]
    )
