"""A planning pusher: the scripted pusher's approach, with every push chosen in the world itself.

The scripted pusher (:mod:`sim.scripted`) models a push as a calibrated tap: the tip advances,
stops, and the puck slides on under Coulomb friction and damping. On the 3-link pusher that model
holds; on the Panda it does not: the heavier arm tracks its targets over two control periods, a
sticky puck moves with the tip rather than sliding off it, and the tap sizes the model asks for
move such a puck a millimetre a step. The planning pusher keeps the scripted approach and
line-up and replaces the tap model by search. With the tip lined up behind a puck at rest it
closes the gap (the arm-puck distance from the collision shapes), saves the PyBullet world,
simulates candidate pushes (the tip travels a distance ``D`` along a line at up to
``push_speed_m`` a step, then holds) with the very commands the real push will send, predicts
where the puck comes to rest, restores the world and executes the best: distances first, then a
refinement between the best one's neighbours, then the best two turned a few degrees either way
(an off-centre contact deflects the puck). No push is made when none is predicted to bring the
puck nearer. A push runs to its end as simulated, so on the nominal control period the
prediction is exact (median error 2e-5 m); the sampled period (0.04 s + Exp(lambda)) makes it
1.9 mm. The world is the true one (sampled masses, friction, damping, gains), so this is a
privileged teacher, like the privileged scripted pusher: a student learns to act as it does from
its history alone.

Its arm moves in joint space towards each step's inverse-kinematics target, all joints scaled by
one factor so that none exceeds the action bound (the scripted pusher clips each joint on its
own, which bends the tip's path off the straight line it planned), and beyond the reach of a
hand pointing straight down the orientation is left free.
"""

from __future__ import annotations

import math
import time

import numpy as np

from sim.envs import PushEnv
from sim.scripted import KNOWLEDGE, ScriptedPusher

# The teachers of the push task: the scripted pusher's three states of knowledge and the
# planning pusher.
TEACHERS = (*KNOWLEDGE, "planning")
# Candidate push distances of the first pass (m): geometric, from a tap to a long shove.
PUSH_CANDIDATES_M = (0.002, 0.004, 0.008, 0.014, 0.022, 0.035, 0.055, 0.085, 0.13)
# Puck speed below which the puck counts as at rest: a push is planned only then (m/s).
AT_REST_M_S = 0.01
# Puck speed below which a simulated push stops; the rest of the slide is extrapolated (m/s).
SIM_SETTLED_M_S = 0.03
# Arm-puck gap below which the tip counts as at the puck, ready to push (m).
CONTACT_GAP_M = 0.003
# Distance of the tip from where the simulated push had it beyond which a push is dropped (m):
# the sampled control period moves it a few millimetres off; another policy's actions
# (labelling its states) take it further.
PLAN_DEVIATION_M = 0.015
# A push is made only if it is predicted to bring the puck this much nearer the goal (m).
MIN_GAIN_M = 0.005


