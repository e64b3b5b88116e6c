"""Round trip of the ROS 2 control loop: arm publishes a state -> arm receives the command.

Two separate processes: this script's *arm* (publishes ``/joint_states`` + ``/puck_pose`` at
``--rate`` Hz, replaying states of a PyBullet pusher episode, and timestamps the commands) and
the real ``controller_node`` (``trigger: state``, the policy in the loop). Commands are matched
to states in order: one command per state, with the watchdog threshold raised
(``--stale-periods``) so that no watchdog hold is interleaved; the controller's hold count is
reported, 0 means the matching is exact. Reports p50/p99/max round trip, drops, CPU of each
process and the controller's own compute per tick (validation + inference + publish) from
``/diagnostics``.

    python bench/bench_ros_loop.py --rates 100 500 1000 --duration 60
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class BenchConfig:
    """Options of the benchmark."""

    rates: tuple[float, ...] = (100.0, 500.0, 1000.0)
    """Control rates (Hz) to measure."""
    duration: float = 10.0
    """Seconds of measurement per rate (60 for the documented numbers)."""
    policy: str = ""
    """ONNX policy; empty: models/pusher_policy.onnx, else an untrained 128-unit export."""
    output_json: str = ""
    """Write the results here as well."""


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def episode_states(n: int = 200) -> np.ndarray:
    """Observations of one pusher episode with random actions (realistic, in range)."""
    from sim.envs import PushEnv

    env = PushEnv("pusher")
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    out = [obs["observation"]]
    while len(out) < n:
        obs, _, _, trunc, _ = env.step(rng.uniform(-env.max_offset, env.max_offset))
        out.append(obs["observation"])
        if trunc:
            obs, _ = env.reset(seed=len(out))
    env.close()
    return np.asarray(out, dtype=np.float64)


def accepted(states: np.ndarray, policy: str) -> np.ndarray:
    """Keep the states the policy's input check accepts, so every tick runs inference."""
    from meta_control.runtime import InputRejected, PolicyRuntime

    runtime = PolicyRuntime(policy)
    keep = []
    for s in states:
        try:
            runtime.validate(s, [0.4, 0.05])
            keep.append(s)
        except InputRejected:
            pass
    return np.asarray(keep)


def untrained_policy(root: Path, hidden: int = 128) -> Path:
    """Export an untrained pusher policy of the shipped size (needs torch; bench only)."""
    sys.path.insert(0, str(REPO / "tests" / "ros2"))
    sys.path.insert(0, str(REPO / "ros2_ws" / "src" / "meta_control"))
    from ros_helpers import export_models

    return export_models(root, hidden=hidden)[0]


