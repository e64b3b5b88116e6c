"""Bag writer/reader over rosbags: splits, both storages, crash recovery, damage, raw CDR."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from rosbags.rosbag2 import Reader
from ruamel.yaml import YAML

from meta_control import bags as B
from meta_control import topics as T

NAMES = ["j1", "j2"]
STORAGES = ["mcap", "sqlite3"]


def _write(
    path: Path,
    storage: str,
    n: int,
    *,
    split: int = 1000,
    chunk: int = 100,
    snapshot_at: int | None = None,
    snapshot: Path | None = None,
) -> B.BagWriter:
    f = B.MessageFactory()
    cfg = B.BagWriterConfig(storage=storage, split_messages=split, chunk_messages=chunk)
    w = B.BagWriter(path, cfg)
    for i in range(n):
        t = 1_000_000_000 + i * 10_000_000
        w.write(T.TOPIC_JOINT_STATES, t, f.joint_state(t, NAMES, [float(i), 0.5], [0.0, -1.0]))
        if snapshot_at is not None and i == snapshot_at:
            shutil.copytree(path, snapshot)  # what is on disk if the recorder died here
    w.close()
    return w


@pytest.mark.parametrize("storage", STORAGES)
def test_split_bag_is_a_standard_rosbag2_bag(tmp_path: Path, storage: str) -> None:
    w = _write(tmp_path / "bag", storage, 2500)
    suffix = ".mcap" if storage == "mcap" else ".db3"
    meta = YAML(typ="safe").load((tmp_path / "bag" / "metadata.yaml").read_text())
    info = meta["rosbag2_bagfile_information"]
    assert info["storage_identifier"] == storage
    assert info["version"] == 8
    assert info["relative_file_paths"] == [f"bag_{i}{suffix}" for i in range(3)]
    assert info["message_count"] == 2500 == w.message_count
    assert [f["message_count"] for f in info["files"]] == [1000, 1000, 500]
    assert info["topics_with_message_count"][0]["message_count"] == 2500
    assert not (tmp_path / "bag" / ".recording").exists()
    # rosbags' own reader (what `ros2 bag` reads: metadata.yaml + storage files) accepts it
    with Reader(tmp_path / "bag") as r:
        assert r.message_count == 2500
        assert sum(1 for _ in r.messages()) == 2500
    reader = B.BagReader(tmp_path / "bag")
    recs = list(reader)
    assert len(recs) == 2500 and not reader.report.damaged
    assert [r.msg.position[0] for r in recs] == [float(i) for i in range(2500)]
    assert list(recs[7].msg.name) == NAMES
    assert T.stamp_ns(recs[7].msg.header.stamp) == recs[7].log_time_ns


@pytest.mark.parametrize("storage", STORAGES)
def test_interrupted_recording_loses_at_most_the_last_chunk(tmp_path: Path, storage: str) -> None:
    snap = tmp_path / "snap"
    _write(tmp_path / "bag", storage, 2500, snapshot_at=2250, snapshot=snap)
    written = 2251
    # the metadata.yaml of the snapshot lists the two closed splits: ros2 bag can open it
    with Reader(snap) as r:
        assert r.message_count == 2000
    reader = B.BagReader(snap)
    recs = list(reader)
    assert written - 100 <= len(recs) <= written
    assert [r.msg.position[0] for r in recs] == [float(i) for i in range(len(recs))]
    assert any(".recording" in k for k in reader.report.files_salvaged)


@pytest.mark.parametrize("storage", STORAGES)
def test_truncated_last_file_keeps_the_complete_files(tmp_path: Path, storage: str) -> None:
    w = _write(tmp_path / "bag", storage, 2500)
    last = w.files[-1]
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    reader = B.BagReader(tmp_path / "bag")
    recs = list(reader)
    assert 2000 <= len(recs) < 2500
    assert [r.msg.position[0] for r in recs] == [float(i) for i in range(len(recs))]
    report = reader.report
    assert report.damaged
    assert last.name in {**report.files_skipped, **report.files_salvaged, **report.files_truncated}
    assert last.name in report.summary()


def test_mcap_salvage_recovers_complete_chunks(tmp_path: Path) -> None:
    w = _write(tmp_path / "bag", "mcap", 1000, split=0, chunk=100)
    data = w.files[0].read_bytes()
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(data[: int(len(data) * 0.75)])
    msgs = B.salvage_mcap(cut)
    assert 600 <= len(msgs) < 1000 and len(msgs) % 100 == 0  # whole chunks only
    assert msgs[0][1] == T.TOPIC_JOINT_STATES and msgs[0][2] == "sensor_msgs/msg/JointState"


def test_garbage_files_are_skipped_and_reported(tmp_path: Path) -> None:
    w = _write(tmp_path / "bag", "mcap", 300, split=100)
    w.files[1].write_bytes(b"\x00garbage" * 50)
    reader = B.BagReader(tmp_path / "bag")
    recs = list(reader)
    assert len(recs) == 200
    assert w.files[1].name in reader.report.files_skipped
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.mcap").write_bytes(b"not a bag")
    junk = B.BagReader(tmp_path / "junk")
    assert list(junk) == [] and "x.mcap" in junk.report.files_skipped
    with pytest.raises(B.BagNotFoundError):
        B.BagReader(tmp_path / "missing")


def test_raw_cdr_from_rclpy_is_written_and_read(tmp_path: Path) -> None:
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import JointState

    msg = JointState()
    msg.header.stamp.sec, msg.header.stamp.nanosec = 3, 7
    msg.name, msg.position, msg.velocity = NAMES, [0.25, -0.5], [1.0, 2.0]
    raw = serialize_message(msg)  # Fast-CDR pads the empty effort array: rosbags is strict
    with pytest.raises(Exception, match="size mismatch"):
        B.typestore_for().deserialize_cdr(raw, "sensor_msgs/msg/JointState")
    with B.BagWriter(tmp_path / "bag", B.BagWriterConfig(storage="sqlite3")) as w:
        w.write_raw(T.TOPIC_JOINT_STATES, 3_000_000_007, raw)
    (rec,) = list(B.BagReader(tmp_path / "bag"))
    assert list(rec.msg.name) == NAMES
    np.testing.assert_array_equal(rec.msg.position, [0.25, -0.5])
    assert T.stamp_ns(rec.msg.header.stamp) == 3_000_000_007


def test_unknown_types_are_skipped_and_type_mismatch_is_an_error(tmp_path: Path) -> None:
    f = B.MessageFactory()
    with B.BagWriter(tmp_path / "bag") as w:
        w.add_topic(
            "/custom", "acme_msgs/msg/Widget", msgdef="int32 x", rihs01="RIHS01_" + "0" * 64
        )
        w.write_raw("/custom", 5, b"\x00\x01\x00\x00\x07\x00\x00\x00")
        w.write(T.TOPIC_E_STOP, 6, f.bool(True))
    reader = B.BagReader(tmp_path / "bag")
    recs = list(reader)
    assert [r.topic for r in recs] == [T.TOPIC_E_STOP] and recs[0].msg.data is True
    assert reader.report.unknown_types == {"/custom": "acme_msgs/msg/Widget"}
    assert not reader.report.damaged
    summary = reader.report.summary()
    assert summary == "1 message(s) of unknown type (/custom: acme_msgs/msg/Widget x1)"
    strict = B.BagReader(tmp_path / "bag", expected_types={"/custom": "std_msgs/msg/Int32"})
    with pytest.raises(B.UnknownMessageTypeError, match="/custom holds acme_msgs/msg/Widget"):
        list(strict)


def test_writer_refuses_bad_input(tmp_path: Path) -> None:
    (tmp_path / "exists").mkdir()
    with pytest.raises(B.BagWriteError, match="exists already"):
        B.BagWriter(tmp_path / "exists")
    with pytest.raises(B.BagWriteError, match="unknown storage"):
        B.BagWriter(tmp_path / "x", B.BagWriterConfig(storage="rosbag1"))
    w = B.BagWriter(tmp_path / "y")
    with pytest.raises(B.BagWriteError, match="not in the contract"):
        w.add_topic("/not_contract")
    w.close()
    with pytest.raises(B.BagWriteError, match="closed"):
        w.write(T.TOPIC_E_STOP, 1, B.MessageFactory().bool(False))
