"""Robot descriptions for the push task: which model to load, which joints are commanded.

A :class:`RobotSpec` is data: the world (:mod:`sim.world`) loads it, the env exposes its joints,
and the exported model metadata carries its joint names and limits to the ROS side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

ASSETS = Path(__file__).resolve().parent / "assets"


@dataclass(frozen=True)
class RobotSpec:
    """Everything the world needs to know about one arm.

    Attributes:
        name: short id used in env ids and metadata.
        urdf: path relative to pybullet_data, or absolute.
        base_position: base position with the base z measured from the nominal table top when
            ``mounted_on_table`` (the base then follows the sampled table height).
        joint_names: commanded joints, in action order.
        dynamic_links: links whose masses are randomized.
        ee_link: link whose position is reported as the end effector.
        rest_q: joint positions at reset (rad).
        max_offset_rad: bound of the action (target offset from the current position) per step.
        position_gain, velocity_gain: nominal PyBullet position-controller gains.
        joint_damping: nominal joint damping applied to every commanded joint.
        extra_joints: other joints held at fixed targets (e.g. closed Panda fingers).
        puck_area_center: centre of the 0.3 x 0.3 m start/goal area (x, y).
        episode_steps: control steps per episode.
    """

    name: str
    urdf: str
    base_position: tuple[float, float, float]
    joint_names: tuple[str, ...]
    dynamic_links: tuple[str, ...]
    ee_link: str
    rest_q: tuple[float, ...]
    max_offset_rad: float
    position_gain: float
    velocity_gain: float
    joint_damping: float
    mounted_on_table: bool
    puck_area_center: tuple[float, float]
    episode_steps: int
    extra_joints: dict[str, float] = field(default_factory=dict)


PANDA = RobotSpec(
    name="panda",
    urdf="franka_panda/panda.urdf",
    base_position=(0.0, 0.0, 0.0),
    joint_names=tuple(f"panda_joint{i}" for i in range(1, 8)),
    dynamic_links=tuple(f"panda_link{i}" for i in range(1, 8)) + ("panda_hand",),
    ee_link="panda_grasptarget",
    # Found by inverse kinematics (pybullet.calculateInverseKinematics with joint limits and
    # rest pose [0, .4, 0, -2, 0, 2.4, .785]) for the gripper tip at (0.35, 0, 0.03) pointing down.
    rest_q=(0.0001, 0.263, 0.0, -2.8284, 0.0002, 3.0908, 0.7853),
    max_offset_rad=0.05,
    # kp 0.1 / kd 1.0 tracks 0.05 rad steps on all joints within two control periods;
    # higher kp saturates the 87 N m joints and oscillates (measured with sim.world).
    position_gain=0.1,
    velocity_gain=1.0,
    joint_damping=0.5,
    mounted_on_table=False,
    puck_area_center=(0.6, 0.0),
    episode_steps=100,
    extra_joints={"panda_finger_joint1": 0.0, "panda_finger_joint2": 0.0},
)

PUSHER = RobotSpec(
    name="pusher",
    urdf=str(ASSETS / "planar_pusher.urdf"),
    base_position=(-0.05, 0.0, 0.0),
    joint_names=("joint1", "joint2", "joint3"),
    dynamic_links=("link1", "link2", "link3"),
    ee_link="tip",
    # Tip (the pushing pin) at the centre of the start/goal area (0.35, 0), elbow to the -y
    # side; found by a grid search over joint angles within +-2.4 rad. Starting amid the
    # pucks makes random exploration touch them (panda-gym starts its gripper there too).
    rest_q=(-0.95, 1.35, 1.2),
    max_offset_rad=0.05,
    position_gain=0.3,
    velocity_gain=1.0,
    joint_damping=0.05,
    mounted_on_table=True,
    puck_area_center=(0.35, 0.0),
    episode_steps=50,
)

ROBOTS: dict[str, RobotSpec] = {"panda": PANDA, "pusher": PUSHER}


def get_robot(name: str) -> RobotSpec:
    """Look up a robot by name with a clear error."""
    try:
        return ROBOTS[name]
    except KeyError:
        raise ValueError(f"unknown robot {name!r}; known: {', '.join(ROBOTS)}") from None
