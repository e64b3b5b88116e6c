"""The stream an arm executes from ``JointTrajectory`` messages: a model of ros2_controllers'
``joint_trajectory_controller`` (Jazzy branch, ``trajectory.cpp`` and ``update()``), free of
ROS imports, to check what the controller publishes (tests, ``bench/bench_command_limits.py``).

What it reproduces, per controller update (period ``dt``, 1 kHz on a Franka):

* a message is picked up at the first update after it arrives (the newest one wins); its start
  is its ``header.stamp``, or that update's time when the stamp is zero;
* the first update of a trajectory sets the trajectory time to the update's time, later ones
  advance it by ``dt``; the command written is the trajectory sampled one ``dt`` ahead;
* before the first point it interpolates from the state at pick-up: the measured state (here an
  arm that tracks perfectly: the last command, zero acceleration) or, with
  ``interpolate_from_desired_state``, the last command;
* between points: linear for positions only, cubic with velocities, quintic with velocities and
  accelerations (``interpolation_method: splines``); past the last point it holds it.

:func:`stream_extremes` differentiates the commanded positions as the arm's own limit check
does: finite differences at the update period.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TrajectoryMessage:
    """What the trajectory controller uses of one ``trajectory_msgs/JointTrajectory``."""

    stamp_s: float
    """``header.stamp`` (s); 0 starts the trajectory when it is first sampled."""
    times_s: np.ndarray
    """``time_from_start`` of each point, shape ``(m,)``."""
    positions: np.ndarray
    """Shape ``(m, n)``."""
    velocities: np.ndarray | None = None
    accelerations: np.ndarray | None = None


State = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]
"""Position, velocity and acceleration of a trajectory point (``None``: the field is empty)."""


def interpolate(
    t0: float, state0: State, t1: float, state1: State, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Position, velocity and acceleration at times ``t`` (shape ``(k,)``) between two points,
    as ``Trajectory::interpolate_between_points`` computes them; each of shape ``(k, n)``."""
    p0, v0, a0 = state0
    p1, v1, a1 = state1
    T = t1 - t0
    rel = np.asarray(t, dtype=np.float64) - t0
    s = np.clip(rel, 0.0, T)[:, None]
    # Outside [t0, t1] the controller clamps the time and interpolates linearly.
    inside = ((rel >= 0.0) & (rel <= T))[:, None]
    slope = (p1 - p0) / T if T != 0.0 else np.zeros_like(p0)
    lin = (p0 + s * slope, np.broadcast_to(slope, s.shape[:1] + p0.shape), np.zeros_like(s * p0))
    if v0 is None or v1 is None:
        return lin
    if a0 is None or a1 is None:
        c = [p0, v0, (-3.0 * p0 + 3.0 * p1 - 2.0 * v0 * T - v1 * T) / T**2]
        c.append((2.0 * p0 - 2.0 * p1 + v0 * T + v1 * T) / T**3)
    else:
        c = [p0, v0, 0.5 * a0]
        c.append(
            (-20.0 * p0 + 20.0 * p1 - 3.0 * a0 * T**2 + a1 * T**2 - 12.0 * v0 * T - 8.0 * v1 * T)
            / (2.0 * T**3)
        )
        c.append(
            (
                30.0 * p0
                - 30.0 * p1
                + 3.0 * a0 * T**2
                - 2.0 * a1 * T**2
                + 16.0 * v0 * T
                + 14.0 * v1 * T
            )
            / (2.0 * T**4)
        )
        c.append(
            (-12.0 * p0 + 12.0 * p1 - a0 * T**2 + a1 * T**2 - 6.0 * v0 * T - 6.0 * v1 * T)
            / (2.0 * T**5)
        )
    pos = sum(ci * s**i for i, ci in enumerate(c))
    vel = sum(i * ci * s ** (i - 1) for i, ci in enumerate(c) if i >= 1)
    acc = sum(i * (i - 1) * ci * s ** (i - 2) for i, ci in enumerate(c) if i >= 2)
    return tuple(np.where(inside, x, y) for x, y in zip((pos, vel, acc), lin, strict=True))


def _point(msg: TrajectoryMessage, i: int) -> State:
    v = None if msg.velocities is None else msg.velocities[i]
    a = None if msg.accelerations is None else msg.accelerations[i]
    return msg.positions[i], v, a


