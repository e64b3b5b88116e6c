"""Lock-step consumers pair their inputs exactly, whatever order the topics arrive in.

Topics are not ordered with each other, and a loaded machine delays one more than another: the
next episode's first state can reach a node before that episode's goal, and the controller's
actions can reach the estimator several states late. The test process plays the arm (and, for
the estimator, the controller), publishes in exactly such orders with pauses in between so the
order is the one received, and compares what the real node processes compute with the same
ONNX models run offline on the correctly paired inputs.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from ros_helpers import CONFIG, export_models, nodes, ros_env, start_node

from meta_control.config import LOCK_STEP_EPISODE_GAP_S
from meta_control.runtime import EstimatorRuntime, PolicyRuntime
from meta_control.topics import STAMP_NANOSEC_LABEL, STAMP_SEC_LABEL, action_input_stamp_ns

pytestmark = pytest.mark.ros

JOINTS = ["joint1", "joint2", "joint3"]
PERIOD_NS = 40_000_000
# Stamps well ahead of the wall clock: the nodes run without sim time here, and a stamp from
# the future is never stale.
T1_NS = time.time_ns() + 3600 * 1_000_000_000
T2_NS = T1_NS + int(2 * LOCK_STEP_EPISODE_GAP_S * 1e9)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Untrained pusher models exported for this module."""
    return export_models(tmp_path_factory.mktemp("order_models"))


def rollout_observations(n: int, seed: int) -> list[np.ndarray]:
    """``n`` consecutive observations of a real pusher episode (within the models' ranges)."""
    from sim.envs import PushEnv

    env = PushEnv("pusher")
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    out = [obs["observation"].astype(np.float64)]
    while len(out) < n:
        obs, *_ = env.step(rng.uniform(-env.max_offset, env.max_offset))
        out.append(obs["observation"].astype(np.float64))
    env.close()
    return out


