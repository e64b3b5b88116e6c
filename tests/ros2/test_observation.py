"""Plain-module tests of meta_control.observation (no ROS): joint mapping and the one observation
assembly the controller, the estimator node and the bag replay share."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from meta_control.observation import (
    JointMapper,
    ObservationAssembler,
    ObservationError,
    ObsTermError,
    check_terms,
    label,
    parse_label,
)

TERMS = [
    {"name": "joint_positions", "size": 2, "units": "rad"},
    {"name": "joint_velocities", "size": 2, "units": "rad/s"},
    {"name": "puck_position", "size": 3, "units": "m"},
]
Q, DQ, PUCK = np.array([1.0, 2.0]), np.array([3.0, 4.0]), np.array([5.0, 6.0, 7.0])


def test_mapper_reorders_and_ignores_extra_joints() -> None:
    mapper = JointMapper(["a", "b"])
    q, dq = mapper.map(["finger", "b", "a"], [9.0, 2.0, 1.0], [0.9, 0.2, 0.1])
    np.testing.assert_array_equal(q, [1.0, 2.0])
    np.testing.assert_array_equal(dq, [0.1, 0.2])


@pytest.mark.parametrize(
    ("names", "pos", "vel"),
    [
        (["a"], [1.0], [0.0]),  # missing joint
        (["a", "a"], [1.0, 1.0], [0.0, 0.0]),  # duplicate
        (["a", "b"], [1.0], [0.0, 0.0]),  # wrong position count
        (["a", "b"], [1.0, 2.0], []),  # no velocities
    ],
)
def test_mapper_refuses_wrong_names_or_counts(names, pos, vel) -> None:
    with pytest.raises(ObservationError):
        JointMapper(["a", "b"]).map(names, pos, vel)


def test_assembler_follows_the_metadata_order() -> None:
    asm = ObservationAssembler(TERMS, 2)
    assert asm.size == 7 and asm.terms == ("joint_positions", "joint_velocities", "puck_position")
    np.testing.assert_array_equal(asm.fill(Q, DQ, PUCK), [1, 2, 3, 4, 5, 6, 7])
    # any order of the terms: the vector follows the metadata, not the arguments
    shuffled = [TERMS[2], TERMS[0], TERMS[1]]
    np.testing.assert_array_equal(
        ObservationAssembler(shuffled, 2).fill(Q, DQ, PUCK), [5, 6, 7, 1, 2, 3, 4]
    )


def test_assembler_fills_one_preallocated_buffer_in_place() -> None:
    asm = ObservationAssembler(TERMS, 2)
    buffer = asm.buffer
    first = asm.fill(Q, DQ, PUCK)
    assert first is buffer  # no new array per call
    second = asm.fill(Q + 10, DQ + 10, PUCK + 10)
    assert second is buffer and first is second
    np.testing.assert_array_equal(buffer, [11, 12, 13, 14, 15, 16, 17])
    assert buffer.dtype == np.float64 and buffer.flags.c_contiguous


def test_assembler_for_model_reads_the_metadata() -> None:
    meta = SimpleNamespace(obs_terms=TERMS, joint_names=["a", "b"], history=0)
    np.testing.assert_array_equal(
        ObservationAssembler.for_model(meta).fill(Q, DQ, PUCK), [1, 2, 3, 4, 5, 6, 7]
    )
    with pytest.raises(ObsTermError, match="stacks 3 past frames"):
        ObservationAssembler.for_model(SimpleNamespace(**{**vars(meta), "history": 3}))


@pytest.mark.parametrize(
    ("term", "message"),
    [
        ({"name": "ee_pose", "size": 7, "units": "m"}, "not one the ROS nodes provide"),
        # names match exactly: no substring or case folding
        ({"name": "puck_pos", "size": 3, "units": "m"}, "not one the ROS nodes provide"),
        ({"name": "Joint_Positions", "size": 2, "units": "rad"}, "not one the ROS nodes provide"),
        ({"name": "puck_position", "size": 2, "units": "m"}, "has size 2, expected 3"),
        ({"name": "joint_velocities", "size": 3, "units": "rad/s"}, "has size 3, expected 2"),
    ],
)
def test_terms_the_nodes_cannot_fill_are_refused(term: dict, message: str) -> None:
    with pytest.raises(ObsTermError, match=message):
        check_terms([TERMS[0], term], 2)
    with pytest.raises(ObsTermError, match=message):
        ObservationAssembler([TERMS[0], term], 2)
    assert issubclass(ObsTermError, ValueError)


def test_labels_round_trip() -> None:
    assert parse_label(label(["j1", "j2"])) == ["j1", "j2"]
    assert parse_label("") == []
