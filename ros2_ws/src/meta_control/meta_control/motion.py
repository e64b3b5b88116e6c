"""Joint commands within the arm's velocity, acceleration and jerk limits, free of ROS imports.

The policy asks for an absolute target every tick (``q + action``); the arm may only move as its
limits allow. :class:`MotionLimiter` keeps the commanded motion's state and advances it by one
tick (period ``T``) toward the latest target, as fast as the limits allow and without overshooting
it: it brakes so that it could always stop at the target, and at the joint limits. A target it
cannot reach in one tick is approached over several; each tick that a limit shaped is counted.

Two command forms (``smooth``):

* ``smooth=False`` (forward position commands): the targets themselves, one per tick. Their
  differences at the policy rate respect the limits: ``|p[k+1] - p[k]| / T <= V``,
  ``|p[k+1] - 2 p[k] + p[k-1]| / T^2 <= A``, and the third difference ``/ T^3 <= J``. Targets
  already inside them, each close enough to stop at by the next tick (``|step| <= A T^2``), pass
  unchanged. What happens between two ticks is up to the arm's driver.
* ``smooth=True`` (``joint_trajectory_controller``): a motion whose acceleration is continuous
  and piecewise linear, so each tick is one cubic segment with constant jerk. Each tick yields the
  knot state (position, velocity, acceleration); the trajectory controller's quintic spline
  through consecutive knots *is* that cubic, so the stream it interpolates at 1 kHz stays within
  ``V``, ``A`` and ``J`` (velocity and acceleration limits on the knots alone do not bound the
  jerk: position-only points are interpolated linearly, with a velocity step at every knot).

Both are the same discrete double integrator. For the smooth form, with knot acceleration
``a``, ``s = p - T^2 a / 6`` and ``w = v + T a / 2`` evolve exactly as ``s' = s + T w`` and
``w' = w + T a'``; the limiter picks ``w'`` (the next velocity for the forward form) within
``|w' - w| <= A T``, ``|w'| <= V`` and the braking bounds. ``A`` is capped at ``J T / 2`` so that
any acceleration in ``[-A, A]`` is one tick away (jerk ``|a' - a| / T <= J``); ``|w| <= V`` bounds
the velocity inside every segment, not only at the knots (every step starts from a knot).
Braking: from speed ``w`` with steps of ``A T``, the motion comes to rest
``T * sum_i max(0, |w| - i A T)`` further on, so the fastest speed that can still stop within a
distance ``d`` has a closed form (:func:`stop_speed`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from meta_control.limits import JointLimits, check_finite_positive


def stop_speed(distance: np.ndarray, dv: np.ndarray, period_s: float) -> np.ndarray:
    """The largest speed ``u >= 0`` whose braking, by at most ``dv`` per tick, ends within
    ``distance`` (``>= 0``): ``T * sum_{i>=0} max(0, u - i dv) <= distance``.

    With ``n`` the number of full ``dv`` steps, ``u = d / (T (n + 1)) + dv n / 2``; ``u = d / T``
    (reach the point next tick) when ``d <= T dv``.
    """
    d = np.maximum(distance, 0.0)
    n = np.floor((np.sqrt(1.0 + 8.0 * d / (period_s * dv)) - 1.0) * 0.5)
    return d / (period_s * (n + 1.0)) + dv * n * 0.5


def braking_distance(speed: np.ndarray, dv: np.ndarray, period_s: float) -> np.ndarray:
    """``T * sum_{i>=0} max(0, |u| - i dv)``, signed like ``speed`` (inverse of
    :func:`stop_speed`)."""
    u = np.abs(speed)
    m = np.floor(u / dv)
    return np.sign(speed) * period_s * ((m + 1.0) * u - dv * m * (m + 1.0) * 0.5)


MIN_POINT_GAP_S = 1e-4
"""Smallest time between two trajectory points the limiter emits."""

State = tuple[np.ndarray, np.ndarray, np.ndarray]
"""Position, velocity and acceleration of every joint."""


@dataclass(frozen=True)
class MotionStep:
    """One tick of commanded motion: the knot state at its end and what shaped it."""

    position: np.ndarray
    velocity: np.ndarray
    acceleration: np.ndarray
    velocity_limited: bool = False
    acceleration_limited: bool = False
    position_limited: bool = False
    prefix: tuple[tuple[float, State], ...] = ()
    """Smooth motion: ``(time, state)`` points of the committed motion from the tick's time to
    where this step starts (the tick's time plus the look-ahead)."""
    _braking: tuple[np.ndarray, np.ndarray, np.ndarray, float] | None = None
    """(base, speed, dv, T) for :attr:`rest_position`, computed only when asked."""

    @property
    def limited(self) -> bool:
        """Whether any limit kept the command from what the target asked."""
        return self.velocity_limited or self.acceleration_limited or self.position_limited

    @property
    def rest_position(self) -> np.ndarray:
        """Where the motion would come to rest if it braked from this state on."""
        if self._braking is None:
            return self.position
        base, speed, dv, period_s = self._braking
        return base + braking_distance(speed, dv, period_s)


class MotionLimiter:
    """The commanded motion of the arm's joints, one tick at a time (see the module docstring).

    Args:
        limits: what to enforce (already intersected with the model's range and shrunk by the
            safety margin), in model joint order.
        period_s: the tick (policy) period ``T``.
        smooth: knots of a continuous-acceleration motion (for a trajectory controller) rather
            than forward position targets.
        velocity_scale: fraction of the velocity limits to use (slow mode); may be changed
            between ticks with :meth:`set_velocity_scale`.
        acceleration_scale: fraction of the acceleration limits to use (fixed).
        lookahead_s: smooth motion only: how long after a tick its step starts (see below).

    Smooth motion is published as a trajectory stamped with the tick's time: the motion already
    committed from the tick's time to a *start knot*, the next knot one period after it, then
    braking to rest (:meth:`trajectory`). Knots lie on a fixed grid, one period apart, set at
    :meth:`reset` ``lookahead_s`` after it; the start knot is the first grid knot at least
    ``lookahead_s / 2`` after the tick. The trajectory controller swaps trajectories when it
    receives one, a little after its stamp; old and new agree up to the start knot, so a swap
    before it is seamless, and a tick up to ``lookahead_s / 2`` late changes nothing (a later
    one finds its start knot a period on, on the braking tail: the arm slows, within limits).
    Because every step starts from a knot of the grid, each plan's braking bounds hold exactly.
    Times (``now_s``) count from any origin but should stay small: as a float64, a Unix time
    resolves only 0.24 us, enough to put knots 1e-7 rad off their trajectory.
    """

    def __init__(
        self,
        limits: JointLimits,
        period_s: float,
        smooth: bool,
        velocity_scale: float = 1.0,
        acceleration_scale: float = 1.0,
        lookahead_s: float = 0.0,
    ) -> None:
        self.limits = limits
        self.period_s = check_finite_positive("period_s", float(period_s))
        self.smooth = bool(smooth)
        if not 0.0 < acceleration_scale <= 1.0:
            raise ValueError(f"acceleration_scale must be in (0, 1], got {acceleration_scale}")
        if smooth and not 0.0 <= lookahead_s < self.period_s:
            raise ValueError(
                f"the trajectory look-ahead must be in [0, {self.period_s:g}) s (the control "
                f"period), got {lookahead_s:g}"
            )
        self.acceleration_scale = float(acceleration_scale)
        self.lookahead_s = float(lookahead_s) if smooth else 0.0
        self.low = limits.position_low
        self.high = limits.position_high
        self.acceleration = np.minimum(
            limits.acceleration * acceleration_scale, 0.5 * limits.jerk * period_s
        )
        """Acceleration bound used (capped at ``J T / 2``: jerk never binds between ticks)."""
        self._dv = self.acceleration * period_s
        self._k8 = 8.0 / (period_s * self._dv)
        self._half_dv = 0.5 * self._dv
        self.set_velocity_scale(velocity_scale)
        n = len(limits.names)
        self._dist = np.zeros((3, n))
        self.position = np.zeros(n)
        self.velocity = np.zeros(n)
        self.accel = np.zeros(n)
        self._times = np.zeros(1)
        self._states: list[State] = []
        self._grid0_s = 0.0
        self.initialized = False
        self.ticks = 0
        self.limited_ticks = 0
        self.velocity_limited_ticks = 0
        self.acceleration_limited_ticks = 0
        self.position_limited_ticks = 0

    def set_velocity_scale(self, scale: float) -> None:
        """Use ``scale`` (in (0, 1]) of the velocity limits from the next tick on; a motion
        faster than the new bound slows down within the acceleration limits."""
        if not 0.0 < scale <= 1.0:
            raise ValueError(f"velocity_scale must be in (0, 1], got {scale}")
        self.velocity_scale = float(scale)
        self.velocity_max = self.limits.velocity * scale

    def reset(self, measured: np.ndarray, now_s: float = 0.0) -> None:
        """Start at rest at the measured positions (activation)."""
        self.position = np.array(measured, dtype=np.float64)
        self.velocity = np.zeros_like(self.position)
        self.accel = np.zeros_like(self.position)
        self._times = np.array([now_s])
        self._states = [(self.position, self.velocity, self.accel)]
        self._grid0_s = now_s + self.lookahead_s
        self.initialized = True

    def forget(self) -> None:
        """Drop the state; the next :meth:`reset` starts anew."""
        self.initialized = False

    # --- one tick -----------------------------------------------------------------------------
    def _advance(
        self, p: np.ndarray, v: np.ndarray, a: np.ndarray, target: np.ndarray | None
    ) -> MotionStep:
        T = self.period_s
        dv = self._dv
        if self.smooth:
            w = v + 0.5 * T * a
            base = p - (T * T / 6.0) * a + T * w
        else:
            w = v
            base = p
        low, high = self.low, self.high
        # The fastest speeds that still stop before each joint limit and (with a target) at
        # the target, in one vectorised call (the tick's hot path).
        dist = self._dist
        np.subtract(high, base, out=dist[0])
        np.subtract(base, low, out=dist[1])
        velocity_limited = acceleration_limited = position_limited = False
        if target is None:
            speeds = self._stop_speed(dist[:2])
            w_des = np.zeros_like(w)
        else:
            goal = np.minimum(np.maximum(target, low), high)
            position_limited = bool((goal != target).any())
            e = goal - base
            np.abs(e, out=dist[2])
            speeds = self._stop_speed(dist)
            w_des = np.copysign(speeds[2], e)
            acceleration_limited = bool((speeds[2] < dist[2] / T - 1e-12).any())
        w_high = np.minimum(self.velocity_max, speeds[0])
        w_low = -np.minimum(self.velocity_max, speeds[1])
        w_c = np.minimum(np.maximum(w_des, w_low), w_high)
        if target is not None and (w_c != w_des).any():
            over_v = np.abs(w_des) > self.velocity_max
            velocity_limited = bool(over_v.any())
            position_limited |= bool(((w_c != w_des) & ~over_v).any())
        w_new = np.minimum(np.maximum(w_c, w - dv), w + dv)
        if target is not None and (w_new != w_c).any():
            acceleration_limited = True
        a_new = (w_new - w) / T
        if self.smooth:
            p_new = base + (T * T / 6.0) * a_new
            v_new = w + 0.5 * T * a_new
        else:
            p_new = base + T * w_new
            if target is not None:  # a target reached in one tick is sent exactly
                p_new = np.where(w_new == e / T, goal, p_new)
            v_new = w_new
        return MotionStep(
            p_new,
            v_new,
            a_new,
            velocity_limited,
            acceleration_limited,
            position_limited,
            _braking=(base, w_new, dv, T),
        )

    def _reachable(self, target: np.ndarray) -> MotionStep | None:
        """Forward targets' fast path: ``target`` itself when no limit binds (inside the range,
        within a velocity and an acceleration step, and close enough to stop there next tick,
        which keeps it inside the range), else ``None``. Same result as :meth:`_advance`."""
        p, w, dv = self.position, self.velocity, self._dv
        speed = (target - p) / self.period_s
        if (
            (target >= self.low).all()
            and (target <= self.high).all()
            and (np.abs(speed) <= np.minimum(dv, self.velocity_max)).all()
            and (np.abs(speed - w) <= dv).all()
        ):
            return MotionStep(
                np.array(target, dtype=np.float64),
                speed,
                (speed - w) / self.period_s,
                _braking=(p, speed, dv, self.period_s),
            )
        return None

    def _stop_speed(self, distance: np.ndarray) -> np.ndarray:
        """:func:`stop_speed` with this limiter's constants, rows of ``distance`` at once."""
        d = np.maximum(distance, 0.0)
        n = np.floor((np.sqrt(1.0 + self._k8 * d) - 1.0) * 0.5)
        return d / (self.period_s * (n + 1.0)) + self._half_dv * n

    def state_at(self, t_s: float) -> State:
        """The committed motion at ``t_s``: smooth motion evaluated on its cubic segments (at
        rest past its end); for forward targets, the last target."""
        if not self.smooth:
            return self.position, self.velocity, self.accel
        times = self._times
        i = int(np.searchsorted(times, t_s, side="right")) - 1
        if i < 0:
            return self._states[0]
        if i >= len(times) - 1:
            return self._states[-1]
        tau = t_s - times[i]
        p, v, a = self._states[i]
        j = (self._states[i + 1][2] - a) / (times[i + 1] - times[i])
        return (
            p + v * tau + a * (tau * tau / 2.0) + j * (tau**3 / 6.0),
            v + a * tau + j * (tau * tau / 2.0),
            a + j * tau,
        )

    def _prefix(self, now_s: float) -> tuple[tuple[float, State], ...]:
        """The committed motion from ``now_s`` to the start knot as points: both ends and the
        grid knots between them (each piece stays one cubic)."""
        T = self.period_s
        k = np.ceil((now_s + 0.5 * self.lookahead_s - self._grid0_s) / T - 1e-9)
        start = self._grid0_s + T * max(k, 0.0)
        # Points must be strictly increasing in integer nanoseconds, and each piece one cubic: a
        # tick less than MIN_POINT_GAP_S before a knot starts its trajectory at that knot.
        inside = (self._times > now_s) & (self._times < start - MIN_POINT_GAP_S)
        knots = [(float(self._times[i]), self._states[i]) for i in np.flatnonzero(inside)]
        points = [] if knots and knots[0][0] - now_s < MIN_POINT_GAP_S else [(now_s, None)]
        if not knots and start - now_s < MIN_POINT_GAP_S:
            points = []
        points += knots + [(start, None)]
        return tuple((t, self.state_at(t) if x is None else x) for t, x in points)

    def plan(self, target: np.ndarray, now_s: float = 0.0) -> MotionStep:
        """The next tick toward ``target`` (absolute joint positions), not yet committed;
        ``now_s`` is the tick's time (smooth motion)."""
        return self._plan(target, now_s)

    def plan_hold(self, now_s: float = 0.0) -> MotionStep:
        """The next tick of braking to rest as fast as the limits allow (a hold)."""
        return self._plan(None, now_s)

    def _plan(self, target: np.ndarray | None, now_s: float) -> MotionStep:
        if not self.initialized:
            raise RuntimeError("MotionLimiter: plan before reset(measured positions)")
        if not self.smooth:
            if target is not None:
                step = self._reachable(target)
                if step is not None:
                    return step
            return self._advance(self.position, self.velocity, self.accel, target)
        prefix = self._prefix(now_s)
        step = self._advance(*prefix[-1][1], target)
        return dataclasses.replace(step, prefix=prefix)

    def commit(self, step: MotionStep) -> None:
        """Make ``step`` the commanded motion and count what limited it."""
        self.position, self.velocity, self.accel = step.position, step.velocity, step.acceleration
        if self.smooth:
            if not step.prefix:
                raise ValueError("commit: a smooth step comes from plan() or plan_hold()")
            points = list(step.prefix)
            t = points[-1][0] + self.period_s
            points.append((t, (step.position, step.velocity, step.acceleration)))
            for knot in self._braking(step):
                t += self.period_s
                points.append((t, (knot.position, knot.velocity, knot.acceleration)))
            self._times = np.array([t for t, _ in points])
            self._states = [s for _, s in points]
        self.ticks += 1
        if step.limited:
            self.limited_ticks += 1
            self.velocity_limited_ticks += step.velocity_limited
            self.acceleration_limited_ticks += step.acceleration_limited
            self.position_limited_ticks += step.position_limited

    def _braking(self, step: MotionStep, max_knots: int = 100_000) -> list[MotionStep]:
        knots: list[MotionStep] = []
        p, v, a = step.position, step.velocity, step.acceleration
        while v.any() or a.any():
            nxt = self._advance(p, v, a, None)
            knots.append(nxt)
            p, v, a = nxt.position, nxt.velocity, nxt.acceleration
            if len(knots) >= max_knots:  # pragma: no cover - braking ends in V / (A T) + 2
                raise RuntimeError("braking did not come to rest")
        return knots

    def trajectory(self) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The committed smooth motion as trajectory points: ``(stamp, times_from_start (m,),
        positions, velocities, accelerations (m, n))``; the tick's state first, rest last."""
        p, v, a = (np.array(x) for x in zip(*self._states, strict=True))
        return float(self._times[0]), self._times - self._times[0], p, v, a

    @property
    def at_rest(self) -> bool:
        """Whether the commanded motion is at rest (after its last committed step)."""
        return not (self.velocity.any() or self.accel.any())

    def counters(self) -> dict[str, int]:
        """Ticks a limit shaped (for ``/diagnostics``)."""
        return {
            "limited_ticks": self.limited_ticks,
            "velocity_limited_ticks": self.velocity_limited_ticks,
            "acceleration_limited_ticks": self.acceleration_limited_ticks,
            "position_limited_ticks": self.position_limited_ticks,
        }
