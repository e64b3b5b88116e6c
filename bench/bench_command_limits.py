"""What the arm would execute from the controller's commands: velocity, acceleration and jerk at
1 kHz, over simulated episodes, against the arm's limits.

Each episode drives the simulated arm (``sim.world``, randomized dynamics) through the
controller's :class:`~meta_control.motion.MotionLimiter` with the limits the controller enforces
(the robot's limits file, the model's range, the margin): actions from the scripted pusher
(privileged teacher) in even episodes, uniform random offsets up to ``max_offset`` (the harshest
policy) in odd ones, ``q + action`` as the target, ticks ``jitter_ms`` off the period, and a
hold (braking) at the end. Per command mode:

* ``trajectory``: every tick's ``JointTrajectory`` is executed as ros2_control's
  joint_trajectory_controller would (:mod:`meta_control.jtc`: picked up ``latency_ms`` after its
  stamp at most, 1 kHz updates, spline interpolation), from its measured state and from its
  desired state; the same knots as position-only points, and unstamped, for comparison;
* ``forward``: the targets' differences at the policy rate.

Prints the largest velocity, acceleration and jerk per joint against the limits and writes them
as JSON. Reproduce::

    .venv/bin/python bench/bench_command_limits.py --episodes 50 \\
        --output-json out/command_limits.json                # ~80 s per 50 episodes, 2 cores
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from meta_control.jtc import TrajectoryMessage, execute, stream_extremes
from meta_control.limits import enforced_limits, load_robot_limits, resolve_limits_path
from meta_control.motion import MotionLimiter
from sim.envs import PushEnv
from sim.scripted import ScriptedPusher

UPDATE_S = 0.001
"""The trajectory controller's period (a Franka's 1 kHz)."""


@dataclass
class BenchConfig:
    """Benchmark settings."""

    robot: str = "panda"
    """Simulated arm (``panda`` or ``pusher``)."""
    limits: str = ""
    """Limits file (as the controller's ``limits`` parameter); empty: the robot's."""
    margin: float = -1.0
    """Safety margin; negative: the file's."""
    episodes: int = 40
    """Episodes per command mode (half scripted, half random actions)."""
    hold_ticks: int = 10
    """Ticks of hold (braking) after each episode."""
    jitter_ms: float = 2.0
    """Ticks fall uniformly this far either side of the period."""
    latency_ms: float = 3.0
    """The trajectory controller picks a message up uniformly 0.1 ms to this after its stamp."""
    lookahead_ms: float = 15.0
    """The controller's ``trajectory_lookahead_s`` (ms)."""
    seed: int = 0
    """First episode seed; also seeds actions, jitter and latency."""
    output_json: str = ""
    """Write the results here."""


def _episode(
    env: PushEnv, limiter: MotionLimiter, cfg: BenchConfig, ep: int, rng: np.random.Generator
) -> tuple[list[tuple[float, TrajectoryMessage]], np.ndarray, np.ndarray]:
    """One episode: (arrival, message) pairs (trajectory mode), the forward targets, q0."""
    obs, _ = env.reset(seed=cfg.seed + ep)
    world = env.world
    scripted = ScriptedPusher(env) if ep % 2 == 0 else None
    T = limiter.period_s
    t0 = 1000.0 + 100.0 * ep
    q0 = world.joint_positions()
    limiter.reset(q0, t0)
    messages, knots = [], [q0]
    for k in range(env.max_episode_steps + cfg.hold_ticks):
        q = world.joint_positions()
        now = t0 + k * T + rng.uniform(-cfg.jitter_ms, cfg.jitter_ms) * 1e-3
        if k < env.max_episode_steps:
            if scripted is not None:
                action = scripted(obs)
            else:
                action = rng.uniform(-env.max_offset, env.max_offset)
            step = limiter.plan(q + action, now)
        else:
            step = limiter.plan_hold(now)
        limiter.commit(step)
        if limiter.smooth:
            stamp, times, p, v, a = limiter.trajectory()
            arrival = stamp + rng.uniform(0.1, cfg.latency_ms) * 1e-3
            messages.append((arrival, TrajectoryMessage(stamp, times, p, v, a)))
            command = limiter.state_at(now + T)[0]  # where the arm is told to be next tick
        else:
            command = step.position
        knots.append(step.position)
        world.apply_command(command)
        world.step(world.nominal_substeps)
    return messages, np.array(knots), q0


def _max(rows: list[dict[str, np.ndarray]]) -> dict[str, list[float]]:
    return {k: np.max([r[k] for r in rows], axis=0).tolist() for k in rows[0]}


def main(cfg: BenchConfig) -> dict:
    env = PushEnv(cfg.robot)
    robot_limits = load_robot_limits(resolve_limits_path(cfg.limits, cfg.robot))
    names = list(env.joint_names)
    margin = None if cfg.margin < 0 else cfg.margin
    enforced = enforced_limits(
        robot_limits, names, env.world.joint_lower, env.world.joint_upper, margin
    )
    raw = robot_limits.joints.select(names)
    T = env.control_period_s
    rng = np.random.default_rng(cfg.seed)
    results: dict[str, dict] = {}
    t_start = time.perf_counter()
    for mode in ("trajectory", "forward"):
        limiter = MotionLimiter(
            enforced, T, smooth=mode == "trajectory", lookahead_s=cfg.lookahead_ms * 1e-3
        )
        rows: dict[str, list] = {"from measured": [], "from desired": [], "knots": []}
        rows.update({"position-only points": [], "unstamped": []})
        positions = []
        for ep in range(cfg.episodes):
            messages, knots, q0 = _episode(env, limiter, cfg, ep, rng)
            rows["knots"].append(stream_extremes(knots, T))
            positions.append(knots)
            if mode != "trajectory":
                continue
            span = (messages[0][0], messages[-1][0] + 1.0)
            for key, desired in (("from measured", False), ("from desired", True)):
                _, stream = execute(messages, q0, *span, UPDATE_S, desired)
                rows[key].append(stream_extremes(stream, UPDATE_S))
                positions.append(stream)
            # The same knots as a naive client would send them.
            plain = [
                (arr, TrajectoryMessage(0.0, np.array([T]), m.positions[[1]]))
                for arr, m in messages
            ]
            rows["position-only points"].append(
                stream_extremes(execute(plain, q0, *span, UPDATE_S)[1], UPDATE_S)
            )
            unstamped = []
            for arr, m in messages:
                after = m.times_s > arr - m.stamp_s
                times = m.times_s[after] - (arr - m.stamp_s)
                unstamped.append(
                    (
                        arr,
                        TrajectoryMessage(
                            0.0,
                            times,
                            m.positions[after],
                            m.velocities[after],
                            m.accelerations[after],
                        ),
                    )
                )
            rows["unstamped"].append(
                stream_extremes(execute(unstamped, q0, *span, UPDATE_S)[1], UPDATE_S)
            )
        every = np.concatenate(positions)
        results[mode] = {
            "streams": {k: _max(v) for k, v in rows.items() if v},
            "position_min": every.min(axis=0).tolist(),
            "position_max": every.max(axis=0).tolist(),
            "ticks": limiter.ticks,
            **limiter.counters(),
        }
    report = {
        "config": dataclasses.asdict(cfg),
        "robot": cfg.robot,
        "limits_file": str(robot_limits.path),
        "period_s": T,
        "limits": raw.as_dict(),
        "enforced": enforced.as_dict(),
        "results": results,
        "wall_s": time.perf_counter() - t_start,
    }
    _print(report, names)
    if cfg.output_json:
        Path(cfg.output_json).parent.mkdir(parents=True, exist_ok=True)
        Path(cfg.output_json).write_text(json.dumps(report, indent=2) + "\n")
    env.close()
    return report


def _print(report: dict, names: list[str]) -> None:
    lim, enf = report["limits"], report["enforced"]
    print(
        f"{report['robot']}: {report['config']['episodes']} episodes per mode, limits "
        f"{report['limits_file']} (enforced: margin, model range), {report['wall_s']:.0f} s"
    )
    for mode, res in report["results"].items():
        print(
            f"\n{mode}: {res['limited_ticks']} of {res['ticks']} ticks limited (velocity "
            f"{res['velocity_limited_ticks']}, acceleration {res['acceleration_limited_ticks']}, "
            f"position {res['position_limited_ticks']})"
        )
        for stream, ex in res["streams"].items():
            rate = "policy rate" if stream == "knots" else "1 kHz"
            print(f"  {stream} ({rate}): largest / limit (enforced limit) per joint")
            for key in ("velocity", "acceleration", "jerk"):
                cells = "  ".join(
                    f"{ex[key][i]:8.2f}/{lim[n][key]:<6g}({enf[n][key]:.4g})"
                    for i, n in enumerate(names)
                )
                print(f"    {key:<12} {cells}")
        inside = all(
            enf[n]["position"][0] - 1e-9 <= lo and hi <= enf[n]["position"][1] + 1e-9
            for n, lo, hi in zip(names, res["position_min"], res["position_max"], strict=True)
        )
        print(f"  positions within the enforced range: {inside}")


def _parse() -> BenchConfig:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in dataclasses.fields(BenchConfig):
        parser.add_argument(
            f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default
        )
    return BenchConfig(**vars(parser.parse_args()))


if __name__ == "__main__":
    main(_parse())
