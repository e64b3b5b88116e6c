"""Workspace guard: the end effector stays inside a box and above the table (no ROS imports).

Forward kinematics come from the arm's URDF through pinocchio (pip ``pin``, rosdep
``pinocchio``), imported only when a guard is built, so robots without one (the simulated
pusher) never load it. Joints of the URDF that the model does not command (e.g. the Panda's
fingers) are locked at their neutral position.

The controller checks two joint configurations per command: the command itself, and where the
motion would come to rest if it braked from it (see :class:`meta_control.motion.MotionStep`).
A command that fails either is not sent: the controller holds (brakes) instead, from a state
whose own rest position passed the check a tick before.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from meta_control.limits import LimitsError, WorkspaceSpec


class WorkspaceGuard:
    """Forward kinematics of one link and the box it must stay in.

    Args:
        spec: the box, table and link (positions in the frame of the puck and goal poses).
        urdf_path: the arm's URDF.
        joint_names: the URDF's names of the commanded joints, in model order.
    """

    def __init__(self, spec: WorkspaceSpec, urdf_path: Path | str, joint_names: Sequence[str]):
        import pinocchio as pin

        self.spec = spec
        self.urdf_path = Path(urdf_path)
        try:
            full = pin.buildModelFromUrdf(str(self.urdf_path))
        except (RuntimeError, ValueError) as exc:
            raise LimitsError(f"pinocchio cannot load {self.urdf_path}: {exc}") from exc
        names = list(full.names)[1:]  # [0] is the universe
        missing = [n for n in joint_names if n not in names]
        if missing:
            raise LimitsError(
                f"{self.urdf_path} has no joints {missing} (it has {names}); check joint_names"
            )
        locked = [full.getJointId(n) for n in names if n not in joint_names]
        self._model = pin.buildReducedModel(full, locked, pin.neutral(full)) if locked else full
        self._data = self._model.createData()
        self._q_index = []
        for n in joint_names:
            joint = self._model.joints[self._model.getJointId(n)]
            if joint.nq != 1:
                raise LimitsError(f"joint {n} of {self.urdf_path} is not a 1-DoF joint")
            self._q_index.append(joint.idx_q)
        if not self._model.existFrame(spec.end_effector_link):
            raise LimitsError(f"{self.urdf_path} has no link {spec.end_effector_link!r}")
        self._frame = self._model.getFrameId(spec.end_effector_link)
        self._q = pin.neutral(self._model)
        self._pin = pin
        self._base = np.asarray(spec.base_position_m, dtype=np.float64)
        self.box_min = np.asarray(spec.box_min_m, dtype=np.float64)
        self.box_max = np.asarray(spec.box_max_m, dtype=np.float64)
        self.min_z = spec.table_height_m + spec.min_height_above_table_m

    def end_effector_position(self, q: np.ndarray) -> np.ndarray:
        """The end effector link's origin (m) in the poses' frame for joint positions ``q``."""
        self._q[self._q_index] = q
        self._pin.forwardKinematics(self._model, self._data, self._q)
        placement = self._pin.updateFramePlacement(self._model, self._data, self._frame)
        return self._base + placement.translation

    def violation(self, q: np.ndarray) -> str | None:
        """Why ``q`` puts the end effector outside the workspace, or ``None`` when it is inside."""
        x = self.end_effector_position(q)
        link = self.spec.end_effector_link
        if x[2] < self.min_z:
            return (
                f"{link} at z {x[2]:.3f} m would be below the table clearance ({self.min_z:.3f} m)"
            )
        outside = (x < self.box_min) | (x > self.box_max)
        if outside.any():
            axes = ", ".join(
                f"{'xyz'[i]} {x[i]:.3f} not in [{self.box_min[i]:.3f}, {self.box_max[i]:.3f}]"
                for i in np.flatnonzero(outside)
            )
            return f"{link} would leave the workspace box: {axes} m"
        return None

    def check(self, *configurations: np.ndarray) -> str | None:
        """The first :meth:`violation` among ``configurations``, or ``None``."""
        for q in configurations:
            reason = self.violation(q)
            if reason is not None:
                return reason
        return None
