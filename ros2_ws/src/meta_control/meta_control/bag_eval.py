"""Evaluate a policy (and estimator) offline by replaying a recorded bag.

``meta-bag-eval BAG --policy models/X.onnx [--estimator models/Y.onnx] --out DIR``

The bag (MCAP or sqlite3, read with ``rosbags`` through :class:`~meta_control.bags.BagReader`)
is turned into arrays (:func:`extract_streams`), the observation stream the controller saw is
rebuilt with the nodes' own :class:`~meta_control.observation.ObservationAssembler` (a model
whose observation terms the nodes could not fill is refused), and the policy and estimator are
stepped offline, deterministically (:func:`evaluate`). Reports: ``report.json``, ``report.md``
and PNG plots.

Pairing (how a control tick is rebuilt): each recorded ``/meta_controller/policy_action``
message is one tick (``/forward_position_controller/commands`` when the bag has no policy
actions). Its inputs are the latest ``/joint_states``, ``/puck_pose`` and ``/goal_pose`` whose
log (receive) time is at or before the tick's log time, except that in a lock-step bag (goals
stamped with their episode's first state) each tick takes the latest goal whose stamp is at or
before its input stamp, as the controller does: the recorder can log ticks before their goal or
after the next one. Joint positions and velocities are
reordered to the model's joint order by the names in each JointState. A tick whose latest goal
message differs from the previous tick's starts a new episode: the policy and estimator state
are reset, as the controller does on a new goal. The estimator is fed the *recorded* previous
policy action (zeros after a reset), i.e. what the controller fed it.

Outcome per episode (the span between two goal messages): the last puck pose before the next
goal, its xy distance to the goal, and success at 0.05 m and 0.07 m. With stamped actions and
puck poses, "before" is by stamp: the last pose stamped before the first input of the next
episode's first tick (ticks given to goals as above), since a new episode's first pose can be
logged before its goal.

Exit codes: 0 ok; 2 bad input (a :class:`~meta_control.bags.BagError` printed as one line on
stderr, no traceback). A partly damaged bag is still evaluated and reported (the report's
``read`` section says what was skipped), then exits 2 unless ``--allow-damaged`` is given.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from meta_control.bags import (
    BagCorruptError,
    BagDamagedError,
    BagError,
    BagNotFoundError,
    BagReader,
    ContractMismatchError,
    JointNamesError,
    MissingTopicError,
    ReadReport,
    UnknownMessageTypeError,
)
from meta_control.observation import ObservationAssembler, ObsTermError
from meta_control.topics import (
    CONTRACT_TOPICS,
    TOPIC_COMMANDS,
    TOPIC_ESTIMATE,
    TOPIC_GOAL_POSE,
    TOPIC_JOINT_STATES,
    TOPIC_POLICY_ACTION,
    TOPIC_PUCK_POSE,
    TOPIC_TRUE_DYNAMICS,
    action_input_stamp_ns,
    stamp_ns,
)

__all__ = [
    "BagCorruptError",
    "BagDamagedError",
    "BagError",
    "BagNotFoundError",
    "ContractMismatchError",
    "EvalConfig",
    "JointNamesError",
    "MissingTopicError",
    "ModelLoadError",
    "Streams",
    "UnknownMessageTypeError",
    "evaluate",
    "extract_streams",
    "main",
    "run",
]

SUCCESS_THRESHOLDS_M: tuple[float, float] = (0.05, 0.07)
"""Final puck-goal xy distance for success: panda-gym (0.05 m) and HER (0.07 m)."""


class ModelLoadError(BagError):
    """The policy or estimator file could not be loaded or verified."""


@dataclass
class EvalConfig:
    """Options of one replay evaluation (the CLI flags)."""

    bag: Path
    """Bag folder (or a single .mcap/.db3 file)."""
    policy: Path
    """Exported policy ``.onnx`` (its ``.json`` sidecar next to it)."""
    out: Path
    """Output folder for the reports (created)."""
    estimator: Path | None = None
    """Optional exported dynamics estimator ``.onnx``."""
    formats: tuple[str, ...] = ("json", "md", "png")
    """Report formats to write."""
    range_margin: float = 0.5
    """Input range margin passed to the runtimes."""
    action_tol: float = 1e-4
    """A replayed action "agrees" when every joint is within this of the recorded one (rad)."""
    progress: bool | None = None
    """Show progress bars (None: only on a terminal)."""
    allow_damaged: bool = False
    """Exit 0 on a partly damaged bag (the report still lists what was skipped)."""


# --------------------------------------------------------------------------------------------
# Bag -> arrays
# --------------------------------------------------------------------------------------------


@dataclass
class Streams:
    """The contract topics of a bag as arrays (times in ns, log time unless ``stamp``)."""

    joint_names: list[str]
    joint_t: np.ndarray
    q: np.ndarray
    dq: np.ndarray
    puck_t: np.ndarray
    puck_xyz: np.ndarray
    goal_t: np.ndarray
    goal_xy: np.ndarray
    action_t: np.ndarray
    action: np.ndarray
    action_label: str
    action_stamp: np.ndarray
    """Input stamp (ns) of each action from its layout, or -1 where the message has none."""
    cmd_t: np.ndarray
    cmd: np.ndarray
    true_t: np.ndarray
    true_mu: np.ndarray
    true_label: str
    est_t: np.ndarray
    est: np.ndarray
    est_label: str
    log_t: dict[str, np.ndarray] = field(default_factory=dict)
    """Every topic's log times."""
    stamp_t: dict[str, np.ndarray] = field(default_factory=dict)
    """Header stamps of stamped topics, aligned with ``log_t``."""


