"""Record the meta-controller topics to a rosbag2 bag (MCAP or sqlite3) with :mod:`bags`.

Subscriptions are raw (``raw=True``): the CDR bytes go to the bag untouched, stamped with the
node's clock at reception (sim time when ``use_sim_time`` is set). Sensor topics use
``qos_profile_sensor_data`` like their publishers. The bag is split every ``split_messages``
messages and MCAP chunks are flushed every ``chunk_messages``, so a killed recorder loses at
most the last chunk; SIGINT and SIGTERM close the bag cleanly.

Parameters: ``bag_path`` (required, must not exist), ``storage`` (mcap|sqlite3),
``split_messages``, ``chunk_messages``, ``topics`` (default: every contract topic).
"""

from __future__ import annotations

import importlib
import signal
import sys
import time
from typing import Any

import rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from rclpy.signals import SignalHandlerOptions

from meta_control.bags import BagError, BagWriter, BagWriterConfig
from meta_control.topics import CONTRACT_TOPICS, SENSOR_TOPICS

RECORD_QUEUE_DEPTH = 1000
"""Reader history depth per topic."""


def message_class(msgtype: str) -> Any:
    """``"std_msgs/msg/Bool"`` -> the rclpy message class."""
    pkg, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{pkg}.msg"), name)


class RecorderNode(Node):
    """Subscribes raw to the contract topics and writes them with :class:`BagWriter`."""

    def __init__(self) -> None:
        """Declare parameters, open the bag and create the subscriptions."""
        super().__init__("bag_recorder")
        self.declare_parameter("bag_path", "")
        self.declare_parameter("storage", "mcap")
        self.declare_parameter("split_messages", 10_000)
        self.declare_parameter("chunk_messages", 200)
        self.declare_parameter("topics", list(CONTRACT_TOPICS))
        bag_path = self.get_parameter("bag_path").value
        if not bag_path:
            raise BagError("parameter bag_path is required")
        topics = list(self.get_parameter("topics").value)
        unknown = [t for t in topics if t not in CONTRACT_TOPICS]
        if unknown:
            raise BagError(f"topics {unknown} are not contract topics {list(CONTRACT_TOPICS)}")
        config = BagWriterConfig(
            storage=self.get_parameter("storage").value,
            split_messages=int(self.get_parameter("split_messages").value),
            chunk_messages=int(self.get_parameter("chunk_messages").value),
        )
        self.writer = BagWriter(bag_path, config)
        self._subs = []
        for topic in topics:
            self.writer.add_topic(topic)
            # Deep reader queues: a recorder that falls behind for a moment (disk, CPU) must
            # buffer, not drop. Sensor topics stay best effort to match their publishers.
            qos = (
                QoSProfile(
                    depth=RECORD_QUEUE_DEPTH,
                    reliability=qos_profile_sensor_data.reliability,
                    durability=qos_profile_sensor_data.durability,
                )
                if topic in SENSOR_TOPICS
                else QoSProfile(depth=RECORD_QUEUE_DEPTH)
            )
            self._subs.append(
                self.create_subscription(
                    message_class(CONTRACT_TOPICS[topic]),
                    topic,
                    lambda data, topic=topic: self._on_message(topic, data),
                    qos,
                    raw=True,
                )
            )
        self.get_logger().info(f"recording {len(topics)} topics to {bag_path} ({config.storage})")

    def _on_message(self, topic: str, data: bytes) -> None:
        self.writer.write_raw(topic, self.get_clock().now().nanoseconds, data)

    def close(self) -> None:
        """Close the bag (idempotent)."""
        self.writer.close()


def main(args: list[str] | None = None) -> None:
    """Spin the recorder until SIGINT/SIGTERM, then close the bag."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = {"flag": False}

    def on_signal(signum: int, frame: Any) -> None:
        stop["flag"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        node = RecorderNode()
    except BagError as exc:
        print(f"recorder_node: {type(exc).__name__}: {exc}", file=sys.stderr)
        rclpy.try_shutdown()
        sys.exit(2)
    try:
        while not stop["flag"] and rclpy.ok():
            rclpy.spin_once(node, timeout_sec=0.1)
        # Drain what is already queued before closing: stop once 0.2 s pass with nothing new.
        quiet_since, count = time.monotonic(), node.writer.message_count
        while rclpy.ok() and time.monotonic() - quiet_since < 0.2:
            rclpy.spin_once(node, timeout_sec=0.02)
            if node.writer.message_count != count:
                quiet_since, count = time.monotonic(), node.writer.message_count
    finally:
        node.close()
        node.get_logger().info(f"closed bag with {node.writer.message_count} messages")
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
