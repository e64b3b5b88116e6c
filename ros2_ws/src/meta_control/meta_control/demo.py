"""Closed-loop demo: the shipped policy drives the PyBullet arm over ROS 2 topics.

Starts ``sim_arm_node``, ``controller_node`` and ``estimator_node`` as separate processes
(localhost-only discovery, a ROS domain of their own), configures and activates the controller
through its lifecycle services, then runs ``--episodes`` lock-step episodes: ``/sim_arm/reset``
(seed ``--seed + k``), a goal on ``/goal_pose``, and the arm's result on
``/sim_arm/episode_result``. Prints success rates, the estimation error of the normalised
dynamics ``mu`` (mean absolute error at the end of each episode) and the control-loop round
trip (state published -> command received, measured by the arm) with its jitter.

Example::

    meta-demo --episodes 20 --seed 0
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from meta_control.config import EPISODE_RESULT_FIELDS
from meta_control.paths import config_file, default_model
from meta_control.topics import (
    TOPIC_DIAGNOSTICS,
    TOPIC_EPISODE_RESULT,
    TOPIC_ESTIMATE,
    TOPIC_GOAL_POSE,
    TOPIC_OOD,
    TOPIC_TRUE_DYNAMICS,
)


@dataclass
class DemoConfig:
    """Command-line options of ``meta-demo``."""

    episodes: int = 10
    """Number of randomized episodes."""
    seed: int = 0
    """Episode ``k`` uses seed ``seed + k`` (dynamics, puck start, goal, noise)."""
    robot: str = "pusher"
    """``pusher`` or ``panda``."""
    policy: str = ""
    """ONNX policy; empty: ``models/<robot>_policy.onnx``."""
    estimator: str = ""
    """ONNX estimator; empty: ``models/<robot>_estimator.onnx``."""
    domain_id: int = 0
    """ROS_DOMAIN_ID of the demo's processes; 0 picks one from the process id (1..100)."""
    episode_timeout_s: float = 60.0
    """Give up on an episode after this long."""
    output_json: str = ""
    """Also write the per-episode results and the summary to this JSON file."""
    log_dir: str = ""
    """Write each node's output to ``<log_dir>/<node>.log`` (default: discard)."""
    record: str = ""
    """Record the demo's topics to this rosbag2 directory (recorder_node; empty: no bag)."""
    record_storage: str = "mcap"
    """Bag storage: ``mcap`` or ``sqlite3``."""
    sample_ranges: str = ""
    """JSON ``{"parameter": [low, high]}`` the simulated arm samples those parameters from,
    e.g. a held-out band: ``'{"puck_friction": [0.027, 0.1]}'``."""
    on_ood: str = "continue"
    """The controller's reaction to a sustained out-of-distribution flag: continue, slow,
    hold."""


@dataclass
class EpisodeResult:
    """What one lock-step episode produced."""

    episode: int
    seed: int
    steps: int
    final_distance_m: float
    success_005: bool
    success_007: bool
    mu_abs_error: float
    """Mean |estimate - true| of the normalised mu after the last state (nan: no estimate)."""
    ood_fraction: float
    estimates: int
    true_mu: list[float] = field(default_factory=list)
    estimate: list[float] = field(default_factory=list)
    mu_names: list[str] = field(default_factory=list)


def ros_env(domain_id: int) -> dict[str, str]:
    """Environment of every process the demo starts: localhost only, one domain."""
    return {
        **os.environ,
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "ROS_DOMAIN_ID": str(domain_id),
        "PYTHONUNBUFFERED": "1",
    }


def _start(
    module: str, yaml: str, params: dict[str, object], env: dict[str, str], log_dir: str
) -> subprocess.Popen:
    cmd = [sys.executable, "-m", f"meta_control.{module}", "--ros-args"]
    cmd += ["--params-file", str(config_file(yaml))]
    for key, value in params.items():
        value = str(value).lower() if isinstance(value, bool) else value
        cmd += ["-p", f"{key}:={value}"]
    out = open(Path(log_dir) / f"{module}.log", "w") if log_dir else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(
        cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )


def _start_recorder(bag: str, storage: str, env: dict[str, str], log_dir: str):
    if Path(bag).exists():
        raise FileExistsError(f"bag {bag} already exists; choose a new --record path")
    cmd = [
        sys.executable,
        "-m",
        "meta_control.recorder_node",
        "--ros-args",
        "-p",
        f"bag_path:={bag}",
        "-p",
        f"storage:={storage}",
    ]
    out = open(Path(log_dir) / "recorder_node.log", "w") if log_dir else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(
        cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGINT)
    deadline = time.monotonic() + 5.0
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)