def run_rate(
    rate: float, duration: float, policy: str, states: np.ndarray, env: dict, stale: float
) -> dict:
    """Measure one rate; returns the row of the results table."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseStamped
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray

    ctrl = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "meta_control.controller_node",
            "--ros-args",
            "-p",
            f"policy_path:={policy}",
            "-p",
            "trigger:=state",
            "-p",
            f"control_rate_hz:={rate}",
            "-p",
            "autostart:=true",
            "-p",
            "diagnostics_period_s:=0.5",
            "-p",
            f"stale_periods:={stale}",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    rclpy.init()
    node = rclpy.create_node("bench_arm")
    try:
        js_pub = node.create_publisher(JointState, "/joint_states", qos_profile_sensor_data)
        puck_pub = node.create_publisher(PoseStamped, "/puck_pose", qos_profile_sensor_data)
        goal_pub = node.create_publisher(PoseStamped, "/goal_pose", 10)
        received: list[float] = []
        diag: dict[str, str] = {}
        node.create_subscription(
            Float64MultiArray,
            "/forward_position_controller/commands",
            lambda m: received.append(time.perf_counter()),
            1000,
        )

        def on_diag(msg) -> None:
            for s in msg.status:
                if s.name.startswith("meta_controller"):
                    diag.update({kv.key: kv.value for kv in s.values})

        node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
        js, puck = JointState(), PoseStamped()
        js.name = ["joint1", "joint2", "joint3"]
        goal = PoseStamped()
        goal.pose.position.x, goal.pose.position.y = 0.4, 0.05

        def publish(i: int) -> None:
            stamp = node.get_clock().now().to_msg()
            o = states[i % len(states)]
            puck.header.stamp = js.header.stamp = stamp
            puck.pose.position.x, puck.pose.position.y, puck.pose.position.z = (
                float(v) for v in o[6:9]
            )
            puck_pub.publish(puck)
            js.position, js.velocity = o[:3].tolist(), o[3:6].tolist()
            js_pub.publish(js)

        # Warm up: discovery, goal, onnxruntime.
        deadline = time.monotonic() + 30
        i = 0
        while len(received) < 50:
            if time.monotonic() > deadline:
                raise RuntimeError("controller did not answer")
            goal_pub.publish(goal)
            publish(i)
            i += 1
            rclpy.spin_once(node, timeout_sec=0.01)
        rclpy.spin_once(node, timeout_sec=0.2)
        holds_before = int(diag.get("holds_total", "0"))
        received.clear()
        sent: list[float] = []
        period = 1.0 / rate
        cpu0 = {"arm": cpu_seconds(os.getpid()), "controller": cpu_seconds(ctrl.pid)}
        t_start = time.perf_counter()
        next_t = t_start
        n = int(duration * rate)
        for k in range(n):
            while True:  # spin until the next publication instant
                now = time.perf_counter()
                if now >= next_t:
                    break
                rclpy.spin_once(node, timeout_sec=max(0.0, min(next_t - now, 0.0005)))
            sent.append(time.perf_counter())
            publish(k)
            next_t += period
        end = time.perf_counter() + 0.5
        while time.perf_counter() < end:
            rclpy.spin_once(node, timeout_sec=0.01)
        wall = time.perf_counter() - t_start
        cpu = {
            "arm": (cpu_seconds(os.getpid()) - cpu0["arm"]) / wall,
            "controller": (cpu_seconds(ctrl.pid) - cpu0["controller"]) / wall,
        }
        m = min(len(sent), len(received))
        rtt = (np.asarray(received[:m]) - np.asarray(sent[:m])) * 1e3
        p50, p99 = np.percentile(rtt, [50, 99]) if m else (float("nan"),) * 2
        return {
            "rate_hz": rate,
            "states": len(sent),
            "commands": len(received),
            "dropped": len(sent) - len(received),
            "controller_holds": int(diag.get("holds_total", "0")) - holds_before,
            "hold_reasons": {k: v for k, v in diag.items() if k.startswith("holds_")},
            "rtt_p50_ms": float(p50),
            "rtt_p99_ms": float(p99),
            "rtt_max_ms": float(rtt.max()) if m else float("nan"),
            "cpu_controller": cpu["controller"],
            "cpu_arm": cpu["arm"],
            "compute_p50_us": float(diag.get("compute_p50_us", "nan")),
            "compute_p99_us": float(diag.get("compute_p99_us", "nan")),
        }
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(ctrl.pid, signal.SIGINT)
        try:
            ctrl.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(ctrl.pid, signal.SIGKILL)
            ctrl.wait(5)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark at each rate and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=float, nargs="+", default=list(BenchConfig.rates))
    parser.add_argument("--duration", type=float, default=BenchConfig.duration)
    parser.add_argument("--policy", default="")
    parser.add_argument("--output-json", default="")
    parser.add_argument(
        "--stale-periods",
        type=float,
        default=50.0,
        help="controller watchdog threshold; large so that every command answers one state "
        "(watchdog holds would break the in-order matching); 2 is the deployment default",
    )
    args = parser.parse_args(argv)
    env = {
        **os.environ,
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "ROS_DOMAIN_ID": str(1 + os.getpid() % 100),
    }
    os.environ.update({k: env[k] for k in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_DOMAIN_ID")})
    policy = args.policy
    with tempfile.TemporaryDirectory() as tmp:
        if not policy:
            shipped = REPO / "models" / "pusher_policy.onnx"
            policy = str(shipped if shipped.is_file() else untrained_policy(Path(tmp)))
        states = accepted(episode_states(), policy)
        rows = [
            run_rate(r, args.duration, policy, states, env, args.stale_periods) for r in args.rates
        ]
    print(f"policy: {policy}; {args.duration:.0f} s per rate; stale_periods {args.stale_periods}")
    print(
        "| rate (Hz) | states | dropped | holds | RTT p50 / p99 / max (ms) | "
        "controller CPU | arm CPU | compute p50 / p99 (us) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['rate_hz']:.0f} | {r['states']} | {r['dropped']} | {r['controller_holds']} | "
            f"{r['rtt_p50_ms']:.2f} / {r['rtt_p99_ms']:.2f} / {r['rtt_max_ms']:.2f} | "
            f"{r['cpu_controller']:.0%} | {r['cpu_arm']:.0%} | "
            f"{r['compute_p50_us']:.0f} / {r['compute_p99_us']:.0f} |"
        )
    if args.output_json:
        Path(args.output_json).write_text(json.dumps({"policy": policy, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
