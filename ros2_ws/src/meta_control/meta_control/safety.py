"""Safety logic of the policy controller, free of ROS so it is tested without a node.

Every tick ends in one of two commands: a step toward the policy's target, or a *hold*: braking
to rest as fast as the arm's limits allow (both by :class:`meta_control.motion.MotionLimiter`).
:class:`HoldReason` names why a tick held; inputs are checked before inference, because
onnxruntime's LSTM turns NaN into finite but wrong actions.
"""

from __future__ import annotations

import enum


class HoldReason(str, enum.Enum):
    """Why the controller held instead of commanding the policy's target."""

    OK = "ok"
    NO_STATE = "no_state"
    NO_PUCK = "no_puck"
    NO_GOAL = "no_goal"
    STALE = "stale"
    E_STOP = "e_stop"
    JOINT_MISMATCH = "joint_mismatch"
    NON_FINITE = "non_finite"
    OUT_OF_RANGE = "out_of_range"
    WRONG_LENGTH = "wrong_length"
    MODEL_ERROR = "model_error"
    FRAME_MISMATCH = "frame_mismatch"
    """The puck or goal pose is not in the configured frame."""
    WORKSPACE = "workspace"
    """The command would take the end effector out of the workspace (or below the table)."""
    DYNAMICS_OOD = "dynamics_ood"
    """The estimator's out-of-distribution flag was sustained (``on_ood: hold``), or its
    stream went stale."""


def stamp_age_s(now_s: float, stamp_s: float) -> float:
    """Age of a stamped input; a stamp from the future (clock skew, sim-time race) counts as 0."""
    return max(0.0, now_s - stamp_s)


class Freshness:
    """Tracks when an input was stamped and received, and whether it is too old.

    Args:
        max_age_s: inputs older than this are stale (two control periods by default).
        check_receive_age: also judge by wall-clock time since reception (off in lock-step,
            where the simulated arm waits for us and nothing goes stale in sim time).
    """

    def __init__(self, max_age_s: float, check_receive_age: bool = True) -> None:
        if not max_age_s > 0:
            raise ValueError(f"max_age_s must be > 0, got {max_age_s}")
        self.max_age_s = max_age_s
        self.check_receive_age = check_receive_age
        self.stamp_s: float | None = None
        self.received_s: float | None = None

    def update(self, stamp_s: float, received_s: float) -> None:
        """Record a new input (header stamp on the node clock, reception on the steady clock)."""
        self.stamp_s = stamp_s
        self.received_s = received_s

    def clear(self) -> None:
        """Forget the last input."""
        self.stamp_s = self.received_s = None

    @property
    def seen(self) -> bool:
        """Whether any input was recorded."""
        return self.stamp_s is not None

    def age_s(self, now_s: float, now_steady_s: float) -> float:
        """Largest of the stamp age and (when checked) the reception age; inf if never seen."""
        if self.stamp_s is None or self.received_s is None:
            return float("inf")
        age = stamp_age_s(now_s, self.stamp_s)
        if self.check_receive_age:
            age = max(age, now_steady_s - self.received_s)
        return age

    def stale(self, now_s: float, now_steady_s: float) -> bool:
        """True when the input is missing or older than ``max_age_s``."""
        return self.age_s(now_s, now_steady_s) > self.max_age_s


OOD_MODES = ("continue", "slow", "hold")
OOD_RELEASES = ("episode", "operator")


class OodReaction:
    """What the controller does when the dynamics estimator says the arm is outside the
    dynamics it was trained for (``/dynamics_ood``).

    ``sustain`` consecutive flagged estimates engage the reaction, which then stays latched
    until it is released: by the next episode (a new goal, ``release="episode"``) or only by an
    operator (``release="operator"``, :meth:`operator_reset`). Once a reaction is configured
    (``mode`` is not ``continue``), a missing or stale OOD stream counts as flagged while it
    lasts: no estimate older than ``stale_s`` since the later of the last estimate and the start
    of the episode (the estimator resets at each goal and is given that long to report).

    Args:
        mode: ``continue`` (report only), ``slow`` (scale the velocity limit) or ``hold``.
        sustain: consecutive flagged estimates that engage the reaction (>= 1).
        release: ``episode`` or ``operator``.
        stale_s: age after which the OOD stream counts as flagged (> 0).
    """

    def __init__(self, mode: str = "continue", sustain: int = 3, release: str = "episode",
                 stale_s: float = 0.12) -> None:
        if mode not in OOD_MODES:
            raise ValueError(f"on_ood must be one of {OOD_MODES}, got {mode!r}")
        if release not in OOD_RELEASES:
            raise ValueError(f"ood_release must be one of {OOD_RELEASES}, got {release!r}")
        if sustain < 1 or not stale_s > 0.0:
            raise ValueError("ood_sustain_periods must be >= 1 and the stale age > 0")
        self.mode, self.sustain, self.release, self.stale_s = mode, sustain, release, stale_s
        self.consecutive = 0
        self.latched = False
        self.engagements = 0
        self._last_s: float | None = None
        self._episode_s: float | None = None

    def on_flag(self, flagged: bool, now_s: float) -> None:
        """One estimate's flag, received at ``now_s``."""
        self._last_s = now_s
        self.consecutive = self.consecutive + 1 if flagged else 0
        if self.consecutive >= self.sustain and not self.latched:
            self.latched = True
            self.engagements += 1

    def stale(self, now_s: float) -> bool:
        """No estimate for longer than ``stale_s`` (since the episode started, at the least)."""
        ref = max((t for t in (self._last_s, self._episode_s) if t is not None), default=None)
        return ref is None or now_s - ref > self.stale_s

    def active(self, now_s: float) -> bool:
        """Whether the configured reaction applies now (always False for ``continue``)."""
        if self.mode == "continue":
            return False
        return self.latched or self.stale(now_s)

    def new_episode(self, now_s: float) -> None:
        """A new goal: the estimator starts afresh; an ``episode`` release unlatches."""
        self._episode_s = now_s
        self.consecutive = 0
        if self.release == "episode":
            self.latched = False

    def operator_reset(self) -> None:
        """An operator's reset: unlatch (the count of flagged estimates starts again)."""
        self.latched = False
        self.consecutive = 0