def _stack(rows: list[Any], width: int | None = None) -> np.ndarray:
    if not rows:
        return np.zeros((0, width or 0), dtype=np.float64)
    try:
        return np.asarray(rows, dtype=np.float64)
    except ValueError:
        sizes = sorted({len(r) for r in rows})
        raise ContractMismatchError(
            f"array messages change length within the bag: {sizes}"
        ) from None


def _label(msg: Any) -> str:
    dims = msg.layout.dim
    return str(dims[0].label) if len(dims) else ""


def extract_streams(
    reader: BagReader, joint_names: Sequence[str], progress: bool | None = None
) -> Streams:
    """Read every record of ``reader`` and convert the contract topics to arrays.

    Joint positions/velocities are reordered to ``joint_names``.

    Raises:
        JointNamesError: a JointState lacks one of ``joint_names`` or has short arrays.
        ContractMismatchError: an array topic changes length or label within the bag.
    """
    from tqdm import tqdm

    names = list(joint_names)
    cache: dict[tuple[str, ...], np.ndarray] = {}
    log_t: dict[str, list[int]] = {}
    stamps: dict[str, list[int]] = {}
    rows: dict[str, list[Any]] = {k: [] for k in ("q", "dq", "puck", "goal", "act", "cmd")}
    rows.update(true=[], est=[])
    act_stamps: list[int] = []
    times: dict[str, list[int]] = {k: [] for k in rows}
    labels: dict[str, str] = {}

    def set_label(key: str, msg: Any) -> None:
        label = _label(msg)
        if labels.setdefault(key, label) != label:
            raise ContractMismatchError(
                f"{key} label changes within the bag: {labels[key]!r} -> {label!r}"
            )

    bar = tqdm(
        total=reader.expected_message_count,
        disable=None if progress is None else not progress,
        unit="msg",
        desc="reading bag",
        mininterval=0.5,
    )
    for i, rec in enumerate(reader):
        if i % 1000 == 999:
            bar.update(1000)
        topic, msg, t = rec.topic, rec.msg, rec.log_time_ns
        log_t.setdefault(topic, []).append(t)
        header = getattr(msg, "header", None)
        if header is not None:
            stamps.setdefault(topic, []).append(stamp_ns(header.stamp))
        if topic == TOPIC_JOINT_STATES:
            key = tuple(msg.name)
            idx = cache.get(key)
            if idx is None:
                missing = [n for n in names if n not in key]
                if missing:
                    raise JointNamesError(
                        f"{TOPIC_JOINT_STATES} names {list(key)} lack the model's joints {missing}"
                    )
                idx = cache[key] = np.array([key.index(n) for n in names], dtype=np.intp)
            pos, vel = msg.position, msg.velocity
            if len(pos) != len(key) or len(vel) != len(key):
                raise JointNamesError(
                    f"{TOPIC_JOINT_STATES} has {len(key)} names but {len(pos)} positions and "
                    f"{len(vel)} velocities"
                )
            rows["q"].append(pos[idx])
            rows["dq"].append(vel[idx])
            times["q"].append(t)
        elif topic == TOPIC_PUCK_POSE:
            p = msg.pose.position
            rows["puck"].append((p.x, p.y, p.z))
            times["puck"].append(t)
        elif topic == TOPIC_GOAL_POSE:
            p = msg.pose.position
            rows["goal"].append((p.x, p.y))
            times["goal"].append(t)
        elif topic in (TOPIC_POLICY_ACTION, TOPIC_COMMANDS, TOPIC_TRUE_DYNAMICS, TOPIC_ESTIMATE):
            key = {
                TOPIC_POLICY_ACTION: "act",
                TOPIC_COMMANDS: "cmd",
                TOPIC_TRUE_DYNAMICS: "true",
                TOPIC_ESTIMATE: "est",
            }[topic]
            if key != "cmd":
                set_label(key, msg)
            if key == "act":
                act_stamps.append(action_input_stamp_ns(msg))
            rows[key].append(msg.data)
            times[key].append(t)
    bar.update(bar.total - bar.n if bar.total else 0)
    bar.close()

    def tarr(key: str) -> np.ndarray:
        return np.asarray(times[key], dtype=np.int64)

    n = len(names)
    return Streams(
        joint_names=names,
        joint_t=tarr("q"),
        q=_stack(rows["q"], n),
        dq=_stack(rows["dq"], n),
        puck_t=tarr("puck"),
        puck_xyz=_stack(rows["puck"], 3),
        goal_t=tarr("goal"),
        goal_xy=_stack(rows["goal"], 2),
        action_t=tarr("act"),
        action=_stack(rows["act"]),
        action_label=labels.get("act", ""),
        action_stamp=np.asarray(act_stamps, dtype=np.int64),
        cmd_t=tarr("cmd"),
        cmd=_stack(rows["cmd"]),
        true_t=tarr("true"),
        true_mu=_stack(rows["true"]),
        true_label=labels.get("true", ""),
        est_t=tarr("est"),
        est=_stack(rows["est"]),
        est_label=labels.get("est", ""),
        log_t={k: np.asarray(v, dtype=np.int64) for k, v in sorted(log_t.items())},
        stamp_t={k: np.asarray(v, dtype=np.int64) for k, v in sorted(stamps.items())},
    )


# --------------------------------------------------------------------------------------------
# Observation contract
# --------------------------------------------------------------------------------------------


