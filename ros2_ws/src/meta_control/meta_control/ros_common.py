"""Small helpers shared by the nodes: dataclass parameters, stamps, labelled arrays, main().

The ROS-free stamp helpers live in :mod:`meta_control.topics`; this module holds the ones that
build rclpy messages.
"""

from __future__ import annotations

import array
import dataclasses
import gc
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray, MultiArrayDimension

from meta_control.observation import label
from meta_control.topics import s_to_sec_nanosec

ConfigT = TypeVar("ConfigT")

EXECUTORS = ("single", "events")
"""Values of a node's ``executor`` parameter (see :func:`spin_node`)."""

EVENTS_SPIN_TIMEOUT_S = 0.1
"""Longest wait of one ``EventsExecutor.spin_once``: bounds how long a shutdown goes unseen."""


def declare_config(node: Node, cls: type[ConfigT]) -> ConfigT:
    """Declare one parameter per dataclass field (default = field default) and read them."""
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        node.declare_parameter(f.name, f.default)
    return read_config(node, cls)


def read_config(node: Node, cls: type[ConfigT]) -> ConfigT:
    """Current parameter values as a ``cls`` instance (types follow the field defaults)."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        value = node.get_parameter(f.name).value
        values[f.name] = type(f.default)(value)
    return cls(**values)


def s_to_stamp(t_s: float) -> Time:
    """Seconds -> ``builtin_interfaces/Time`` (rounded to the nanosecond; the ROS-free
    conversion is :func:`meta_control.topics.s_to_sec_nanosec`)."""
    sec, nanosec = s_to_sec_nanosec(t_s)
    return Time(sec=sec, nanosec=nanosec)


def labelled_array(names: Sequence[str], values: Sequence[float]) -> Float64MultiArray:
    """A ``Float64MultiArray`` whose ``layout.dim[0].label`` is the comma-joined names."""
    msg = Float64MultiArray()
    msg.layout.dim = [MultiArrayDimension(label=label(names), size=len(values), stride=1)]
    msg.data = [float(v) for v in values]
    return msg


def float_array(values: np.ndarray) -> array.array:
    """A float64 array as the ``array.array('d')`` a message's ``float64[]`` field stores.

    Assigning an ``array.array`` skips the per-element type and range checks the generated
    setters run on lists, and the byte copy skips ``tolist``: the cheap way on a hot path.
    """
    return array.array("d", np.ascontiguousarray(values, dtype=np.float64).tobytes())


def executor_kind(node: Node) -> str:
    """The node's ``executor`` parameter (``single`` when it declares none)."""
    if not node.has_parameter("executor"):
        return "single"
    kind = str(node.get_parameter("executor").value)
    if kind not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, not {kind!r}")
    return kind


def settle_gc() -> None:
    """Collect garbage once, then move every live object out of the collector's reach.

    Called after a node has loaded everything it keeps (rclpy, onnxruntime, numpy, the model):
    later full collections then scan only objects created since, so they stay short instead of
    pausing the control loop for milliseconds to re-scan a heap that never changes (the usual
    ``gc.freeze()`` idiom for latency-sensitive Python services).
    """
    gc.collect()
    gc.freeze()


FAILED_TAKE = "Unable to convert call argument"
"""Start of the ``RuntimeError`` rclpy raises when taking a received message fails inside its
executor (seen in the Jazzy wheels under heavy load; the message is lost). The node drops that
message and goes on: a lost state or estimate is what a late one already is to the nodes here
(the controller holds when its inputs go stale)."""


def spin_once_guarded(executor, node: Node, timeout_sec: float | None) -> None:
    """``executor.spin_once`` that survives one failed take (:data:`FAILED_TAKE`)."""
    try:
        executor.spin_once(timeout_sec=timeout_sec)
    except RuntimeError as exc:
        if not str(exc).startswith(FAILED_TAKE):
            raise
        node.get_logger().warning(f"dropped a message rclpy failed to take: {exc}",
                                  throttle_duration_sec=5.0)


def spin_events(node: Node) -> None:
    """Run ``node`` on rclpy's EventsExecutor until the context shuts down.

    The executor is driven by ``spin_once`` calls: its ``spin()`` in the Jazzy wheels (rclpy
    7.1.6) busy-loops, never fires timers and hangs on shutdown. Each ``spin_once`` returns
    after one event or after :data:`EVENTS_SPIN_TIMEOUT_S`, so a shutdown (SIGINT, SIGTERM) is
    seen within that time even when nothing arrives; a shutdown also wakes the wait at once.
    """
    from rclpy.experimental import EventsExecutor

    executor = EventsExecutor()
    executor.add_node(node)
    try:
        while rclpy.ok():
            spin_once_guarded(executor, node, EVENTS_SPIN_TIMEOUT_S)
    finally:
        executor.remove_node(node)
        executor.shutdown()


def spin_node(factory: Callable[[], Node], args: list[str] | None = None) -> None:
    """Create the node, spin it until SIGINT/SIGTERM, clean up.

    The executor is the node's ``executor`` parameter when it declares one: ``single``
    (rclpy's SingleThreadedExecutor, the default) or ``events`` (:func:`spin_events`).
    SIGTERM is turned into a normal shutdown so process managers (the demo, launch) can stop
    the node cleanly.
    """
    rclpy.init(args=args if args is not None else sys.argv)
    node = None
    try:
        node = factory()
        settle_gc()
        signal.signal(signal.SIGTERM, lambda *_: rclpy.try_shutdown())
        if executor_kind(node) == "events":
            node.get_logger().info("executor: EventsExecutor (spin_once loop)")
            spin_events(node)
        else:
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            while rclpy.ok():
                spin_once_guarded(executor, node, EVENTS_SPIN_TIMEOUT_S)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
