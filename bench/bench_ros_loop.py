"""Round trip of the ROS 2 control loop: arm publishes a state -> arm receives the command.

Two separate processes: this script's *arm* (publishes ``/joint_states`` + ``/puck_pose`` at
``--rates`` Hz, replaying prebuilt messages of in-range PyBullet pusher states, and timestamps
the commands) and the real ``controller_node`` (``trigger: state``, the policy in the loop),
once per controller executor (``--executors``: rclpy's SingleThreadedExecutor ``single`` and the
EventsExecutor ``events``), interleaved per rate so that the two see the same machine load.

The arm runs on an EventsExecutor driven by ``spin_once(timeout)`` up to each publication
instant (it sleeps in the wait, no busy loop); send and receive instants are
``time.perf_counter_ns`` in the arm process. When the arm falls more than one period behind it
skips the missed instants (counted) instead of bursting. Commands are matched to states in
order: one command per state, with the watchdog threshold raised (``--stale-periods``) so that
no watchdog hold is interleaved. When states are dropped the in-order matching pairs a command
with an earlier state than the one it answers, so the round trip is then an upper bound; the
table adds a lower bound (each command paired with the latest state sent before it arrived).

Reports per rate and executor: p50/p99/max round trip, drops (states without a command), CPU of
each process (``/proc/<pid>/stat``), the CPU the rest of the machine used meanwhile
(``/proc/stat``), and the controller's own compute per tick (validation + inference + publish,
p50/p99 over its last 20 000 ticks) from ``/diagnostics``; then single/events ratios.

    python bench/bench_ros_loop.py --rates 100 500 1000 --duration 60
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import json
import os
import signal
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
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
    """Seconds of measurement per rate and executor (60 for the documented numbers)."""
    policy: str = ""
    """ONNX policy; empty: the shipped models/pusher_policy.onnx."""
    executors: tuple[str, ...] = field(default=("single", "events"))
    """Controller executors to compare (``single``, ``events``)."""
    stale_periods: float = 0.0
    """Controller watchdog threshold in periods (2 is the deployment default); 0: 3 s worth,
    longer than the benchmark's pauses, so that no watchdog hold is ever published."""
    rt_priority: int = 0
    """When > 0, run the arm and the controller under SCHED_FIFO at this priority."""
    pm_qos: bool = False
    """Hold /dev/cpu_dma_latency at 0 during the run."""
    pin: bool = False
    """Pin the arm to the first CPU and the controller to the second (all their threads)."""
    output_json: str = ""
    """Write the results here as well."""


ALLOWED_CPUS = sorted(os.sched_getaffinity(0))  # before --pin narrows this process's own


