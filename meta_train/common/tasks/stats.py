"""Means with 95% intervals, paired differences and ratios, over test tasks.

Every figure of the adaptation studies is a mean over tasks (or episodes) with a 95% interval
(normal approximation, ``1.96 * sd / sqrt(n)``, as the MAML and Meta-LSTM papers report). Two
methods are compared on the same tasks by the mean of their per-task differences, whose
interval excluding zero is what "below" means in a target.
"""

from __future__ import annotations

import math

import numpy as np

Z95 = 1.959963984540054


def mean_ci(x: np.ndarray) -> dict[str, float]:
    """``{"mean", "lo", "hi", "n"}`` of the finite values of ``x`` (95% normal interval)."""
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return {"mean": math.nan, "lo": math.nan, "hi": math.nan, "n": 0}
    m = float(x.mean())
    half = Z95 * float(x.std(ddof=1)) / math.sqrt(n) if n > 1 else math.inf
    return {"mean": m, "lo": m - half, "hi": m + half, "n": n}


def paired_diff(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Mean of ``a - b`` over the tasks where both are finite, with its 95% interval, and
    ``below``: True where the interval lies wholly below zero (``a`` is lower)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired arrays differ in shape: {a.shape} vs {b.shape}")
    keep = np.isfinite(a) & np.isfinite(b)
    out = mean_ci(a[keep] - b[keep])
    out["below"] = bool(out["hi"] < 0)
    out["above"] = bool(out["lo"] > 0)
    return out


def paired_log_ratio(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """The geometric mean of ``a / b`` over the tasks where both are finite and positive: the
    exponential of the mean paired difference of logs, with its 95% interval; ``below``
    where the interval lies wholly below 1. For heavy-tailed errors, where a handful of tasks
    decide a mean of differences, this asks whether one is lower on the typical task."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    keep = np.isfinite(a) & np.isfinite(b) & (a > 0) & (b > 0)
    d = mean_ci(np.log(a[keep]) - np.log(b[keep]))
    if d["n"] == 0:
        return {"ratio": math.nan, "lo": math.nan, "hi": math.nan, "n": 0, "below": False,
                "above": False}
    return {"ratio": math.exp(d["mean"]), "lo": math.exp(d["lo"]), "hi": math.exp(d["hi"]),
            "n": d["n"], "below": bool(d["hi"] < 0), "above": bool(d["lo"] > 0)}


def rms_ratio(a: np.ndarray, b: np.ndarray, boot: int = 2000,
              seed: int = 0) -> dict[str, float]:
    """``sqrt(mean a) / sqrt(mean b)`` of per-task squared errors over the tasks where both are
    finite, with a paired bootstrap 95% interval (tasks resampled together)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = len(a)
    if n == 0 or b.sum() <= 0:
        return {"ratio": math.nan, "lo": math.nan, "hi": math.nan, "n": n}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, (boot, n))
    ratios = np.sqrt(a[idx].mean(1) / np.maximum(b[idx].mean(1), 1e-300))
    lo, hi = np.quantile(ratios, [0.025, 0.975])
    return {"ratio": float(math.sqrt(a.mean() / b.mean())), "lo": float(lo), "hi": float(hi),
            "n": n}


def fmt(s: dict[str, float], digits: int = 3) -> str:
    """``mean [lo, hi]``."""
    if not s or not math.isfinite(s.get("mean", s.get("ratio", math.nan))):
        return "-"
    m = s.get("mean", s.get("ratio"))
    return f"{m:.{digits}f} [{s['lo']:.{digits}f}, {s['hi']:.{digits}f}]"
