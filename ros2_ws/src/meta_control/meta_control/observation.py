"""Turn ROS messages' contents into the model's observation vector, free of ROS imports.

The model metadata lists ordered observation terms; :class:`JointMapper` maps a JointState's
named arrays into the model's joint order (any message order, extra joints ignored) and refuses
missing or duplicated names and arrays whose lengths do not match the names;
:class:`ObservationAssembler` puts joint positions, velocities and the puck position in the
terms' order, refusing (:class:`ObsTermError`) any term it cannot fill exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

KNOWN_TERMS = ("joint_positions", "joint_velocities", "puck_position")
"""Observation terms the ROS nodes know how to fill (the sources of
:meth:`ObservationAssembler.fill`, in its argument order)."""


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


class ObsTermError(ValueError):
    """A model's observation terms are not ones the nodes can fill: an unknown name, a size that
    does not match the robot, or frame stacking (``history > 0``)."""


def term_sizes(n_joints: int) -> dict[str, int]:
    """Size of each term the nodes fill, for a robot with ``n_joints`` joints."""
    return {"joint_positions": n_joints, "joint_velocities": n_joints, "puck_position": 3}


def check_terms(obs_terms: Sequence[dict[str, Any]], n_joints: int) -> None:
    """Raise :class:`ObsTermError` unless every term is one the nodes fill, with its size.

    Names are matched exactly (:data:`KNOWN_TERMS`), as the runtime's metadata spells them.
    """
    sizes = term_sizes(n_joints)
    for term in obs_terms:
        name = term["name"]
        if name not in sizes:
            raise ObsTermError(
                f"observation term {name!r} is not one the ROS nodes provide {KNOWN_TERMS}"
            )
        if term["size"] != sizes[name]:
            raise ObsTermError(
                f"observation term {name!r} has size {term['size']}, expected {sizes[name]}"
            )


class ObservationAssembler:
    """Builds a model's observation vector from joint positions, velocities and the puck
    position, in the order of the model's ``obs_terms``: the one assembly every consumer (the
    controller, the estimator node, the bag replay) uses.

    The layout is computed once; :meth:`fill` copies the inputs into a buffer allocated at
    construction and returns it, so the per-tick path allocates nothing.

    Args:
        obs_terms: the metadata's ordered terms, each ``{"name", "size", "units"}``.
        n_joints: the model's joint count.
        history: the metadata's ``history``; stacked frames (``> 0``) are refused.

    Raises:
        ObsTermError: an unknown term, a wrong size, or ``history > 0``.
    """

    def __init__(
        self, obs_terms: Sequence[dict[str, Any]], n_joints: int, history: int = 0
    ) -> None:
        if history:
            raise ObsTermError(
                f"model stacks {history} past frames; the nodes and the replay feed one frame"
            )
        check_terms(obs_terms, n_joints)
        self.terms: tuple[str, ...] = tuple(str(t["name"]) for t in obs_terms)
        source = {name: i for i, name in enumerate(KNOWN_TERMS)}
        layout: list[tuple[int, slice]] = []
        start = 0
        for term in obs_terms:
            end = start + int(term["size"])
            layout.append((source[term["name"]], slice(start, end)))
            start = end
        self._layout = tuple(layout)
        self.size = start
        """Length of the observation vector."""
        self.buffer = np.zeros(self.size, dtype=np.float64)
        """The vector :meth:`fill` writes into and returns."""

    @classmethod
    def for_model(cls, metadata: Any) -> ObservationAssembler:
        """The assembler of a model's metadata (``obs_terms``, ``joint_names``, ``history``)."""
        return cls(
            metadata.obs_terms, len(metadata.joint_names), getattr(metadata, "history", 0)
        )

    def fill(self, q: np.ndarray, dq: np.ndarray, puck_xyz: np.ndarray) -> np.ndarray:
        """Copy the inputs into :attr:`buffer` in the terms' order and return it.

        Each input must have its terms' size (``n_joints``, ``n_joints``, 3). The returned array
        is the assembler's buffer: the next call overwrites it (copy it to keep it).
        """
        out = self.buffer
        sources = (q, dq, puck_xyz)
        for index, part in self._layout:
            out[part] = sources[index]
        return out


def label(names: Sequence[str]) -> str:
    """The ``layout.dim[0].label`` of a labelled array: comma-joined names."""
    return ",".join(names)


def parse_label(text: str) -> list[str]:
    """Inverse of :func:`label`."""
    return text.split(",") if text else []