def pinned_cpus() -> tuple[int, int]:
    """The CPUs ``--pin`` uses: the arm on the first allowed CPU, the controller on the second."""
    if len(ALLOWED_CPUS) < 2:
        raise SystemExit("error: --pin needs at least 2 CPUs")
    return ALLOWED_CPUS[0], ALLOWED_CPUS[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_seconds() -> float:
    """CPU seconds all processes of the machine have used (``/proc/stat``, not idle/iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / CLK_TCK


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


def open_pm_qos() -> int:
    """Request 0 us CPU wake-up latency; the request lasts while the returned fd is open."""
    try:
        fd = os.open("/dev/cpu_dma_latency", os.O_WRONLY)
        os.write(fd, struct.pack("<i", 0))
    except OSError as exc:
        msg = f"bench_ros_loop: --pm-qos: cannot write /dev/cpu_dma_latency ({exc})"
        raise SystemExit(msg) from None
    return fd


def percentiles(x: np.ndarray) -> tuple[float, float, float]:
    """p50, p99, max (nan when empty)."""
    if not x.size:
        return (float("nan"),) * 3
    p50, p99 = np.percentile(x, [50, 99])
    return float(p50), float(p99), float(x.max())


def run_one(
    rate: float, executor: str, cfg: BenchConfig, policy: str, states: np.ndarray, env: dict
) -> dict:
    """Measure one rate with one controller executor; returns the row of the results table."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseStamped
    from rclpy.experimental import EventsExecutor
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray

    from meta_control.limits import load_robot_limits, resolve_limits_path
    from meta_control.ros_common import float_array

    params = {
        "policy_path": policy,
        "trigger": "state",
        "control_rate_hz": rate,
        "autostart": "true",
        "diagnostics_period_s": 0.5,
        "stale_periods": cfg.stale_periods or 3.0 * rate,
        "executor": executor,
    }
    cmd = [sys.executable, "-m", "meta_control.controller_node", "--ros-args"]
    for key, value in params.items():
        cmd += ["-p", f"{key}:={value}"]
    if cfg.rt_priority > 0:
        cmd = ["chrt", "-f", str(cfg.rt_priority), *cmd]
    if cfg.pin:
        cmd = ["taskset", "-c", str(pinned_cpus()[1]), *cmd]
    ctrl = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True
    )
    rclpy.init()
    node = rclpy.create_node("bench_arm")
    spin = EventsExecutor()
    spin.add_node(node)
    try:
        js_pub = node.create_publisher(JointState, "/joint_states", qos_profile_sensor_data)
        puck_pub = node.create_publisher(PoseStamped, "/puck_pose", qos_profile_sensor_data)
        goal_pub = node.create_publisher(PoseStamped, "/goal_pose", 10)
        received: list[int] = []
        diag: dict[str, str] = {}
        clock = time.perf_counter_ns
        node.create_subscription(
            Float64MultiArray,
            "/forward_position_controller/commands",
            lambda _m: received.append(clock()),
            1000,
        )

        def on_diag(msg) -> None:
            for s in msg.status:
                if s.name.startswith("meta_controller"):
                    diag.update({kv.key: kv.value for kv in s.values})

        node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
        # Messages are built once per replayed state; a publication only stamps them.
        # Poses in the frame the controller checks (the robot's limits file names it).
        frame = load_robot_limits(resolve_limits_path("", "pusher")).frame
        msgs = []
        for o in states:
            js, puck = JointState(), PoseStamped()
            js.name = ["joint1", "joint2", "joint3"]
            js.position, js.velocity = float_array(o[:3]), float_array(o[3:6])
            puck.pose.position.x, puck.pose.position.y, puck.pose.position.z = (
                float(v) for v in o[6:9]
            )
            puck.header.frame_id = frame
            msgs.append((js, puck))
        goal = PoseStamped()
        goal.header.frame_id = frame
        goal.pose.position.x, goal.pose.position.y = 0.4, 0.05
        ros_clock = node.get_clock()

        def publish(i: int) -> None:
            js, puck = msgs[i % len(msgs)]
            puck.header.stamp = js.header.stamp = ros_clock.now().to_msg()
            puck_pub.publish(puck)
            js_pub.publish(js)

        def spin_for(seconds: float) -> None:
            end = time.monotonic() + seconds
            while (left := end - time.monotonic()) > 0:
                spin.spin_once(timeout_sec=left)

        # Warm up: discovery, goal, onnxruntime.
        deadline = time.monotonic() + 30
        i = 0
        while len(received) < 50:
            if time.monotonic() > deadline or ctrl.poll() is not None:
                raise RuntimeError("controller did not answer")
            goal_pub.publish(goal)
            publish(i)
            i += 1
            spin_for(0.01)
        spin_for(1.2)  # a diagnostics snapshot after the warm-up
        holds_before = int(diag.get("holds_total", "0"))
        received.clear()
        period = round(1e9 / rate)
        sent: list[int] = []
        skipped = 0
        # The harness keeps its full collections short too (the controller does the same).
        gc.collect()
        gc.freeze()
        cpu0 = {"arm": cpu_seconds(os.getpid()), "controller": cpu_seconds(ctrl.pid)}
        busy0 = machine_busy_seconds()
        t_start = clock()
        t_end = t_start + round(cfg.duration * 1e9)
        next_t = t_start
        k = 0
        while next_t < t_end:
            while (left := next_t - clock()) > 0:  # sleep in the executor's wait
                spin.spin_once(timeout_sec=left * 1e-9)
            now = clock()
            sent.append(now)
            publish(k)
            k += 1
            next_t += period
            if now - next_t > period:  # more than a period behind: skip, do not burst
                missed = (now - next_t) // period
                skipped += missed
                next_t += missed * period
        spin_for(0.5)
        n_received = len(received)
        wall = (clock() - t_start) * 1e-9
        cpu = {
            "arm": (cpu_seconds(os.getpid()) - cpu0["arm"]) / wall,
            "controller": (cpu_seconds(ctrl.pid) - cpu0["controller"]) / wall,
        }
        others = (machine_busy_seconds() - busy0) / wall - cpu["arm"] - cpu["controller"]
        spin_for(1.2)  # diagnostics covering the whole window
        m = min(len(sent), n_received)
        rtt = (np.asarray(received[:m]) - np.asarray(sent[:m])) * 1e-6
        p50, p99, worst = percentiles(rtt)
        # Lower bound when states were dropped: pair each command with the latest state sent
        # before it arrived (the in-order pairing above is then the upper bound).
        sent_ns, recv_ns = np.asarray(sent), np.asarray(received[:n_received])
        latest = np.searchsorted(sent_ns, recv_ns, side="right") - 1
        ok = latest >= 0
        low50, low99, _ = percentiles((recv_ns[ok] - sent_ns[latest[ok]]) * 1e-6)
        return {
            "rate_hz": rate,
            "executor": executor,
            "states": len(sent),
            "commands": n_received,
            "dropped": len(sent) - n_received,
            "arm_skipped": int(skipped),
            "matching": "exact" if len(sent) == n_received else "approx",
            "controller_holds": int(diag.get("holds_total", "0")) - holds_before,
            "hold_reasons": {k: v for k, v in diag.items() if k.startswith("holds_")},
            "rtt_p50_ms": p50,
            "rtt_p99_ms": p99,
            "rtt_max_ms": worst,
            "rtt_lower_bound_p50_ms": low50,
            "rtt_lower_bound_p99_ms": low99,
            "cpu_controller": cpu["controller"],
            "cpu_arm": cpu["arm"],
            "cpu_others": others,
            "loadavg_1min": float(Path("/proc/loadavg").read_text().split()[0]),
            "compute_p50_us": float(diag.get("compute_p50_us", "nan")),
            "compute_p99_us": float(diag.get("compute_p99_us", "nan")),
            "compute_max_us": float(diag.get("compute_max_us", "nan")),
        }
    finally:
        spin.remove_node(node)
        spin.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(ctrl.pid, signal.SIGINT)
        try:
            ctrl.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(ctrl.pid, signal.SIGKILL)
            ctrl.wait(5)