class _Driver:
    """The demo's own ROS node: lifecycle client, reset client, goal publisher, collectors."""

    def __init__(self, procs: list[subprocess.Popen]) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseStamped
        from lifecycle_msgs.srv import ChangeState
        from rclpy.qos import DurabilityPolicy, QoSProfile
        from std_msgs.msg import Bool, Float64MultiArray
        from std_srvs.srv import Trigger

        self.rclpy = rclpy
        self.procs = procs
        self.node = rclpy.create_node("meta_demo")
        self.PoseStamped = PoseStamped
        self.Trigger = Trigger
        self.ChangeState = ChangeState
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        results_qos = QoSProfile(depth=100, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.results: list[list[float]] = []
        self.true_mu: list[float] | None = None
        self.mu_names: list[str] = []
        self.estimates: list[list[float]] = []
        self.ood: list[bool] = []
        self.diag: dict[str, str] = {}
        n = self.node
        n.create_subscription(
            Float64MultiArray, TOPIC_EPISODE_RESULT, self._on_result, results_qos
        )
        n.create_subscription(Float64MultiArray, TOPIC_TRUE_DYNAMICS, self._on_mu, latched)
        n.create_subscription(Float64MultiArray, TOPIC_ESTIMATE, self._on_estimate, 100)
        n.create_subscription(Bool, TOPIC_OOD, lambda m: self.ood.append(m.data), 100)
        n.create_subscription(DiagnosticArray, TOPIC_DIAGNOSTICS, self._on_diag, 10)
        self.goal_pub = n.create_publisher(PoseStamped, TOPIC_GOAL_POSE, 10)
        self.reset_cli = n.create_client(Trigger, "/sim_arm/reset")
        self.lifecycle_cli = n.create_client(ChangeState, "/meta_controller/change_state")

    def _on_result(self, msg) -> None:
        self.results.append(list(msg.data))

    def _on_mu(self, msg) -> None:
        self.true_mu = list(msg.data)

    def _on_estimate(self, msg) -> None:
        self.estimates.append(list(msg.data))
        if msg.layout.dim and not self.mu_names:
            self.mu_names = msg.layout.dim[0].label.split(",")

    def _on_diag(self, msg) -> None:
        for status in msg.status:
            if status.name.startswith("meta_controller"):
                self.diag = {kv.key: kv.value for kv in status.values}

    def spin_until(self, done, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"a node process exited ({p.args[2]}) while {what}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout_s:.0f} s while {what}")
            self.rclpy.spin_once(self.node, timeout_sec=0.01)

    def call(self, client, request, what: str, timeout_s: float = 30.0):
        self.spin_until(client.service_is_ready, timeout_s, f"waiting for {what}")
        future = client.call_async(request)
        self.spin_until(future.done, timeout_s, what)
        return future.result()

    def lifecycle(self, transition_id: int, what: str) -> None:
        req = self.ChangeState.Request()
        req.transition.id = transition_id
        if not self.call(self.lifecycle_cli, req, f"controller {what}").success:
            raise RuntimeError(f"controller {what} failed (see its log; --log-dir DIR)")

    def run_episode(self, timeout_s: float) -> EpisodeResult:
        self.estimates.clear()
        self.ood.clear()
        n_results = len(self.results)
        resp = self.call(self.reset_cli, self.Trigger.Request(), "resetting the arm")
        info = json.loads(resp.message)
        self.spin_until(lambda: self.true_mu is not None, 5.0, "waiting for /true_dynamics")
        goal = self.PoseStamped()
        goal.header.frame_id = "world"
        t0 = info["start_time_s"]
        # The lock-step contract: the goal carries its episode's first state's stamp, made by
        # the same conversion the arm uses.
        from meta_control.ros_common import s_to_stamp

        goal.header.stamp = s_to_stamp(t0)
        goal.pose.position.x, goal.pose.position.y = info["goal"]
        goal.pose.orientation.w = 1.0
        self.goal_pub.publish(goal)
        self.spin_until(lambda: len(self.results) > n_results, timeout_s, "running an episode")
        row = dict(zip(EPISODE_RESULT_FIELDS, self.results[-1], strict=True))
        steps = int(row["steps"])
        # The estimator sees every published state: the first plus one per step.
        with contextlib.suppress(TimeoutError):
            self.spin_until(lambda: len(self.estimates) >= steps + 1, 2.0, "estimating")
        true_mu = np.asarray(info["mu"])
        if self.estimates:
            est = np.asarray(self.estimates[-1])
            err = float(np.mean(np.abs(est - true_mu)))
        else:
            est, err = np.array([]), float("nan")
        return EpisodeResult(
            episode=int(row["episode"]),
            seed=int(row["seed"]),
            steps=steps,
            final_distance_m=float(row["final_distance_m"]),
            success_005=bool(row["success_0.05"]),
            success_007=bool(row["success_0.07"]),
            mu_abs_error=err,
            ood_fraction=float(np.mean(self.ood)) if self.ood else float("nan"),
            estimates=len(self.estimates),
            true_mu=true_mu.tolist(),
            estimate=est.tolist(),
            mu_names=list(self.mu_names),
        )


def summarise(episodes: list[EpisodeResult], rtt: dict, diag: dict) -> dict:
    """Aggregate numbers printed by the demo."""
    errs = [e.mu_abs_error for e in episodes if np.isfinite(e.mu_abs_error)]
    pairs = [(e.estimate, e.true_mu) for e in episodes if e.estimate]
    per: dict[str, dict[str, float]] = {}
    if pairs:
        est, true = (np.asarray(x, dtype=np.float64) for x in zip(*pairs, strict=True))
        rmse = np.sqrt(((est - true) ** 2).mean(axis=0))
        const = np.sqrt((true**2).mean(axis=0))  # the constant estimate 0: the ranges' centre
        names = episodes[0].mu_names or [str(i) for i in range(len(rmse))]
        per = {n: {"rmse": float(r), "constant_rmse": float(c)}
               for n, r, c in zip(names, rmse, const, strict=True)}
    flagged = [e.ood_fraction > 0 for e in episodes if np.isfinite(e.ood_fraction)]
    return {
        "episodes": len(episodes),
        "success_rate_0.05": float(np.mean([e.success_005 for e in episodes])),
        "success_rate_0.07": float(np.mean([e.success_007 for e in episodes])),
        "final_distance_m_mean": float(np.mean([e.final_distance_m for e in episodes])),
        "mu_abs_error_mean": float(np.mean(errs)) if errs else float("nan"),
        "mu_abs_error_constant_mean": float(np.mean([np.mean(np.abs(e.true_mu))
                                                     for e in episodes if e.estimate]))
        if pairs else float("nan"),
        "mu_error_per_parameter": per,
        "ood_fraction_mean": float(np.nanmean([e.ood_fraction for e in episodes])),
        "ood_episodes_flagged": float(np.mean(flagged)) if flagged else float("nan"),
        **rtt,
        "controller_compute_p50_us": float(diag.get("compute_p50_us", "nan")),
        "controller_compute_p99_us": float(diag.get("compute_p99_us", "nan")),
        "controller_holds": int(diag.get("holds_total", "0")),
        "rate_limited_ticks": int(diag.get("rate_limited_ticks", "0")),
    }


def print_table(cfg: DemoConfig, episodes: list[EpisodeResult], summary: dict) -> None:
    """Print per-episode lines and the summary table."""
    print(f"{'ep':>3} {'seed':>6} {'dist_m':>8} {'ok@.05':>6} {'ok@.07':>6} {'|mu err|':>8}")
    for e in episodes:
        print(
            f"{e.episode:>3} {e.seed:>6} {e.final_distance_m:>8.4f} {e.success_005!s:>6} "
            f"{e.success_007!s:>6} {e.mu_abs_error:>8.3f}"
        )
    print()
    print(f"closed-loop demo over ROS 2: {cfg.robot}, {len(episodes)} episodes, seed {cfg.seed}")
    rows = [
        ("success rate (< 0.05 m)", f"{summary['success_rate_0.05']:.1%}"),
        ("success rate (< 0.07 m)", f"{summary['success_rate_0.07']:.1%}"),
        ("mean final distance", f"{summary['final_distance_m_mean']:.4f} m"),
        (
            "mu estimation |error| (normalised)",
            f"{summary['mu_abs_error_mean']:.3f} (constant estimate: "
            f"{summary['mu_abs_error_constant_mean']:.3f})",
        ),
        (
            "OOD flag: estimates / episodes",
            f"{summary['ood_fraction_mean']:.1%} / {summary['ood_episodes_flagged']:.1%}",
        ),
        (
            "round trip p50 / p99 / max",
            "{:.2f} / {:.2f} / {:.2f} ms".format(
                summary["rtt_p50_ms"], summary["rtt_p99_ms"], summary["rtt_max_ms"]
            ),
        ),
        (
            "round-trip jitter (p99 - p50)",
            f"{summary['rtt_p99_ms'] - summary['rtt_p50_ms']:.2f} ms",
        ),
        (
            "controller compute p50 / p99",
            "{:.0f} / {:.0f} us".format(
                summary["controller_compute_p50_us"], summary["controller_compute_p99_us"]
            ),
        ),
        ("lock-step timeouts", str(summary["lock_step_timeouts"])),
        ("controller holds", str(summary["controller_holds"])),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    per = summary.get("mu_error_per_parameter") or {}
    if per:
        print()
        print("  estimate after the last state, RMSE (normalised) beside the constant estimate")
        w = max(len(n) for n in per)
        print(f"  {'parameter':<{w}}  {'estimate':>8}  {'constant':>8}  {'ratio':>6}")
        for name, r in per.items():
            ratio = r["rmse"] / r["constant_rmse"] if r["constant_rmse"] > 0 else float("nan")
            print(f"  {name:<{w}}  {r['rmse']:>8.3f}  {r['constant_rmse']:>8.3f}  {ratio:>6.2f}")


def run(cfg: DemoConfig) -> dict:
    """Start the nodes, run the episodes, stop the nodes; return the results."""
    policy = cfg.policy or str(default_model(cfg.robot, "policy"))
    estimator = cfg.estimator or str(default_model(cfg.robot, "estimator"))
    for path in (policy, estimator):
        if not Path(path).is_file():
            raise FileNotFoundError(
                f"model {path} not found: train and export the shipped models, or pass "
                "--policy/--estimator"
            )
    domain = cfg.domain_id or 1 + os.getpid() % 100
    env = ros_env(domain)
    os.environ.update({k: env[k] for k in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_DOMAIN_ID")})
    if cfg.log_dir:
        Path(cfg.log_dir).mkdir(parents=True, exist_ok=True)
    common = {"robot": cfg.robot, "use_sim_time": True}
    procs = [
        _start(
            "sim_arm_node",
            "sim_arm.yaml",
            {"robot": cfg.robot, "seed": cfg.seed, "lock_step": True,
             # the estimator is not on the command path: the arm also waits for its answer to
             # each state, as real time gives it (the OOD reaction depends on it)
             "lock_step_wait_topic": TOPIC_OOD,
             # a YAML string: the JSON text as it is, not parsed as a mapping
             **({"sample_ranges": "'" + cfg.sample_ranges.replace("'", "''") + "'"}
                if cfg.sample_ranges else {})},
            env,
            cfg.log_dir,
        ),
        _start(
            "controller_node",
            "controller.yaml",
            {**common, "policy_path": policy, "lock_step": True, "trigger": "state",
             "on_ood": cfg.on_ood},
            env,
            cfg.log_dir,
        ),
        _start(
            "estimator_node",
            "estimator.yaml",
            {**common, "estimator_path": estimator, "lock_step": True},
            env,
            cfg.log_dir,
        ),
    ]
    if cfg.record:
        # Last in the list: stopped last, so it drains what the others published.
        procs.append(_start_recorder(cfg.record, cfg.record_storage, env, cfg.log_dir))
    import rclpy
    from lifecycle_msgs.msg import Transition

    rclpy.init(args=[])
    driver = None
    try:
        driver = _Driver(procs)
        driver.lifecycle(Transition.TRANSITION_CONFIGURE, "configure")
        driver.lifecycle(Transition.TRANSITION_ACTIVATE, "activate")
        # Every started process subscribes to the goal (the recorder too, the slowest to come
        # up) and must be matched before the first episode starts, or it misses the beginning.
        driver.spin_until(
            lambda: driver.goal_pub.get_subscription_count() >= len(procs),
            30.0,
            "waiting for the nodes to subscribe to /goal_pose",
        )
        # Discovery is not symmetric: our side may match before theirs does, and a goal sent
        # then reaches them late. Let it settle before the first episode.
        settle = time.monotonic() + 1.0
        driver.spin_until(lambda: time.monotonic() > settle, 5.0, "letting discovery settle")
        episodes = [driver.run_episode(cfg.episode_timeout_s) for _ in range(cfg.episodes)]
        last = dict(zip(EPISODE_RESULT_FIELDS, driver.results[-1], strict=True))
        rtt = {k: last[k] for k in ("rtt_p50_ms", "rtt_p99_ms", "rtt_max_ms")}
        rtt["lock_step_timeouts"] = int(last["lock_step_timeouts"])
        driver.spin_until(lambda: "compute_p99_us" in driver.diag, 3.0, "reading diagnostics")
        diag = driver.diag
    finally:
        if driver is not None:
            driver.node.destroy_node()
        rclpy.try_shutdown()
        _stop(procs)
    summary = summarise(episodes, rtt, diag)
    return {
        "config": asdict(cfg),
        "policy": policy,
        "estimator": estimator,
        "episodes": [asdict(e) for e in episodes],
        "summary": summary,
    }


def parse_args(argv: list[str] | None = None) -> DemoConfig:
    """Flags from the :class:`DemoConfig` fields (their docstrings are the help text)."""
    parser = argparse.ArgumentParser(prog="meta-demo", description=__doc__.split("\n\n")[0])
    helps = {
        "episodes": "number of randomized episodes",
        "seed": "episode k uses seed + k",
        "robot": "pusher or panda",
        "policy": "ONNX policy (default: models/<robot>_policy.onnx)",
        "estimator": "ONNX estimator (default: models/<robot>_estimator.onnx)",
        "domain_id": "ROS_DOMAIN_ID for the demo's processes (default: from the pid)",
        "episode_timeout_s": "give up on an episode after this many seconds",
        "output_json": "also write results to this JSON file",
        "log_dir": "write each node's output to <log_dir>/<node>.log",
        "record": "record the demo's topics to this new rosbag2 directory",
        "record_storage": "bag storage: mcap or sqlite3",
        "sample_ranges": "JSON {parameter: [low, high]} the simulated arm samples those "
                         "parameters from, e.g. a held-out band: "
                         "'{\"puck_friction\": [0.027, 0.1]}'",
        "on_ood": "the controller's reaction to a sustained out-of-distribution flag",
    }
    choices = {"robot": ["pusher", "panda"], "record_storage": ["mcap", "sqlite3"],
               "on_ood": ["continue", "slow", "hold"]}
    defaults = DemoConfig()
    for name, help_text in helps.items():
        default = getattr(defaults, name)
        flag = "--" + name.replace("_", "-")
        kwargs = {"choices": choices[name]} if name in choices else {}
        parser.add_argument(flag, type=type(default), default=default, help=help_text, **kwargs)
    ns = parser.parse_args(argv)
    if ns.sample_ranges:
        problem = sample_ranges_problem(ns.sample_ranges)
        if problem:
            parser.error(f"--sample-ranges: {problem}")
    return DemoConfig(**vars(ns))


def sample_ranges_problem(text: str) -> str:
    """What is wrong with a ``--sample-ranges`` value (empty: nothing): it must be a JSON object
    of parameter names to ``[low, high]`` with finite ``low <= high``. Whether each name is a
    randomized parameter is checked by the simulated arm."""
    try:
        ranges = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"not JSON ({exc})"
    if not isinstance(ranges, dict) or not ranges:
        return "give a JSON object {parameter: [low, high]}"
    for name, pair in ranges.items():
        if (not isinstance(pair, list) or len(pair) != 2
                or not all(isinstance(v, (int, float)) and np.isfinite(v) for v in pair)
                or pair[0] > pair[1]):
            return f"{name}: give [low, high] with finite low <= high, not {pair!r}"
    return ""


def main(argv: list[str] | None = None) -> int:
    """Console script ``meta-demo``."""
    cfg = parse_args(argv)
    if cfg.episodes < 1:
        print("meta-demo: error: --episodes must be >= 1", file=sys.stderr)
        return 2
    try:
        result = run(cfg)
    except (FileNotFoundError, FileExistsError, TimeoutError, RuntimeError) as exc:
        print(f"meta-demo: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("meta-demo: interrupted", file=sys.stderr)
        return 130
    print_table(cfg, [EpisodeResult(**e) for e in result["episodes"]], result["summary"])
    if cfg.output_json:
        Path(cfg.output_json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
