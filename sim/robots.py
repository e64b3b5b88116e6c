"""Robot descriptions for the push task: which model to load, which joints are commanded.

A :class:`RobotSpec` is data: the world (:mod:`sim.world`) loads it, the env exposes its joints,
and the exported model metadata carries its joint names and limits to the ROS side.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pybullet_data

ASSETS = Path(__file__).resolve().parent / "assets"


@dataclass(frozen=True)
class ContactPad:
    """A box that stands in for some links' collision meshes where the arm touches the puck.

    The Panda's finger collision meshes are convex hulls whose faces lean outwards towards the
    hand, so a closed gripper meets a 5 cm puck at its top rim, and Bullet's contact there
    leans 20-35 degrees from the horizontal: the push presses the puck into the table (the
    fingers' soft contact, stiffness 30 kN/m, lets them sink in), and above a friction of
    about 2 the puck jams under the fingers whatever the arm does (a friction-2 puck pushed at
    1 cm a step moved 2 mm). A real Franka hand's closed fingertips are flat-faced pads, as
    this box is: its faces are vertical, so it meets the puck on its side, as the 3-link
    pusher's pin does. Bullet multiplies two bodies' friction coefficients, so the pad's
    friction against the puck scales with the puck's (randomised) friction against the table;
    a pad coefficient of 0.1 keeps pad-puck friction within [0.01, 0.5] over the training
    range: with the URDF's 1.0, a sagging arm's pad drags a high-friction puck down into the
    table and the hand lands on its top (``tests/sim/test_world.py``). Only collision geometry
    and the pad's friction change; visuals, masses and joints are the model's own.

    Attributes:
        link: link that carries the box.
        replaces: links whose collision meshes (and soft-contact settings) are dropped.
        half_extents: the box's half sizes (m) in the link frame.
        origin: the box centre (m) in the link frame.
        lateral_friction: the pad's friction coefficient (Bullet multiplies it by the puck's).
    """

    link: str
    replaces: tuple[str, ...]
    half_extents: tuple[float, float, float]
    origin: tuple[float, float, float]
    lateral_friction: float = 1.0


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
        contact_pad: collision box that replaces the meshes of the links touching the puck.
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
    contact_pad: ContactPad | None = None

    def urdf_path(self) -> str:
        """The URDF to load: :attr:`urdf`, or a copy with :attr:`contact_pad` applied (written
        once per content under the temporary folder, atomically)."""
        if self.contact_pad is None:
            return self.urdf
        return _padded_urdf(self.urdf, self.contact_pad)


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
    # The closed fingertips, measured by casting rays at the collision meshes: +-10.5 mm along
    # the hand's x, +-16 to +-26 mm along y (two fingers side by side), from 8 mm below the
    # grasp target to 35 mm above it (the left finger's frame sits 58.4 mm below the hand's).
    contact_pad=ContactPad(
        link="panda_leftfinger",
        replaces=("panda_leftfinger", "panda_rightfinger"),
        half_extents=(0.0105, 0.02, 0.0215),
        origin=(0.0, 0.0, 0.033),
        lateral_friction=0.1,
    ),
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


def _padded_urdf(urdf: str, pad: ContactPad) -> str:
    """Path of ``urdf`` (relative to pybullet_data, or absolute) with ``pad`` applied."""
    src = Path(urdf) if Path(urdf).is_absolute() else Path(pybullet_data.getDataPath()) / urdf
    text = src.read_text()
    for name in pad.replaces:
        m = re.search(rf'<link name="{re.escape(name)}">(.*?)</link>', text, flags=re.S)
        if m is None:
            raise ValueError(f"{src}: no link {name!r} to replace the collision of")
        body = re.sub(r"<collision>.*?</collision>", "", m.group(1), flags=re.S)
        body = re.sub(r"<stiffness[^>]*/>|<damping[^>]*/>", "", body)
        body = re.sub(r'<lateral_friction value="[^"]*"/>',
                      f'<lateral_friction value="{pad.lateral_friction}"/>', body)
        if name == pad.link:
            ox, oy, oz = pad.origin
            hx, hy, hz = (2.0 * h for h in pad.half_extents)
            body += (f'<collision><origin rpy="0 0 0" xyz="{ox} {oy} {oz}"/><geometry>'
                     f'<box size="{hx} {hy} {hz}"/></geometry></collision>')
        text = text[: m.start(1)] + body + text[m.end(1):]
    # Meshes stay the model's own: package:// paths resolve next to the original file.
    text = text.replace("package://", f"{src.parent.as_posix()}/")
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / "meta_robot_urdf"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{src.stem}_{digest}.urdf"
    if not out.exists():
        tmp = folder / f".{out.name}.{os.getpid()}"
        tmp.write_text(text)
        os.replace(tmp, out)
    return str(out)