def table(rows: list[dict]) -> str:
    """The Markdown results table, plus single/events ratios where both were measured."""
    out = [
        "| rate (Hz) | executor | states | dropped | holds | RTT p50 / p99 / max (ms) "
        "| controller CPU | arm CPU | rest of machine | compute p50 / p99 (us) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        approx = (
            ""
            if r["matching"] == "exact"
            else f" (upper bound; lower bound p50 / p99 {r['rtt_lower_bound_p50_ms']:.2f} / "
            f"{r['rtt_lower_bound_p99_ms']:.2f})"
        )
        skipped = f" (+{r['arm_skipped']} arm-late)" if r["arm_skipped"] else ""
        out.append(
            f"| {r['rate_hz']:.0f} | {r['executor']} | {r['states']}{skipped} | {r['dropped']} | "
            f"{r['controller_holds']} | "
            f"{r['rtt_p50_ms']:.2f} / {r['rtt_p99_ms']:.2f} / {r['rtt_max_ms']:.1f}{approx} | "
            f"{r['cpu_controller']:.0%} | {r['cpu_arm']:.0%} | {r['cpu_others']:.2f} cores | "
            f"{r['compute_p50_us']:.0f} / {r['compute_p99_us']:.0f} |"
        )
    by_key = {(r["rate_hz"], r["executor"]): r for r in rows}
    ratios = []
    for (rate, ex), single in by_key.items():
        events = by_key.get((rate, "events"))
        if ex != "single" or events is None:
            continue
        ratios.append(
            f"| {rate:.0f} | {single['rtt_p50_ms'] / events['rtt_p50_ms']:.2f} | "
            f"{single['rtt_p99_ms'] / events['rtt_p99_ms']:.2f} | "
            f"{single['cpu_controller'] / events['cpu_controller']:.2f} | "
            f"{single['dropped']} / {events['dropped']} |"
        )
    if ratios:
        out += [
            "",
            "| rate (Hz) | single/events RTT p50 | RTT p99 | controller CPU "
            "| dropped single / events |",
            "|---|---|---|---|---|",
            *ratios,
        ]
    return "\n".join(out)


