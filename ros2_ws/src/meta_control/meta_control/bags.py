"""Record and read rosbag2 bags of the meta-controller topics, without ROS.

Everything here uses the pure-Python ``rosbags`` library, so bags can be written by the recorder
node (raw CDR bytes from rclpy raw subscriptions) or by scripts and tests (message objects
serialised with rosbags' typestore), and read back on machines without ROS. Topic names and
types come from :mod:`meta_control.topics`.

Crash safety ("an interrupted recording loses at most the last chunk"):

* A recording is split into several storage files (rosbag2 splitting). Each split is written by
  a ``rosbags.rosbag2.Writer`` in a staging folder ``<bag>/.recording/<name>_<k>/`` and moved
  into the bag folder when it is closed (after ``split_messages`` messages or ``split_seconds``
  of message time). ``metadata.yaml`` is rewritten atomically (write + rename) after every
  split, listing the closed files, so the bag folder is always a valid rosbag2 bag that
  ``ros2 bag info/play`` can open.
* MCAP splits are additionally cut into small chunks (``chunk_messages``) that are flushed to
  disk as soon as they are complete. ``rosbags`` cannot open an MCAP file without its footer,
  so :class:`BagReader` salvages the complete chunks of an unfinished or truncated MCAP file
  with its own record scanner. SQLite splits are committed every ``chunk_messages`` messages
  (rosbags itself commits only on close), so the same bound holds for ``sqlite3``.

Reading (:class:`BagReader`) is per file and per message: files that cannot be opened are
skipped (or salvaged), messages that cannot be decoded are counted and skipped, and
:class:`ReadReport` says what was skipped.
"""

from __future__ import annotations

import heapq
import shutil
import struct
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability
from rosbags.interfaces import QosTime as _QosTime
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.rosbag2.metadata import dump_qos_v8, dump_qos_v9
from rosbags.typesys import Stores, get_typestore
from ruamel.yaml import YAML

from meta_control.topics import CONTRACT_TOPICS, SENSOR_TOPICS

STORAGES: tuple[str, ...] = ("mcap", "sqlite3")
_SUFFIX = {"mcap": ".mcap", "sqlite3": ".db3"}
_STAGING = ".recording"

# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class BagError(Exception):
    """Base of every bad-input error about a bag; the message is one line a user can act on."""


class BagNotFoundError(BagError):
    """The bag path does not exist or holds no storage file."""


class BagCorruptError(BagError):
    """No message at all could be read from the bag."""


class BagDamagedError(BagError):
    """Part of the bag could not be read; what could be read was still used."""


class BagWriteError(BagError):
    """The bag could not be written (existing path, unknown topic or type)."""


class UnknownMessageTypeError(BagError):
    """A topic holds a message type that is unknown or not the contract's type."""


class MissingTopicError(BagError):
    """A topic the evaluation needs is absent or empty."""


class JointNamesError(BagError):
    """JointState names do not contain the model's joints (or arrays are inconsistent)."""


class ContractMismatchError(BagError):
    """The model's contract (joints, dims, mu names) does not match the recorded streams."""


# --------------------------------------------------------------------------------------------
# Typestore and messages
# --------------------------------------------------------------------------------------------


def typestore_for(distro: str = "jazzy") -> Any:
    """Return the rosbags typestore for ``distro`` ("jazzy" or "humble")."""
    stores = {"jazzy": Stores.ROS2_JAZZY, "humble": Stores.ROS2_HUMBLE}
    if distro not in stores:
        raise BagWriteError(f"unknown ROS distro {distro!r}; expected one of {sorted(stores)}")
    return get_typestore(stores[distro])


