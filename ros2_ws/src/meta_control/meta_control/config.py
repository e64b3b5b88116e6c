"""Configuration dataclasses of the ROS 2 nodes: one field per declared ROS parameter.

Each node declares every field as a parameter with the dataclass default, so the YAML files
under ``config/``, the launch files and ``--ros-args -p`` all use these names. Kept free of
ROS imports so tests and tools can list the parameters without starting a node.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from meta_control.topics import (
    TOPIC_COMMANDS,
    TOPIC_E_STOP,
    TOPIC_GOAL_POSE,
    TOPIC_JOINT_STATES,
    TOPIC_JOINT_TRAJECTORY,
    TOPIC_OOD,
    TOPIC_POLICY_ACTION,
    TOPIC_PUCK_POSE,
)

COMMAND_MODES = ("forward", "trajectory")
"""Values of the controller's ``command_mode`` parameter."""

EPISODE_RESULT_FIELDS = (
    "episode",
    "seed",
    "steps",
    "final_distance_m",
    "success_0.05",
    "success_0.07",
    "rtt_p50_ms",
    "rtt_p99_ms",
    "rtt_max_ms",
    "lock_step_timeouts",
)
"""Order of the values on :data:`~meta_control.topics.TOPIC_EPISODE_RESULT` (also its
``dim[0].label``)."""

LOCK_STEP_EPISODE_GAP_S = 1.0
"""The lock-step contract between the simulated arm, the goal publisher and the consumers
(controller, estimator): the first state of an episode carries the stamp of the episode's goal,
later states follow one control period apart, and a new episode starts at least this much sim
time after the previous one ended. A consumer that sees a state jump by more than half of it
has met the next episode before its goal (topics are not ordered with each other) and waits
for the goal instead of running the new episode's first state with the old goal."""


@dataclass
class SimArmConfig:
    """Parameters of ``sim_arm_node``: the PyBullet push world behaving as a ros2_control arm."""

    robot: str = "pusher"
    """``pusher`` or ``panda``."""
    seed: int = 0
    """Episode ``k`` (counted from 0 by the reset service) uses ``seed + k``."""
    lock_step: bool = False
    """Step only when the command for the last published state arrives (deterministic)."""
    control_rate_hz: float = 25.0
    """Free-running mode: wall-clock rate of physics steps and state publications."""
    randomize: bool = True
    """Sample dynamics (and Peng's random action timestep) at each reset."""
    dynamics_mode: str = "train"
    """``train`` (training ranges) or ``heldout`` (outside them)."""
    sample_ranges: str = ""
    """JSON ``{"parameter": [low, high]}``: sample these parameters from these ranges instead
    (e.g. one held-out band, the others in range); ``mu`` stays normalised over the training
    ranges."""
    episode_steps: int = 0
    """Control steps per lock-step episode; 0 uses the robot's default."""
    command_topic: str = TOPIC_COMMANDS
    """Forward-command-controller topic of absolute joint position targets."""
    lock_step_timeout_s: float = 0.5
    """Lock-step: republish the state, then hold, when no command arrives within this."""
    lock_step_start_delay_s: float = 0.05
    """Lock-step: wait after a goal before the first state, so every node has seen the goal."""
    lock_step_wait_topic: str = ""
    """Lock-step: also wait for one message on this ``std_msgs/Bool`` topic per published state
    before stepping (e.g. ``/dynamics_ood``: the estimator's answer), so that a node outside the
    command path keeps pace as it would in real time; empty: the command alone. A state whose
    message does not come within ``lock_step_timeout_s`` steps on the command."""
    frame_id: str = "world"
    """Frame of the puck and goal poses."""