def sample(
    msg: TrajectoryMessage, start_s: float, before_s: float, before: State, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Position, velocity and acceleration of ``msg`` (started at ``start_s``) at times ``t``,
    as ``Trajectory::sample`` gives them; ``before`` is the state at pick-up, ``before_s``."""
    t = np.asarray(t, dtype=np.float64)
    n = msg.positions.shape[1]
    last_p, last_v, last_a = _point(msg, len(msg.times_s) - 1)
    out = [
        np.repeat(x[None], len(t), axis=0)  # past the end: the last point
        for x in (
            last_p,
            np.zeros(n) if last_v is None else last_v,
            np.zeros(n) if last_a is None else last_a,
        )
    ]
    times = start_s + msg.times_s
    first = t < times[0]
    if first.any():
        p0, v0, a0 = before
        # A state without velocities/accelerations gets zeros when the points have them.
        if v0 is None and msg.velocities is not None:
            v0 = np.zeros(n)
        if a0 is None and msg.accelerations is not None:
            a0 = np.zeros(n)
        seg = interpolate(before_s, (p0, v0, a0), times[0], _point(msg, 0), t[first])
        for o, x in zip(out, seg, strict=True):
            o[first] = x
    index = np.searchsorted(times, t, side="right") - 1
    for i in np.unique(index[(index >= 0) & (index < len(times) - 1)]):
        sel = index == i
        seg = interpolate(times[i], _point(msg, i), times[i + 1], _point(msg, i + 1), t[sel])
        for o, x in zip(out, seg, strict=True):
            o[sel] = x
    return out[0], out[1], out[2]


def execute(
    messages: list[tuple[float, TrajectoryMessage]],
    initial_positions: np.ndarray,
    start_s: float,
    end_s: float,
    update_period_s: float = 0.001,
    interpolate_from_desired_state: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The commands the trajectory controller writes at each update in ``[start_s, end_s)``.

    Args:
        messages: ``(arrival time, message)`` pairs, by arrival time.
        initial_positions: what it holds before the first message.
        start_s, end_s: the updates' span; updates fall at ``start_s + k * update_period_s``.
        update_period_s: the controller manager's period.
        interpolate_from_desired_state: see the module docstring.

    Returns:
        ``(update times (k,), commanded positions (k, n))``.
    """
    dt = update_period_s
    ticks = start_s + dt * np.arange(int(round((end_s - start_s) / dt)))
    out = np.repeat(np.asarray(initial_positions, dtype=np.float64)[None], len(ticks), axis=0)
    arrivals = np.array([a for a, _ in messages])
    # The update that picks each message up; a later message picked up at the same update wins.
    pick = np.searchsorted(ticks, arrivals, side="left")
    last: State = (out[0], np.zeros(out.shape[1]), np.zeros(out.shape[1]))
    last_t: float | None = None
    for j, (_, msg) in enumerate(messages):
        k0 = int(pick[j])
        k1 = int(pick[j + 1]) if j + 1 < len(messages) else len(ticks)
        if k0 >= len(ticks) or k1 <= k0:
            continue  # never picked up (past the end, or replaced before the next update)
        t_pick = float(ticks[k0])
        if k0 > 0:
            out[k0:] = out[k0 - 1]
        if interpolate_from_desired_state:
            before_s = last_t if last_t is not None else t_pick
            before = last
        else:  # the measured state of a perfectly tracking arm, without acceleration
            before_s, before = t_pick, (last[0], last[1], None)
        start = msg.stamp_s if msg.stamp_s != 0.0 else t_pick
        span = ticks[k0:k1]
        valid = span + dt >= before_s  # sampling before the pick-up point writes nothing
        p, v, a = sample(msg, start, before_s, before, span[valid] + dt)
        out[k0:k1][valid] = p
        # The last command written (sampled one period ahead) and the update that wrote it.
        last, last_t = (p[-1], v[-1], a[-1]), float(span[valid][-1])
    return ticks, out


def stream_extremes(positions: np.ndarray, period_s: float) -> dict[str, np.ndarray]:
    """Largest absolute velocity, acceleration and jerk per joint of a position stream, by
    finite differences at its period (as a robot checking its command stream sees them)."""
    x = np.asarray(positions, dtype=np.float64)
    out = {}
    for order, key in ((1, "velocity"), (2, "acceleration"), (3, "jerk")):
        d = np.diff(x, n=order, axis=0) / period_s**order
        out[key] = np.abs(d).max(axis=0) if len(d) else np.zeros(x.shape[1])
    return out