def _observation_assembler(meta: Any, what: str = "policy") -> ObservationAssembler:
    """The assembler of ``meta``'s observation, exactly as the nodes build it (term names and
    sizes checked strictly; frame-stacked models refused).

    Raises:
        ContractMismatchError: a term the recorded streams cannot fill, or ``history > 0``.
    """
    try:
        return ObservationAssembler.for_model(meta)
    except ObsTermError as exc:
        raise ContractMismatchError(f"{what}: {exc}") from None


def check_contract(meta: Any, streams: Streams, what: str = "policy") -> None:
    """Raise :class:`ContractMismatchError` when ``meta`` does not fit the recorded streams."""
    n = len(meta.joint_names)
    if meta.act_dim != n:
        raise ContractMismatchError(
            f"{what} act_dim {meta.act_dim} != its {n} joint names; replay expects one joint "
            "position offset per joint"
        )
    if what == "policy" and meta.goal_dim != 2:
        raise ContractMismatchError(f"policy goal_dim is {meta.goal_dim}; /goal_pose gives xy (2)")
    if len(streams.action):
        if streams.action.shape[1] != meta.act_dim:
            raise ContractMismatchError(
                f"{TOPIC_POLICY_ACTION} has {streams.action.shape[1]} values per message, "
                f"{what} act_dim is {meta.act_dim}"
            )
        if streams.action_label and streams.action_label.split(",") != list(meta.joint_names):
            raise ContractMismatchError(
                f"{TOPIC_POLICY_ACTION} joints {streams.action_label.split(',')} != {what} "
                f"joints {list(meta.joint_names)}"
            )
    if len(streams.cmd) and streams.cmd.shape[1] != n:
        raise ContractMismatchError(
            f"{TOPIC_COMMANDS} has {streams.cmd.shape[1]} values per message, {what} has {n} "
            "joints"
        )


def _check_mu(meta: Any, streams: Streams) -> None:
    names = list(meta.mu_names)
    for topic, label, arr in (
        (TOPIC_TRUE_DYNAMICS, streams.true_label, streams.true_mu),
        (TOPIC_ESTIMATE, streams.est_label, streams.est),
    ):
        if not len(arr):
            continue
        if arr.shape[1] != len(names) or (label and label.split(",") != names):
            raise ContractMismatchError(
                f"{topic} holds mu {label.split(',') if label else arr.shape[1]} but the "
                f"estimator estimates {names}"
            )


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


def _f(x: Any) -> float | None:
    """JSON-safe float (None for NaN/inf)."""
    v = float(x)
    return v if math.isfinite(v) else None


