"""The commanded motion (no ROS): targets within velocity, acceleration and jerk limits at the
policy rate, braking without overshoot, and the stream a joint_trajectory_controller makes of
the smooth form at 1 kHz (:mod:`meta_control.jtc`) inside the limits."""

from __future__ import annotations

import numpy as np
import pytest

from meta_control.jtc import TrajectoryMessage, execute, interpolate, stream_extremes
from meta_control.limits import JointLimits
from meta_control.motion import MIN_POINT_GAP_S, MotionLimiter, braking_distance, stop_speed

T = 0.04
LIMITS = JointLimits(
    ("a", "b"),
    position_low=np.array([-1.0, -2.0]),
    position_high=np.array([1.0, 0.5]),
    velocity=np.array([2.0, 1.0]),
    acceleration=np.array([10.0, 5.0]),
    jerk=np.array([5000.0, 2500.0]),
)


def _random_targets(rng: np.random.Generator, n: int) -> list[np.ndarray | None]:
    """Jumps well past the joint limits, drifts, and holds (``None``)."""
    target, out = np.zeros(2), []
    for _ in range(n):
        if rng.random() < 0.1:
            target = rng.uniform(-3.0, 3.0, 2)
        elif rng.random() < 0.3:
            target = target + rng.normal(0.0, 0.1, 2)
        out.append(None if rng.random() < 0.05 else target.copy())
    return out


def test_stop_speed_is_the_inverse_of_the_braking_distance() -> None:
    rng = np.random.default_rng(0)
    d, dv = rng.uniform(0, 3, 1000), rng.uniform(0.01, 1.0, 1000)
    u = stop_speed(d, dv, T)
    np.testing.assert_allclose(braking_distance(u, dv, T), d, rtol=1e-9, atol=1e-12)
    near = d <= T * dv
    np.testing.assert_allclose(u[near], d[near] / T)  # reachable next tick: go there
    np.testing.assert_array_equal(braking_distance(-u, dv, T), -braking_distance(u, dv, T))


def test_forward_targets_inside_the_limits_pass_unchanged() -> None:
    """Targets whose motion stays within the limits, each close enough that the motion could
    stop there by the next tick (``|step| <= A T^2``), are sent as they are."""
    lim = MotionLimiter(LIMITS, T, smooth=False)
    lim.reset(np.zeros(2))
    t = np.arange(1, 60) * T
    targets = np.stack([0.1 * (1 - np.cos(2 * t)), -0.05 * (1 - np.cos(3 * t))], axis=1)
    for target in targets:
        step = lim.plan(target)
        lim.commit(step)
        np.testing.assert_array_equal(step.position, target)
    assert lim.limited_ticks == 0


def test_forward_targets_respect_the_limits_at_the_policy_rate() -> None:
    lim = MotionLimiter(LIMITS, T, smooth=False)
    lim.reset(np.zeros(2))
    cmds = [lim.position]
    for target in _random_targets(np.random.default_rng(1), 3000):
        step = lim.plan_hold() if target is None else lim.plan(target)
        lim.commit(step)
        cmds.append(step.position)
    cmds = np.array(cmds)
    assert np.all(cmds >= LIMITS.position_low - 1e-12)
    assert np.all(cmds <= LIMITS.position_high + 1e-12)
    v = np.abs(np.diff(cmds, axis=0)) / T
    a = np.abs(np.diff(cmds, 2, axis=0)) / T**2
    j = np.abs(np.diff(cmds, 3, axis=0)) / T**3
    assert np.all(v <= LIMITS.velocity + 1e-9)
    assert np.all(a <= LIMITS.acceleration + 1e-9)
    assert np.all(j <= LIMITS.jerk * (1 + 1e-9))
    counts = lim.counters()
    assert counts["velocity_limited_ticks"] > 0 and counts["acceleration_limited_ticks"] > 0
    assert counts["position_limited_ticks"] > 0 and counts["limited_ticks"] <= lim.ticks


