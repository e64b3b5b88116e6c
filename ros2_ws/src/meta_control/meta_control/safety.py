"""Safety logic of the policy controller, free of ROS so it is tested without a node.

Every tick ends in one of two commands: the policy's target, clamped to the joint limits and
rate-limited, or a *hold* (the last measured joint positions, as ros2_control's
joint_trajectory_controller does after ``cmd_timeout``). :class:`HoldReason` names why a tick
held; inputs are checked before inference, because onnxruntime's LSTM turns NaN into finite but
wrong actions.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

import numpy as np


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


class CommandLimiter:
    """Clamps targets to the joint limits and limits the change between consecutive commands.

    Args:
        joint_low, joint_high: joint position limits (rad), model joint order.
        max_step_rad: largest change of any joint target between two published commands.
    """

    def __init__(
        self, joint_low: Sequence[float], joint_high: Sequence[float], max_step_rad: float
    ) -> None:
        self.low = np.asarray(joint_low, dtype=np.float64)
        self.high = np.asarray(joint_high, dtype=np.float64)
        if self.low.shape != self.high.shape or np.any(self.low > self.high):
            raise ValueError("joint limits must have equal shapes with low <= high")
        if not max_step_rad > 0:
            raise ValueError(f"max_step_rad must be > 0, got {max_step_rad}")
        self.max_step_rad = float(max_step_rad)
        self.last: np.ndarray | None = None
        self.rate_limited_ticks = 0

    def reset(self) -> None:
        """Forget the previous command (the next one is only clamped to the limits)."""
        self.last = None

    def command(self, target: np.ndarray) -> np.ndarray:
        """The safe command for ``target``: clamped, then rate-limited, then clamped again."""
        # minimum/maximum rather than np.clip: the same result (NaN propagates), a fraction of
        # the call overhead on these 3-7 element arrays.
        low, high = self.low, self.high
        cmd = np.minimum(np.maximum(target, low), high)
        last = self.last
        if last is not None:
            step = self.max_step_rad
            limited = np.minimum(np.maximum(cmd, last - step), last + step)
            if (limited != cmd).any():
                self.rate_limited_ticks += 1
                cmd = np.minimum(np.maximum(limited, low), high)
        self.last = cmd
        return cmd

    def hold(self, measured: np.ndarray) -> np.ndarray:
        """The hold command: the measured positions, clamped to the limits, never rate-limited.

        A hold must take effect at once; it becomes the reference for the next rate limit.
        """
        cmd = np.clip(np.asarray(measured, dtype=np.float64), self.low, self.high)
        self.last = cmd
        return cmd
