"""The arm's limits as the controller enforces them: per-robot limit files, free of ROS imports.

A limits file (``config/limits/<robot>.yaml``) states what the *real* arm accepts, by the arm's
own joint names: position range, velocity, acceleration and jerk per joint, a default safety
``margin``, the ``frame`` of the puck and goal poses, and optionally the ``workspace`` the end
effector must stay in. The simulators keep their URDF limits for training; the controller
enforces the intersection of the model's joint range (from its metadata) and the file's, so a
model never widens what the arm allows (the margin shrinks the file's limits first)::

    robot: panda
    margin: 0.1          # fraction: velocity, acceleration, jerk x 0.9; ranges lose 10% of width
    frame: world         # header.frame_id the puck and goal poses must carry
    joints:
      panda_joint1: {position: [-2.8973, 2.8973], velocity: 2.175, acceleration: 15, jerk: 7500}
      ...
    workspace:           # optional; see meta_control.workspace
      enabled: true
      urdf: pybullet_data://franka_panda/panda.urdf
      ...

:func:`parse_joint_map` turns the ``joint_names`` parameter (the robot's names for the model's
joints) into the names the controller reads, commands and looks limits up by.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from meta_control.paths import config_file, package_file

LIMIT_KEYS = ("position", "velocity", "acceleration", "jerk")
"""What a limits file states for every joint."""


class LimitsError(ValueError):
    """A limits file, a joint-name map or the model's limits cannot be used (the message says
    what to fix)."""


@dataclass(frozen=True)
class JointLimits:
    """Limits of a set of joints, in the order of ``names`` (rad, rad/s, rad/s^2, rad/s^3)."""

    names: tuple[str, ...]
    position_low: np.ndarray
    position_high: np.ndarray
    velocity: np.ndarray
    acceleration: np.ndarray
    jerk: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.names)
        for f in dataclasses.fields(self)[1:]:
            value = np.asarray(getattr(self, f.name), dtype=np.float64)
            if value.shape != (n,) or not np.all(np.isfinite(value)):
                raise LimitsError(f"{f.name} must be {n} finite numbers, got {value.tolist()}")
            value.setflags(write=False)
            object.__setattr__(self, f.name, value)
        if np.any(self.position_low >= self.position_high):
            raise LimitsError(
                f"empty position range: low {self.position_low.tolist()} is not below "
                f"high {self.position_high.tolist()}"
            )
        for key in ("velocity", "acceleration", "jerk"):
            if np.any(getattr(self, key) <= 0):
                raise LimitsError(f"{key} limits must be > 0, got {getattr(self, key).tolist()}")

    def select(self, names: Sequence[str]) -> JointLimits:
        """These limits for ``names`` (a subset, in that order)."""
        missing = [n for n in names if n not in self.names]
        if missing:
            raise LimitsError(f"no limits for joints {missing} (have {list(self.names)})")
        idx = [self.names.index(n) for n in names]
        return JointLimits(
            tuple(names),
            *(getattr(self, k)[idx] for k in _ARRAY_FIELDS),  # type: ignore[arg-type]
        )

    def within_positions(self, low: Sequence[float], high: Sequence[float]) -> JointLimits:
        """The intersection with another position range (never wider than either)."""
        lo = np.maximum(self.position_low, np.asarray(low, dtype=np.float64))
        hi = np.minimum(self.position_high, np.asarray(high, dtype=np.float64))
        empty = [n for n, a, b in zip(self.names, lo, hi, strict=True) if a >= b]
        if empty:
            raise LimitsError(f"the position ranges do not overlap for joints {empty}")
        return dataclasses.replace(self, position_low=lo, position_high=hi)

    def with_margin(self, margin: float) -> JointLimits:
        """Shrunk by ``margin`` (a fraction in [0, 1)): velocity, acceleration and jerk times
        ``1 - margin``; each position range loses ``margin`` of its width, half at each end."""
        if not 0.0 <= margin < 1.0:
            raise LimitsError(f"margin must be in [0, 1), got {margin}")
        inset = 0.5 * margin * (self.position_high - self.position_low)
        keep = 1.0 - margin
        return dataclasses.replace(
            self,
            position_low=self.position_low + inset,
            position_high=self.position_high - inset,
            velocity=self.velocity * keep,
            acceleration=self.acceleration * keep,
            jerk=self.jerk * keep,
        )

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """``{joint: {position: [lo, hi], velocity, acceleration, jerk}}`` (JSON-ready)."""
        return {
            n: {
                "position": [float(self.position_low[i]), float(self.position_high[i])],
                "velocity": float(self.velocity[i]),
                "acceleration": float(self.acceleration[i]),
                "jerk": float(self.jerk[i]),
            }
            for i, n in enumerate(self.names)
        }


_ARRAY_FIELDS = ("position_low", "position_high", "velocity", "acceleration", "jerk")


@dataclass(frozen=True)
class WorkspaceSpec:
    """The box the end effector must stay in (see :class:`meta_control.workspace.WorkspaceGuard`).

    All positions are in the limits file's ``frame`` (the frame of the puck and goal poses).
    """

    urdf: str
    """URDF of the arm: an absolute path, one relative to the limits file,
    ``package://meta_control/<path>`` or ``pybullet_data://<path>``."""
    end_effector_link: str
    """Link (URDF frame) whose origin must stay inside the box."""
    box_min_m: tuple[float, float, float]
    box_max_m: tuple[float, float, float]
    table_height_m: float
    """Height of the table top in ``frame``."""
    min_height_above_table_m: float = 0.005
    """The end effector's origin stays at least this far above the table top."""
    base_position_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Where the URDF's root link sits in ``frame`` (no rotation)."""
    enabled: bool = True