@pytest.mark.parametrize("smooth", [False, True])
def test_a_far_target_is_reached_as_fast_as_allowed_without_overshoot(smooth: bool) -> None:
    lim = MotionLimiter(LIMITS, T, smooth=smooth)
    lim.reset(np.zeros(2))
    target = np.array([0.8, -1.5])
    path = []
    for k in range(60):
        step = lim.plan(target, now_s=k * T)
        lim.commit(step)
        path.append(step.position)
    path = np.array(path)
    assert np.all(path[:, 0] <= 0.8 + 1e-12) and np.all(path[:, 1] >= -1.5 - 1e-12)
    np.testing.assert_allclose(path[-1], target, atol=1e-12)
    assert lim.at_rest
    # Cruising at the velocity limit on the way (joint a: 0.8 rad at 2 rad/s, 10 rad/s^2).
    assert np.abs(np.diff(path[:, 0])).max() / T > 0.9 * LIMITS.velocity[0]
    assert lim.velocity_limited_ticks > 0 and lim.acceleration_limited_ticks > 0


def _segments(lim: MotionLimiter, t0: float, t1: float, n: int = 25):
    ts = np.linspace(t0, t1, n)
    return ts, np.array([np.concatenate(lim.state_at(t)) for t in ts])


def test_smooth_motion_stays_within_every_limit_between_ticks() -> None:
    """Early and late ticks (up to 15 ms either way) start from the committed motion; the
    motion itself, evaluated densely, keeps position, velocity, acceleration and jerk."""
    rng = np.random.default_rng(2)
    lim = MotionLimiter(LIMITS, T, smooth=True, lookahead_s=0.01)
    now = 100.0
    lim.reset(np.zeros(2), now)
    states = []
    for target in _random_targets(rng, 1500):
        step = lim.plan_hold(now) if target is None else lim.plan(target, now)
        lim.commit(step)
        nxt = now + T + rng.uniform(-0.015, 0.015)
        states.append(_segments(lim, now, nxt)[1])
        now = nxt
    x = np.concatenate(states)
    p, v, a = x[:, :2], x[:, 2:4], x[:, 4:]
    assert np.all(p >= LIMITS.position_low - 1e-12) and np.all(p <= LIMITS.position_high + 1e-12)
    assert np.all(np.abs(v) <= LIMITS.velocity + 1e-9)
    assert np.all(np.abs(a) <= LIMITS.acceleration + 1e-9)
    assert lim.limited_ticks > 0


def test_velocity_scale_slows_a_fast_motion_within_the_acceleration_limit() -> None:
    lim = MotionLimiter(LIMITS, T, smooth=False)
    lim.reset(np.array([-1.0, -2.0]))
    for _ in range(12):
        lim.commit(lim.plan(np.array([1.0, 0.5])))
    assert lim.velocity[0] == pytest.approx(2.0)
    lim.set_velocity_scale(0.1)
    speeds = []
    for _ in range(10):
        lim.commit(lim.plan(np.array([1.0, 0.5])))
        speeds.append(lim.velocity[0])
    assert np.all(-np.diff([2.0, *speeds]) <= LIMITS.acceleration[0] * T + 1e-9)
    assert speeds[-1] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="velocity_scale"):
        lim.set_velocity_scale(0.0)


def test_trajectories_start_at_the_tick_and_end_at_rest() -> None:
    lim = MotionLimiter(LIMITS, T, smooth=True, lookahead_s=0.01)
    lim.reset(np.zeros(2), 5.0)
    lim.commit(lim.plan(np.array([0.9, -1.0]), 5.0))
    lim.commit(lim.plan(np.array([0.9, -1.0]), 5.043))  # 3 ms late
    stamp, times, p, v, a = lim.trajectory()
    assert stamp == 5.043 and times[0] == 0.0
    assert np.all(np.diff(times) >= MIN_POINT_GAP_S)
    assert not v[-1].any() and not a[-1].any()
    # The start knot is on the grid set at reset (5.0 + 0.01 + k T), at least 5 ms ahead.
    grid = 5.01 + T * np.arange(10)
    start = stamp + times[np.argmin(np.abs(stamp + times - grid[:, None]).min(axis=0))]
    assert np.min(np.abs(grid - start)) < 1e-9 and start - stamp >= 0.005