def _err_stats(err: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """MAE/RMSE/max over rows with no NaN; per-column MAE."""
    ok = np.isfinite(err).all(axis=1) if err.ndim == 2 and len(err) else np.zeros(0, bool)
    e = np.abs(err[ok]) if len(err) else err
    if not len(e):
        return {"n": 0}
    return {
        "n": int(len(e)),
        "mae": _f(e.mean()),
        "rmse": _f(np.sqrt((e**2).mean())),
        "max_abs": _f(e.max()),
        "mae_per": {str(n): _f(v) for n, v in zip(names, e.mean(axis=0), strict=True)},
    }


def _vs_constant(err: np.ndarray, true: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Per parameter: the estimate's RMSE beside the constant estimate's (0, the centre of the
    training ranges: their median in each parameter's sampling space) and their ratio."""
    ok = np.isfinite(err).all(axis=1) & np.isfinite(true).all(axis=1)
    if not ok.any():
        return {}
    rmse = np.sqrt((err[ok] ** 2).mean(axis=0))
    const = np.sqrt((true[ok] ** 2).mean(axis=0))
    return {
        str(n): {"rmse": _f(r), "constant_rmse": _f(c), "ratio": _f(r / c) if c > 0 else None}
        for n, r, c in zip(names, rmse, const, strict=True)
    }


def _ood_rate(score: np.ndarray, episode: np.ndarray, step_in: np.ndarray,
              ignore_steps: int) -> dict[str, Any]:
    """How often the replayed estimator flags the dynamics as out of distribution (score above
    1 after the first ``ignore_steps`` steps of an episode, as the estimator node does)."""
    counted = (step_in >= ignore_steps) & np.isfinite(score)
    flagged = counted & (score > 1.0)
    episodes = np.unique(episode[counted])
    flagged_eps = np.unique(episode[flagged])
    return {
        "ignore_steps": int(ignore_steps),
        "ticks": int(counted.sum()),
        "ticks_flagged": _f(flagged.sum() / counted.sum()) if counted.any() else None,
        "episodes": int(len(episodes)),
        "episodes_flagged": _f(len(flagged_eps) / len(episodes)) if len(episodes) else None,
    }


def _joint_state_for_ticks(streams: Streams, tick_t: np.ndarray, use_actions: bool) -> np.ndarray:
    """Index of the joint state each tick was computed from: by the input stamp an action
    carries when present (exact), else the latest joint state logged before the tick."""
    by_log = _latest(streams.joint_t, tick_t)
    js = streams.stamp_t.get(TOPIC_JOINT_STATES)
    if not use_actions or js is None or len(js) != len(streams.joint_t) or len(js) == 0:
        return by_log
    stamped = streams.action_stamp >= 0
    if not stamped.any() or np.any(np.diff(js) < 0):
        return by_log
    idx = np.searchsorted(js, streams.action_stamp, side="right") - 1
    exact = stamped & (idx >= 0) & (js[np.maximum(idx, 0)] == streams.action_stamp)
    return np.where(exact, idx, by_log)


def _puck_for_joint_states(streams: Streams, ji: np.ndarray, tick_t: np.ndarray) -> np.ndarray:
    """Index of the puck pose each tick used: the latest whose header stamp is at or before the
    paired joint state's stamp (the same sensing instant). The recorder's receive order across
    two topics is not the order the controller saw them in, so log times alone can pair a tick
    with the previous puck pose. Without usable stamps, falls back to log-time pairing."""
    ps = streams.stamp_t.get(TOPIC_PUCK_POSE)
    js = streams.stamp_t.get(TOPIC_JOINT_STATES)
    if (
        ps is None
        or js is None
        or len(ps) != len(streams.puck_t)
        or len(js) != len(streams.joint_t)
        or len(ps) == 0
        or np.any(np.diff(ps) < 0)
    ):
        return _latest(streams.puck_t, tick_t)
    idx = np.searchsorted(ps, js[np.maximum(ji, 0)], side="right") - 1
    return np.where(ji >= 0, idx, -1)


def _latest(times: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Index of the latest ``times`` at or before each ``at`` (-1 when none)."""
    return np.searchsorted(times, at, side="right") - 1


def _goal_for_ticks(streams: Streams, tick_t: np.ndarray, use_actions: bool) -> np.ndarray:
    """The goal of each tick: by stamp in a lock-step bag, else the latest goal by log time.

    Topics are not ordered with each other: the recorder can log an episode's first action
    before that episode's goal, and, working through a backlog, the last actions of an episode
    after the next goal. In lock-step the goal carries the stamp of the episode's first state
    (``LOCK_STEP_EPISODE_GAP_S``) and each action the stamp of its input state, and the
    controller gives a state to the current goal when its stamp is at or after the goal's: so
    does the replay, for every stamped tick. A bag is taken as lock-step when its goal stamps
    increase and one of them equals an action's input stamp (wall-clock stamps of two topics
    never match to the nanosecond).
    """
    gi = _latest(streams.goal_t, tick_t)
    stamps = streams.stamp_t.get(TOPIC_GOAL_POSE)
    if not use_actions or stamps is None or len(stamps) != len(streams.goal_t) or not len(gi):
        return gi
    astamp = streams.action_stamp
    lock_step = (
        len(astamp) == len(gi)
        and bool(np.all(np.diff(stamps) > 0))
        and bool(np.isin(stamps[stamps > 0], astamp[astamp > 0]).any())
    )
    if not lock_step:
        return gi
    by_stamp = np.searchsorted(stamps, astamp, side="right") - 1
    return np.where(astamp >= 0, by_stamp, gi)


def topic_timing(streams: Streams) -> dict[str, Any]:
    """Per-topic message rates, gaps and (for stamped topics) header-stamp latencies."""
    out: dict[str, Any] = {}
    for topic, t in streams.log_t.items():
        entry: dict[str, Any] = {"count": int(len(t))}
        if len(t) >= 2:
            dt = np.diff(t) / 1e9
            med = float(np.median(dt))
            span = (t[-1] - t[0]) / 1e9
            entry.update(
                rate_hz=_f((len(t) - 1) / span) if span > 0 else None,
                median_period_s=_f(med),
                max_gap_s=_f(dt.max()),
                gaps_over_2x_median=int((dt > 2 * med).sum()) if med > 0 else 0,
            )
        stamps = streams.stamp_t.get(topic)
        if stamps is not None and len(stamps) == len(t) and len(t):
            lat = (t - stamps) / 1e9
            entry["latency_s"] = {
                "mean": _f(lat.mean()),
                "median": _f(np.median(lat)),
                "p95": _f(np.percentile(lat, 95)),
                "max": _f(lat.max()),
            }
            if len(stamps) >= 2:
                ds = np.diff(stamps) / 1e9
                entry["stamp_max_gap_s"] = _f(ds.max())
                entry["stamp_non_monotonic"] = int((ds <= 0).sum())
        out[topic] = entry
    return out


def task_outcome(streams: Streams) -> dict[str, Any]:
    """Final puck-goal xy distance and success of every episode (goal message to next goal)."""
    episodes = []
    ends = np.append(streams.goal_t[1:], np.iinfo(np.int64).max)
    ps = streams.stamp_t.get(TOPIC_PUCK_POSE)
    by_stamp = (
        ps is not None and len(ps) == len(streams.puck_t) and len(ps) > 0
        and not np.any(np.diff(ps) < 0) and len(streams.action_stamp) == len(streams.action_t)
    )
    # Episodes are delimited by the input stamps of their actions (receive order across topics
    # cannot be trusted), each action given to its goal as the replay does (_goal_for_ticks):
    # the final state is the last puck pose stamped before the next episode's first input.
    action_goal = _goal_for_ticks(streams, streams.action_t, True) if by_stamp else None
    for i, (start, end) in enumerate(zip(streams.goal_t, ends, strict=True)):
        j = _latest(streams.puck_t, np.array([end - 1]))[0]
        stamped = False
        if action_goal is not None:
            valid = streams.action_stamp >= 0
            nxt = streams.action_stamp[(action_goal > i) & valid]
            first = streams.action_stamp[action_goal == i]
            if len(first) and first[0] >= 0:
                k = int(np.searchsorted(ps, nxt[0], side="left")) - 1 if len(nxt) else len(ps) - 1
                j = k if k >= 0 and ps[k] >= first[0] else -1
                stamped = True
        if j < 0 or (not stamped and streams.puck_t[j] < start):
            episodes.append({"episode": i, "final_distance_m": None})
            continue
        d = float(np.linalg.norm(streams.puck_xyz[j, :2] - streams.goal_xy[i]))
        ep: dict[str, Any] = {"episode": i, "final_distance_m": _f(d)}
        for thr in SUCCESS_THRESHOLDS_M:
            ep[f"success_{thr:.2f}"] = bool(d < thr)
        episodes.append(ep)
    scored = [e for e in episodes if e["final_distance_m"] is not None]
    summary: dict[str, Any] = {"n_episodes": len(episodes), "n_scored": len(scored)}
    if scored:
        dists = np.array([e["final_distance_m"] for e in scored])
        summary["mean_final_distance_m"] = _f(dists.mean())
        summary["final_distance_m"] = scored[-1]["final_distance_m"]
        for thr in SUCCESS_THRESHOLDS_M:
            key = f"success_{thr:.2f}"
            summary[f"success_rate_{thr:.2f}"] = _f(np.mean([e[key] for e in scored]))
            summary[key] = scored[-1][key]
    return {"summary": summary, "episodes": episodes}


# --------------------------------------------------------------------------------------------
# Replay
# --------------------------------------------------------------------------------------------


@dataclass
class Replay:
    """Per-tick arrays of one replay (for plots and tests)."""

    tick_t: np.ndarray
    episode: np.ndarray
    step_in_episode: np.ndarray
    replayed_action: np.ndarray
    recorded_action: np.ndarray | None
    estimate: np.ndarray | None
    estimate_std: np.ndarray | None
    true_mu: np.ndarray | None
    skipped: dict[str, int]


def evaluate(
    streams: Streams,
    policy: Any,
    estimator: Any | None = None,
    *,
    action_tol: float = 1e-4,
    ood_ignore_steps: int = 10,
    progress: bool | None = None,
) -> tuple[dict[str, Any], Replay]:
    """Replay ``streams`` through ``policy`` (and ``estimator``); return (metrics, per-tick).

    ``policy``/``estimator`` are :class:`~meta_control.runtime.PolicyRuntime` /
    :class:`~meta_control.runtime.EstimatorRuntime`. See the module docstring for pairing.

    Raises:
        MissingTopicError: a needed topic has no readable messages.
        ContractMismatchError / JointNamesError: the models do not fit the streams.
    """
    from tqdm import tqdm

    from meta_control.runtime import InputRejected

    meta = policy.metadata
    for topic, arr in (
        (TOPIC_JOINT_STATES, streams.joint_t),
        (TOPIC_PUCK_POSE, streams.puck_t),
        (TOPIC_GOAL_POSE, streams.goal_t),
    ):
        if not len(arr):
            raise MissingTopicError(f"bag has no readable {topic} messages")
    if not len(streams.action_t) and not len(streams.cmd_t):
        raise MissingTopicError(
            f"bag has neither {TOPIC_POLICY_ACTION} nor {TOPIC_COMMANDS} messages"
        )
    check_contract(meta, streams)
    assembler = _observation_assembler(meta, "policy")
    if estimator is not None:
        emeta = estimator.metadata
        if list(emeta.joint_names) != list(meta.joint_names):
            raise ContractMismatchError(
                f"estimator joints {emeta.joint_names} != policy joints {meta.joint_names}"
            )
        if emeta.act_dim != meta.act_dim:
            raise ContractMismatchError(
                f"estimator act_dim {emeta.act_dim} != policy act_dim {meta.act_dim}"
            )
        est_assembler = _observation_assembler(emeta, "estimator")
        _check_mu(emeta, streams)
    use_actions = bool(len(streams.action_t))
    tick_t = streams.action_t if use_actions else streams.cmd_t
    ji = _joint_state_for_ticks(streams, tick_t, use_actions)
    pi = _puck_for_joint_states(streams, ji, tick_t)
    gi = _goal_for_ticks(streams, tick_t, use_actions)
    ti = _latest(streams.true_t, tick_t) if len(streams.true_t) else None
    n_ticks, act_dim = len(tick_t), meta.act_dim
    replayed = np.full((n_ticks, act_dim), np.nan)
    n_mu = len(estimator.metadata.mu_names) if estimator is not None else 0
    est_mean = np.full((n_ticks, n_mu), np.nan)
    est_std = np.full((n_ticks, n_mu), np.nan)
    est_score = np.full(n_ticks, np.nan)
    episode = np.full(n_ticks, -1, dtype=np.int64)
    step_in = np.full(n_ticks, -1, dtype=np.int64)
    skipped = {"ticks_before_inputs": 0, "policy_inputs_rejected": 0, "estimator_rejected": 0}
    prev_goal, step = -2, 0
    prev_action = np.zeros(act_dim)
    for k in tqdm(
        range(n_ticks),
        disable=None if progress is None else not progress,
        desc="replaying",
        unit="tick",
        mininterval=0.5,
    ):
        j, p, g = ji[k], pi[k], gi[k]
        if j < 0 or p < 0 or g < 0:
            skipped["ticks_before_inputs"] += 1
            continue
        if g != prev_goal:
            policy.reset()
            if estimator is not None:
                estimator.reset()
            prev_goal, step = g, 0
            prev_action = np.zeros(act_dim)
        episode[k], step_in[k] = g, step
        step += 1
        q, dq, puck = streams.q[j], streams.dq[j], streams.puck_xyz[p]
        try:
            replayed[k] = policy.step(assembler.fill(q, dq, puck), streams.goal_xy[g])
        except InputRejected:
            skipped["policy_inputs_rejected"] += 1
        if estimator is not None:
            try:
                est_obs = est_assembler.fill(q, dq, puck)
                est_mean[k], est_std[k] = estimator.step(est_obs, prev_action)
                est_score[k] = estimator.ood_score
            except InputRejected:
                skipped["estimator_rejected"] += 1
        prev_action = streams.action[k] if use_actions else np.nan_to_num(replayed[k])

    names = list(meta.joint_names)
    results: dict[str, Any] = {
        "n_ticks": n_ticks,
        "tick_source": (TOPIC_POLICY_ACTION if use_actions else TOPIC_COMMANDS),
        "skipped_ticks": skipped,
    }
    recorded_action = streams.action if use_actions else None
    if use_actions:
        err = replayed - streams.action
        stats = _err_stats(err, names)
        ok = np.isfinite(err).all(axis=1)
        stats["frac_within_tol"] = (
            _f((np.abs(err[ok]) <= action_tol).all(axis=1).mean()) if (ok.any()) else None
        )
        stats["tol_rad"] = action_tol
        results["action_agreement"] = stats
    results["command_agreement"] = _command_agreement(streams, meta, tick_t, replayed)
    mu_names = list(estimator.metadata.mu_names) if estimator is not None else []
    true_at = None
    if ti is not None and len(streams.true_mu):
        true_at = np.where((ti >= 0)[:, None], streams.true_mu[np.maximum(ti, 0)], np.nan)
    results["estimation"] = _estimation(
        streams, est_mean, true_at, step_in, tick_t, mu_names, estimator is not None
    )
    if estimator is not None:
        results["estimation"]["ood"] = _ood_rate(est_score, episode, step_in, ood_ignore_steps)
    replay = Replay(
        tick_t,
        episode,
        step_in,
        replayed,
        recorded_action,
        est_mean if estimator is not None else None,
        est_std if estimator is not None else None,
        true_at,
        skipped,
    )
    return results, replay


def _command_agreement(
    streams: Streams, meta: Any, tick_t: np.ndarray, replayed: np.ndarray
) -> dict[str, Any]:
    """Replayed absolute targets (q + clipped action, clamped to limits) vs recorded commands.

    Each command is paired with the latest tick at or before it; "hold" commands (equal to the
    current joint positions) are counted and excluded. Rate limiting in the controller is not
    modelled, so this error includes it.
    """
    if not len(streams.cmd_t):
        return {"n": 0, "note": f"no {TOPIC_COMMANDS} in bag"}
    k = _latest(tick_t, streams.cmd_t)
    j = _latest(streams.joint_t, streams.cmd_t)
    valid = (k >= 0) & (j >= 0)
    q = streams.q[np.maximum(j, 0)]
    holds = valid & np.all(np.abs(streams.cmd - q) <= 1e-9, axis=1)
    use = valid & ~holds
    a = np.clip(replayed[np.maximum(k, 0)], meta.action_low, meta.action_high)
    target = np.clip(q + a, meta.joint_limits_low, meta.joint_limits_high)
    stats = _err_stats((target - streams.cmd)[use], list(meta.joint_names))
    stats["n_hold"] = int(holds.sum())
    stats["n_unpaired"] = int((~valid).sum())
    return stats


def _estimation(
    streams: Streams,
    est: np.ndarray,
    true_at: np.ndarray | None,
    step_in: np.ndarray,
    tick_t: np.ndarray,
    mu_names: list[str],
    have_estimator: bool,
) -> dict[str, Any]:
    out: dict[str, Any] = {"estimator": have_estimator, "true_mu_in_bag": true_at is not None}
    if have_estimator and true_at is not None:
        err = est - true_at
        out["replayed_vs_true"] = _err_stats(err, mu_names)
        by_step = {}
        abs_err = np.abs(err).mean(axis=1)
        for s in (0, 1, 5, 10, 20, 50, 100, 200, 500):
            sel = (step_in == s) & np.isfinite(abs_err)
            if sel.any():
                by_step[str(s)] = _f(abs_err[sel].mean())
        out["mae_by_episode_step"] = by_step
        last = np.zeros(len(step_in), dtype=bool)
        if len(step_in):
            last[:-1] = step_in[1:] <= 0
            last[-1] = step_in[-1] >= 0
        last &= step_in >= 0
        out["final_step"] = _err_stats(err[last], mu_names)
        out["final_step_vs_constant"] = _vs_constant(err[last], true_at[last], mu_names)
    if have_estimator and len(streams.est_t):
        k = _latest(tick_t, streams.est_t)
        ok = k >= 0
        out["replayed_vs_recorded_estimate"] = _err_stats(est[k[ok]] - streams.est[ok], mu_names)
    if true_at is not None and len(streams.est_t):
        i = _latest(streams.true_t, streams.est_t)
        ok = i >= 0
        names = (
            streams.true_label.split(",")
            if streams.true_label
            else [str(x) for x in range(streams.true_mu.shape[1])]
        )
        if streams.est.shape[1] == streams.true_mu.shape[1]:
            out["recorded_estimate_vs_true"] = _err_stats(
                streams.est[ok] - streams.true_mu[i[ok]], names
            )
    return out


# --------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------


def write_json(report: dict[str, Any], path: Path) -> None:
    """Deterministic JSON (sorted keys, no NaN)."""
    path.write_text(json.dumps(report, indent=2, sort_keys=True, allow_nan=False) + "\n")


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def write_markdown(report: dict[str, Any], path: Path) -> None:
    """Human-readable summary of ``report``."""
    r = report
    lines = [f"# Replay evaluation of `{r['bag']}`", "", f"- policy: `{r['policy']}`"]
    if r.get("estimator"):
        lines.append(f"- estimator: `{r['estimator']}`")
    lines += [
        f"- ticks replayed: {r['n_ticks']} (from `{r['tick_source']}`)",
        f"- skipped ticks: {r['skipped_ticks']}",
        f"- bag read: {r['read_summary']}",
        "",
    ]
    aa = r.get("action_agreement")
    if aa and aa.get("n"):
        lines += [
            "## Action agreement (replayed vs recorded policy action)",
            "",
            "| n | MAE (rad) | RMSE | max abs | within tol |",
            "|---|---|---|---|---|",
            f"| {aa['n']} | {_fmt(aa['mae'])} | {_fmt(aa['rmse'])} | "
            f"{_fmt(aa['max_abs'])} | {_fmt(aa['frac_within_tol'])} |",
            "",
        ]
    ca = r["command_agreement"]
    if ca.get("n"):
        lines += [
            "## Command agreement (replayed targets vs recorded commands)",
            "",
            "| n | holds | MAE (rad) | max abs |",
            "|---|---|---|---|",
            f"| {ca['n']} | {ca['n_hold']} | {_fmt(ca['mae'])} | {_fmt(ca['max_abs'])} |",
            "",
        ]
    est = r["estimation"]
    if "replayed_vs_true" in est:
        e = est["replayed_vs_true"]
        lines += ["## Estimation error vs true mu (normalised)", "", "| mu | MAE |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in (e.get("mae_per") or {}).items()]
        lines += ["", "| episode step | MAE |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in est["mae_by_episode_step"].items()]
        lines.append("")
        vs = est.get("final_step_vs_constant") or {}
        if vs:
            lines += [
                "### At each episode's last step, beside the constant estimate (the centre of "
                "the training ranges)",
                "",
                "| mu | RMSE | constant's RMSE | ratio |",
                "|---|---|---|---|",
            ]
            lines += [
                f"| {k} | {_fmt(v['rmse'])} | {_fmt(v['constant_rmse'])} | {_fmt(v['ratio'])} |"
                for k, v in vs.items()
            ]
            lines.append("")
    elif not est["true_mu_in_bag"]:
        lines += ["No `/true_dynamics` in the bag: estimation error not computed.", ""]
    ood = est.get("ood")
    if ood:
        lines += [
            "## Out-of-distribution flag (replayed estimator)",
            "",
            f"Flagged on {_fmt(ood['ticks_flagged'])} of {ood['ticks']} estimates and in "
            f"{_fmt(ood['episodes_flagged'])} of {ood['episodes']} episodes (the first "
            f"{ood['ignore_steps']} steps of each episode not counted).",
            "",
        ]
    s = r["outcome"]["summary"]
    lines += [
        "## Task outcome",
        "",
        "| episodes | mean final distance (m) | success < 0.05 m | success < 0.07 m |",
        "|---|---|---|---|",
        f"| {s['n_episodes']} | {_fmt(s.get('mean_final_distance_m'))} | "
        f"{_fmt(s.get('success_rate_0.05'))} | {_fmt(s.get('success_rate_0.07'))} |",
        "",
        "## Topics",
        "",
        "| topic | count | rate (Hz) | max gap (s) | gaps > 2x | latency median (s) |",
        "|---|---|---|---|---|---|",
    ]
    for topic, t in r["topics"].items():
        lat = t.get("latency_s", {}).get("median")
        lines.append(
            f"| `{topic}` | {t['count']} | {_fmt(t.get('rate_hz'))} | "
            f"{_fmt(t.get('max_gap_s'))} | {_fmt(t.get('gaps_over_2x_median'))} | "
            f"{_fmt(lat)} |"
        )
    path.write_text("\n".join(lines) + "\n")


def write_plots(
    replay: Replay, joint_names: Sequence[str], mu_names: Sequence[str], out: Path
) -> list[str]:
    """actions.png, errors.png and (with an estimator) estimates.png; returns file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not len(replay.tick_t):
        return []
    t = (replay.tick_t - replay.tick_t[0]) / 1e9
    written = []
    n = len(joint_names)
    fig, axes = plt.subplots(n, 1, figsize=(9, 1.6 * n + 1), sharex=True, squeeze=False)
    for i, name in enumerate(joint_names):
        ax = axes[i, 0]
        if replay.recorded_action is not None:
            ax.plot(t, replay.recorded_action[:, i], lw=1.2, label="recorded")
        ax.plot(t, replay.replayed_action[:, i], lw=0.8, ls="--", label="replayed")
        ax.set_ylabel(name, fontsize=7)
    axes[0, 0].legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("time (s)")
    fig.suptitle("policy actions (rad)")
    fig.savefig(out / "actions.png", dpi=80)
    plt.close(fig)
    written.append("actions.png")

    fig, ax = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
    if replay.recorded_action is not None:
        ax[0].plot(t, np.abs(replay.replayed_action - replay.recorded_action).max(axis=1), lw=0.8)
    ax[0].set_ylabel("max |action err| (rad)")
    if replay.estimate is not None and replay.true_mu is not None:
        ax[1].plot(t, np.abs(replay.estimate - replay.true_mu).mean(axis=1), lw=0.8)
    ax[1].set_ylabel("mean |mu err|")
    ax[1].set_xlabel("time (s)")
    fig.savefig(out / "errors.png", dpi=80)
    plt.close(fig)
    written.append("errors.png")

    if replay.estimate is not None:
        m = max(1, len(mu_names))
        fig, axes = plt.subplots(m, 1, figsize=(9, 1.6 * m + 1), sharex=True, squeeze=False)
        for i, name in enumerate(mu_names):
            ax = axes[i, 0]
            ax.plot(t, replay.estimate[:, i], lw=0.8, label="estimate")
            if replay.estimate_std is not None:
                ax.fill_between(
                    t,
                    replay.estimate[:, i] - replay.estimate_std[:, i],
                    replay.estimate[:, i] + replay.estimate_std[:, i],
                    alpha=0.2,
                )
            if replay.true_mu is not None:
                ax.plot(t, replay.true_mu[:, i], lw=1.2, label="true")
            ax.set_ylabel(name, fontsize=7)
        axes[0, 0].legend(fontsize=7, loc="upper right")
        fig.suptitle("normalised dynamics estimates")
        fig.savefig(out / "estimates.png", dpi=80)
        plt.close(fig)
        written.append("estimates.png")
    return written


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def _load_models(cfg: EvalConfig) -> tuple[Any, Any]:
    from meta_control.runtime import EstimatorRuntime, ModelError, PolicyRuntime

    try:
        policy = PolicyRuntime(cfg.policy, range_margin=cfg.range_margin)
        estimator = (
            EstimatorRuntime(cfg.estimator, range_margin=cfg.range_margin)
            if cfg.estimator is not None
            else None
        )
    except ModelError as exc:
        raise ModelLoadError(" ".join(str(exc).split())) from None
    return policy, estimator


def run(cfg: EvalConfig) -> tuple[dict[str, Any], ReadReport]:
    """Evaluate ``cfg.bag`` and write the reports; returns (report, read report).

    Raises:
        BagError: bad input (see the subclasses); a damaged bag raises
            :class:`BagDamagedError` *after* the reports were written, unless
            ``cfg.allow_damaged``.
    """
    from meta_control.runtime import ModelError

    for fmt in cfg.formats:
        if fmt not in ("json", "md", "png"):
            raise BagError(f"unknown report format {fmt!r}; use json, md, png")
    policy, estimator = _load_models(cfg)
    reader = BagReader(cfg.bag, expected_types=CONTRACT_TOPICS)
    streams = extract_streams(reader, policy.metadata.joint_names, cfg.progress)
    if not sum(reader.report.messages_read.values()):
        raise BagCorruptError(
            f"no message could be read from {cfg.bag}: {reader.report.summary()}"
        )
    try:
        results, replay = evaluate(
            streams, policy, estimator, action_tol=cfg.action_tol, progress=cfg.progress
        )
    except ModelError as exc:
        raise ModelLoadError(" ".join(str(exc).split())) from None
    report: dict[str, Any] = {
        "bag": str(cfg.bag),
        "policy": str(cfg.policy),
        "estimator": str(cfg.estimator) if cfg.estimator else None,
        "policy_contract_hash": policy.metadata.contract_hash,
        "joint_names": list(policy.metadata.joint_names),
        **results,
        "outcome": task_outcome(streams),
        "topics": topic_timing(streams),
        "read": reader.report.to_dict(),
        "read_summary": reader.report.summary(),
    }
    cfg.out.mkdir(parents=True, exist_ok=True)
    if "json" in cfg.formats:
        write_json(report, cfg.out / "report.json")
    if "md" in cfg.formats:
        write_markdown(report, cfg.out / "report.md")
    if "png" in cfg.formats:
        mu = list(estimator.metadata.mu_names) if estimator is not None else []
        write_plots(replay, policy.metadata.joint_names, mu, cfg.out)
    if reader.report.damaged and not cfg.allow_damaged:
        raise BagDamagedError(
            f"bag partly damaged, evaluated what was readable ({reader.report.summary()}); "
            f"reports in {cfg.out}"
        )
    return report, reader.report


def build_parser() -> argparse.ArgumentParser:
    """The ``meta-bag-eval`` argument parser."""
    p = argparse.ArgumentParser(
        prog="meta-bag-eval",
        description="Replay a recorded bag through a policy (and estimator) offline and report "
        "action agreement, estimation error, task outcome and topic timing.",
    )
    p.add_argument("bag", type=Path, help="rosbag2 folder (mcap or sqlite3) or one file")
    p.add_argument("--policy", type=Path, required=True, help="exported policy .onnx")
    p.add_argument("--estimator", type=Path, default=None, help="exported estimator .onnx")
    p.add_argument("--out", type=Path, required=True, help="output folder for the reports")
    p.add_argument("--format", default="json,md,png", help="comma list of json, md, png")
    p.add_argument("--range-margin", type=float, default=0.5, help="runtime input range margin")
    p.add_argument("--action-tol", type=float, default=1e-4, help="action agreement tol (rad)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--allow-damaged",
        action="store_true",
        help="exit 0 on a partly damaged bag (the report lists what was skipped)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit code (0 ok, 2 bad input)."""
    args = build_parser().parse_args(argv)
    cfg = EvalConfig(
        bag=args.bag,
        policy=args.policy,
        out=args.out,
        estimator=args.estimator,
        formats=tuple(f.strip() for f in args.format.split(",") if f.strip()),
        range_margin=args.range_margin,
        action_tol=args.action_tol,
        progress=False if args.no_progress else None,
        allow_damaged=args.allow_damaged,
    )
    try:
        report, _ = run(cfg)
    except BagError as exc:
        print(f"meta-bag-eval: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    aa = report.get("action_agreement", {})
    s = report["outcome"]["summary"]
    print(
        f"ticks {report['n_ticks']}, action MAE {_fmt(aa.get('mae'))} rad, "
        f"success<0.05 {_fmt(s.get('success_rate_0.05'))}, reports in {cfg.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
