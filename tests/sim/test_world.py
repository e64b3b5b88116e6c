"""The physics world without the gym wrapper: load, command, step, sense, set dynamics."""

import numpy as np
import pytest

from sim.world import PUCK_HEIGHT_M, CommandError, PushWorld


@pytest.fixture(params=["pusher", "panda"])
def world(request):
    w = PushWorld(request.param)
    yield w
    w.close()


def test_command_moves_joints_towards_target(world):
    cx, cy = world.spec.puck_area_center
    world.reset((cx + 0.1, cy), (cx, cy + 0.1))
    q0 = world.joint_positions()
    target = q0 + 0.04
    world.apply_command(target)
    for _ in range(5):
        world.step()
    q = world.joint_positions()
    assert np.max(np.abs(q - target)) < 0.01
    assert world.time_s == pytest.approx(5 * 0.04)


def test_hold_keeps_the_arm_still(world):
    cx, cy = world.spec.puck_area_center
    world.reset((cx + 0.1, cy), (cx, cy + 0.1))
    q0 = world.joint_positions()
    for _ in range(10):
        world.hold()
        world.step()
    assert np.max(np.abs(world.joint_positions() - q0)) < 2e-3


def test_bad_commands_are_rejected():
    w = PushWorld("pusher")
    for bad in (np.array([np.nan, 0, 0]), np.zeros(2), np.full(3, np.inf)):
        with pytest.raises(CommandError):
            w.apply_command(bad)
    w.close()


def test_commands_are_clamped_to_joint_limits():
    w = PushWorld("pusher")
    sent = w.apply_command(np.array([10.0, -10.0, 0.0]))
    assert sent[0] == w.joint_upper[0] and sent[1] == w.joint_lower[1]
    w.close()


def test_dynamics_are_applied_to_the_simulation(world):
    space = world.dynamics_space
    mu = space.nominal.copy()
    mu[space.index("puck_mass")] = 0.33
    mu[space.index("puck_friction")] = 2.5
    mu[space.index("table_height")] = 0.74
    link = world.spec.dynamic_links[0]
    mu[space.index(f"link_mass_scale/{link}")] = 2.0
    cx, cy = world.spec.puck_area_center
    world.reset((cx, cy), (cx + 0.1, cy), mu)
    c = world.sim.client
    info = c.getDynamicsInfo(world.puck_uid, -1)
    assert info[0] == pytest.approx(0.33) and info[1] == pytest.approx(2.5)
    assert c.getDynamicsInfo(world.robot_uid, world.link_indices[0])[0] == pytest.approx(
        2.0 * world._default_mass[0]
    )
    for _ in range(3):
        world.step()
    assert world.read_state().puck_position[2] == pytest.approx(0.74 + PUCK_HEIGHT_M / 2, abs=2e-3)


def test_action_timestep_follows_exponential_law():
    w = PushWorld("pusher")
    space = w.dynamics_space
    mu = space.nominal.copy()
    mu[space.index("action_timestep_rate")] = 125.0  # mean extra delay 8 ms = 4 substeps
    w.set_dynamics(mu)
    rng = np.random.default_rng(0)
    n = np.array([w.sample_substeps(rng) for _ in range(3000)])
    assert n.min() >= 20 and abs(n.mean() - 24.0) < 0.3
    w.close()


def test_puck_slides_but_does_not_tip_at_the_highest_friction():
    """Pushed by the pin at friction 5 (top of Peng's range), the puck stays upright."""
    w = PushWorld("pusher")
    try:
        space = w.dynamics_space
        mu = space.nominal.copy()
        mu[space.index("puck_friction")] = 5.0
        tip = w.ee_position()
        w.reset((tip[0] + 0.045, tip[1]), (tip[0] + 0.2, tip[1]), mu)
        tip = w.ee_position()[:2]
        start = w.puck_xy()
        c = w.sim.client
        worst_tilt = 0.0
        for k in range(25):  # sweep the tip through the puck's position, towards +x
            target = np.array([tip[0] + 0.006 * (k + 1), tip[1], w.table_height_m + 0.025])
            q = c.calculateInverseKinematics(w.robot_uid, w.ee_index, list(target))
            w.apply_command(np.asarray(q[: w.n_joints]))
            w.step()
            qx, qy, _, _ = w.read_state().puck_orientation
            worst_tilt = max(worst_tilt, np.degrees(2 * np.arcsin(min(1.0, np.hypot(qx, qy)))))
        assert np.linalg.norm(w.puck_xy() - start) > 0.03  # it was pushed
        assert worst_tilt < 5.0
    finally:
        w.close()


