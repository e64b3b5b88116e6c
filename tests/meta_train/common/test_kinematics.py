"""Forward kinematics from the URDF matches PyBullet; push features; FK inside the export."""

import numpy as np
import pytest
import torch

from meta_train.common.kinematics import ForwardKinematics, PushFeatures
from sim.world import NOMINAL_TABLE_HEIGHT_M, PushWorld


@pytest.mark.parametrize("robot", ["pusher", "panda"])
def test_forward_kinematics_matches_pybullet(robot):
    world = PushWorld(robot)
    spec = world.spec
    base = np.array(spec.base_position) + [0.0, 0.0, NOMINAL_TABLE_HEIGHT_M]
    fk = ForwardKinematics(spec.urdf, spec.joint_names, spec.ee_link, base)
    rng = np.random.default_rng(0)
    qs = rng.uniform(world.joint_lower, world.joint_upper, size=(20, world.n_joints))
    batch = fk(torch.tensor(qs, dtype=torch.float32)).numpy()
    for q, got in zip(qs, batch, strict=True):
        for i, qi in zip(world.joint_indices, q, strict=True):
            world.sim.client.resetJointState(world.robot_uid, i, qi)
        np.testing.assert_allclose(got, world.ee_position(), atol=1e-5)
    world.close()


def test_fk_rejects_chains_that_do_not_match_the_commanded_joints():
    world = PushWorld("pusher")
    with pytest.raises(ValueError, match="chain"):
        ForwardKinematics(world.spec.urdf, ["joint1", "joint2"], "tip", (0, 0, 0))
    with pytest.raises(ValueError, match="not found"):
        ForwardKinematics(world.spec.urdf, world.spec.joint_names, "no_link", (0, 0, 0))
    world.close()


def test_push_features_and_their_frame_stacked_form():
    world = PushWorld("pusher")
    spec = world.spec
    fk = ForwardKinematics(spec.urdf, spec.joint_names, spec.ee_link, (0.0, 0.0, 0.0))
    feats = PushFeatures(fk, 3)
    obs = torch.randn(2, 5, 9)
    goal = torch.randn(2, 5, 2)
    o, g = feats(obs, goal)
    assert o.shape == (2, 5, 15) and g.shape == (2, 5, 4)
    torch.testing.assert_close(o[..., 12:], obs[..., 6:9] - o[..., 9:12])
    torch.testing.assert_close(g[..., 2:], goal - obs[..., 6:8])
    stacked = PushFeatures(fk, 3, act_dim=3, history=2)
    frames = torch.cat([obs, torch.zeros(2, 5, 3), obs + 1, torch.ones(2, 5, 3)], dim=-1)
    so, sg = stacked(frames, goal)
    assert so.shape == (2, 5, 2 * (15 + 3))
    torch.testing.assert_close(so[..., :15], o)
    torch.testing.assert_close(sg, g)
    # training computes the tool once per batch and passes it to every network call
    tool = feats.tool(obs)
    o2, g2 = feats(obs, goal, tool=tool)
    assert torch.equal(o2, o) and torch.equal(g2, g)
    torch.testing.assert_close(tool, o[..., 9:12])
    with pytest.raises(ValueError, match="unstacked"):
        stacked(frames, goal, tool=tool)
    world.close()
