"""Replay evaluation of recorded bags with real exported models (meta-bag-eval)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import bag_helpers as H
import numpy as np
import pytest

from meta_control import bag_eval
from meta_control import bags as B
from meta_control import topics as T

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return H.make_models(tmp_path_factory.mktemp("models"))


def _eval(bag: Path, models: tuple[Path, Path], out: Path, *extra: str) -> int:
    policy, est = models
    argv = [str(bag), "--policy", str(policy), "--estimator", str(est), "--out", str(out)]
    return bag_eval.main([*argv, "--no-progress", *extra])


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_replay_reproduces_the_recorded_run(tmp_path: Path, models, storage: str) -> None:
    run = H.write_run(
        tmp_path / "bag", *models, storage=storage, episodes=3, steps=25, puck_gain=0.06
    )
    assert _eval(tmp_path / "bag", models, tmp_path / "out") == 0
    r = _report(tmp_path / "out")
    assert r["n_ticks"] == run["ticks"] == 75
    aa = r["action_agreement"]
    assert aa["n"] == 75 and aa["max_abs"] < 1e-9 and aa["frac_within_tol"] == 1.0
    assert r["command_agreement"]["n"] == 75 and r["command_agreement"]["max_abs"] < 1e-9
    est = r["estimation"]
    assert est["replayed_vs_recorded_estimate"]["max_abs"] < 1e-9
    assert est["replayed_vs_true"]["n"] == 75 and est["replayed_vs_true"]["mae"] > 0
    assert set(est["replayed_vs_true"]["mae_per"]) == set(H.MU_NAMES)
    eps = r["outcome"]["episodes"]
    assert [e["final_distance_m"] for e in eps] == pytest.approx(run["final_distances"])
    for e, d in zip(eps, run["final_distances"], strict=True):
        assert e["success_0.05"] == (d < 0.05) and e["success_0.07"] == (d < 0.07)
    js = r["topics"][T.TOPIC_JOINT_STATES]
    assert js["count"] == 75 and js["latency_s"]["median"] == pytest.approx(0.0015)
    assert js["median_period_s"] == pytest.approx(0.04) and js["gaps_over_2x_median"] == 2
    assert r["read"]["damaged"] is False
    for name in ("report.md", "actions.png", "estimates.png", "errors.png"):
        assert (tmp_path / "out" / name).stat().st_size > 500
    assert "Action agreement" in (tmp_path / "out" / "report.md").read_text()


def test_same_bag_twice_gives_identical_reports(tmp_path: Path, models) -> None:
    H.write_run(tmp_path / "bag", *models, episodes=2, steps=20)
    assert _eval(tmp_path / "bag", models, tmp_path / "a", "--format", "json,md") == 0
    assert _eval(tmp_path / "bag", models, tmp_path / "b", "--format", "json,md") == 0
    for name in ("report.json", "report.md"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert not (tmp_path / "a" / "actions.png").exists()


def test_disagreement_is_measured_and_joint_order_comes_from_names(tmp_path: Path, models) -> None:
    H.write_run(tmp_path / "noisy", *models, episodes=1, steps=30, action_noise=0.01)
    assert _eval(tmp_path / "noisy", models, tmp_path / "o1") == 0
    aa = _report(tmp_path / "o1")["action_agreement"]
    assert 0.004 < aa["mae"] < 0.02 and aa["frac_within_tol"] < 0.1
    # JointState names recorded in another order: replay reorders by name
    H.write_run(
        tmp_path / "perm", *models, episodes=1, steps=30, recorded_joint_order=["j3", "j1", "j2"]
    )
    assert _eval(tmp_path / "perm", models, tmp_path / "o2") == 0
    assert _report(tmp_path / "o2")["action_agreement"]["max_abs"] < 1e-9


def _expect_error(capsys, rc: int, kind: str, text: str) -> None:
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith(f"meta-bag-eval: {kind}:") and text in err, err
    assert "\n" not in err and "Traceback" not in err


def test_wrong_joint_names_and_contract_mismatch(tmp_path: Path, models, capsys) -> None:
    other = H.make_models(tmp_path / "m_other", joint_names=["a1", "a2", "a3"])
    H.write_run(tmp_path / "bag", *other, episodes=1, steps=5, joint_names=["a1", "a2", "a3"])
    _expect_error(
        capsys,
        _eval(tmp_path / "bag", models, tmp_path / "o"),
        "JointNamesError",
        "lack the model's joints ['j1', 'j2', 'j3']",
    )
    # a 2-joint model whose joints exist in /joint_states but whose act_dim is not the bag's
    small = H.make_models(tmp_path / "m_small", joint_names=["j1", "j2"])
    H.write_run(tmp_path / "bag3", *models, episodes=1, steps=5)
    _expect_error(
        capsys,
        _eval(tmp_path / "bag3", small, tmp_path / "o"),
        "ContractMismatchError",
        "act_dim is 2",
    )


def test_an_observation_term_the_nodes_do_not_provide_is_refused(
    tmp_path: Path, models, capsys
) -> None:
    """Terms are matched by exact name and size, as the nodes match them: a ``puck_pos`` term
    (which a substring match would have taken for the puck position) is refused."""
    H.write_run(tmp_path / "bag", *models, episodes=1, steps=5)
    terms = [
        {"name": "joint_positions", "size": 3, "units": "rad"},
        {"name": "joint_velocities", "size": 3, "units": "rad/s"},
        {"name": "puck_pos", "size": 3, "units": "m"},
    ]
    odd = H.make_models(tmp_path / "m_odd", obs_terms=terms)
    _expect_error(
        capsys,
        _eval(tmp_path / "bag", odd, tmp_path / "o"),
        "ContractMismatchError",
        "policy: observation term 'puck_pos' is not one the ROS nodes provide",
    )
    _expect_error(
        capsys,
        _eval(tmp_path / "bag", (models[0], odd[1]), tmp_path / "o"),
        "ContractMismatchError",
        "estimator: observation term 'puck_pos'",
    )
    assert not (tmp_path / "o" / "report.json").exists()


def test_frame_stacked_models_are_refused(models) -> None:
    from meta_control.runtime import load_metadata

    meta = load_metadata(models[0])
    assert bag_eval._observation_assembler(meta).terms == (
        "joint_positions",
        "joint_velocities",
        "puck_position",
    )
    with pytest.raises(B.ContractMismatchError, match="stacks 4 past frames"):
        bag_eval._observation_assembler(dataclasses.replace(meta, history=4))


def test_report_names_messages_of_unknown_type(tmp_path: Path, models) -> None:
    """A topic of a type no typestore knows is skipped, not damage (exit 0), and both reports
    say so: report.json counts it, report.md's summary names the topic, type and count."""
    H.write_run(tmp_path / "bag", *models, episodes=1, steps=10, unknown_type_ticks=4)
    assert _eval(tmp_path / "bag", models, tmp_path / "out", "--format", "json,md") == 0
    r = _report(tmp_path / "out")
    assert r["read"]["messages_unknown_type"] == {H.UNKNOWN_TOPIC: 4}
    assert r["read"]["unknown_types"] == {H.UNKNOWN_TOPIC: H.UNKNOWN_TYPE}
    assert r["read"]["damaged"] is False and r["n_ticks"] == 10
    md = (tmp_path / "out" / "report.md").read_text()
    (line,) = [x for x in md.splitlines() if x.startswith("- bag read:")]
    assert "nothing skipped" not in line
    assert f"4 message(s) of unknown type ({H.UNKNOWN_TOPIC}: {H.UNKNOWN_TYPE} x4)" in line
    assert r["read_summary"] in line


