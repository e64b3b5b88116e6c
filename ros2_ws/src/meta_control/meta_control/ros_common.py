"""Small helpers shared by the nodes: dataclass parameters, stamps, labelled arrays, main()."""

from __future__ import annotations

import dataclasses
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import rclpy
from builtin_interfaces.msg import Time
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray, MultiArrayDimension

from meta_control.observation import label

ConfigT = TypeVar("ConfigT")


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


def stamp_to_s(stamp: Time) -> float:
    """``builtin_interfaces/Time`` -> seconds."""
    return stamp.sec + stamp.nanosec * 1e-9


def s_to_stamp(t_s: float) -> Time:
    """Seconds -> ``builtin_interfaces/Time`` (rounded to the nanosecond)."""
    ns = int(round(t_s * 1e9))
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def labelled_array(names: Sequence[str], values: Sequence[float]) -> Float64MultiArray:
    """A ``Float64MultiArray`` whose ``layout.dim[0].label`` is the comma-joined names."""
    msg = Float64MultiArray()
    msg.layout.dim = [MultiArrayDimension(label=label(names), size=len(values), stride=1)]
    msg.data = [float(v) for v in values]
    return msg


def spin_node(factory: Callable[[], Node], args: list[str] | None = None) -> None:
    """Create the node, spin a SingleThreadedExecutor until SIGINT/SIGTERM, clean up.

    SIGTERM is turned into a normal shutdown so process managers (the demo, launch) can stop
    the node cleanly.
    """
    rclpy.init(args=args if args is not None else sys.argv)
    node = None
    try:
        node = factory()
        signal.signal(signal.SIGTERM, lambda *_: rclpy.try_shutdown())
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
