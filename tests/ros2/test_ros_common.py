"""The nodes' spin loop survives rclpy's failed take of one message and nothing else."""

from __future__ import annotations

import pytest

from meta_control.ros_common import FAILED_TAKE, spin_once_guarded

pytestmark = pytest.mark.ros


class _Executor:
    """An executor whose next ``spin_once`` raises the given error."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def spin_once(self, timeout_sec=None) -> None:
        raise self.error


def test_a_failed_take_is_dropped_with_a_warning_and_other_errors_propagate():
    import rclpy

    rclpy.init(args=[])
    try:
        node = rclpy.create_node("spin_guard_test")
        spin_once_guarded(_Executor(RuntimeError(FAILED_TAKE + " '0' to Python object")), node,
                          0.01)
        with pytest.raises(RuntimeError, match="something else"):
            spin_once_guarded(_Executor(RuntimeError("something else")), node, 0.01)
        node.destroy_node()
    finally:
        rclpy.try_shutdown()