@dataclass
class ControllerConfig:
    """Parameters of ``controller_node``: the lifecycle node running the ONNX policy."""

    policy_path: str = ""
    """ONNX policy (its ``.json`` sidecar next to it); empty: ``models/<robot>_policy.onnx``."""
    robot: str = "pusher"
    """Picks the default model and the default limits file (``config/limits/<robot>.yaml``)."""
    control_rate_hz: float = 0.0
    """Loop (and watchdog) rate; 0 uses ``1 / control_period_s`` from the model metadata."""
    trigger: str = "timer"
    """``timer``: fixed-rate loop on the latest inputs; ``state``: one command per state."""
    lock_step: bool = False
    """Evaluation with a lock-step arm: one command per (joint state, puck pose) pair of equal
    stamps, for the states of the current goal's episode only (a state of the next episode
    waits for its goal: :data:`LOCK_STEP_EPISODE_GAP_S`); staleness is judged on the node clock
    (sim time) only."""
    command_topic: str = TOPIC_COMMANDS
    """Where the absolute joint position targets go (a forward command controller)."""
    joint_state_topic: str = TOPIC_JOINT_STATES
    """Joint states in (any joint order; extra joints are ignored)."""
    puck_topic: str = TOPIC_PUCK_POSE
    """Puck pose in (``geometry_msgs/PoseStamped``)."""
    goal_topic: str = TOPIC_GOAL_POSE
    """Goal in; every new message starts an episode (recurrent state reset)."""
    e_stop_topic: str = TOPIC_E_STOP
    """``std_msgs/Bool``: true holds until a false arrives."""
    stale_periods: float = 2.0
    """Inputs older than this many control periods lead to a hold."""
    range_margin: float = 0.5
    """Fraction of each feature's training range tolerated outside it."""
    expected_contract_hash: str = ""
    """When set, refuse a model whose observation/action contract differs."""
    diagnostics_period_s: float = 1.0
    """Period of the ``/diagnostics`` status."""
    autostart: bool = False
    """Configure and activate at start-up (otherwise a lifecycle manager does)."""
    executor: str = "events"
    """``events`` (default): rclpy's experimental EventsExecutor, driven by a ``spin_once`` loop
    (its ``spin()`` is broken in the Jazzy wheels); ``single``: rclpy's
    SingleThreadedExecutor. The EventsExecutor needs 1.4-1.6x less CPU per message at the same
    latency (``docs/benchmarks_ros.md``). Read once at start-up."""
    # --- commands the arm accepts (meta_control.limits, .motion, .workspace) ------------------
    command_mode: str = "forward"
    """``forward``: absolute joint targets (``std_msgs/Float64MultiArray``) on
    ``command_topic``, one per tick, for a forward command controller or the simulated arm;
    ``trajectory``: ``trajectory_msgs/JointTrajectory`` on ``trajectory_topic`` for ros2_control's
    joint_trajectory_controller (positions, velocities and accelerations of a motion with
    continuous acceleration, stamped, ending at rest)."""
    trajectory_topic: str = TOPIC_JOINT_TRAJECTORY
    """Where trajectories go in ``trajectory`` mode."""
    trajectory_lookahead_s: float = 0.015
    """``trajectory`` mode: a tick changes the motion from the first knot at least half this
    after it on; the trajectory controller must receive it before then (see
    :class:`meta_control.motion.MotionLimiter`)."""
    dry_run: bool = False
    """Run everything but publish the would-be commands on ``/meta_controller/dry_run/commands``
    (forward) or ``/meta_controller/dry_run/joint_trajectory`` (trajectory) instead: nothing is
    published on the command or trajectory topic."""
    limits: str = ""
    """The arm's limits file: empty -> ``config/limits/<robot>.yaml``; a name (``fr3``) ->
    ``config/limits/<name>.yaml``; else a path (:mod:`meta_control.limits`)."""
    limits_margin: float = -1.0
    """Safety margin in [0, 1) applied to the file's limits; negative: the file's ``margin``."""
    velocity_scale: float = 1.0
    """Fraction (0, 1] of the velocity limits to use (slow mode); can be set while running."""
    acceleration_scale: float = 1.0
    """Fraction (0, 1] of the acceleration limits to use."""
    joint_names: str = ""
    """The robot's names for the model's joints: empty (the model's own), a comma-separated list
    in model order, or ``model:robot`` pairs (:func:`meta_control.limits.parse_joint_map`).
    Joint states are read, limits looked up and trajectories named by these."""
    frame_id: str = ""
    """Frame the puck and goal poses must be in (else the controller holds); empty: the limits
    file's ``frame``; ``*``: any."""
    urdf_path: str = ""
    """The arm's URDF for the workspace guard; empty: the limits file's ``workspace.urdf``."""
    reanchor_on_goal: bool = False
    """Restart the commanded motion at rest at the measured positions after each new goal: for
    a simulated arm that jumps to its start pose between episodes, never for a real one
    (lock-step evaluation always does)."""
    # --- reaction to dynamics outside the training distribution (meta_control.safety) -------
    on_ood: str = "continue"
    """What a sustained ``/dynamics_ood`` flag does: ``continue`` (report it in
    ``/diagnostics`` only), ``slow`` (the velocity limits scaled by ``ood_slow_scale``) or
    ``hold`` (brake to rest and hold)."""
    ood_topic: str = TOPIC_OOD
    """The estimator's ``std_msgs/Bool`` OOD flag, one per estimate."""
    ood_sustain_periods: int = 3
    """Consecutive flagged estimates (one per control period) that engage the reaction."""
    ood_release: str = "episode"
    """What releases an engaged reaction: ``episode`` (the next goal) or ``operator`` (only
    the ``~/reset_ood`` service, ``std_srvs/Trigger``)."""
    ood_slow_scale: float = 0.3
    """``on_ood: slow``: the fraction of ``velocity_scale`` to move at."""
    ood_stale_periods: float = 3.0
    """With a reaction configured, an OOD stream silent for this many control periods (counted
    from the episode's goal at the earliest) counts as flagged while it stays silent."""