@dataclass(frozen=True)
class RobotLimits:
    """One limits file."""

    robot: str
    joints: JointLimits
    margin: float
    frame: str
    workspace: WorkspaceSpec | None
    path: Path


def resolve_limits_path(spec: str, robot: str) -> Path:
    """The limits file for the ``limits`` parameter: empty -> the robot's shipped file, a bare
    name (``fr3``) -> ``config/limits/<name>.yaml``, anything else -> a path."""
    name = spec or robot
    if "/" not in name and not name.endswith((".yaml", ".yml")):
        try:
            return config_file(f"limits/{name}.yaml")
        except FileNotFoundError:
            raise LimitsError(
                f"no limits file for robot {name!r} in config/limits/; pass limits:=<path.yaml>"
            ) from None
    path = Path(name).expanduser()
    if not path.is_file():
        raise LimitsError(f"limits file {path} does not exist")
    return path


def load_robot_limits(path: Path | str) -> RobotLimits:
    """Read and check a limits file (see the module docstring)."""
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise LimitsError(f"cannot read limits file {path}: {exc}") from exc
    if not isinstance(raw, Mapping) or not isinstance(raw.get("joints"), Mapping):
        raise LimitsError(f"{path}: expected a mapping with a 'joints' mapping")
    names, values = [], {k: [] for k in _ARRAY_FIELDS}
    for name, entry in raw["joints"].items():
        if not isinstance(entry, Mapping) or set(entry) != set(LIMIT_KEYS):
            raise LimitsError(f"{path}: joint {name} must state exactly {', '.join(LIMIT_KEYS)}")
        lo, hi = entry["position"]
        names.append(str(name))
        values["position_low"].append(float(lo))
        values["position_high"].append(float(hi))
        for key in ("velocity", "acceleration", "jerk"):
            values[key].append(float(entry[key]))
    try:
        joints = JointLimits(tuple(names), *(np.array(values[k]) for k in _ARRAY_FIELDS))
    except LimitsError as exc:
        raise LimitsError(f"{path}: {exc}") from None
    margin = float(raw.get("margin", 0.0))
    if not 0.0 <= margin < 1.0:
        raise LimitsError(f"{path}: margin must be in [0, 1), got {margin}")
    workspace = None
    if raw.get("workspace") is not None:
        ws = dict(raw["workspace"])
        fields = {f.name for f in dataclasses.fields(WorkspaceSpec)}
        unknown = set(ws) - fields
        if unknown:
            raise LimitsError(f"{path}: unknown workspace keys {sorted(unknown)}")
        for key in ("box_min_m", "box_max_m", "base_position_m"):
            if key in ws:
                ws[key] = tuple(float(v) for v in ws[key])
                if len(ws[key]) != 3:
                    raise LimitsError(f"{path}: workspace.{key} must have 3 values")
        try:
            workspace = WorkspaceSpec(**ws)
        except TypeError as exc:
            raise LimitsError(f"{path}: workspace: {exc}") from None
        if any(a >= b for a, b in zip(workspace.box_min_m, workspace.box_max_m, strict=True)):
            raise LimitsError(f"{path}: workspace box_min_m must be below box_max_m")
    return RobotLimits(
        robot=str(raw.get("robot", path.stem)),
        joints=joints,
        margin=margin,
        frame=str(raw.get("frame", "")),
        workspace=workspace,
        path=path,
    )


