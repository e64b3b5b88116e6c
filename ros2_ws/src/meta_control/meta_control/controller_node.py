"""Lifecycle node running the exported ONNX policy as a joint position controller.

configure: load and verify the model (:class:`PolicyRuntime`), map joint names, load the arm's
    limits and workspace, create the publishers, subscriptions and the diagnostics timer.
activate: reset the recurrent state and start the control loop; commands flow only while
    active (lifecycle publishers).
deactivate / cleanup: stop the loop / release everything created by configure.

Every tick commands either a step toward the policy's target (``q + action``) or a *hold*
(braking to rest); both within the arm's limits (:class:`~meta_control.motion.MotionLimiter`:
the limits file's position, velocity, acceleration and jerk limits, intersected with the model's
joint range, less the safety margin; ``velocity_scale`` for slow mode). It holds when the
e-stop is set, when the joint states or the puck pose are older than ``stale_periods`` control
periods, when a joint state has wrong names or counts, when a pose is not in the configured
frame, when the runtime refuses the observation (NaN, inf, out of the training range) *before*
inference, and when the step would take the end effector out of the workspace
(:class:`~meta_control.workspace.WorkspaceGuard`). ``command_mode`` picks forward position
commands or ``JointTrajectory`` messages for a joint_trajectory_controller; ``dry_run`` sends
them to ``/meta_controller/dry_run/*`` instead. The recurrent state is reset on activation, on
every new goal (episode boundary), after any hold (input gap) and on a model swap (setting
``policy_path`` while configured, allowed only between models with the same contract).
``/diagnostics`` carries the loop timing, the safety state and the limiting counts.

Where a new safety reaction goes: :meth:`ControllerNode._check` decides hold or run (a
:class:`HoldReason`); :meth:`ControllerNode._command` turns the policy's target (or a hold) into
the commanded motion (limits, workspace) and :meth:`ControllerNode._publish_command` sends it;
``self.limiter.set_velocity_scale`` slows the arm within its acceleration limits.

The per-tick path allocates as little as it can: the observation buffer and the outgoing messages
are built once at configure and only their data is replaced, float arrays go into messages as
``array.array`` (no per-element checks), nothing is logged per tick, and the statistics that
``/diagnostics`` reports are computed only when it is published, the command is published
before the action record, and once the model is loaded the garbage collector's view of the heap
is frozen (``gc.freeze``) so full collections do not stall the loop. The ``executor`` parameter
selects rclpy's EventsExecutor (``events``, the default, driven by a ``spin_once`` loop), which
costs less per message, or the SingleThreadedExecutor (``single``); see
``docs/benchmarks_ros.md``.
"""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from rclpy.service import Service
from rclpy.timer import Timer
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64MultiArray, MultiArrayDimension
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from meta_control.config import COMMAND_MODES, LOCK_STEP_EPISODE_GAP_S, ControllerConfig
from meta_control.limits import (
    LimitsError,
    enforced_limits,
    load_robot_limits,
    parse_joint_map,
    resolve_limits_path,
    resolve_urdf,
)
from meta_control.metrics import RollingStats
from meta_control.motion import MotionLimiter, MotionStep
from meta_control.observation import (
    JointMapper,
    ObservationAssembler,
    ObservationError,
    ObsTermError,
)
from meta_control.paths import default_model
from meta_control.ros_common import (
    declare_config,
    float_array,
    labelled_array,
    read_config,
    settle_gc,
    spin_node,
)
from meta_control.runtime import InputRejected, ModelError, PolicyRuntime
from meta_control.safety import Freshness, HoldReason, OodReaction
from meta_control.topics import (
    STAMP_NANOSEC_LABEL,
    STAMP_SEC_LABEL,
    TOPIC_DIAGNOSTICS,
    TOPIC_DRY_RUN_COMMANDS,
    TOPIC_DRY_RUN_TRAJECTORY,
    TOPIC_POLICY_ACTION,
    stamp_s,
)