def deserialize(typestore: Any, rawdata: bytes | memoryview, msgtype: str) -> Any:
    """Deserialize CDR ``rawdata``, tolerating up to 7 bytes of trailing alignment padding.

    Fast-CDR 2 (rclpy on Jazzy) aligns empty float64 sequences to 8 bytes, so a JointState
    with an empty ``effort`` serialised by rclpy ends with 4 padding bytes that rosbags'
    strict ``deserialize_cdr`` rejects ("CDR message size mismatch"). The content is the same.
    """
    msgdef = typestore.get_msgdef(msgtype)
    if len(rawdata) < 4 or bytes(rawdata[:2]) not in {b"\x00\x00", b"\x00\x01"}:
        raise ValueError("invalid or unsupported CDR encapsulation")
    func = msgdef.deserialize_cdr_le if rawdata[1] else msgdef.deserialize_cdr_be
    message, pos = func(memoryview(rawdata)[4:], 0, msgdef.cls, typestore)
    if pos + 4 + 7 < len(rawdata) or pos + 4 > len(rawdata):
        raise ValueError(f"CDR size mismatch for {msgtype} ({len(rawdata)} B, used {pos + 4})")
    return message


class MessageFactory:
    """Build contract messages as rosbags message objects (for writers, tests and benches)."""

    def __init__(self, typestore: Any | None = None) -> None:
        """Bind to ``typestore`` (default: ROS 2 Jazzy)."""
        self.typestore = typestore if typestore is not None else typestore_for("jazzy")
        t = self.typestore.types
        self._time = t["builtin_interfaces/msg/Time"]
        self._header = t["std_msgs/msg/Header"]
        self._js = t["sensor_msgs/msg/JointState"]
        self._pose_stamped = t["geometry_msgs/msg/PoseStamped"]
        self._pose = t["geometry_msgs/msg/Pose"]
        self._point = t["geometry_msgs/msg/Point"]
        self._quat = t["geometry_msgs/msg/Quaternion"]
        self._f64 = t["std_msgs/msg/Float64MultiArray"]
        self._layout = t["std_msgs/msg/MultiArrayLayout"]
        self._dim = t["std_msgs/msg/MultiArrayDimension"]
        self._bool = t["std_msgs/msg/Bool"]
        self._clock = t["rosgraph_msgs/msg/Clock"]

    def header(self, t_ns: int, frame_id: str = "") -> Any:
        """A std_msgs/Header stamped at ``t_ns``."""
        stamp = self._time(sec=int(t_ns // 1_000_000_000), nanosec=int(t_ns % 1_000_000_000))
        return self._header(stamp=stamp, frame_id=frame_id)

    def joint_state(
        self, t_ns: int, names: Sequence[str], position: Sequence[float], velocity: Sequence[float]
    ) -> Any:
        """sensor_msgs/JointState with an empty effort array."""
        return self._js(
            header=self.header(t_ns),
            name=list(names),
            position=np.asarray(position, dtype=np.float64),
            velocity=np.asarray(velocity, dtype=np.float64),
            effort=np.zeros(0, dtype=np.float64),
        )

    def pose_stamped(self, t_ns: int, xyz: Sequence[float], frame_id: str = "world") -> Any:
        """geometry_msgs/PoseStamped at ``xyz`` with identity orientation."""
        pos = self._point(x=float(xyz[0]), y=float(xyz[1]), z=float(xyz[2]))
        quat = self._quat(x=0.0, y=0.0, z=0.0, w=1.0)
        return self._pose_stamped(
            header=self.header(t_ns, frame_id), pose=self._pose(position=pos, orientation=quat)
        )

    def float64_array(self, values: Sequence[float], labels: Sequence[str] = ()) -> Any:
        """std_msgs/Float64MultiArray; ``labels`` are comma-joined into layout.dim[0].label."""
        data = np.asarray(values, dtype=np.float64)
        dim = self._dim(label=",".join(labels), size=len(data), stride=len(data))
        return self._f64(layout=self._layout(dim=[dim], data_offset=0), data=data)

    def bool(self, value: bool) -> Any:
        """std_msgs/Bool."""
        return self._bool(data=bool(value))

    def clock(self, t_ns: int) -> Any:
        """rosgraph_msgs/Clock."""
        return self._clock(clock=self.header(t_ns).stamp)


# --------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------


def _qos(sensor: bool) -> Qos:
    zero = _QosTime(sec=0, nsec=0)
    return Qos(
        history=QosHistory.KEEP_LAST,
        depth=5 if sensor else 10,
        reliability=QosReliability.BEST_EFFORT if sensor else QosReliability.RELIABLE,
        durability=QosDurability.VOLATILE,
        deadline=zero,
        lifespan=zero,
        liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=zero,
        avoid_ros_namespace_conventions=False,
    )


@dataclass
class BagWriterConfig:
    """How a recording is stored."""

    storage: str = "mcap"
    """Storage plugin: "mcap" (default) or "sqlite3"."""
    split_messages: int = 10_000
    """Close the current file and start a new one after this many messages (0: never)."""
    split_seconds: float = 0.0
    """Also split after this much message time in seconds (0: never)."""
    chunk_messages: int = 200
    """Close and flush an MCAP chunk / commit sqlite3 after this many messages (0: never)."""
    version: int = 8
    """rosbag2 metadata version: 8 (Jazzy's rosbag2) or 9 (newer)."""
    distro: str = "jazzy"
    """Typestore used to serialise message objects and message definitions: jazzy or humble."""


@dataclass
class _TopicInfo:
    msgtype: str
    qos: list[Qos]
    msgdef: str | None = None
    rihs01: str | None = None


@dataclass
class _FileInfo:
    path: str
    start_ns: int
    duration_ns: int
    message_count: int


class BagWriter:
    """Split rosbag2 writer over ``rosbags``; see the module docstring for the crash model.

    Use as a context manager, or call :meth:`close` (idempotent). Topics are registered with
    :meth:`add_topic` (the contract topics are known by default), then written either as
    message objects (:meth:`write`) or as raw CDR bytes (:meth:`write_raw`).
    """

    def __init__(
        self, path: str | Path, config: BagWriterConfig | None = None, typestore: Any = None
    ) -> None:
        """Create the bag folder ``path`` (which must not exist)."""
        self.config = config if config is not None else BagWriterConfig()
        if self.config.storage not in STORAGES:
            raise BagWriteError(
                f"unknown storage {self.config.storage!r}; expected one of {STORAGES}"
            )
        if self.config.version not in (8, 9):
            raise BagWriteError(f"rosbag2 version must be 8 or 9, got {self.config.version}")
        self.path = Path(path)
        if self.path.exists():
            raise BagWriteError(f"{self.path} exists already; choose a new bag path")
        self.path.mkdir(parents=True)
        self.typestore = typestore if typestore is not None else typestore_for(self.config.distro)
        self._plugin = (
            StoragePlugin.MCAP if self.config.storage == "mcap" else StoragePlugin.SQLITE3
        )
        self._topics: dict[str, _TopicInfo] = {}
        self._files: list[_FileInfo] = []
        self._topic_counts: Counter[str] = Counter()
        self._writer: Writer | None = None
        self._conns: dict[str, Any] = {}
        self._split_index = 0
        self._split_start_ns = 0
        self._split_count = 0
        self._chunk_count = 0
        self._closed = False
        self._write_metadata()

    # -- topics -------------------------------------------------------------------------------
    def add_topic(
        self,
        topic: str,
        msgtype: str | None = None,
        *,
        sensor_qos: bool | None = None,
        msgdef: str | None = None,
        rihs01: str | None = None,
    ) -> None:
        """Register ``topic``; the type defaults to the contract's type for contract topics.

        ``msgdef``/``rihs01`` allow types the typestore does not know (raw writing only).
        """
        if msgtype is None:
            if topic not in CONTRACT_TOPICS:
                raise BagWriteError(f"topic {topic} is not in the contract; give its msgtype")
            msgtype = CONTRACT_TOPICS[topic]
        if msgdef is None and msgtype not in self.typestore.types:
            raise BagWriteError(f"message type {msgtype} unknown to the typestore")
        sensor = topic in SENSOR_TOPICS if sensor_qos is None else sensor_qos
        self._topics[topic] = _TopicInfo(msgtype, [_qos(sensor)], msgdef, rihs01)
        if self._writer is not None:
            self._add_connection(topic)

    def _add_connection(self, topic: str) -> None:
        info = self._topics[topic]
        assert self._writer is not None
        self._conns[topic] = self._writer.add_connection(
            topic,
            info.msgtype,
            typestore=self.typestore,
            msgdef=info.msgdef,
            rihs01=info.rihs01,
            offered_qos_profiles=info.qos,
        )

    # -- writing ------------------------------------------------------------------------------
    def write(self, topic: str, timestamp_ns: int, msg: Any) -> None:
        """Serialise the rosbags message object ``msg`` and write it at ``timestamp_ns``."""
        if topic not in self._topics:
            self.add_topic(topic, getattr(msg, "__msgtype__", None))
        data = self.typestore.serialize_cdr(msg, self._topics[topic].msgtype)
        self.write_raw(topic, timestamp_ns, data)

    def write_raw(self, topic: str, timestamp_ns: int, data: bytes | memoryview) -> None:
        """Write already-serialised CDR bytes (e.g. from an rclpy raw subscription)."""
        if self._closed:
            raise BagWriteError(f"bag {self.path} is closed")
        if topic not in self._topics:
            self.add_topic(topic)
        cfg = self.config
        if self._writer is not None and cfg.split_seconds > 0:
            if timestamp_ns - self._split_start_ns >= cfg.split_seconds * 1e9:
                self._close_split()
        if self._writer is None:
            self._open_split(timestamp_ns)
        assert self._writer is not None
        self._writer.write(self._conns[topic], int(timestamp_ns), data)
        self._split_count += 1
        self._chunk_count += 1
        self._topic_counts[topic] += 1
        if cfg.chunk_messages > 0 and self._chunk_count >= cfg.chunk_messages:
            self._flush_chunk()
        if cfg.split_messages > 0 and self._split_count >= cfg.split_messages:
            self._close_split()

    def _split_name(self, index: int) -> str:
        return f"{self.path.name}_{index}"

    def _open_split(self, timestamp_ns: int) -> None:
        name = self._split_name(self._split_index)
        writer = Writer(
            self.path / _STAGING / name, version=self.config.version, storage_plugin=self._plugin
        )
        writer.open()
        self._writer = writer
        self._conns = {}
        for topic in self._topics:
            self._add_connection(topic)
        self._split_start_ns = int(timestamp_ns)
        self._split_count = 0
        self._chunk_count = 0

    def _flush_chunk(self) -> None:
        """Close the pending MCAP chunk and push it to disk; commit for sqlite3."""
        self._chunk_count = 0
        storage = getattr(self._writer, "storage", None)
        conn = getattr(storage, "conn", None)
        if conn is not None and hasattr(conn, "commit"):
            conn.commit()
            return
        close_chunk = getattr(storage, "close_chunk", None)
        bio = getattr(storage, "bio", None)
        chunk = getattr(storage, "chunk", None)
        if close_chunk is None or bio is None or chunk is None or not chunk.bio.tell():
            return
        close_chunk()
        bio.flush()

    def _close_split(self) -> None:
        writer, self._writer = self._writer, None
        if writer is None:
            return
        count = sum(writer.counts.values())
        start = writer.min_timestamp if count else 0
        duration = max(0, writer.max_timestamp - writer.min_timestamp) if count else 0
        writer.close()
        name = self._split_name(self._split_index)
        staged = writer.path / f"{name}{_SUFFIX[self.config.storage]}"
        final = self.path / staged.name
        staged.replace(final)
        shutil.rmtree(writer.path, ignore_errors=True)
        self._files.append(_FileInfo(final.name, start, duration, count))
        self._split_index += 1
        self._write_metadata()

    def _write_metadata(self) -> None:
        """Atomically (re)write metadata.yaml listing the closed files."""
        files = self._files
        count = sum(f.message_count for f in files)
        start = min((f.start_ns for f in files if f.message_count), default=0)
        end = max((f.start_ns + f.duration_ns for f in files if f.message_count), default=0)
        dump_qos = dump_qos_v9 if self.config.version >= 9 else dump_qos_v8
        info = {
            "version": self.config.version,
            "storage_identifier": self.config.storage,
            "relative_file_paths": [f.path for f in files],
            "duration": {"nanoseconds": max(0, end - start)},
            "starting_time": {"nanoseconds_since_epoch": start},
            "message_count": count,
            "topics_with_message_count": [
                {
                    "topic_metadata": {
                        "name": topic,
                        "type": t.msgtype,
                        "serialization_format": "cdr",
                        "offered_qos_profiles": dump_qos(t.qos),
                        "type_description_hash": t.rihs01
                        or (self.typestore.hash_rihs01(t.msgtype) if t.msgdef is None else ""),
                    },
                    "message_count": self._closed_topic_counts.get(topic, 0),
                }
                for topic, t in self._topics.items()
            ],
            "compression_format": "",
            "compression_mode": "",
            "files": [
                {
                    "path": f.path,
                    "starting_time": {"nanoseconds_since_epoch": f.start_ns},
                    "duration": {"nanoseconds": f.duration_ns},
                    "message_count": f.message_count,
                }
                for f in files
            ],
            "custom_data": None,
            "ros_distro": self.config.distro,
        }
        yaml = YAML(typ="safe")
        yaml.default_flow_style = False
        text = StringIO()
        yaml.dump({"rosbag2_bagfile_information": info}, text)
        tmp = self.path / "metadata.yaml.tmp"
        tmp.write_text(text.getvalue(), "utf8")
        tmp.replace(self.path / "metadata.yaml")

    @property
    def _closed_topic_counts(self) -> Counter[str]:
        """Per-topic counts of the closed files only (what metadata.yaml may claim)."""
        counts = Counter(self._topic_counts)
        if self._writer is not None:
            for topic, conn in self._conns.items():
                counts[topic] -= self._writer.counts.get(conn.id, 0)
        return counts

    @property
    def files(self) -> list[Path]:
        """Closed storage files, in order."""
        return [self.path / f.path for f in self._files]

    @property
    def message_count(self) -> int:
        """Messages written so far (including the open split)."""
        return sum(self._topic_counts.values())

    def close(self) -> None:
        """Close the open split, rewrite metadata.yaml and remove the staging folder."""
        if self._closed:
            return
        self._close_split()
        self._closed = True
        self._write_metadata()
        shutil.rmtree(self.path / _STAGING, ignore_errors=True)

    def __enter__(self) -> BagWriter:
        """Return self."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the bag (also on errors, so that what was written stays readable)."""
        self.close()


# --------------------------------------------------------------------------------------------
# Reader
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BagRecord:
    """One decoded message: topic, type, receive (log) time and the rosbags message object."""

    topic: str
    msgtype: str
    log_time_ns: int
    msg: Any


@dataclass
class ReadReport:
    """What a :class:`BagReader` read and what it skipped."""

    storage: str = ""
    files_read: list[str] = field(default_factory=list)
    files_salvaged: dict[str, str] = field(default_factory=dict)
    """File -> why it had to be salvaged by scanning its complete MCAP chunks."""
    files_skipped: dict[str, str] = field(default_factory=dict)
    """File -> reason it was skipped entirely."""
    files_truncated: dict[str, str] = field(default_factory=dict)
    """File -> reason reading stopped early (messages before that point were kept)."""
    messages_read: Counter[str] = field(default_factory=Counter)
    messages_undecodable: Counter[str] = field(default_factory=Counter)
    messages_unknown_type: Counter[str] = field(default_factory=Counter)
    """Messages skipped because their type is unknown (not damage: the bag is fine)."""
    unknown_types: dict[str, str] = field(default_factory=dict)
    """Topic -> message type that the typestore does not know (topic skipped)."""
    metadata_problem: str = ""

    @property
    def damaged(self) -> bool:
        """True when anything was skipped, salvaged or cut short."""
        return bool(
            self.files_salvaged
            or self.files_skipped
            or self.files_truncated
            or sum(self.messages_undecodable.values())
            or self.metadata_problem
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dictionary (sorted keys for deterministic output)."""
        return {
            "storage": self.storage,
            "files_read": list(self.files_read),
            "files_salvaged": dict(sorted(self.files_salvaged.items())),
            "files_skipped": dict(sorted(self.files_skipped.items())),
            "files_truncated": dict(sorted(self.files_truncated.items())),
            "messages_read": dict(sorted(self.messages_read.items())),
            "messages_undecodable": dict(sorted(self.messages_undecodable.items())),
            "messages_unknown_type": dict(sorted(self.messages_unknown_type.items())),
            "unknown_types": dict(sorted(self.unknown_types.items())),
            "metadata_problem": self.metadata_problem,
            "damaged": self.damaged,
        }

    def summary(self) -> str:
        """One line naming everything that was skipped: files skipped, salvaged or cut short,
        undecodable messages and messages of unknown type (per topic), metadata problems."""
        parts = []
        for name, what in (
            ("skipped", self.files_skipped),
            ("salvaged", self.files_salvaged),
            ("cut short", self.files_truncated),
        ):
            if what:
                detail = "; ".join(f"{k}: {v}" for k, v in sorted(what.items()))
                parts.append(f"{len(what)} file(s) {name} ({detail})")
        if (n := sum(self.messages_undecodable.values())) > 0:
            detail = "; ".join(f"{k}: {v}" for k, v in sorted(self.messages_undecodable.items()))
            parts.append(f"{n} undecodable message(s) ({detail})")
        if (n := sum(self.messages_unknown_type.values())) > 0:
            detail = "; ".join(
                f"{topic}: {self.unknown_types.get(topic, '?')} x{count}"
                for topic, count in sorted(self.messages_unknown_type.items())
            )
            parts.append(f"{n} message(s) of unknown type ({detail})")
        if self.metadata_problem:
            parts.append(self.metadata_problem)
        return "; ".join(parts) if parts else "nothing skipped"


_Raw = tuple[int, str, str, bytes]  # (log time, topic, msgtype, cdr)


class BagReader:
    """Robust reader of a rosbag2 folder (or a single .mcap / .db3 file).

    Files come from metadata.yaml when it is readable (plus unfinished splits left in the
    staging folder by an interrupted :class:`BagWriter`); otherwise every storage file in the
    folder is used. Messages of all files are merged in log-time order.
    """

    def __init__(
        self,
        path: str | Path,
        topics: Iterable[str] | None = None,
        typestore: Any = None,
        expected_types: dict[str, str] | None = None,
    ) -> None:
        """Prepare to read ``path``.

        Args:
            path: Bag folder, or one .mcap/.db3 file.
            topics: Only these topics are decoded (None: all).
            typestore: rosbags typestore (default: ROS 2 Jazzy).
            expected_types: Topic -> required message type; a topic recorded with another
                type raises :class:`UnknownMessageTypeError` while iterating.
        """
        self.expected_types = dict(expected_types or {})
        self.path = Path(path)
        if not self.path.exists():
            raise BagNotFoundError(f"bag {self.path} does not exist")
        self.topics = None if topics is None else set(topics)
        self.typestore = typestore if typestore is not None else typestore_for("jazzy")
        self.report = ReadReport()
        self.files = self._find_files()
        if not self.files:
            raise BagNotFoundError(f"{self.path} holds no .mcap or .db3 storage file")
        self.report.storage = ",".join(sorted({_storage_of(f) for f in self.files}))
        self._expected = self._expected_count()

    def _find_files(self) -> list[Path]:
        if self.path.is_file():
            return [self.path]
        meta = self.path / "metadata.yaml"
        listed: list[Path] = []
        if meta.exists():
            try:
                info = YAML(typ="safe").load(meta.read_text())["rosbag2_bagfile_information"]
                listed = [self.path / Path(p).name for p in info["relative_file_paths"]]
                self._meta_count = int(info.get("message_count", 0))
            except Exception as exc:  # noqa: BLE001 - any parse problem means: scan the folder
                self.report.metadata_problem = f"metadata.yaml unreadable ({type(exc).__name__})"
                listed = []
        else:
            self.report.metadata_problem = "metadata.yaml missing"
        for p in listed:
            if not p.exists():
                self.report.files_skipped[p.name] = "listed in metadata.yaml but missing"
        files = [p for p in listed if p.exists()]
        if not listed:
            files = sorted(p for p in self.path.iterdir() if p.suffix in (".mcap", ".db3"))
        staging = self.path / _STAGING
        if staging.is_dir():
            files += sorted(p for p in staging.glob("*/*") if p.suffix in (".mcap", ".db3"))
        return files

    def _expected_count(self) -> int | None:
        return getattr(self, "_meta_count", None) or None

    @property
    def expected_message_count(self) -> int | None:
        """Message count promised by metadata.yaml (for progress bars), if any."""
        return self._expected

    # -- raw access ---------------------------------------------------------------------------
    def _file_messages(self, path: Path) -> Iterator[_Raw]:
        """Raw messages of one file in log-time order; damage is recorded, never raised."""
        name = _rel(self.path, path)
        reader = Reader(path)
        try:
            reader.open()
        except Exception as exc:  # noqa: BLE001 - rosbags raises several types on damage
            reason = _reason(exc)
            if path.suffix == ".mcap":
                try:
                    msgs = salvage_mcap(path)
                except Exception as exc2:  # noqa: BLE001
                    self.report.files_skipped[name] = f"{reason}; salvage failed: {_reason(exc2)}"
                    return
                if not msgs:
                    self.report.files_skipped[name] = f"{reason}; no complete chunk"
                    return
                self.report.files_salvaged[name] = f"{reason}; {len(msgs)} messages recovered"
                msgs.sort(key=lambda m: m[0])
                for m in msgs:
                    if self.topics is None or m[1] in self.topics:
                        yield m
                return
            self.report.files_skipped[name] = reason
            return
        self.report.files_read.append(name)
        if _STAGING in path.parts:
            self.report.files_salvaged[name] = "unfinished split of an interrupted recording"
        try:
            conns = [
                c for c in reader.connections if self.topics is None or c.topic in self.topics
            ]
            if not conns:
                return
            for conn, t_ns, data in reader.messages(connections=conns):
                yield (t_ns, conn.topic, conn.msgtype, data)
        except Exception as exc:  # noqa: BLE001
            self.report.files_truncated[name] = _reason(exc)
        finally:
            try:
                reader.close()
            except Exception:  # noqa: BLE001,S110 - closing a damaged file may fail too
                pass

    def raw_messages(self) -> Iterator[_Raw]:
        """All raw (log time, topic, msgtype, cdr) tuples, merged in log-time order."""
        streams = [self._file_messages(p) for p in self.files]
        if len(streams) == 1:
            yield from streams[0]
        else:
            yield from heapq.merge(*streams, key=lambda m: m[0])

    def __iter__(self) -> Iterator[BagRecord]:
        """Decoded records; undecodable messages and unknown types are counted and skipped."""
        types = self.typestore.types
        report = self.report
        expected = self.expected_types
        for t_ns, topic, msgtype, data in self.raw_messages():
            if topic in expected and expected[topic] != msgtype:
                raise UnknownMessageTypeError(
                    f"topic {topic} holds {msgtype or 'an unnamed type'}, "
                    f"expected {expected[topic]}"
                )
            if msgtype not in types:
                report.unknown_types[topic] = msgtype
                report.messages_unknown_type[topic] += 1
                continue
            try:
                msg = deserialize(self.typestore, data, msgtype)
            except Exception:  # noqa: BLE001 - any decode failure is counted, not fatal
                report.messages_undecodable[topic] += 1
                continue
            report.messages_read[topic] += 1
            yield BagRecord(topic, msgtype, t_ns, msg)


def _storage_of(path: Path) -> str:
    return "mcap" if path.suffix == ".mcap" else "sqlite3"


def _rel(root: Path, path: Path) -> str:
    try:
        return str(path.relative_to(root)) if root.is_dir() else path.name
    except ValueError:
        return path.name


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:200]


# --------------------------------------------------------------------------------------------
# MCAP salvage
# --------------------------------------------------------------------------------------------

_MCAP_MAGIC = b"\x89MCAP0\r\n"


def _decompressor(compression: str) -> Callable[[bytes, int], bytes]:
    if compression == "":
        return lambda data, size: data
    if compression == "zstd":
        try:
            from compression import zstd  # type: ignore[import-not-found]
        except ImportError:
            from backports import zstd  # type: ignore[import-not-found,no-redef]
        return lambda data, size: zstd.decompress(data)
    if compression == "lz4":
        import lz4.frame  # type: ignore[import-not-found]

        return lambda data, size: lz4.frame.decompress(data)
    raise ValueError(f"unsupported MCAP chunk compression {compression!r}")


def salvage_mcap(path: str | Path) -> list[_Raw]:
    """Scan an MCAP file record by record and return every message in a complete record.

    Works on files without summary/footer (an interrupted recording) and stops at the first
    incomplete or malformed record. Returns (log time, topic, msgtype, cdr) tuples.
    """
    buf = Path(path).read_bytes()
    if not buf.startswith(_MCAP_MAGIC):
        raise ValueError("not an MCAP file (bad magic)")
    schemas: dict[int, str] = {}
    channels: dict[int, tuple[str, str]] = {}
    out: list[_Raw] = []

    def scan(data: bytes | memoryview, pos: int, end: int, nested: bool) -> None:
        while pos + 9 <= end:
            op = data[pos]
            (length,) = struct.unpack_from("<Q", data, pos + 1)
            body_start = pos + 9
            body_end = body_start + length
            if body_end > end:
                return  # truncated record: everything after it is lost
            body = memoryview(data)[body_start:body_end]
            if op == 0x03:  # schema
                (sid,) = struct.unpack_from("<H", body, 0)
                (n,) = struct.unpack_from("<I", body, 2)
                schemas[sid] = bytes(body[6 : 6 + n]).decode()
            elif op == 0x04:  # channel
                cid, sid = struct.unpack_from("<HH", body, 0)
                (n,) = struct.unpack_from("<I", body, 4)
                topic = bytes(body[8 : 8 + n]).decode()
                channels[cid] = (topic, schemas.get(sid, ""))
            elif op == 0x05:  # message
                (cid,) = struct.unpack_from("<H", body, 0)
                (log_time,) = struct.unpack_from("<Q", body, 6)
                if cid in channels:
                    topic, msgtype = channels[cid]
                    out.append((log_time, topic, msgtype, bytes(body[22:])))
            elif op == 0x06 and not nested:  # chunk
                usize, _crc = struct.unpack_from("<QI", body, 16)
                (n,) = struct.unpack_from("<I", body, 28)
                compression = bytes(body[32 : 32 + n]).decode()
                (csize,) = struct.unpack_from("<Q", body, 32 + n)
                start = 40 + n
                if start + csize > len(body):
                    return
                inner = _decompressor(compression)(bytes(body[start : start + csize]), usize)
                scan(inner, 0, len(inner), True)
            elif op == 0x02:  # footer
                return
            pos = body_end

    scan(buf, len(_MCAP_MAGIC), len(buf), False)
    return out
