"""Loop timing statistics (latency percentiles, jitter), free of ROS imports."""

from __future__ import annotations

from collections import deque

import numpy as np


class RollingStats:
    """Keeps the last ``window`` samples and reports percentiles.

    Args:
        window: number of samples kept.
    """

    def __init__(self, window: int = 10_000) -> None:
        self._samples: deque[float] = deque(maxlen=window)
        self.count = 0

    def add(self, value: float) -> None:
        """Record one sample."""
        self._samples.append(value)
        self.count += 1

    def clear(self) -> None:
        """Drop the samples (the total ``count`` is kept)."""
        self._samples.clear()

    def __len__(self) -> int:
        return len(self._samples)

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile of the kept samples (nan when empty)."""
        if not self._samples:
            return float("nan")
        return float(np.percentile(np.fromiter(self._samples, dtype=np.float64), q))

    def summary(self) -> dict[str, float]:
        """``p50``, ``p99``, ``max``, ``mean``, ``std`` of the kept samples."""
        if not self._samples:
            nan = float("nan")
            return {"p50": nan, "p99": nan, "max": nan, "mean": nan, "std": nan}
        x = np.fromiter(self._samples, dtype=np.float64)
        p50, p99 = np.percentile(x, [50, 99])
        return {
            "p50": float(p50),
            "p99": float(p99),
            "max": float(x.max()),
            "mean": float(x.mean()),
            "std": float(x.std()),
        }


def jitter(intervals_s: np.ndarray, period_s: float) -> dict[str, float]:
    """Deviation of loop intervals from the nominal period: ``p50``/``p99``/``max`` of |dt-T|."""
    dev = np.abs(np.asarray(intervals_s, dtype=np.float64) - period_s)
    if dev.size == 0:
        nan = float("nan")
        return {"p50": nan, "p99": nan, "max": nan}
    p50, p99 = np.percentile(dev, [50, 99])
    return {"p50": float(p50), "p99": float(p99), "max": float(dev.max())}
