"""Plain-module tests of the controller's safety logic and observation assembly (no ROS)."""

from __future__ import annotations

import numpy as np
import pytest

from meta_control.metrics import RollingStats, jitter, sorted_percentiles
from meta_control.observation import (
    JointMapper,
    ObservationError,
    assemble,
    check_terms,
    label,
    parse_label,
)
from meta_control.safety import CommandLimiter, Freshness, HoldReason, stamp_age_s

TERMS = [
    {"name": "joint_positions", "size": 2, "units": "rad"},
    {"name": "joint_velocities", "size": 2, "units": "rad/s"},
    {"name": "puck_position", "size": 3, "units": "m"},
]


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


def test_assemble_follows_the_metadata_order() -> None:
    check_terms(TERMS, 2)
    obs = assemble(TERMS, np.array([1.0, 2.0]), np.array([3.0, 4.0]), np.array([5.0, 6.0, 7.0]))
    np.testing.assert_array_equal(obs, [1, 2, 3, 4, 5, 6, 7])
    with pytest.raises(ValueError, match="not one the ROS nodes provide"):
        check_terms([{"name": "ee_pose", "size": 7, "units": "m"}], 2)
    with pytest.raises(ValueError, match="size"):
        check_terms(TERMS, 3)


def test_labels_round_trip() -> None:
    assert parse_label(label(["j1", "j2"])) == ["j1", "j2"]
    assert parse_label("") == []


def test_freshness_uses_stamp_and_reception_age() -> None:
    f = Freshness(max_age_s=0.02)
    assert f.stale(0.0, 0.0)  # never seen
    f.update(stamp_s=10.0, received_s=100.0)
    assert not f.stale(10.01, 100.01)
    assert f.stale(10.03, 100.01)  # old stamp (delayed data)
    assert f.stale(10.01, 100.03)  # nothing received since (publisher dead or paused)
    lock_step = Freshness(max_age_s=0.02, check_receive_age=False)
    lock_step.update(10.0, 100.0)
    assert not lock_step.stale(10.0, 200.0)  # sim time stands still while the arm waits
    assert stamp_age_s(1.0, 2.0) == 0.0


def test_limiter_clamps_and_rate_limits_but_holds_at_once() -> None:
    lim = CommandLimiter([-1.0, -1.0], [1.0, 1.0], max_step_rad=0.1)
    np.testing.assert_array_equal(lim.command(np.array([2.0, 0.0])), [1.0, 0.0])
    np.testing.assert_allclose(lim.command(np.array([0.0, 0.5])), [0.9, 0.1])
    assert lim.rate_limited_ticks == 1
    np.testing.assert_array_equal(lim.hold(np.array([-0.5, 0.0])), [-0.5, 0.0])
    np.testing.assert_allclose(lim.command(np.array([0.5, 0.0])), [-0.4, 0.0])
    lim.reset()
    np.testing.assert_array_equal(lim.command(np.array([0.5, 0.0])), [0.5, 0.0])


def test_hold_reasons_cover_the_runtime_rejections() -> None:
    for reason in ("non_finite", "wrong_length", "out_of_range"):
        assert HoldReason(reason).value == reason


def test_rolling_stats_and_jitter() -> None:
    stats = RollingStats(window=3)
    assert np.isnan(stats.percentile(50))
    for v in (1.0, 2.0, 3.0, 100.0):
        stats.add(v)
    assert stats.count == 4 and len(stats) == 3
    assert stats.summary()["max"] == 100.0
    assert stats.summary()["p50"] == 3.0
    j = jitter(np.array([0.01, 0.012, 0.009]), 0.01)
    assert j["max"] == pytest.approx(0.002)


@pytest.mark.parametrize("n", [1, 2, 7, 20_000])
def test_sorted_percentiles_match_numpy(n: int) -> None:
    x = np.random.default_rng(n).lognormal(size=n)
    qs = (0.0, 1.0, 50.0, 99.0, 99.9, 100.0)
    np.testing.assert_allclose(sorted_percentiles(np.sort(x), qs), np.percentile(x, qs))


def test_rolling_stats_summary_matches_numpy_after_wraparound() -> None:
    stats = RollingStats(window=1000)
    x = np.random.default_rng(0).exponential(size=2500)
    for v in x:
        stats.add(float(v))
    kept = x[-1000:]
    s = stats.summary()
    assert s["p50"] == pytest.approx(np.percentile(kept, 50))
    assert s["p99"] == pytest.approx(np.percentile(kept, 99))
    assert s["max"] == kept.max() and s["std"] == pytest.approx(kept.std())
    assert stats.percentile(90) == pytest.approx(np.percentile(kept, 90))