def enforced_limits(
    robot_limits: RobotLimits,
    robot_joint_names: Sequence[str],
    model_low: Sequence[float],
    model_high: Sequence[float],
    margin: float | None = None,
) -> JointLimits:
    """What the controller enforces, in model joint order (named by the robot's names): the
    file's limits for those joints shrunk by ``margin`` (``None``: the file's), their position
    range then intersected with the model's (a model never widens it)."""
    try:
        joints = robot_limits.joints.select(robot_joint_names)
    except LimitsError as exc:
        raise LimitsError(f"{robot_limits.path}: {exc}; check joint_names") from None
    joints = joints.with_margin(robot_limits.margin if margin is None else margin)
    return joints.within_positions(model_low, model_high)


def parse_joint_map(spec: str, model_names: Sequence[str]) -> list[str]:
    """The robot's names for the model's joints, in model order.

    ``spec`` is empty (the model's own names), a comma-separated list of robot names in model
    order (``fr3_joint1,...,fr3_joint7``) or of ``model:robot`` pairs in any order
    (``panda_joint1:fr3_joint1,...``), covering every model joint.
    """
    model_names = list(model_names)
    if not spec.strip():
        return model_names
    items = [s.strip() for s in spec.split(",") if s.strip()]
    if all(":" in s for s in items):
        pairs = dict(tuple(p.strip() for p in s.split(":", 1)) for s in items)
        unknown = sorted(set(pairs) - set(model_names))
        missing = [n for n in model_names if n not in pairs]
        if unknown or missing or len(pairs) != len(items):
            raise LimitsError(
                f"joint_names map {spec!r} must map each of the model's joints {model_names} "
                f"once (unknown: {unknown}, missing: {missing})"
            )
        robot = [pairs[n] for n in model_names]
    elif any(":" in s for s in items):
        raise LimitsError(f"joint_names {spec!r} mixes 'model:robot' pairs and bare names")
    else:
        robot = items
        if len(robot) != len(model_names):
            raise LimitsError(
                f"joint_names lists {len(robot)} names for the model's {len(model_names)} "
                f"joints {model_names}"
            )
    if len(set(robot)) != len(robot):
        raise LimitsError(f"joint_names {spec!r} names a robot joint twice")
    return robot


def resolve_urdf(spec: str, relative_to: Path) -> Path:
    """The URDF file of a workspace spec or the ``urdf_path`` parameter (see
    :attr:`WorkspaceSpec.urdf`)."""
    if spec.startswith("package://meta_control/"):
        try:
            return package_file(spec.removeprefix("package://meta_control/"))
        except FileNotFoundError as exc:
            raise LimitsError(str(exc)) from None
    if spec.startswith("pybullet_data://"):
        # find_spec locates the data-only package without importing it (nor pybullet).
        found = importlib.util.find_spec("pybullet_data")
        if found is None or found.origin is None:
            raise LimitsError(
                f"{spec}: pybullet_data is not installed; pass urdf_path:=<the arm's URDF>"
            )
        path = Path(found.origin).parent / spec.removeprefix("pybullet_data://")
    elif spec.startswith("package://"):
        raise LimitsError(f"{spec}: only package://meta_control/ is resolved; give a file path")
    else:
        path = Path(spec).expanduser()
        if not path.is_absolute():
            path = relative_to / path
    if not path.is_file():
        raise LimitsError(f"URDF {path} does not exist")
    return path


def check_finite_positive(name: str, value: float) -> float:
    """``value`` if it is a finite number > 0, else a :class:`LimitsError` naming ``name``."""
    if not (math.isfinite(value) and value > 0):
        raise LimitsError(f"{name} must be a finite number > 0, got {value}")
    return value