class PlanningPusher(ScriptedPusher):
    """Scripted approach and line-up; pushes chosen by simulating candidates (save/restore).

    Args:
        env: the (unwrapped) push env whose world is read and simulated.
        candidates_m: push distances tried first; the best one's neighbours are then bisected.
        refine: candidates of the second pass, spread between the best one's neighbours.
        turns_deg: angles (degrees) by which the best two pushes are turned in a third pass.
        settle_steps: control steps simulated after the push ends (the puck slides on); the rest
            of its slide is extrapolated under the true friction and damping.
        push_speed_m: the tip's travel per control step during a push (m).
        down_reach_m: distance from the arm's base (m) up to which the hand points straight
            down; beyond it inverse kinematics leaves the orientation free.
        **kwargs: :class:`~sim.scripted.ScriptedPusher`'s approach parameters.

    Attributes:
        plan_s, plans, labels: wall time spent planning, pushes planned and actions given since
            construction (``plan_s / labels`` is the cost per label).
    """

    def __init__(
        self,
        env: PushEnv,
        candidates_m: tuple[float, ...] = PUSH_CANDIDATES_M,
        refine: int = 3,
        turns_deg: tuple[float, ...] = (-16.0, -8.0, 8.0, 16.0),
        settle_steps: int = 4,
        push_speed_m: float = 0.02,
        down_reach_m: float = 0.78,
        **kwargs,
    ) -> None:
        kwargs.setdefault("knowledge", "privileged")
        if kwargs["knowledge"] != "privileged":
            raise ValueError("the planning pusher simulates the true world: knowledge must be "
                             f"'privileged', got {kwargs['knowledge']!r}")
        if not candidates_m or min(candidates_m) <= 0.0:
            raise ValueError(f"candidates_m must be positive distances, got {candidates_m}")
        self.candidates_m = tuple(sorted(candidates_m))
        self.refine = int(refine)
        self.turns_deg = tuple(float(t) for t in turns_deg)
        self.settle_steps = int(settle_steps)
        self.down_reach_m = float(down_reach_m)
        self.plan_s = 0.0
        self.plans = 0
        self.labels = 0
        super().__init__(env, push_speed_m=push_speed_m, **kwargs)

    def reset(self) -> None:
        super().reset()
        # Executing push: (tip start xy, direction, distance, steps sent, the tip's simulated
        # positions after each step).
        self._plan: tuple[np.ndarray, np.ndarray, float, int, list[np.ndarray]] | None = None

    # --- control ------------------------------------------------------------------------------
    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        self.labels += 1
        if self._plan is not None:
            # A planned push runs to its end as simulated, whatever the approach logic would
            # say of the sliding puck; then the tip holds until the puck stops.
            # Labelling another policy's states, the tip goes elsewhere: the plan is dropped.
            world = self.env.world
            start, line, distance, k, path = self._plan
            expected = path[min(k, len(path)) - 1]
            k += 1
            vel = np.array(world.sim.client.getBaseVelocity(world.puck_uid)[0][:2])
            if float(np.linalg.norm(world.ee_position()[:2] - expected)) > PLAN_DEVIATION_M:
                self._plan = None
            elif k <= math.ceil(distance / self.push_speed_m) or (
                float(np.linalg.norm(vel)) > AT_REST_M_S
            ):
                self._plan = (start, line, distance, k, path)
                return self._command(start + line * min(distance, k * self.push_speed_m))
            else:
                self._plan = None
        return super().__call__(obs)

    def _command(self, tip_xy: np.ndarray) -> np.ndarray:
        """The action that moves the tip towards ``tip_xy`` at the push height."""
        world = self.env.world
        q_target = self._ik(np.array([tip_xy[0], tip_xy[1], self._tip_z()]))
        return self._joint_offsets(q_target, world.joint_positions())

    def _joint_offsets(self, q_target: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Offsets towards ``q_target``, scaled together so that none exceeds the bound."""
        delta = q_target - q
        bound = np.asarray(self.env.max_offset, dtype=np.float64)
        scale = max(1.0, float(np.max(np.abs(delta) / bound)))
        return (delta / scale).astype(np.float32)

    def _ik(self, target_xyz: np.ndarray) -> np.ndarray:
        """Joint targets for the tip at ``target_xyz``: pointing down where the arm reaches
        so, free of orientation beyond ``down_reach_m`` from the base (a tilted hand reaches
        about 9 cm further)."""
        world = self.env.world
        base = np.asarray(world.spec.base_position[:2])
        if float(np.linalg.norm(np.asarray(target_xyz[:2]) - base)) <= self.down_reach_m:
            return super()._ik(target_xyz)
        q = world.sim.client.calculateInverseKinematics(
            world.robot_uid, world.ee_index, list(target_xyz), maxNumIterations=50
        )
        return np.asarray(q[: world.n_joints])

    def _gap(self) -> float:
        """Distance between the arm and the puck (m): the Panda's closed fingers are no pin,
        so the geometric gap of a round tip would be off by their width."""
        world = self.env.world
        points = world.sim.client.getClosestPoints(world.robot_uid, world.puck_uid, 0.1)
        return min((p[8] for p in points), default=0.1)

    def _push(self, puck, puck_vel, rest, goal, direction, ee, friction, rate):
        """With the tip lined up behind a puck at rest: close the gap, then plan a push."""
        if float(np.linalg.norm(puck_vel)) > AT_REST_M_S:
            return super()._push(puck, puck_vel, rest, goal, direction, ee, friction, rate)
        gap = self._gap()
        if gap > CONTACT_GAP_M:
            # Close in along the line without touching (a run-up would bat the puck away).
            return ee + direction * (gap - 0.5 * CONTACT_GAP_M), 1.0
        push = self._plan_push(ee, direction, goal, friction, rate)
        if push is None:
            return ee, 1.0  # no push brings the puck nearer: leave it be
        distance, line, path = push
        self._plan = (ee.copy(), line, distance, 1, path)
        return ee + line * min(distance, self.push_speed_m), 1.0

    # --- planning -----------------------------------------------------------------------------
    def _plan_push(
        self, ee: np.ndarray, direction: np.ndarray, goal: np.ndarray, friction: float,
        rate: float,
    ) -> tuple[float, np.ndarray, list[np.ndarray]] | None:
        """The push (distance, direction, the tip's simulated path) whose simulated outcome
        rests nearest the goal, or None when none of them brings the puck ``MIN_GAIN_M`` nearer
        than it is.

        First the candidate distances along the puck-goal line, then ``refine`` distances
        between the best one's neighbours, then the best two distances with the push turned
        by each of ``turns_deg`` (an off-centre contact deflects the puck; turning the push
        corrects it)."""
        t0 = time.perf_counter()
        world = self.env.world
        sim = world.sim
        state = sim.save_state()
        cost: dict[tuple[float, float], float] = {}
        paths: dict[tuple[float, float], list[np.ndarray]] = {}

        def run(d: float, turn_deg: float) -> None:
            if (d, turn_deg) not in cost:
                cost[(d, turn_deg)], paths[(d, turn_deg)] = self._simulate(
                    state, ee, _turn(direction, turn_deg), d, goal, friction, rate
                )

        try:
            for d in self.candidates_m:
                run(d, 0.0)
            if self.refine > 0:
                ds = sorted(d for d, _ in cost)
                i = ds.index(min(cost, key=cost.get)[0])
                lo, hi = ds[max(i - 1, 0)], ds[min(i + 1, len(ds) - 1)]
                for d in np.linspace(lo, hi, self.refine + 2)[1:-1]:
                    run(float(d), 0.0)
            for d, _ in sorted(cost, key=cost.get)[:2]:
                for turn in self.turns_deg:
                    run(d, float(turn))
        finally:
            sim.restore_state(state)
            sim.client.removeState(state)
        self.plans += 1
        self.plan_s += time.perf_counter() - t0
        d, turn = min(cost, key=cost.get)
        if cost[(d, turn)] > float(np.linalg.norm(goal - world.puck_xy())) - MIN_GAIN_M:
            return None
        return d, _turn(direction, turn), paths[(d, turn)]

    def _simulate(
        self, state: int, ee: np.ndarray, direction: np.ndarray, distance: float,
        goal: np.ndarray, friction: float, rate: float,
    ) -> tuple[float, list[np.ndarray]]:
        """Distance from the goal at which the puck rests after one simulated push, and the
        tip's positions after each simulated step."""
        world = self.env.world
        client = world.sim.client
        world.sim.restore_state(state)
        z = self._tip_z()
        n_push = math.ceil(distance / self.push_speed_m)
        path = []
        for k in range(1, n_push + self.settle_steps + 1):
            tip = ee + direction * min(distance, k * self.push_speed_m)
            q = world.joint_positions()
            q_target = self._ik(np.array([tip[0], tip[1], z]))
            world.apply_command(q + self._joint_offsets(q_target, q))
            world.sim.step(world.nominal_substeps)
            path.append(world.ee_position()[:2])
            if k >= n_push:
                vel = np.array(client.getBaseVelocity(world.puck_uid)[0][:2])
                if float(np.linalg.norm(vel)) < SIM_SETTLED_M_S:
                    break
        puck = world.puck_xy()
        vel = np.array(client.getBaseVelocity(world.puck_uid)[0][:2])
        speed = float(np.linalg.norm(vel))
        rest = puck + vel / max(speed, 1e-9) * self._stopping_distance(speed, friction, rate)
        return float(np.linalg.norm(goal - rest)), path


def _turn(direction: np.ndarray, degrees: float) -> np.ndarray:
    """``direction`` (x, y) turned by ``degrees`` counter-clockwise."""
    if degrees == 0.0:
        return direction.copy()
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    return np.array([c * direction[0] - s * direction[1], s * direction[0] + c * direction[1]])


def make_teacher(env: PushEnv, name: str, prior_friction: float = 0.3) -> ScriptedPusher:
    """The teacher ``name`` (one of ``TEACHERS``) on the unwrapped push env ``env``;
    ``prior_friction`` is the observing and contact teachers' belief before the puck shows its
    own (the others read the true value)."""
    if name == "planning":
        return PlanningPusher(env)
    if name not in KNOWLEDGE:
        raise ValueError(f"teacher must be one of {TEACHERS}, got {name!r}")
    return ScriptedPusher(env, knowledge=name, prior_friction=prior_friction)
