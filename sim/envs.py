"""Goal-conditioned gymnasium env: a robot (sim.world) composed with a task (sim.task).

Observation (a dict, as HER expects):
  ``observation``  = [joint positions (n, rad), joint velocities (n, rad/s), puck position (3, m)]
                     plus Gaussian observation noise (Peng et al.), i.e. only what joint encoders
                     and a puck tracker give a real robot: velocities of the puck and the
                     end-effector pose must be inferred (recurrent policies do so from history);
  ``achieved_goal`` = puck (x, y); ``desired_goal`` = goal (x, y).
Action: joint position target offsets from the current positions, in rad, bounded by
``max_offset_rad`` per joint: what a ros2_control forward position controller accepts once
added to the measured positions.
``info`` carries ``is_success`` (at the training threshold), ``is_success_0.05``,
``is_success_0.07``, ``distance``, ``mu`` (normalised dynamics), ``mu_raw``, ``dt_s`` and
``contact_step``: the index of the first observation after the robot first touched the puck
(a contact at that instant, or the puck moved from its start), -1 before.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sim.dynamics import DynamicsSpace
from sim.task import SUCCESS_THRESHOLDS_M, PushTask
from sim.world import CommandError, PushWorld

# Scale of each observation term, for observation noise (std = obs_noise_frac x scale).
OBS_NOISE_SCALE = {"joint_positions": 0.3, "joint_velocities": 0.5, "puck_position": 0.1}


CONTACT_MOVE_M = 0.002
"""Puck travel from its start that counts as a contact the robot made between two
observations (a tap can bat the puck away within one control period)."""


class InvalidActionError(ValueError):
    """An action had the wrong shape or non-finite values."""


class PushEnv(gym.Env):
    """Push a puck to a goal with a randomized-dynamics arm.

    Args:
        robot: ``"pusher"`` (3-link planar arm) or ``"panda"`` (Franka Panda).
        reward_type: ``sparse`` or ``dense``.
        randomize: sample dynamics each reset (False: nominal dynamics, fixed 40 ms steps).
        dynamics_mode: ``train`` (training ranges) or ``heldout`` (outside them).
        dynamics_ranges: training-range overrides, e.g. ``{"puck_mass": (0.1, 0.2)}``.
        fixed_dynamics: parameter names or groups kept at nominal (ablations).
        sample_ranges: sampling ranges that replace the training ranges of some parameters
            while ``mu`` stays normalised over the training ranges, e.g. one parameter in a
            held-out band (:meth:`DynamicsSpace.heldout_band`) with the others in range.
        heldout_factor: width of the held-out bands.
        distance_threshold: success radius for reward and ``is_success``.
        episode_steps: episode length in control steps (default: the robot's); the env
            truncates itself there (``max_episode_steps``). Not gymnasium's
            ``make(max_episode_steps=)``, which only adds a ``TimeLimit`` wrapper.
        render_mode: ``rgb_array`` or None.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 25}

    def __init__(
        self,
        robot: str = "pusher",
        reward_type: str = "sparse",
        randomize: bool = True,
        dynamics_mode: str = "train",
        dynamics_ranges: Mapping[str, Sequence[float]] | None = None,
        fixed_dynamics: Sequence[str] = (),
        sample_ranges: Mapping[str, Sequence[float]] | None = None,
        heldout_factor: float = 1.5,
        distance_threshold: float = 0.05,
        episode_steps: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        if episode_steps is not None and (
            not isinstance(episode_steps, numbers.Integral)
            or isinstance(episode_steps, bool)
            or episode_steps < 1
        ):
            raise ValueError(f"episode_steps must be an integer >= 1, got {episode_steps!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.world = PushWorld(robot)
        self.robot = self.world.spec
        space: DynamicsSpace = self.world.dynamics_space
        if dynamics_ranges:
            space = space.with_ranges(dynamics_ranges)
        if fixed_dynamics:
            space = space.fixed(list(fixed_dynamics))
        if sample_ranges:
            space = space.with_ranges(sample_ranges)
        if dynamics_mode == "heldout":
            space = space.heldout(heldout_factor)
        elif dynamics_mode != "train":
            raise ValueError(f"dynamics_mode must be 'train' or 'heldout', got {dynamics_mode!r}")
        if not randomize:
            space = space.without_randomization()
        self.dynamics_space = space
        # Normalisation is always over the *training* ranges, also when sampling held-out values.
        self._train_space = (
            self.world.dynamics_space.with_ranges(dynamics_ranges)
            if dynamics_ranges
            else self.world.dynamics_space
        )
        self.randomize = randomize
        self.task = PushTask(
            area_center=self.robot.puck_area_center,
            distance_threshold=distance_threshold,
            reward_type=reward_type,
        )
        self.max_episode_steps = episode_steps or self.robot.episode_steps
        self.render_mode = render_mode
        n = self.world.n_joints
        self.n_joints = n
        self.obs_dim = 2 * n + 3
        self.max_offset = np.full(n, self.robot.max_offset_rad, dtype=np.float32)
        self.action_space = spaces.Box(-self.max_offset, self.max_offset, dtype=np.float32)
        big = np.float32(np.inf)
        self.observation_space = spaces.Dict(
            {
                "observation": spaces.Box(-big, big, shape=(self.obs_dim,), dtype=np.float32),
                "achieved_goal": spaces.Box(-big, big, shape=(2,), dtype=np.float32),
                "desired_goal": spaces.Box(-big, big, shape=(2,), dtype=np.float32),
            }
        )
        self._noise_scale = np.concatenate(
            [
                np.full(n, OBS_NOISE_SCALE["joint_positions"]),
                np.full(n, OBS_NOISE_SCALE["joint_velocities"]),
                np.full(3, OBS_NOISE_SCALE["puck_position"]),
            ]
        )
        self._noise_index = self.dynamics_space.index("obs_noise_frac")
        self._keep_out = self._rest_tool_position()
        self._goal = np.zeros(2)
        self._last_dt = 0.0

    # --- description used by training, export and the ROS side ------------------------------
    @property
    def joint_names(self) -> list[str]:
        return self.world.joint_names

    @property
    def mu_names(self) -> list[str]:
        return self.dynamics_space.names

    @property
    def obs_terms(self) -> list[dict[str, Any]]:
        """Ordered observation terms with sizes and units (the deployment contract)."""
        n = self.n_joints
        return [
            {"name": "joint_positions", "size": n, "units": "rad"},
            {"name": "joint_velocities", "size": n, "units": "rad/s"},
            {"name": "puck_position", "size": 3, "units": "m"},
        ]

    @property
    def control_period_s(self) -> float:
        return 0.04

    def _rest_tool_position(self) -> np.ndarray:
        """Where the pushing tool rests at reset: the puck never starts on top of it."""
        self.world.reset(self.task.area_center, self.task.area_center)
        return self.world.ee_position()[None]

    # --- gym API ------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        rng = self.np_random
        mu = self.dynamics_space.sample(rng)
        if options and "mu" in options:
            mu = np.asarray(options["mu"], dtype=np.float64)
        start, goal = self.task.sample_start_and_goal(rng, keep_out=self._keep_out)
        if options and "goal" in options:
            goal = np.asarray(options["goal"], dtype=np.float64)
        if options and "puck" in options:
            start = np.asarray(options["puck"], dtype=np.float64)
        self.world.reset(start, goal, mu)
        self._goal = goal.astype(np.float64)
        # mu changes only here: its normalised form is computed once per episode.
        self._mu_norm = self._train_space.normalise(self.world.mu).astype(np.float32)
        self._mu_raw = self.world.mu.copy()
        self._steps = 0
        self._last_dt = 0.0
        self._puck_start = start[:2].astype(np.float64)
        self._contact_step = -1
        obs = self._observe()
        return obs, self._info(obs)

    def step(self, action):
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (self.n_joints,):
            raise InvalidActionError(f"action must have shape ({self.n_joints},), got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise InvalidActionError(f"action has non-finite values: {a.tolist()}")
        a = np.clip(a, -self.max_offset, self.max_offset)
        q = self._q  # true positions read by the last observation; nothing moved since
        try:
            self.world.apply_command(q + a)
        except CommandError as e:  # pragma: no cover - shapes are checked above
            raise InvalidActionError(str(e)) from e
        n_sub = (
            self.world.sample_substeps(self.np_random)
            if self.randomize
            else self.world.nominal_substeps
        )
        self.world.step(n_sub)
        self._last_dt = n_sub * self.world.sim.timestep_s
        self._steps += 1
        obs = self._observe()
        if self._contact_step < 0 and (
            self.world.tool_touches_puck()
            or np.linalg.norm(obs["achieved_goal"] - self._puck_start) > CONTACT_MOVE_M
        ):
            self._contact_step = self._steps
        info = self._info(obs)
        d = info["distance"]
        if self.task.reward_type == "sparse":
            reward = -float(d > self.task.distance_threshold)
        else:
            reward = -d
        truncated = self._steps >= self.max_episode_steps
        return obs, reward, False, truncated, info

    def compute_reward(self, achieved_goal, desired_goal, info=None) -> np.ndarray:
        """Vectorised reward (shape of the leading axes) for HER relabelling."""
        return self.task.compute_reward(achieved_goal, desired_goal, info)

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        c = self.world.sim.client
        cx, cy = self.robot.puck_area_center
        view = c.computeViewMatrixFromYawPitchRoll(
            [cx - 0.1, cy, self.world.table_height_m], 1.3, 90, -50, 0, 2
        )
        proj = c.computeProjectionMatrixFOV(60, 4 / 3, 0.05, 5.0)
        _, _, rgba, _, _ = c.getCameraImage(320, 240, view, proj)
        return np.asarray(rgba, dtype=np.uint8).reshape(240, 320, 4)[..., :3]

    def close(self) -> None:
        self.world.close()

    # --- helpers ------------------------------------------------------------------------------
    def _observe(self) -> dict[str, np.ndarray]:
        s = self.world.read_state()
        self._q = s.joint_positions
        obs = np.concatenate([s.joint_positions, s.joint_velocities, s.puck_position])
        frac = self.world.mu[self._noise_index]
        if frac > 0.0:
            obs = obs + self.np_random.normal(0.0, 1.0, obs.shape) * (frac * self._noise_scale)
        return {
            "observation": obs.astype(np.float32),
            "achieved_goal": s.puck_position[:2].astype(np.float32),
            "desired_goal": self._goal.astype(np.float32),
        }

    def _info(self, obs) -> dict[str, Any]:
        diff = obs["achieved_goal"] - obs["desired_goal"]
        d = math.sqrt(float(diff[0] * diff[0] + diff[1] * diff[1]))
        info = {
            "is_success": d < self.task.distance_threshold,
            "distance": d,
            "mu": self._mu_norm.copy(),
            "mu_raw": self._mu_raw.copy(),
            "dt_s": self._last_dt,
            "contact_step": self._contact_step,
        }
        for t in SUCCESS_THRESHOLDS_M:
            info[f"is_success_{t:.2f}"] = d < t
        return info
