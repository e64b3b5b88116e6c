"""Plain-module tests of the controller's safety logic and loop statistics (no ROS); the
observation assembly is tested in ``test_observation.py``, the commanded motion in
``test_motion.py``."""

from __future__ import annotations

import numpy as np
import pytest

from meta_control.metrics import RollingStats, jitter, sorted_percentiles
from meta_control.safety import Freshness, HoldReason, stamp_age_s


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


def test_hold_reasons_cover_the_runtime_rejections_and_the_deployment_checks() -> None:
    for reason in ("non_finite", "wrong_length", "out_of_range", "frame_mismatch", "workspace"):
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