def test_a_spun_puck_stops_like_a_disc_on_its_face():
    """Spinning and sliding at friction 4, the puck stops within a Coulomb-law distance.

    Bullet's cylinder rests on a few rim points; without spinning friction a spun puck rolls
    on its rim with the contact at rest and coasts for tens of centimetres.
    """
    w = PushWorld("pusher")
    try:
        space = w.dynamics_space
        mu = space.nominal.copy()
        mu[space.index("puck_friction")] = 4.0
        mu[space.index("puck_damping")] = 0.01
        tip = w.ee_position()
        w.reset((tip[0] + 0.15, tip[1]), (tip[0] + 0.3, tip[1]), mu)
        start = w.puck_xy()
        v = 0.35  # m/s; with 14 rad/s of spin the rim point on the table is at rest
        # A slight tilting rate, as a push gives it, puts the puck on one rim point.
        w.sim.client.resetBaseVelocity(w.puck_uid, [v, 0.0, 0.0], [0.5, 0.0, -14.0])
        for _ in range(25):  # 1 s
            w.step()
        travel = np.linalg.norm(w.puck_xy() - start)
        spin = w.sim.client.getBaseVelocity(w.puck_uid)[1][2]
        assert travel < 0.02  # 0.32 m without spinning friction
        assert abs(spin) < 0.5  # 10.5 rad/s without
    finally:
        w.close()


def _panda_push(world: PushWorld, friction: float, direction: np.ndarray) -> float:
    """Line the Panda's closed fingers up 7 cm behind a puck of ``friction`` (nominal dynamics
    otherwise) and sweep them 15 cm along ``direction`` at 1 cm a step; the puck's travel."""
    c = world.sim.client
    space = world.dynamics_space
    mu = space.nominal.copy()
    mu[space.index("puck_friction")] = friction
    puck = np.array([0.58, 0.0])
    world.reset(puck, puck + 0.15 * direction, mu)
    down = c.getQuaternionFromEuler([np.pi, 0.0, 0.0])
    z = world.table_height_m + 0.025

    def go(xy: np.ndarray) -> None:
        q_ik = c.calculateInverseKinematics(
            world.robot_uid, world.ee_index, [xy[0], xy[1], z], targetOrientation=down
        )
        q = world.joint_positions()
        delta = np.asarray(q_ik[: world.n_joints]) - q
        world.apply_command(q + delta / max(1.0, float(np.abs(delta).max()) / 0.05))
        world.step()

    start = puck - 0.07 * direction
    for _ in range(40):
        go(start)
    for k in range(15):
        go(start + direction * 0.01 * (k + 1))
    for _ in range(5):
        go(start + direction * 0.15)
    return float(np.dot(world.puck_xy() - puck, direction))


@pytest.mark.parametrize("direction", [(1.0, 0.0), (0.0, 1.0), (0.7071, 0.7071)])
def test_the_panda_pushes_a_high_friction_puck_with_its_fingertip_pad(direction):
    """Its finger meshes met the puck's rim and pressed it into the table (a friction-2 puck
    moved millimetres); the contact pad meets its side and pushes it along."""
    w = PushWorld("panda")
    try:
        assert _panda_push(w, 2.0, np.asarray(direction)) > 0.08
    finally:
        w.close()


def test_the_panda_contact_pad_replaces_the_finger_meshes():
    """One box on the left finger, none on the right, the hand's own mesh kept."""
    w = PushWorld("panda")
    try:
        c = w.sim.client
        links = {c.getJointInfo(w.robot_uid, i)[12].decode(): i
                 for i in range(c.getNumJoints(w.robot_uid))}
        left = c.getCollisionShapeData(w.robot_uid, links["panda_leftfinger"])
        assert [s[2] for s in left] == [3]  # GEOM_BOX
        assert c.getCollisionShapeData(w.robot_uid, links["panda_rightfinger"]) == ()
        assert c.getCollisionShapeData(w.robot_uid, links["panda_hand"])[0][2] == 5  # mesh
        assert c.getDynamicsInfo(w.robot_uid, links["panda_leftfinger"])[1] == pytest.approx(0.1)
    finally:
        w.close()