@dataclass
class EstimatorConfig:
    """Parameters of ``estimator_node``: the ONNX dynamics estimator on the same stream."""

    estimator_path: str = ""
    """ONNX estimator; empty: ``models/<robot>_estimator.onnx``."""
    robot: str = "pusher"
    """Only used to pick the default model."""
    joint_state_topic: str = TOPIC_JOINT_STATES
    """Joint states in."""
    puck_topic: str = TOPIC_PUCK_POSE
    """Puck pose in."""
    goal_topic: str = TOPIC_GOAL_POSE
    """Goal in; every new message resets the estimator."""
    action_topic: str = TOPIC_POLICY_ACTION
    """The policy's raw actions (the estimator's ``prev_action``)."""
    lock_step: bool = False
    """Deterministic evaluation with a lock-step arm: each joint state is paired with the puck
    pose of equal stamp and with the action the controller computed from the previous state
    (actions carry their input's stamp), whatever order the topics arrive in; a state of the
    next episode waits for its goal (:data:`LOCK_STEP_EPISODE_GAP_S`)."""
    range_margin: float = 0.5
    """Fraction of each feature's training range tolerated outside it."""
    ood_ignore_steps: int = 10
    """Steps after a reset during which the OOD flag stays false (the std starts high)."""
    max_input_age_s: float = 0.25
    """A puck pose older than this (relative to the joint state) is not used."""
    joint_names: str = ""
    """The robot's names for the model's joints, as the controller's parameter of the same name
    (:func:`meta_control.limits.parse_joint_map`)."""


NODE_CONFIGS: dict[str, type] = {
    "sim_arm_node": SimArmConfig,
    "controller_node": ControllerConfig,
    "estimator_node": EstimatorConfig,
}
"""Console-script name -> its configuration dataclass."""


def parameter_names(executable: str) -> set[str]:
    """Names of the parameters ``executable`` declares (plus rclpy's ``use_sim_time``)."""
    return {f.name for f in dataclasses.fields(NODE_CONFIGS[executable])} | {"use_sim_time"}
