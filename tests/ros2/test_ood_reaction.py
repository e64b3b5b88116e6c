"""The controller's reaction to a sustained out-of-distribution flag (pure logic)."""

from __future__ import annotations

import pytest

from meta_control.safety import OodReaction


def test_it_engages_after_the_sustained_count_and_an_episode_releases_it():
    r = OodReaction("hold", sustain=3, release="episode", stale_s=0.12)
    r.new_episode(0.0)
    for i, flag in enumerate([True, True, False, True, True]):
        r.on_flag(flag, 0.04 * (i + 1))
        assert not r.active(0.04 * (i + 1))  # never three in a row
    r.on_flag(True, 0.24)
    assert r.latched and r.active(0.24) and r.engagements == 1
    r.on_flag(False, 0.28)
    assert r.active(0.28)  # latched: a clear estimate does not release it
    r.new_episode(0.30)
    assert not r.latched and not r.active(0.31)


def test_an_operator_release_is_the_only_one_when_configured():
    r = OodReaction("slow", sustain=1, release="operator", stale_s=0.12)
    r.new_episode(0.0)
    r.on_flag(True, 0.04)
    r.new_episode(0.5)
    assert r.latched and r.active(0.5)
    r.operator_reset()
    assert not r.latched and not r.active(0.51)


def test_a_stale_or_missing_stream_counts_as_flagged_only_with_a_reaction():
    r = OodReaction("hold", sustain=3, release="episode", stale_s=0.12)
    assert r.active(0.0)  # nothing heard yet
    r.new_episode(1.0)
    assert not r.active(1.1)  # the estimator's grace after a goal
    assert r.active(1.13)  # silent too long
    r.on_flag(False, 1.14)
    assert not r.active(1.2) and r.active(1.3)
    assert not r.latched  # staleness does not latch
    off = OodReaction("continue", sustain=1)
    off.on_flag(True, 0.0)
    assert off.latched and not off.active(5.0)  # reported only


@pytest.mark.parametrize("kwargs", [dict(mode="stop"), dict(release="never"), dict(sustain=0),
                                    dict(stale_s=0.0)])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        OodReaction(**kwargs)
