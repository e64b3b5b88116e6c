"""Expert action labels (DAgger): the scripted pusher labels the states the learner visits."""

import warnings

import gymnasium as gym
import numpy as np
import pytest

import sim  # noqa: F401
from meta_train.rdpg.teacher import INFO_KEY, INFORMED_KEY, ExpertActionInfo
from sim.planner import TEACHERS, make_teacher


def make(env_id="MetaPusherPush-v0"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gym.make(env_id)


@pytest.mark.parametrize("knowledge", TEACHERS)
def test_each_label_is_the_experts_action_for_the_observation_it_comes_with(knowledge):
    env = ExpertActionInfo(make(), knowledge=knowledge)
    # same world, same observations: same actions
    reference = make_teacher(env.unwrapped, knowledge)
    rng = np.random.default_rng(0)
    obs, info = env.reset(seed=3)
    reference.reset()
    labels, moved = [], False
    for _ in range(30):
        expected = reference(obs)
        np.testing.assert_allclose(info[INFO_KEY], expected, atol=1e-6)
        assert info[INFORMED_KEY] is reference.knows_dynamics
        labels.append(info[INFO_KEY])
        high = env.action_space.high
        obs, _, _, _, info = env.step(rng.uniform(-high, high).astype(np.float32))
        moved |= not np.allclose(labels[-1], labels[0])
    assert moved  # the labels follow the random trajectory, they are not one constant
    env.close()


@pytest.mark.parametrize("knowledge", TEACHERS)
def test_each_label_says_whether_the_teacher_knew_the_dynamics(knowledge):
    env = ExpertActionInfo(make(), knowledge=knowledge)
    obs, info = env.reset(seed=3)
    informed = [info[INFORMED_KEY]]
    for _ in range(env.unwrapped.max_episode_steps):
        obs, _, _, _, info = env.step(info[INFO_KEY])  # the teacher drives
        informed.append(info[INFORMED_KEY])
    if knowledge == "contact":  # uninformed on the way to the puck, informed once it showed
        first = informed.index(True)
        assert 0 < first and all(informed[first:])
    else:
        assert set(informed) == {knowledge in ("privileged", "planning")}
    env.close()


def test_labels_come_from_a_teacher_with_the_given_prior():
    env = ExpertActionInfo(make(), knowledge="contact", prior_friction=0.1)
    assert env.expert.knowledge == "contact" and env.expert.prior_friction == 0.1
    env.close()


def test_expert_labels_need_a_push_env():
    with pytest.raises(ValueError, match="push env"):
        ExpertActionInfo(make("PointGoal-v0"))
