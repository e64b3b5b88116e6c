"""A privileged scripted pusher: a sanity check that the task is solvable, and a demo baseline.

It reads the true puck position and velocity and the true sampled dynamics from the world (not
the noisy observation) and uses PyBullet's inverse kinematics, so it is not a deployable policy;
it shows what success looks like, and it is the teacher whose demonstrations a recurrent student
learns from (the student has to infer the dynamics from history).
"""

from __future__ import annotations

import math

import numpy as np

from sim.envs import PushEnv
from sim.world import PUCK_RADIUS_M, TABLE_FRICTION

# Radius of the pushing pin and of the Panda's closed fingertips, near enough (m).
TIP_RADIUS_M = 0.012
# Height of the tip's targets above the table (m): half the puck's height.
TIP_HEIGHT_M = 0.025
GRAVITY_M_S2 = 9.81
# What a scripted pusher may know of the puck's dynamics (see ``ScriptedPusher``).
KNOWLEDGE = ("privileged", "observing", "contact")
# Tip travel per control step away from the puck, and near it when not pushing (m).
FREE_STEP_M = 0.03
CAREFUL_STEP_M = 0.015


class ScriptedPusher:
    """Go behind the puck (opposite the goal), line up, then tap it towards the goal.

    The position-controlled arm reaches each step's target within a few milliseconds and stops,
    so every advance of the tip bats the puck: it leaves at several times the tip's mean speed
    and slides on after the tip stops, far when friction is low. The push is therefore a
    sequence of calibrated taps. With the tip touching the puck at rest on the puck-goal line, a
    tap moves the tip by ``move`` (at most ``push_speed_m``), chosen so that the launch speed
    ``launch_gain * move`` is the speed from which the puck, under the true Coulomb friction and
    linear damping, stops at the goal (``v^2 = 2 mu g d`` without damping). The first tap aims
    at ``push_gain`` of the remaining distance, later ones at 90%; after each tap the launch gain
    is re-estimated from how far the puck will slide. While the puck slides the tip follows just
    behind it; a tip further than a few millimetres off the puck closes in without a run-up.
    When friction pins the puck to the table (a tap does not move it: the tip's friction presses
    it down), the tip backs off ``strike_back_m`` and strikes it with a run-up instead.

    Planning uses the puck's predicted rest position (true velocity, friction and damping): the
    tip backs off the puck once it will come to rest within ``done_m`` of the goal, a puck that
    will rest within ``accept_m`` is left alone when the tip is not lined up behind it (a
    re-approach from ahead risks sweeping it away), and re-approach waypoints are placed around
    the rest position. A tip more than ``realign_m`` off the line steps back behind the puck onto
    it; losing the puck (tip beside or ahead of it, ``lost_m``) restarts the approach, which goes
    beside the puck, behind it, then onto the line, straight to the line-up point whenever the
    way there clears the puck.

    Args:
        env: the (unwrapped) push env whose world is read.
        standoff_m: distance from the puck centre to the pre-push point.
        push_speed_m: largest tip move of one tap, and of a strike beyond the contact (m).
        push_gain: share of the remaining distance the first tap aims to slide the puck.
        done_m: predicted puck-goal distance below which the tip backs off.
        realign_m: lateral offset from the puck-goal line that interrupts the push to re-align.
        lost_m: lateral offset at which the puck counts as lost.
        accept_m: predicted puck-goal distance at which a puck that is not lined up is left be.
        launch_gain: initial puck launch speed per metre of tip move (1/s), learned per episode.
        strike_back_m: gap the tip backs off to before striking a pinned puck (m).
        knowledge: what the pusher knows of the puck's friction and damping (``KNOWLEDGE``).
            ``"privileged"`` (default) reads the true values from the world. ``"observing"``
            knows only what a history of observations can tell (a teacher a recurrent student
            can imitate): it starts from ``prior_friction`` (slippery, so the first tap is
            short), keeps the launch gain at ``launch_gain``, and after each of its own taps,
            once the puck has stopped, sets its friction belief to the value under which that
            tap's launch speed slides the puck exactly as far as it went; damping is taken at
            its nominal value. A tap that does not move the puck quadruples the belief.
            ``"contact"`` acts on ``prior_friction`` and the nominal damping until the
            dynamics show in the puck's motion (the tip has touched the puck, or the puck has
            moved ``reveal_m`` from where the episode started it, whoever moved it), and on the
            true values from then on: its actions are a function of what the history shows
            whichever policy drove the arm, which the observing teacher's (inferred from its
            own intended taps) are not when it labels a student's states.
        prior_friction: the friction belief before the first tap (observing) or contact
            (contact); for the observing teacher 0.3 was the best of 0.1 and 0.3 on 150 tasks
            of reset seeds 20,000+, train and held out.
        reveal_m: puck travel from its start that reveals the dynamics to the contact teacher.
    """

    def __init__(
        self,
        env: PushEnv,
        standoff_m: float = 0.07,
        push_speed_m: float = 0.02,
        push_gain: float = 0.6,
        done_m: float = 0.015,
        realign_m: float = 0.01,
        lost_m: float = 0.045,
        accept_m: float = 0.03,
        launch_gain: float = 100.0,
        strike_back_m: float = 0.015,
        knowledge: str = "privileged",
        prior_friction: float = 0.3,
        reveal_m: float = 0.003,
    ) -> None:
        if knowledge not in KNOWLEDGE:
            raise ValueError(f"knowledge must be one of {KNOWLEDGE}, got {knowledge!r}")
        if not prior_friction > 0.0:
            raise ValueError(f"prior_friction must be > 0, got {prior_friction}")
        self.env = env
        self.standoff_m = standoff_m
        self.push_speed_m = push_speed_m
        self.push_gain = push_gain
        self.done_m = done_m
        self.realign_m = realign_m
        self.lost_m = lost_m
        self.accept_m = accept_m
        self.launch_gain = launch_gain
        self.strike_back_m = strike_back_m
        self.knowledge = knowledge
        self.prior_friction = prior_friction
        self.reveal_m = reveal_m
        self.reset()

    def reset(self) -> None:
        """Forget the last episode: phase, learned launch gain and tap bookkeeping."""
        self._phase = "approach"
        self._kappa = self.launch_gain
        # Pending tap: puck and tip before it, push direction, planned tip move.
        self._tap: tuple[np.ndarray, np.ndarray, np.ndarray, float] | None = None
        self._taps = 0
        self._jammed = False
        self._striking = False
        self._friction_belief = self.prior_friction * TABLE_FRICTION
        self._puck_start: np.ndarray | None = None
        self._revealed = self.knowledge == "privileged"

    @property
    def knows_dynamics(self) -> bool:
        """Whether the last action was chosen on the true friction and damping (privileged:
        always; observing: never; contact: once the puck has shown them)."""
        return self._revealed

    # --- privileged reads ---------------------------------------------------------------------
    def _dynamics(self) -> tuple[float, float]:
        """Puck friction (times the table's) and linear damping rate (1/s): the true values
        (privileged, or contact once revealed), or the friction belief and the nominal
        damping."""
        world = self.env.world
        space = world.dynamics_space
        if self._revealed:
            friction = float(world.mu[space.index("puck_friction")]) * TABLE_FRICTION
            damping = float(world.mu[space.index("puck_damping")])
        else:
            friction = self._friction_belief
            damping = space.params[space.index("puck_damping")].nominal
        rate = -math.log(max(1.0 - damping, 1e-6))  # Bullet: v *= (1 - damping) ** dt
        return friction, rate

    @staticmethod
    def _stopping_distance(speed: float, friction: float, rate: float) -> float:
        """How far a puck sliding at ``speed`` goes under Coulomb friction and linear damping."""
        decel = friction * GRAVITY_M_S2
        if speed <= 0.0:
            return 0.0
        if rate < 1e-6:
            return speed * speed / (2.0 * decel)
        return speed / rate - decel / rate**2 * math.log1p(rate * speed / decel)

    @staticmethod
    def _stop_speed(distance: float, friction: float, rate: float) -> float:
        """Speed from which a sliding puck comes to rest after ``distance`` (bisection)."""
        if distance <= 0.0:
            return 0.0
        lo, hi = 0.0, math.sqrt(2.0 * friction * GRAVITY_M_S2 * distance) + rate * distance
        for _ in range(30):
            mid = 0.5 * (lo + hi)
            if ScriptedPusher._stopping_distance(mid, friction, rate) < distance:
                lo = mid
            else:
                hi = mid
        return lo

    # --- control ------------------------------------------------------------------------------
    def __call__(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        world = self.env.world
        client = world.sim.client
        puck = world.puck_xy()
        ee = world.ee_position()[:2]
        if self.knowledge == "contact" and not self._revealed:
            if self._puck_start is None:
                self._puck_start = puck.copy()
            touched = np.linalg.norm(ee - puck) < PUCK_RADIUS_M + TIP_RADIUS_M + 0.002
            moved = np.linalg.norm(puck - self._puck_start) > self.reveal_m
            self._revealed = bool(touched or moved)
        friction, rate = self._dynamics()
        puck_vel = np.array(client.getBaseVelocity(world.puck_uid)[0][:2])
        speed_now = float(np.linalg.norm(puck_vel))
        rest = puck + puck_vel / max(speed_now, 1e-9) * self._stopping_distance(
            speed_now, friction, rate
        )
        goal = np.asarray(obs["desired_goal"], dtype=np.float64)
        to_goal = goal - puck
        dist = float(np.linalg.norm(to_goal))
        rest_dist = float(np.linalg.norm(goal - rest))
        direction = to_goal / max(dist, 1e-6)
        rel = ee - puck
        if self.knowledge != "observing":
            self._learn_from_tap(puck, rest, ee, friction, rate)
        elif speed_now < 0.01:
            self._infer_friction(puck, ee, rate)  # the tapped puck has come to rest: how far?
            friction, rate = self._dynamics()
        side = np.array([-direction[1], direction[0]])
        if np.dot(rel, side) < 0:
            side = -side
        # Re-approach waypoints around where the puck will come to rest.
        plan_dir = goal - rest
        plan_dir = plan_dir / max(float(np.linalg.norm(plan_dir)), 1e-6)
        plan_side = np.array([-plan_dir[1], plan_dir[0]])
        if np.dot(ee - rest, plan_side) < 0:
            plan_side = -plan_side
        waypoints = {
            "approach": rest + plan_side * 0.12,  # beside the puck, on the arm's side
            "around": rest + plan_side * 0.12 - plan_dir * 0.1,
            "line_up": rest - plan_dir * self.standoff_m,
        }
        order = ["approach", "around", "line_up", "push"]
        contact = PUCK_RADIUS_M + TIP_RADIUS_M
        already_behind = np.dot(rel, direction) < -0.04 and abs(np.dot(rel, side)) < 0.05
        if self._phase in ("approach", "around") and (
            already_behind or _segment_clear(ee, waypoints["line_up"], puck, contact + 0.025)
        ):
            self._phase = "line_up"
        elif self._phase == "line_up" and not (
            already_behind or _segment_clear(ee, waypoints["line_up"], puck, contact + 0.01)
        ):
            self._phase = "approach"  # the puck is in the way: go round it
        while self._phase != "push":
            if np.linalg.norm(ee - waypoints[self._phase]) > 0.02:
                break
            self._phase = order[order.index(self._phase) + 1]
        speed = FREE_STEP_M
        away = rel / max(float(np.linalg.norm(rel)), 1e-9)
        backed_off = puck + away * (contact + 0.03)
        if rest_dist < self.done_m:
            target = backed_off  # done: back off the puck, whichever side the tip is on
            speed = CAREFUL_STEP_M
        elif self._phase == "push":
            lateral = abs(np.dot(rel, side))
            if np.dot(rel, direction) > -0.01 or lateral > self.lost_m:
                self._phase = "approach"  # lost the puck
                target = waypoints["approach"] if rest_dist >= self.accept_m else backed_off
            elif lateral > self.realign_m:
                target = puck - direction * (contact + 0.015)  # back onto the line
                speed = CAREFUL_STEP_M
            else:
                target, speed = self._push(
                    puck, puck_vel, rest, goal, direction, ee, friction, rate
                )
        elif rest_dist < self.accept_m and np.linalg.norm(rel) < contact + 0.05:
            target = backed_off  # good enough: do not sweep past the puck to re-approach it
            speed = CAREFUL_STEP_M
        else:
            target = waypoints[self._phase]
        # Small Cartesian increments keep the tip on a straight line (no sweeping arcs).
        delta = target - ee
        target = ee + delta * min(1.0, speed / max(np.linalg.norm(delta), 1e-9))
        q_target = self._ik(np.array([target[0], target[1], self._tip_z()]))
        return self._joint_offsets(q_target, world.joint_positions())

    def _joint_offsets(self, q_target: np.ndarray, q: np.ndarray) -> np.ndarray:
        """The action: offsets towards ``q_target``, each joint clipped to the bound."""
        return np.clip(q_target - q, -self.env.max_offset, self.env.max_offset).astype(np.float32)

    def _tip_z(self) -> float:
        """Height of the tool tip's targets (m): ``TIP_HEIGHT_M`` above the table."""
        return self.env.world.table_height_m + TIP_HEIGHT_M

    def _learn_from_tap(
        self, puck: np.ndarray, rest: np.ndarray, ee: np.ndarray, friction: float, rate: float
    ) -> None:
        """Update the launch gain (puck speed per metre of tip move) from the last tap."""
        tap = self._end_tap(rest, ee)
        if tap is not None and not self._jammed and tap[1] > 1e-4:
            slide, move = tap
            self._kappa = self._stop_speed(slide, friction, rate) / move

    def _end_tap(self, rest: np.ndarray, ee: np.ndarray) -> tuple[float, float] | None:
        """Close the pending tap: (how far it slid the puck to ``rest``, the tip's move), and
        whether the puck jammed; None when no tap is pending.

        The contact teacher takes the tip's move from where the tip went (``ee``), not from
        its plan: labelling a student's states, the executed action is the student's, and a
        tip that neither advanced a millimetre nor ends pressed on the puck (a pinned puck
        stops the tip) closes no tap, nor reads as a jammed puck.
        """
        if self._tap is None:
            return None
        before, ee_before, direction, move = self._tap
        self._tap = None
        if self.knowledge == "contact":
            move = float(np.dot(ee - ee_before, direction))
            pressed = np.linalg.norm(ee - rest) < PUCK_RADIUS_M + TIP_RADIUS_M + 1e-3
            if move < 1e-3 and not pressed:
                return None
        slide = float(np.dot(rest - before, direction))
        self._jammed = slide < 0.002
        return slide, move

    def _infer_friction(self, puck: np.ndarray, ee: np.ndarray, rate: float) -> None:
        """Observing teacher: the friction under which the last tap's launch speed slides the
        puck as far as it went (the launch gain stays at its prior)."""
        tap = self._end_tap(puck, ee)
        if tap is None:
            return
        slide, move = tap
        if self._jammed:
            self._friction_belief = min(4.0 * self._friction_belief, 50.0)
            return
        speed = self.launch_gain * move
        lo, hi = math.log(1e-3), math.log(100.0)
        for _ in range(40):  # the stopping distance falls as friction rises
            mid = 0.5 * (lo + hi)
            if self._stopping_distance(speed, math.exp(mid), rate) > slide:
                lo = mid
            else:
                hi = mid
        self._friction_belief = math.exp(0.5 * (lo + hi))

    def _push(
        self,
        puck: np.ndarray,
        puck_vel: np.ndarray,
        rest: np.ndarray,
        goal: np.ndarray,
        direction: np.ndarray,
        ee: np.ndarray,
        friction: float,
        rate: float,
    ) -> tuple[np.ndarray, float]:
        """Tip target and step length of one push step, the tip behind the puck on the line."""
        contact = PUCK_RADIUS_M + TIP_RADIUS_M
        gap = max(float(np.linalg.norm(ee - puck)) - contact, 0.0)
        if float(np.linalg.norm(puck_vel)) > 0.03:
            # Still sliding: follow just behind it, never into it.
            return puck - direction * (contact + 0.004), 2.0 * self.push_speed_m
        if self._jammed and not self._striking:
            # The puck stuck under the tip (friction pins it to the table): back off to strike.
            self._striking = True
            return puck - direction * (contact + self.strike_back_m), 2.0 * self.push_speed_m
        if self._striking:
            self._striking = False
            self._tap = (puck.copy(), ee.copy(), direction.copy(), gap + self.push_speed_m)
            return puck - direction * (contact - self.push_speed_m), 1.0
        if gap > 0.004:
            # Close in without touching: a run-up would bat the puck away.
            return puck - direction * (contact + 0.002), 2.0 * self.push_speed_m
        remaining = float(np.dot(goal - rest, direction)) - 0.25 * self.done_m
        share = self.push_gain if self._taps == 0 else 0.9
        need = self._stop_speed(max(share * remaining, 0.0), friction, rate)
        move = float(np.clip(need / self._kappa, 0.001, self.push_speed_m))
        self._tap = (puck.copy(), ee.copy(), direction.copy(), move)
        self._taps += 1
        advance = move - gap
        return puck - direction * (contact - advance), move + 1e-3

    def _ik(self, target_xyz: np.ndarray) -> np.ndarray:
        world = self.env.world
        c = world.sim.client
        kw = {}
        if world.spec.name == "panda":
            kw["targetOrientation"] = c.getQuaternionFromEuler([np.pi, 0.0, 0.0])
        q = c.calculateInverseKinematics(
            world.robot_uid, world.ee_index, list(target_xyz), maxNumIterations=50, **kw
        )
        return np.asarray(q[: world.n_joints])


def _segment_clear(a: np.ndarray, b: np.ndarray, point: np.ndarray, radius: float) -> bool:
    """Whether the segment from ``a`` to ``b`` stays at least ``radius`` from ``point``."""
    ab = b - a
    t = float(np.clip(np.dot(point - a, ab) / max(float(np.dot(ab, ab)), 1e-12), 0.0, 1.0))
    return float(np.linalg.norm(a + t * ab - point)) >= radius