def test_the_controller_model_reproduces_a_cubic_with_its_quintic() -> None:
    """Between points with consistent position, velocity and acceleration (one cubic), the
    trajectory controller's quintic is that cubic; positions alone are joined by straight lines."""
    c = np.array([0.1, -0.3, 2.0, -40.0])  # p, v, a/2, j/6

    def cubic(t):
        return c[0] + c[1] * t + c[2] * t**2 + c[3] * t**3

    def state(t):
        p = np.array([cubic(t)])
        v = np.array([c[1] + 2 * c[2] * t + 3 * c[3] * t**2])
        return p, v, np.array([2 * c[2] + 6 * c[3] * t])

    ts = np.linspace(0.0, T, 11)
    p, v, a = interpolate(0.0, state(0.0), T, state(T), ts)
    np.testing.assert_allclose(p[:, 0], cubic(ts), atol=1e-15)
    np.testing.assert_allclose(a[:, 0], [state(t)[2][0] for t in ts], atol=1e-9)
    p_lin, v_lin, _ = interpolate(0.0, (state(0)[0], None, None), T, (state(T)[0], None, None), ts)
    np.testing.assert_allclose(v_lin, (cubic(T) - cubic(0)) / T)


def _stream(messages, lookahead: bool, **kw):
    ticks, pos = execute(messages, np.zeros(2), messages[0][0], messages[-1][0] + 0.5, **kw)
    return stream_extremes(pos, 0.001), pos


def _jtc_messages(rng, smooth: bool, latency_s: float, n: int = 800, stamped: bool = True):
    lim = MotionLimiter(LIMITS, T, smooth=smooth, lookahead_s=0.015 if smooth else 0.0)
    now = 50.0
    lim.reset(np.zeros(2), now)
    messages = []
    for target in _random_targets(rng, n):
        step = lim.plan_hold(now) if target is None else lim.plan(target, now)
        lim.commit(step)
        arrival = now + rng.uniform(1e-4, latency_s)
        if smooth:
            stamp, times, p, v, a = lim.trajectory()
            if not stamped:  # the same points after the tick, timed from their arrival
                k = stamp + times > now + 1e-4
                stamp, times, p, v, a = 0.0, stamp + times[k] - now, p[k], v[k], a[k]
            messages.append((arrival, TrajectoryMessage(stamp, times, p, v, a)))
        else:  # position-only points, one period ahead
            messages.append((arrival, TrajectoryMessage(0.0, np.array([T]), step.position[None])))
        now += T + rng.uniform(-0.003, 0.003)
    return messages


@pytest.mark.parametrize("desired_state", [False, True])
def test_the_trajectory_controller_stream_stays_inside_the_limits(desired_state: bool) -> None:
    """Stamped trajectories from the smooth motion, received up to 5 ms late, interpolated at
    1 kHz as the trajectory controller does: velocity, acceleration and jerk by finite
    differences within the limits (whether it restarts from its desired or measured state)."""
    messages = _jtc_messages(np.random.default_rng(3), smooth=True, latency_s=0.005)
    extremes, pos = _stream(messages, True, interpolate_from_desired_state=desired_state)
    assert np.all(extremes["velocity"] <= LIMITS.velocity * (1 + 1e-9))
    assert np.all(extremes["acceleration"] <= LIMITS.acceleration * (1 + 1e-6))
    assert np.all(extremes["jerk"] <= LIMITS.jerk)
    assert np.all(pos >= LIMITS.position_low - 1e-9) and np.all(pos <= LIMITS.position_high + 1e-9)
    assert np.all(extremes["velocity"] > 0.9 * LIMITS.velocity)  # the limits were reached


def test_position_only_or_unstamped_streams_break_the_limits() -> None:
    """Why the trajectories carry velocities, accelerations and a stamp: positions alone are
    joined by straight lines (a velocity step at every point), and an unstamped trajectory
    starts when it arrives, shifting the motion by the delivery jitter."""
    rng = np.random.default_rng(4)
    linear, _ = _stream(_jtc_messages(rng, smooth=False, latency_s=0.002), False)
    assert np.all(linear["acceleration"] > 10 * LIMITS.acceleration)
    unstamped, _ = _stream(_jtc_messages(rng, True, latency_s=0.002, stamped=False), False)
    assert np.all(unstamped["acceleration"] > 10 * LIMITS.acceleration)