MAX_HOLD_SHARE = 0.01
"""A row whose controller held on more than this share of the states did not measure the policy
in the loop (a hold skips inference); the benchmark then fails."""


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark at each rate and executor and print Markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=float, nargs="+", default=list(BenchConfig.rates))
    parser.add_argument("--duration", type=float, default=BenchConfig.duration)
    parser.add_argument("--policy", default="")
    parser.add_argument(
        "--executors", nargs="+", choices=("single", "events"), default=["single", "events"]
    )
    parser.add_argument(
        "--stale-periods",
        type=float,
        default=BenchConfig.stale_periods,
        help="controller watchdog threshold in periods; 0 (default): 3 s worth, so that every "
        "command answers one state (watchdog holds would break the in-order matching); 2 is "
        "the deployment default",
    )
    parser.add_argument(
        "--rt-priority",
        type=int,
        default=0,
        help="run the arm and the controller under SCHED_FIFO at this priority (needs "
        "CAP_SYS_NICE; the kernel's RT throttling still leaves 5%% to the rest)",
    )
    parser.add_argument(
        "--pm-qos",
        action="store_true",
        help="hold /dev/cpu_dma_latency at 0 us during the run (the PM QoS request cyclictest "
        "and tuned's realtime profiles make): idle cores poll instead of halting, so a wake-up "
        "does not pay the idle-exit latency (on a VM, a halted vCPU's return through the host)",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin the arm (this process) to the first CPU and the controller to the second, "
        "with all their threads (as `taskset -c N` in a launch prefix does on a robot)",
    )
    parser.add_argument("--output-json", default="")
    args = parser.parse_args(argv)
    cfg = BenchConfig(
        rates=tuple(args.rates),
        duration=args.duration,
        policy=args.policy,
        executors=tuple(args.executors),
        stale_periods=args.stale_periods,
        rt_priority=args.rt_priority,
        pm_qos=args.pm_qos,
        pin=args.pin,
        output_json=args.output_json,
    )
    env = {
        **os.environ,
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "ROS_DOMAIN_ID": str(1 + os.getpid() % 100),
    }
    os.environ.update({k: env[k] for k in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_DOMAIN_ID")})
    policy = cfg.policy
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    if not policy:
        policy = str(REPO / "models" / "pusher_policy.onnx")
    states = accepted(episode_states(), policy)
    policy_sha = hashlib.sha256(Path(policy).read_bytes()).hexdigest()
    if cfg.rt_priority > 0:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(cfg.rt_priority))
    qos = open_pm_qos() if cfg.pm_qos else None
    if cfg.pin:
        os.sched_setaffinity(0, {pinned_cpus()[0]})
    try:
        rows = [
            run_one(rate, ex, cfg, policy, states, env)
            for rate in cfg.rates
            for ex in cfg.executors
        ]
    finally:
        os.sched_setaffinity(0, ALLOWED_CPUS)
        if qos is not None:
            os.close(qos)  # closing the file withdraws the request
        if cfg.rt_priority > 0:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    print(
        f"policy: {policy}; {cfg.duration:g} s per rate and executor; stale_periods "
        f"{cfg.stale_periods or '3 s'}; rt_priority {cfg.rt_priority}; pm_qos {cfg.pm_qos}; "
        f"pin {cfg.pin}; "
        f"{os.cpu_count()} cores; "
        f"loadavg before {' '.join(load_before)}"
    )
    print(table(rows))
    if cfg.output_json:
        Path(cfg.output_json).write_text(
            json.dumps(
                {
                    "policy": policy,
                    "policy_sha256": policy_sha,
                    "config": cfg.__dict__,
                    "loadavg": load_before,
                    "rows": rows,
                },
                indent=2,
            )
        )
    held = [r for r in rows if r["controller_holds"] > MAX_HOLD_SHARE * r["states"]]
    for r in held:
        print(
            f"error: at {r['rate_hz']:g} Hz ({r['executor']}) the controller held on "
            f"{r['controller_holds']} of {r['states']} states ({r['hold_reasons']}): the round "
            "trip did not run the policy, so this row measures nothing",
            file=sys.stderr,
        )
    return 1 if held else 0


if __name__ == "__main__":
    sys.exit(main())