NODE_NAME = "meta_controller"

HOLD_MARGIN_RAD = 0.1
"""A measured position this far outside the enforced joint limits does not start the commanded
motion."""
ANY_FRAME = "*"
"""``frame_id`` value that accepts poses in any frame."""
_DETAILED_HOLDS = (HoldReason.FRAME_MISMATCH, HoldReason.WORKSPACE, HoldReason.JOINT_MISMATCH)
"""Holds whose ``/diagnostics`` status names what is wrong (``hold_detail``)."""


class ControllerNode(LifecycleNode):
    """The policy controller (see the module docstring)."""

    def __init__(self, **kwargs) -> None:
        """Declare the parameters; configure and activate at once when ``autostart``."""
        super().__init__(NODE_NAME, **kwargs)
        self.cfg = declare_config(self, ControllerConfig)
        self.runtime: PolicyRuntime | None = None
        self._entities: list = []
        self._loop_timer = None
        self._active = False
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.holds: Counter[str] = Counter()
        self.ticks = 0
        self.recurrent_resets = 0
        self.model_swaps = 0
        self.add_on_set_parameters_callback(self._on_set_parameters)
        if self.cfg.autostart:
            if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                raise RuntimeError("autostart: configure failed (see the log)")
            self.trigger_activate()

    # --- lifecycle ----------------------------------------------------------------------------
    def _model_path(self) -> str:
        return self.cfg.policy_path or str(default_model(self.cfg.robot, "policy"))

    def _load(self, path: str) -> tuple[PolicyRuntime, ObservationAssembler]:
        runtime = PolicyRuntime(
            path,
            range_margin=self.cfg.range_margin,
            expected_contract_hash=self.cfg.expected_contract_hash or None,
        )
        meta = runtime.metadata
        if meta.action_meaning != "joint_position_offset":
            raise ModelError(f"action_meaning {meta.action_meaning!r} is not supported")
        try:
            assembler = ObservationAssembler.for_model(meta)
        except ObsTermError as exc:
            raise ModelError(str(exc)) from exc
        if meta.goal_dim > 3:
            raise ModelError(f"goal_dim {meta.goal_dim} > 3: goals are poses' x, y, z")
        return runtime, assembler

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the model and create publishers, subscriptions and the diagnostics timer."""
        self.cfg = read_config(self, ControllerConfig)
        if self.cfg.trigger not in ("timer", "state"):
            self.get_logger().error(
                f"trigger must be 'timer' or 'state', not {self.cfg.trigger!r}"
            )
            return TransitionCallbackReturn.FAILURE
        path = self._model_path()
        try:
            self.runtime, self._assembler = self._load(path)
        except (ModelError, FileNotFoundError) as exc:
            self.get_logger().error(f"cannot load policy {path}: {exc}")
            return TransitionCallbackReturn.FAILURE
        meta = self.runtime.metadata
        self.joint_names = list(meta.joint_names)
        rate = self.cfg.control_rate_hz or 1.0 / meta.control_period_s
        self.period_s = 1.0 / rate
        try:
            self._configure_command_path()
            self.ood = OodReaction(self.cfg.on_ood, self.cfg.ood_sustain_periods,
                                   self.cfg.ood_release,
                                   self.cfg.ood_stale_periods * self.period_s)
            if not 0.0 < self.cfg.ood_slow_scale <= 1.0:
                raise ValueError(f"ood_slow_scale must be in (0, 1], got "
                                 f"{self.cfg.ood_slow_scale}")
        except (LimitsError, ValueError) as exc:
            self.get_logger().error(f"cannot configure the commands: {exc}")
            self.runtime = None
            return TransitionCallbackReturn.FAILURE
        self.mapper = JointMapper(self.robot_joint_names)
        self._valid_low = self.limiter.low - HOLD_MARGIN_RAD
        self._valid_high = self.limiter.high + HOLD_MARGIN_RAD
        # Outgoing messages are built once; each tick only replaces their data.
        self._cmd_msg = Float64MultiArray()
        self._traj_msg = JointTrajectory(joint_names=list(self.robot_joint_names))
        self._action_msg = labelled_array(self.joint_names, np.zeros(len(self.joint_names)))
        # The stamp of the joint state an action was computed from travels in two extra layout
        # dimensions, so offline replay pairs actions with their inputs exactly (receive order
        # across topics in a recording is not the order the controller saw them in).
        self._action_msg.layout.dim.append(MultiArrayDimension(label=STAMP_SEC_LABEL))
        self._action_msg.layout.dim.append(MultiArrayDimension(label=STAMP_NANOSEC_LABEL))
        max_age = self.cfg.stale_periods * self.period_s
        receive_age = not self.cfg.lock_step
        self._state_fresh = Freshness(max_age, check_receive_age=receive_age)
        self._puck_fresh = Freshness(max_age, check_receive_age=receive_age)
        self._q: np.ndarray | None = None
        self._dq: np.ndarray | None = None
        self._state_stamp: float | None = None
        self._state_error: str | None = None
        self._puck: np.ndarray | None = None
        self._puck_stamp: float | None = None
        self._goal: np.ndarray | None = None
        self._goal_stamp: float | None = None
        self._valid_q: np.ndarray | None = None
        self._puck_frame = self._goal_frame = ""
        self._hold_detail = ""
        self._valid_count = 0
        self._motion_origin_ns = 0
        self._reanchor_after: int | None = None
        self._e_stop = False
        self._needs_reset = True
        self._last_processed_stamp: float | None = None
        self._last_command: Float64MultiArray | None = None
        self._last_reason = HoldReason.NO_STATE
        self._last_tick_steady: float | None = None
        self.compute_us = RollingStats(20_000)
        self.interval_ms = RollingStats(20_000)
        self._pub_cmd = self.create_lifecycle_publisher(
            JointTrajectory if self.limiter.smooth else Float64MultiArray,
            self.command_out_topic,
            QoSProfile(depth=10),
        )
        self._pub_action = self.create_lifecycle_publisher(
            Float64MultiArray, TOPIC_POLICY_ACTION, QoSProfile(depth=10)
        )
        self._pub_diag = self.create_publisher(DiagnosticArray, TOPIC_DIAGNOSTICS, 10)
        self._entities = [
            self.create_subscription(
                JointState,
                self.cfg.joint_state_topic,
                self._on_joint_state,
                qos_profile_sensor_data,
            ),
            self.create_subscription(
                PoseStamped, self.cfg.puck_topic, self._on_puck, qos_profile_sensor_data
            ),
            self.create_subscription(PoseStamped, self.cfg.goal_topic, self._on_goal, 10),
            self.create_subscription(Bool, self.cfg.e_stop_topic, self._on_e_stop, 10),
            self.create_subscription(Bool, self.cfg.ood_topic, self._on_ood, 10),
            self.create_service(Trigger, "~/reset_ood", self._on_reset_ood),
            self.create_timer(self.cfg.diagnostics_period_s, self._publish_diagnostics),
        ]
        self.get_logger().info(
            f"configured {path} ({len(self.joint_names)} joints, {rate:.1f} Hz, "
            f"trigger={self.cfg.trigger}, lock_step={self.cfg.lock_step}); "
            f"{self.cfg.command_mode} commands on {self.command_out_topic}"
            f"{' (DRY RUN)' if self.cfg.dry_run else ''}, limits {self.limits_path} "
            f"(margin {self.limits_margin:g}), workspace guard "
            f"{'on' if self.guard is not None else 'off'}, frame {self.frame_id or 'any'!r}"
        )
        settle_gc()  # the model and the entities are loaded: keep full collections short
        return TransitionCallbackReturn.SUCCESS

    def _configure_command_path(self) -> None:
        """The robot's joint names, the enforced limits, the motion limiter, the workspace
        guard, the poses' frame and the output topic (raises :class:`LimitsError` or
        ``ValueError`` with what to fix)."""
        cfg, meta = self.cfg, self.runtime.metadata
        if cfg.command_mode not in COMMAND_MODES:
            raise ValueError(
                f"command_mode must be one of {COMMAND_MODES}, not {cfg.command_mode!r}"
            )
        self.robot_joint_names = parse_joint_map(cfg.joint_names, meta.joint_names)
        robot_limits = load_robot_limits(resolve_limits_path(cfg.limits, cfg.robot))
        self.limits_path = robot_limits.path
        self.limits_margin = robot_limits.margin if cfg.limits_margin < 0 else cfg.limits_margin
        self.enforced = enforced_limits(
            robot_limits,
            self.robot_joint_names,
            meta.joint_limits_low,
            meta.joint_limits_high,
            self.limits_margin,
        )
        self.limiter = MotionLimiter(
            self.enforced,
            self.period_s,
            smooth=cfg.command_mode == "trajectory",
            velocity_scale=cfg.velocity_scale,
            acceleration_scale=cfg.acceleration_scale,
            lookahead_s=cfg.trajectory_lookahead_s,
        )
        self.guard = None
        ws = robot_limits.workspace
        if ws is not None and ws.enabled:
            from meta_control.workspace import WorkspaceGuard  # loads pinocchio

            urdf = cfg.urdf_path or ws.urdf
            if not urdf:
                raise LimitsError(
                    f"{self.limits_path}: the workspace guard needs the arm's URDF: "
                    "set urdf_path (or workspace.urdf in the limits file)"
                )
            self.guard = WorkspaceGuard(
                ws, resolve_urdf(urdf, self.limits_path.parent), self.robot_joint_names
            )
        self.frame_id = cfg.frame_id or robot_limits.frame
        if cfg.dry_run:
            smooth = self.limiter.smooth
            self.command_out_topic = TOPIC_DRY_RUN_TRAJECTORY if smooth else TOPIC_DRY_RUN_COMMANDS
        elif self.limiter.smooth:
            self.command_out_topic = cfg.trajectory_topic
        else:
            self.command_out_topic = cfg.command_topic

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Reset the recurrent state and start the loop/watchdog timer; the commanded motion
        starts at rest at the next measured positions."""
        self._reset_recurrent()
        self.limiter.forget()
        self._active = True
        self._loop_timer = self.create_timer(self.period_s, self._on_timer, clock=self._steady)
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop the loop; the lifecycle publishers stop publishing."""
        self._active = False
        if self._loop_timer is not None:
            self.destroy_timer(self._loop_timer)
            self._loop_timer = None
        return super().on_deactivate(state)

    def _release(self) -> None:
        self._active = False
        if self._loop_timer is not None:
            self.destroy_timer(self._loop_timer)
            self._loop_timer = None
        for entity in self._entities:
            if isinstance(entity, Timer):
                self.destroy_timer(entity)
            elif isinstance(entity, Service):
                self.destroy_service(entity)
            else:
                self.destroy_subscription(entity)
        self._entities = []
        for attr in ("_pub_cmd", "_pub_action"):
            pub = getattr(self, attr, None)
            if pub is not None:
                self.destroy_lifecycle_publisher(pub)
                setattr(self, attr, None)
        if getattr(self, "_pub_diag", None) is not None:
            self.destroy_publisher(self._pub_diag)
            self._pub_diag = None
        self.runtime = None

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release the model and every entity created by configure."""
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Same as cleanup."""
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _on_set_parameters(self, params: list) -> SetParametersResult:
        """Hot-swap the model when ``policy_path`` changes on a configured node; apply a new
        ``velocity_scale`` from the next tick on."""
        for p in params:
            if p.name == "velocity_scale":
                scale = float(p.value)
                try:
                    if not 0.0 < scale <= 1.0:
                        raise ValueError(f"velocity_scale must be in (0, 1], got {scale}")
                    if getattr(self, "limiter", None) is not None:
                        self.limiter.set_velocity_scale(scale)
                except ValueError as exc:
                    return SetParametersResult(successful=False, reason=str(exc))
                self.cfg.velocity_scale = scale
                continue
            if p.name != "policy_path" or self.runtime is None:
                continue
            try:
                new, assembler = self._load(
                    p.value or str(default_model(self.cfg.robot, "policy"))
                )
            except (ModelError, FileNotFoundError) as exc:
                return SetParametersResult(successful=False, reason=f"cannot load: {exc}")
            if new.metadata.contract_hash != self.runtime.metadata.contract_hash:
                return SetParametersResult(
                    successful=False,
                    reason="the new model has a different contract (joints, observation or "
                    "action terms); cleanup and configure again instead of hot-swapping",
                )
            self.runtime, self._assembler = new, assembler
            self.cfg.policy_path = p.value
            self.model_swaps += 1
            self._reset_recurrent()
            self.get_logger().info(f"swapped policy to {p.value}")
        return SetParametersResult(successful=True)

    # --- inputs -------------------------------------------------------------------------------
    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_joint_state(self, msg: JointState) -> None:
        received = time.monotonic()
        header_stamp = msg.header.stamp
        stamp = stamp_s(header_stamp)
        try:
            q, dq = self.mapper.map(msg.name, msg.position, msg.velocity)
        except ObservationError as exc:
            self._state_error = str(exc)
            self._q = self._dq = None
        else:
            self._state_error = None
            self._q, self._dq = q, dq
            # NaN fails both comparisons and +-inf one of them: no separate finiteness check.
            if (self._valid_low <= q).all() and (q <= self._valid_high).all():
                self._valid_q = q
                self._valid_count += 1
        self._state_stamp = stamp
        self._state_stamp_msg = header_stamp
        self._state_fresh.update(stamp, received)
        self._maybe_tick_on_input()

    def _on_puck(self, msg: PoseStamped) -> None:
        p = msg.pose.position
        self._puck = np.array((p.x, p.y, p.z), dtype=np.float64)
        self._puck_frame = msg.header.frame_id
        stamp = msg.header.stamp
        self._puck_stamp = stamp_s(stamp)
        self._puck_fresh.update(self._puck_stamp, time.monotonic())
        if self.cfg.lock_step:
            self._maybe_tick_on_input()

    def _on_goal(self, msg: PoseStamped) -> None:
        if self.runtime is None:
            return
        p = msg.pose.position
        self._goal = np.array([p.x, p.y, p.z], dtype=np.float64)[: self.runtime.metadata.goal_dim]
        self._goal_frame = msg.header.frame_id
        self._goal_stamp = stamp_s(msg.header.stamp)
        # A simulated arm jumps to its start pose between episodes: start its motion there, at
        # the episode's first state (lock-step: the state this goal's tick runs on, which may
        # have come first; free-running: the first state after the goal).
        if self.cfg.lock_step:
            self._reanchor_after = -1
        elif self.cfg.reanchor_on_goal:
            self._reanchor_after = self._valid_count
        self._reset_recurrent()
        self._last_processed_stamp = None
        self.ood.new_episode(self._now_s())
        if self.cfg.lock_step:
            self._maybe_tick_on_input()  # the episode's first state may have come before it

    def _on_e_stop(self, msg: Bool) -> None:
        was = self._e_stop
        self._e_stop = bool(msg.data)
        if self._e_stop and not was and self._active:
            self._tick()

    def _on_ood(self, msg: Bool) -> None:
        self.ood.on_flag(bool(msg.data), self._now_s())

    def _on_reset_ood(self, request: Trigger.Request,
                      response: Trigger.Response) -> Trigger.Response:
        """``~/reset_ood``: an operator releases an engaged OOD reaction."""
        was = self.ood.latched
        self.ood.operator_reset()
        response.success = True
        response.message = "released" if was else "no OOD reaction was engaged"
        self.get_logger().info(f"OOD reset by operator: {response.message}")
        return response

    def _maybe_tick_on_input(self) -> None:
        if not self._active:
            return
        if self.cfg.lock_step:
            stamp = self._state_stamp
            if stamp is None or self._puck_stamp != stamp:
                return  # wait for the puck pose of the same instant
            if stamp == self._last_processed_stamp:
                # The arm republished a state it got no command for: repeat, do not re-step.
                if self._last_command is not None:
                    self._pub_cmd.publish(self._last_command)
                return
            if not self._in_episode(stamp):
                return  # the next episode's first state, ahead of its goal: wait for the goal
            self._last_processed_stamp = stamp
            self._tick()
        elif self.cfg.trigger == "state":
            self._tick()

    def _in_episode(self, stamp: float) -> bool:
        """Lock-step: whether a state belongs to the episode of the current goal (the goal's
        first state, or the successor of the last state processed; see
        :data:`~meta_control.config.LOCK_STEP_EPISODE_GAP_S`)."""
        last = self._last_processed_stamp
        if last is None:
            return self._goal_stamp is not None and stamp >= self._goal_stamp - 1e-6
        return 0.0 < stamp - last < 0.5 * LOCK_STEP_EPISODE_GAP_S

    def _on_timer(self) -> None:
        if not self._active:
            return
        if self.cfg.trigger == "timer" and not self.cfg.lock_step:
            self._tick()
            return
        # Event-driven modes: the timer is the watchdog that holds when inputs stop coming.
        if self._valid_q is None:
            return  # nothing measured yet: there is no position to hold
        if self._e_stop or self._state_fresh.stale(self._now_s(), time.monotonic()):
            self._tick()

    # --- the tick -----------------------------------------------------------------------------
    def _reset_recurrent(self) -> None:
        if self.runtime is not None:
            self.runtime.reset()
            self.recurrent_resets += 1
        self._needs_reset = False

    def _check(self) -> HoldReason:
        if self._e_stop:
            return HoldReason.E_STOP
        if self._state_error is not None:
            return HoldReason.JOINT_MISMATCH
        if self._q is None:
            return HoldReason.NO_STATE
        now, steady = self._now_s(), time.monotonic()
        if self._state_fresh.stale(now, steady):
            return HoldReason.STALE
        if self._puck is None:
            return HoldReason.NO_PUCK
        if self._puck_fresh.stale(now, steady):
            return HoldReason.STALE
        frame = self.frame_id
        if frame and frame != ANY_FRAME and self._puck_frame != frame:
            self._hold_detail = f"puck pose frame {self._puck_frame!r} is not {frame!r}"
            return HoldReason.FRAME_MISMATCH
        if self._goal is None:
            return HoldReason.NO_GOAL
        if frame and frame != ANY_FRAME and self._goal_frame != frame:
            self._hold_detail = f"goal pose frame {self._goal_frame!r} is not {frame!r}"
            return HoldReason.FRAME_MISMATCH
        if self.ood.mode == "hold" and self.ood.active(now):
            return HoldReason.DYNAMICS_OOD
        return HoldReason.OK

    def _apply_ood_slowdown(self) -> None:
        """``on_ood: slow``: the velocity limits at ``ood_slow_scale`` of ``velocity_scale``
        while the reaction is engaged (the limiter slows within its acceleration limits)."""
        if self.ood.mode != "slow":
            return
        scale = self.cfg.velocity_scale
        if self.ood.active(self._now_s()):
            scale *= self.cfg.ood_slow_scale
        if self.limiter.velocity_scale != scale:
            self.limiter.set_velocity_scale(scale)

    def _tick(self) -> None:
        t0 = time.perf_counter()
        self.ticks += 1
        runtime = self.runtime
        reason = self._check()
        self._apply_ood_slowdown()
        action = None
        if reason is HoldReason.OK and runtime is not None:
            # In place, in the metadata's term order (the assembler's preallocated buffer).
            obs = self._assembler.fill(self._q, self._dq, self._puck)
            try:
                if self._needs_reset:
                    self._reset_recurrent()
                action = runtime.step(obs, self._goal)
            except InputRejected as exc:
                reason = HoldReason(exc.reason)
            except ModelError:
                reason = HoldReason.MODEL_ERROR
        if reason is HoldReason.JOINT_MISMATCH:
            self._hold_detail = self._state_error or ""
        step, outside = self._command(None if action is None else self._q + action)
        if outside is not None:  # the policy's step would leave the workspace: held instead
            reason, action, self._hold_detail = HoldReason.WORKSPACE, None, outside
        if action is None:
            self._needs_reset = True  # the recurrent history has a gap: start afresh
            self._last_reason = reason
            if step is None:
                return  # never measured a valid position: nothing safe to command
            self.holds[reason.value] += 1
        # The command goes out first: it is on the arm's critical path, the action record is not.
        msg = self._publish_command(step)
        self._last_command = msg
        self._last_reason = reason
        if action is not None:
            self._action_msg.data = float_array(action)
            dims = self._action_msg.layout.dim
            dims[1].size = self._state_stamp_msg.sec
            dims[2].size = self._state_stamp_msg.nanosec
            self._pub_action.publish(self._action_msg)
        t1 = time.perf_counter()
        self.compute_us.add((t1 - t0) * 1e6)
        if self._last_tick_steady is not None:
            self.interval_ms.add((t0 - self._last_tick_steady) * 1e3)
        self._last_tick_steady = t0

    def _command(self, target: np.ndarray | None) -> tuple[MotionStep | None, str | None]:
        """The commanded motion's next step toward ``target`` (``None``: hold), within the
        limits, committed; and why the workspace guard turned it into a hold (else ``None``).
        No step before any valid measured position."""
        limiter = self.limiter
        reanchor = self._reanchor_after is not None and self._valid_count > self._reanchor_after
        now_ns = self.get_clock().now().nanoseconds
        if not limiter.initialized or reanchor:
            if self._valid_q is None:
                return None, None
            # Activation (or a simulated arm's new episode): at rest where the arm is. The
            # limiter counts time from here (epoch seconds as floats resolve only 0.24 us).
            self._motion_origin_ns = now_ns
            limiter.reset(self._valid_q, 0.0)
            self._reanchor_after = None
        now = (now_ns - self._motion_origin_ns) * 1e-9
        outside = None
        if target is None:
            step = limiter.plan_hold(now)
        else:
            step = limiter.plan(target, now)
            if self.guard is not None:
                # The step itself and where braking from it would end must both be inside.
                outside = self.guard.check(step.position, step.rest_position)
                if outside is not None:
                    step = limiter.plan_hold(now)
        limiter.commit(step)
        return step, outside

    def _publish_command(self, step: MotionStep) -> Float64MultiArray | JointTrajectory:
        """Send the committed motion: the step's positions (forward) or the whole trajectory,
        stamped, ending at rest (trajectory); on the dry-run topic in a dry run."""
        if not self.limiter.smooth:
            msg = self._cmd_msg
            msg.data = float_array(step.position)
        else:
            msg = self._traj_msg
            stamp, times, positions, velocities, accelerations = self.limiter.trajectory()
            stamp_ns = self._motion_origin_ns + int(round(stamp * 1e9))
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
            points = []
            for i, t in enumerate(times):
                point = JointTrajectoryPoint()
                point.positions = float_array(positions[i])
                point.velocities = float_array(velocities[i])
                point.accelerations = float_array(accelerations[i])
                sec, nanosec = divmod(int(round(t * 1e9)), 1_000_000_000)
                point.time_from_start.sec, point.time_from_start.nanosec = sec, nanosec
                points.append(point)
            msg.points = points
        self._pub_cmd.publish(msg)
        return msg

    # --- diagnostics --------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        if self._pub_diag is None:
            return
        status = DiagnosticStatus(name=f"{NODE_NAME}: policy loop", hardware_id=self.get_name())
        reason = self._last_reason
        if not self._active:
            status.level, status.message = DiagnosticStatus.OK, "inactive"
        elif reason is HoldReason.OK:
            status.level, status.message = DiagnosticStatus.OK, "running"
        elif reason in (HoldReason.NO_GOAL, HoldReason.NO_STATE, HoldReason.NO_PUCK):
            status.level, status.message = DiagnosticStatus.WARN, f"holding: {reason.value}"
        else:
            status.level, status.message = DiagnosticStatus.ERROR, f"holding: {reason.value}"
        detail = self._hold_detail if reason in _DETAILED_HOLDS else ""
        if detail and self._active:
            status.message += f" ({detail})"
        if self.cfg.dry_run:
            status.message = f"DRY RUN, {status.message}"
        comp = self.compute_us.summary()
        per = self.interval_ms.summary()
        limiter = self.limiter
        values = {
            "safety_state": reason.value,
            "hold_detail": detail,
            "active": str(self._active),
            "dry_run": str(self.cfg.dry_run),
            "command_mode": self.cfg.command_mode,
            "command_topic": self.command_out_topic,
            "ticks": str(self.ticks),
            "holds_total": str(sum(self.holds.values())),
            "recurrent_resets": str(self.recurrent_resets),
            # Ticks whose command a limit shaped (any of the three counts below).
            "rate_limited_ticks": str(limiter.limited_ticks),
            **{k: str(v) for k, v in limiter.counters().items() if k != "limited_ticks"},
            "velocity_scale": f"{limiter.velocity_scale:g}",
            "on_ood": self.cfg.on_ood,
            "ood_engaged": str(self.ood.latched),
            "ood_reaction_active": str(self.ood.active(self._now_s())),
            "ood_stream_stale": str(self.ood.stale(self._now_s())),
            "ood_consecutive": str(self.ood.consecutive),
            "ood_engagements": str(self.ood.engagements),
            "acceleration_scale": f"{limiter.acceleration_scale:g}",
            "limits_file": str(self.limits_path),
            "limits_margin": f"{self.limits_margin:g}",
            "frame_id": self.frame_id or ANY_FRAME,
            "workspace_guard": "on" if self.guard is not None else "off",
            "model_swaps": str(self.model_swaps),
            "period_ms": f"{self.period_s * 1e3:.3f}",
            "compute_p50_us": f"{comp['p50']:.1f}",
            "compute_p99_us": f"{comp['p99']:.1f}",
            "compute_max_us": f"{comp['max']:.1f}",
            "interval_p50_ms": f"{per['p50']:.3f}",
            "interval_std_ms": f"{per['std']:.3f}",
            "policy_path": str(self.runtime.model_path) if self.runtime else "",
        }
        if limiter.initialized:
            values["commanded_rad"] = ", ".join(f"{x:.4f}" for x in limiter.position)
            if self._valid_q is not None:
                offset = np.abs(limiter.position - self._valid_q).max()
                values["max_command_offset_rad"] = f"{offset:.4f}"
            if self.guard is not None:
                xyz = self.guard.end_effector_position(limiter.position)
                values["commanded_end_effector_m"] = ", ".join(f"{x:.3f}" for x in xyz)
        values.update({f"holds_{k}": str(v) for k, v in sorted(self.holds.items())})
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        out = DiagnosticArray(status=[status])
        out.header.stamp = self.get_clock().now().to_msg()
        self._pub_diag.publish(out)


def main(args: list[str] | None = None) -> None:
    """Console script ``controller_node``."""
    spin_node(ControllerNode, args)


if __name__ == "__main__":
    main()
