"""The PyBullet push world (:class:`sim.envs.PushEnv`) behaving like a ros2_control arm.

Publishes ``/joint_states`` and ``/puck_pose`` (what the env observes, observation noise
included, stamped with sim time), ``/clock``, and the true normalised dynamics on
``/true_dynamics``; accepts absolute joint position targets on the forward-command-controller
topic and goals on ``/goal_pose``. ``~/reset`` (``std_srvs/Trigger``) starts episode ``k`` with
``env.reset(seed=seed + k)``, which resamples the dynamics, the puck start and the goal; its
response message is JSON with the episode, seed, goal, puck start and start time.

Free-running (default): a wall-clock timer steps physics at ``control_rate_hz`` toward the last
command (a forward command controller keeps its last command; before any, the arm holds).

Lock-step (``lock_step: true``): after a reset the arm waits for a goal (stamped with the
episode's start time, the stamp of its first state), publishes the first state, and steps only
when a command arrives for its last published state, by the offset ``command - published
positions`` through ``env.step``: exactly the gym evaluation of the same seeds. No command
within ``lock_step_timeout_s``: the state is republished once, then the arm holds. With
``lock_step_wait_topic`` (e.g. ``/dynamics_ood``) it also waits for one message there per state,
so that the estimator, which is not on the command path, keeps pace as it does in real time
(at most ``lock_step_timeout_s``; the waits that ran out are counted). After
``episode_steps`` steps it publishes the last state and the episode result on
``/sim_arm/episode_result``.

Sim time is kept monotonic across episodes (each episode starts where the previous ended).
"""

from __future__ import annotations

import json
import time

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64MultiArray
from std_srvs.srv import Trigger

from meta_control.config import EPISODE_RESULT_FIELDS, LOCK_STEP_EPISODE_GAP_S, SimArmConfig
from meta_control.metrics import RollingStats
from meta_control.ros_common import declare_config, labelled_array, s_to_stamp, spin_node
from meta_control.topics import (
    TOPIC_CLOCK,
    TOPIC_EPISODE_RESULT,
    TOPIC_GOAL_POSE,
    TOPIC_JOINT_STATES,
    TOPIC_PUCK_POSE,
    TOPIC_TRUE_DYNAMICS,
)
from sim.envs import PushEnv

NODE_NAME = "sim_arm"
_IDLE, _WAIT_GOAL, _STARTING, _WAIT_CMD = "idle", "wait_goal", "starting", "wait_cmd"


