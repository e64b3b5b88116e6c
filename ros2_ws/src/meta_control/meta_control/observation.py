"""Turn ROS messages' contents into the model's observation vector, free of ROS imports.

The model metadata lists ordered observation terms; :class:`JointMapper` maps a JointState's
named arrays into the model's joint order (any message order, extra joints ignored) and refuses
missing or duplicated names and arrays whose lengths do not match the names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

KNOWN_TERMS = ("joint_positions", "joint_velocities", "puck_position")
"""Observation terms the ROS nodes know how to fill."""


class ObservationError(ValueError):
    """A message cannot be turned into an observation (wrong joint names or counts)."""


class JointMapper:
    """Maps ``JointState`` (names, positions, velocities) into the model's joint order.

    Args:
        joint_names: the model's joints, in action order.
    """

    def __init__(self, joint_names: Sequence[str]) -> None:
        self.joint_names = list(joint_names)
        if len(set(self.joint_names)) != len(self.joint_names):
            raise ValueError(f"duplicate model joint names {self.joint_names}")
        self._cache_key: tuple[str, ...] | None = None
        self._index: np.ndarray | None = None

    def _indices(self, names: Sequence[str]) -> np.ndarray:
        key = tuple(names)
        if key != self._cache_key:
            if len(set(key)) != len(key):
                raise ObservationError(f"joint_states has duplicate names {list(key)}")
            lookup = {n: i for i, n in enumerate(key)}
            missing = [n for n in self.joint_names if n not in lookup]
            if missing:
                raise ObservationError(
                    f"joint_states lacks joints {missing} (got {list(key)}); check the "
                    "robot description and the model's joint_names"
                )
            self._index = np.array([lookup[n] for n in self.joint_names], dtype=np.intp)
            self._cache_key = key
        assert self._index is not None
        return self._index

    def map(
        self, names: Sequence[str], positions: Sequence[float], velocities: Sequence[float]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Positions and velocities in model order, float64.

        Raises:
            ObservationError: missing or duplicate joints, or arrays of the wrong length.
        """
        n = len(names)
        if len(positions) != n or len(velocities) != n:
            raise ObservationError(
                f"joint_states has {n} names but {len(positions)} positions and "
                f"{len(velocities)} velocities"
            )
        idx = self._indices(names)
        q = np.asarray(positions, dtype=np.float64)[idx]
        dq = np.asarray(velocities, dtype=np.float64)[idx]
        return q, dq


def check_terms(obs_terms: Sequence[dict[str, Any]], n_joints: int) -> None:
    """Raise ValueError unless every term is one the nodes can fill, with a matching size."""
    sizes = {"joint_positions": n_joints, "joint_velocities": n_joints, "puck_position": 3}
    for term in obs_terms:
        name = term["name"]
        if name not in sizes:
            raise ValueError(
                f"observation term {name!r} is not one the ROS nodes provide {KNOWN_TERMS}"
            )
        if term["size"] != sizes[name]:
            raise ValueError(
                f"observation term {name!r} has size {term['size']}, expected {sizes[name]}"
            )


def assemble(
    obs_terms: Sequence[dict[str, Any]], q: np.ndarray, dq: np.ndarray, puck_xyz: np.ndarray
) -> np.ndarray:
    """Concatenate the terms in the metadata's order (validated by :func:`check_terms`)."""
    parts = {"joint_positions": q, "joint_velocities": dq, "puck_position": puck_xyz}
    return np.concatenate([parts[t["name"]] for t in obs_terms])


def label(names: Sequence[str]) -> str:
    """The ``layout.dim[0].label`` of a labelled array: comma-joined names."""
    return ",".join(names)


def parse_label(text: str) -> list[str]:
    """Inverse of :func:`label`."""
    return text.split(",") if text else []