def test_missing_topic_unknown_type_and_corrupt_bag(tmp_path: Path, models, capsys) -> None:
    f = B.MessageFactory()
    with B.BagWriter(tmp_path / "nopuck") as w:
        for i in range(5):
            t = 10**9 + i
            w.write(T.TOPIC_GOAL_POSE, t, f.pose_stamped(t, [0, 0, 0]))
            w.write(T.TOPIC_JOINT_STATES, t, f.joint_state(t, H.JOINTS, [0] * 3, [0] * 3))
            w.write(T.TOPIC_POLICY_ACTION, t + 1, f.float64_array([0] * 3, H.JOINTS))
    _expect_error(
        capsys,
        _eval(tmp_path / "nopuck", models, tmp_path / "o"),
        "MissingTopicError",
        "/puck_pose",
    )
    with B.BagWriter(tmp_path / "badtype") as w:
        w.write(T.TOPIC_PUCK_POSE, 1, f.bool(True))
    _expect_error(
        capsys,
        _eval(tmp_path / "badtype", models, tmp_path / "o"),
        "UnknownMessageTypeError",
        "/puck_pose holds std_msgs/msg/Bool",
    )
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "run.mcap").write_bytes(os.urandom(4096))
    _expect_error(
        capsys,
        _eval(tmp_path / "junk", models, tmp_path / "o"),
        "BagCorruptError",
        "no message could be read",
    )
    _expect_error(
        capsys,
        _eval(tmp_path / "nope", models, tmp_path / "o"),
        "BagNotFoundError",
        "does not exist",
    )
    (tmp_path / "bad.onnx").write_bytes(b"nope")
    rc = bag_eval.main(
        [
            str(tmp_path / "nopuck"),
            "--policy",
            str(tmp_path / "bad.onnx"),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    _expect_error(capsys, rc, "ModelLoadError", "bad")


def test_truncated_bag_is_evaluated_and_reported(tmp_path: Path, models, capsys) -> None:
    H.write_run(tmp_path / "bag", *models, episodes=2, steps=40, split_messages=300)
    last = sorted((tmp_path / "bag").glob("*.mcap"))[-1]
    last.write_bytes(last.read_bytes()[:3000])  # cut inside its first chunk
    rc = _eval(tmp_path / "bag", models, tmp_path / "out")
    _expect_error(capsys, rc, "BagDamagedError", last.name)
    r = _report(tmp_path / "out")
    assert r["read"]["damaged"] is True and last.name in r["read_summary"]
    assert 0 < r["n_ticks"] < 80 and r["action_agreement"]["max_abs"] < 1e-9
    assert _eval(tmp_path / "bag", models, tmp_path / "out2", "--allow-damaged") == 0


def test_cli_process_exits_2_without_traceback(tmp_path: Path, models) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "meta_control.bag_eval",
            str(tmp_path / "missing"),
            "--policy",
            str(models[0]),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("meta-bag-eval: BagNotFoundError:")
    assert "Traceback" not in proc.stderr


def _streams(**fields) -> bag_eval.Streams:
    """Hand-made streams: the given arrays, every other one empty."""
    empty = {f.name: np.zeros(0, dtype=np.int64) for f in dataclasses.fields(bag_eval.Streams)}
    labels = dict(joint_names=[], action_label="", true_label="", est_label="", log_t={})
    return bag_eval.Streams(**{**empty, **labels, **fields})


def test_a_tick_logged_before_its_goal_gets_that_goal_by_stamp():
    """Topics are not ordered: the recorder can log an episode's first action before its goal.
    In lock-step the goal carries the first state's stamp, so stamps put that tick right."""
    streams = _streams(
        # goal 0 logged at t=0 (stamp 1000), goal 1 logged at t=35 (stamp 5000)
        goal_t=np.array([0, 35]),
        stamp_t={T.TOPIC_GOAL_POSE: np.array([1000, 5000])},
        # ticks logged at 10, 20, 30 (input stamps 1000, 1040, 5000), then 40 (5040)
        action_t=np.array([10, 20, 30, 40]),
        action_stamp=np.array([1000, 1040, 5000, 5040]),
    )
    ticks = streams.action_t
    assert bag_eval._latest(streams.goal_t, ticks).tolist() == [0, 0, 0, 1]
    assert bag_eval._goal_for_ticks(streams, ticks, True).tolist() == [0, 0, 1, 1]
    # without goal stamps (or without action stamps) receive order is all there is
    unstamped = dataclasses.replace(streams, stamp_t={})
    assert bag_eval._goal_for_ticks(unstamped, ticks, True).tolist() == [0, 0, 0, 1]
    # working through a backlog, the recorder logs episode 0's last ticks after goal 1
    backlog = dataclasses.replace(streams, goal_t=np.array([0, 15]))
    assert bag_eval._latest(backlog.goal_t, ticks).tolist() == [0, 1, 1, 1]
    assert bag_eval._goal_for_ticks(backlog, ticks, True).tolist() == [0, 0, 1, 1]
    # wall-clock goal stamps that match no input stamp: not lock-step, receive order
    wall = dataclasses.replace(backlog, stamp_t={T.TOPIC_GOAL_POSE: np.array([1001, 4999])})
    assert bag_eval._goal_for_ticks(wall, ticks, True).tolist() == [0, 1, 1, 1]


def test_an_episode_ends_before_the_next_episodes_first_state_by_stamp():
    """The next episode's first puck pose and first tick can be logged before its goal: the
    outcome of an episode is its own last pose, not that one."""
    streams = _streams(
        goal_t=np.array([0, 35]),
        goal_xy=np.array([[0.0, 0.0], [1.0, 0.0]]),
        action_t=np.array([10, 20, 30, 40]),
        action_stamp=np.array([1000, 1040, 5000, 5040]),
        # episode 0 ends 0.01 m from its goal; episode 1's first pose (stamp 5000) is logged
        # at 32, before goal 1, and lies 0.5 m from goal 0; episode 1 ends 0.03 m from its goal
        puck_t=np.array([5, 15, 25, 32, 45, 55]),
        puck_xyz=np.array(
            [[0.3, 0, 0], [0.1, 0, 0], [0.01, 0, 0], [0.5, 0, 0], [0.9, 0, 0], [0.97, 0, 0]]
        ),
        stamp_t={
            T.TOPIC_GOAL_POSE: np.array([1000, 5000]),
            T.TOPIC_PUCK_POSE: np.array([1000, 1040, 1080, 5000, 5040, 5080]),
        },
    )
    eps = bag_eval.task_outcome(streams)["episodes"]
    assert [e["final_distance_m"] for e in eps] == pytest.approx([0.01, 0.03])
    assert [e["success_0.05"] for e in eps] == [True, True]