class SimArmNode(Node):
    """The simulated arm (see the module docstring)."""

    def __init__(self, **kwargs) -> None:
        """Build the env, publishers, subscriptions, the reset service and the timer."""
        super().__init__(NODE_NAME, **kwargs)
        self.cfg = declare_config(self, SimArmConfig)
        try:
            ranges = json.loads(self.cfg.sample_ranges) if self.cfg.sample_ranges else None
        except json.JSONDecodeError as exc:
            raise ValueError(f"sample_ranges is not JSON: {exc}") from None
        self.env = PushEnv(
            self.cfg.robot, randomize=self.cfg.randomize, dynamics_mode=self.cfg.dynamics_mode,
            sample_ranges=ranges,
        )
        self.joint_names = list(self.env.joint_names)
        self.n = self.env.n_joints
        self.episode_steps = self.cfg.episode_steps or self.env.max_episode_steps
        self.episode = -1
        self._t_offset = 0.0
        self._phase = _IDLE
        self._deadline = 0.0
        self._retried = False
        self._published_q = np.zeros(self.n)
        self._obs = np.zeros(self.env.obs_dim)
        self._last_command: np.ndarray | None = None
        self._goal = np.zeros(2)
        self._steps = 0
        self._sent_at = 0.0
        self._answers = 0
        """Messages seen on ``lock_step_wait_topic``."""
        self._answers_at_publish = 0
        self._pending: np.ndarray | None = None
        """Lock-step: the offset of a command that came before the state's other answer."""
        self.wait_timeouts = 0
        self.rtt_ms = RollingStats(200_000)
        self.timeouts = 0
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._pub_js = self.create_publisher(JointState, TOPIC_JOINT_STATES, 10)
        self._pub_puck = self.create_publisher(PoseStamped, TOPIC_PUCK_POSE, 10)
        self._pub_clock = self.create_publisher(ClockMsg, TOPIC_CLOCK, 10)
        self._pub_mu = self.create_publisher(Float64MultiArray, TOPIC_TRUE_DYNAMICS, latched)
        self._pub_result = self.create_publisher(
            Float64MultiArray,
            TOPIC_EPISODE_RESULT,
            QoSProfile(depth=100, durability=DurabilityPolicy.TRANSIENT_LOCAL),
        )
        self.create_subscription(Float64MultiArray, self.cfg.command_topic, self._on_command, 10)
        self.create_subscription(PoseStamped, TOPIC_GOAL_POSE, self._on_goal, 10)
        if self.cfg.lock_step and self.cfg.lock_step_wait_topic:
            self.create_subscription(Bool, self.cfg.lock_step_wait_topic, self._on_answer, 10)
        self.create_service(Trigger, "~/reset", self._on_reset)
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        if self.cfg.lock_step:
            self.create_timer(0.005, self._on_lock_step_timer, clock=steady)
        else:
            self._start_episode()
            self._publish_state()
            self.create_timer(
                1.0 / self.cfg.control_rate_hz, self._on_free_run_timer, clock=steady
            )
        self.get_logger().info(
            f"{self.cfg.robot} arm, joints {self.joint_names}, lock_step={self.cfg.lock_step}"
        )

    # --- episodes -----------------------------------------------------------------------------
    def _start_episode(self) -> dict:
        if self.episode >= 0:
            # Episodes are 1 s of sim time apart, so no stamp is shared between two of them
            # and lock-step consumers can tell a new episode's first state (see the constant).
            self._t_offset += self.env.world.time_s + LOCK_STEP_EPISODE_GAP_S
        self.episode += 1
        seed = self.cfg.seed + self.episode
        obs, info = self.env.reset(seed=seed)
        self._obs = obs["observation"].astype(np.float64)
        self._goal = obs["desired_goal"].astype(np.float64)
        self._steps = 0
        self._last_command = None
        self._pub_mu.publish(labelled_array(self.env.mu_names, info["mu"]))
        return {
            "episode": self.episode,
            "seed": seed,
            "goal": self._goal.tolist(),
            "puck": obs["achieved_goal"].astype(np.float64).tolist(),
            "mu": info["mu"].astype(np.float64).tolist(),
            "mu_names": list(self.env.mu_names),
            "start_time_s": self._now_sim(),
            "episode_steps": self.episode_steps,
        }

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response):
        info = self._start_episode()
        if self.cfg.lock_step:
            self._phase = _WAIT_GOAL
        else:
            self._publish_state()
        response.success = True
        response.message = json.dumps(info)
        return response

    def _on_goal(self, msg: PoseStamped) -> None:
        self._goal = np.array([msg.pose.position.x, msg.pose.position.y])
        self.env.world.set_goal(self._goal)
        if self.cfg.lock_step and self._phase == _WAIT_GOAL:
            self._phase = _STARTING
            self._deadline = time.monotonic() + self.cfg.lock_step_start_delay_s

    # --- stepping -----------------------------------------------------------------------------
    def _now_sim(self) -> float:
        return self._t_offset + self.env.world.time_s

    def _publish_state(self) -> None:
        stamp = s_to_stamp(self._now_sim())
        n, obs = self.n, self._obs
        puck = PoseStamped()
        puck.header.stamp = stamp
        puck.header.frame_id = self.cfg.frame_id
        puck.pose.position.x, puck.pose.position.y, puck.pose.position.z = (
            float(v) for v in obs[2 * n : 2 * n + 3]
        )
        x, y, z, w = self.env.world.read_state().puck_orientation
        puck.pose.orientation.x, puck.pose.orientation.y = float(x), float(y)
        puck.pose.orientation.z, puck.pose.orientation.w = float(z), float(w)
        self._pub_puck.publish(puck)
        js = JointState()
        js.header.stamp = stamp
        js.name = self.joint_names
        js.position = obs[:n].tolist()
        js.velocity = obs[n : 2 * n].tolist()
        self._published_q = obs[:n].copy()
        self._answers_at_publish = self._answers
        self._pending = None
        self._sent_at = time.perf_counter()
        self._pub_js.publish(js)
        # The clock goes last: a subscriber whose clock jumped (a new episode starts 1 s of sim
        # time later) before the matching state arrived would see its last state as stale.
        clock = ClockMsg()
        clock.clock = stamp
        self._pub_clock.publish(clock)

    def _step(self, offset: np.ndarray) -> dict:
        obs, _, _, _, info = self.env.step(offset)
        self._obs = obs["observation"].astype(np.float64)
        self._steps += 1
        return info

    def _on_command(self, msg: Float64MultiArray) -> None:
        received = time.perf_counter()
        cmd = np.asarray(msg.data, dtype=np.float64)
        if cmd.shape != (self.n,) or not np.isfinite(cmd).all():
            # forward_command_controller drops such commands; so does this arm.
            self.get_logger().warning(f"dropped a malformed command {msg.data}", once=True)
            return
        self._last_command = cmd
        if not self.cfg.lock_step or self._phase != _WAIT_CMD:
            return
        self.rtt_ms.add((received - self._sent_at) * 1e3)
        offset = cmd - self._published_q
        if self.cfg.lock_step_wait_topic and self._answers == self._answers_at_publish:
            self._pending = offset  # stepped when the state's answer arrives
            return
        self._advance(offset)

    def _on_answer(self, msg: Bool) -> None:
        self._answers += 1
        if self._pending is not None and self._phase == _WAIT_CMD:
            offset, self._pending = self._pending, None
            self._advance(offset)

    def _advance(self, offset: np.ndarray) -> None:
        info = self._step(offset)
        self._publish_state()
        if self._steps >= self.episode_steps:
            self._phase = _IDLE
            self._publish_result(info)
        else:
            self._deadline = time.monotonic() + self.cfg.lock_step_timeout_s
            self._retried = False

    def _on_lock_step_timer(self) -> None:
        now = time.monotonic()
        if self._phase == _STARTING and now >= self._deadline:
            self._phase = _WAIT_CMD
            self._deadline = now + self.cfg.lock_step_timeout_s
            self._retried = False
            self._publish_state()
        elif self._phase == _WAIT_CMD and self._pending is not None and now >= self._deadline:
            self.wait_timeouts += 1  # the command came, the other answer did not: step on
            offset, self._pending = self._pending, None
            self._advance(offset)
        elif self._phase == _WAIT_CMD and now >= self._deadline:
            self.timeouts += 1
            if not self._retried:
                self._retried = True
                self._deadline = now + self.cfg.lock_step_timeout_s
                self._publish_state()
            else:
                self.get_logger().warning("no command in time: holding for one step")
                self._advance(np.zeros(self.n))

    def _on_free_run_timer(self) -> None:
        q_true = self.env.world.joint_positions()
        target = self._last_command if self._last_command is not None else q_true
        self._step(target - q_true)
        self._publish_state()

    def _publish_result(self, info: dict) -> None:
        rtt = self.rtt_ms.summary()
        values = [
            self.episode,
            self.cfg.seed + self.episode,
            self._steps,
            float(info["distance"]),
            float(info["is_success_0.05"]),
            float(info["is_success_0.07"]),
            rtt["p50"],
            rtt["p99"],
            rtt["max"],
            self.timeouts,
        ]
        self._pub_result.publish(labelled_array(EPISODE_RESULT_FIELDS, values))


def main(args: list[str] | None = None) -> None:
    """Console script ``sim_arm_node``."""
    spin_node(SimArmNode, args)


if __name__ == "__main__":
    main()