class Player:
    """The test's stand-in for the arm, the goal publisher and (optionally) the controller."""

    def __init__(self) -> None:
        import rclpy
        from geometry_msgs.msg import PoseStamped
        from rclpy.qos import QoSProfile
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray, MultiArrayDimension

        self.rclpy, self.PoseStamped, self.JointState = rclpy, PoseStamped, JointState
        self.Float64MultiArray, self.MultiArrayDimension = Float64MultiArray, MultiArrayDimension
        self.node = rclpy.create_node("lock_step_player")
        self.js = self.node.create_publisher(JointState, "/joint_states", 10)
        self.puck = self.node.create_publisher(PoseStamped, "/puck_pose", 10)
        self.goal = self.node.create_publisher(PoseStamped, "/goal_pose", 10)
        self.act = self.node.create_publisher(
            Float64MultiArray, "/meta_controller/policy_action", 10
        )
        self.actions: list[tuple[int, np.ndarray]] = []
        self.commands: list[np.ndarray] = []
        self.estimates: list[np.ndarray] = []
        deep = QoSProfile(depth=100)
        self.node.create_subscription(
            Float64MultiArray,
            "/meta_controller/policy_action",
            lambda m: self.actions.append((action_input_stamp_ns(m), np.array(m.data))),
            deep,
        )
        self.node.create_subscription(
            Float64MultiArray,
            "/forward_position_controller/commands",
            lambda m: self.commands.append(np.array(m.data)),
            deep,
        )
        self.node.create_subscription(
            Float64MultiArray,
            "/dynamics_estimate",
            lambda m: self.estimates.append(np.array(m.data)),
            deep,
        )

    def spin(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.rclpy.spin_once(self.node, timeout_sec=0.005)

    def spin_until(self, cond, timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        while not cond():
            if time.monotonic() > end:
                return False
            self.rclpy.spin_once(self.node, timeout_sec=0.005)
        return True

    @staticmethod
    def _stamp(msg, ns: int) -> None:
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(ns, 1_000_000_000)
        msg.header.frame_id = "world"  # the frame the controller expects (limits file)

    def send_goal(self, goal: np.ndarray, ns: int, pause_s: float = 0.15) -> None:
        msg = self.PoseStamped()
        self._stamp(msg, ns)
        msg.pose.position.x, msg.pose.position.y = (float(v) for v in goal)
        self.goal.publish(msg)
        self.spin(pause_s)

    def send_state(self, obs: np.ndarray, ns: int, pause_s: float = 0.15) -> None:
        puck = self.PoseStamped()
        self._stamp(puck, ns)
        puck.pose.position.x, puck.pose.position.y, puck.pose.position.z = (
            float(v) for v in obs[6:9]
        )
        self.puck.publish(puck)
        js = self.JointState()
        self._stamp(js, ns)
        js.name = list(JOINTS)
        js.position = [float(v) for v in obs[:3]]
        js.velocity = [float(v) for v in obs[3:6]]
        self.js.publish(js)
        self.spin(pause_s)

    def send_action(self, action: np.ndarray, input_ns: int, pause_s: float = 0.15) -> None:
        msg = self.Float64MultiArray()
        sec, nanosec = divmod(input_ns, 1_000_000_000)
        msg.layout.dim = [
            self.MultiArrayDimension(label=",".join(JOINTS), size=3, stride=1),
            self.MultiArrayDimension(label=STAMP_SEC_LABEL, size=sec),
            self.MultiArrayDimension(label=STAMP_NANOSEC_LABEL, size=nanosec),
        ]
        msg.data = [float(v) for v in action]
        self.act.publish(msg)
        self.spin(pause_s)


def _session(log: Path, ready_topic: str):
    """Start rclpy in the test process and wait until the node subscribes to ``ready_topic``."""
    import rclpy

    rclpy.init()
    player = Player()
    pub = {"/goal_pose": player.goal, "/meta_controller/policy_action": player.act}[ready_topic]
    assert player.spin_until(lambda: pub.get_subscription_count() > 0, 30), log.read_text()
    # Discovery is not symmetric: give the node's side time to match ours too.
    assert player.spin_until(
        lambda: player.js.get_subscription_count() > 0 and player.puck.get_subscription_count(),
        30,
    ), log.read_text()
    player.spin(1.0)
    return player


def test_controller_waits_for_the_goal_of_a_state_that_overtook_it(models, tmp_path):
    policy, _ = models
    log = tmp_path / "controller.log"
    env = ros_env(offset=43)
    proc = start_node(
        "controller_node",
        {"policy_path": policy, "lock_step": True, "trigger": "state", "autostart": True},
        params_file=CONFIG / "controller.yaml",
        env=env,
        log=log,
    )
    obs = rollout_observations(3, seed=5)
    goal1, goal2 = np.array([0.40, 0.05]), np.array([0.30, -0.08])
    import rclpy

    with nodes(proc):
        try:
            player = _session(log, "/goal_pose")
            # Episode 1: goal, then its first two states.
            player.send_goal(goal1, T1_NS)
            player.send_state(obs[0], T1_NS)
            player.send_state(obs[1], T1_NS + PERIOD_NS)
            assert player.spin_until(lambda: len(player.actions) == 2, 5), log.read_text()
            # Episode 2's first state, ahead of its goal: no command may be computed from it
            # (it would use episode 1's goal and recurrent state).
            n_cmd = len(player.commands)
            player.send_state(obs[2], T2_NS, pause_s=0.6)
            assert len(player.actions) == 2 and len(player.commands) == n_cmd, log.read_text()
            # Its goal arrives: the waiting state runs, from a fresh recurrent state.
            player.send_goal(goal2, T2_NS)
            assert player.spin_until(lambda: len(player.actions) == 3, 5), log.read_text()
        finally:
            rclpy.try_shutdown()
    offline = PolicyRuntime(policy)
    expected = [offline.step(obs[0], goal1), offline.step(obs[1], goal1)]
    offline.reset()
    expected.append(offline.step(obs[2], goal2))
    stamps = [T1_NS, T1_NS + PERIOD_NS, T2_NS]
    assert [s for s, _ in player.actions] == stamps
    for (_, got), want in zip(player.actions, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def test_estimator_pairs_late_actions_and_early_states_by_stamp(models, tmp_path):
    _, estimator = models
    log = tmp_path / "estimator.log"
    env = ros_env(offset=47)
    proc = start_node(
        "estimator_node",
        {"estimator_path": estimator, "lock_step": True},
        params_file=CONFIG / "estimator.yaml",
        env=env,
        log=log,
    )
    obs = rollout_observations(6, seed=9)
    rng = np.random.default_rng(0)
    acts = [rng.uniform(-0.05, 0.05, 3) for _ in range(5)]
    e1 = [T1_NS + k * PERIOD_NS for k in range(4)]
    e2 = [T2_NS, T2_NS + PERIOD_NS]
    import rclpy

    with nodes(proc):
        try:
            player = _session(log, "/meta_controller/policy_action")
            player.send_goal(np.zeros(2), T1_NS)
            # Episode 1: the actions lag three states behind the states they produced.
            player.send_state(obs[0], e1[0])
            player.send_state(obs[1], e1[1])
            player.send_state(obs[2], e1[2])
            player.send_action(acts[0], e1[0])
            player.send_action(acts[1], e1[1])
            player.send_state(obs[3], e1[3])
            player.send_action(acts[2], e1[2])
            # Episode 2: its first state and its first action before its goal.
            player.send_state(obs[4], e2[0])
            player.send_action(acts[3], e1[3])  # the controller's action on episode 1's end
            player.send_goal(np.zeros(2), T2_NS)
            player.send_action(acts[4], e2[0])
            player.send_state(obs[5], e2[1])
            assert player.spin_until(lambda: len(player.estimates) >= 6, 5), log.read_text()
            player.spin(0.3)
        finally:
            rclpy.try_shutdown()
    offline = EstimatorRuntime(estimator)
    zero = np.zeros(3)
    expected = [offline.step(o, a)[0] for o, a in zip(obs[:4], [zero, *acts[:3]], strict=True)]
    offline.reset()
    expected += [offline.step(obs[4], zero)[0], offline.step(obs[5], acts[4])[0]]
    assert len(player.estimates) == 6, log.read_text()
    for got, want in zip(player.estimates, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
