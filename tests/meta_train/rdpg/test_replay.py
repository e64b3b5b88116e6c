"""HER relabelling checked exactly on a hand-made episode."""

import numpy as np
import pytest

from meta_train.rdpg.replay import EpisodeReplay

T = 5


def reward_fn(achieved, desired, info):
    return -(np.linalg.norm(achieved - desired, axis=-1) > 0.5).astype(np.float32)


def make_buffer(strategy, k=4):
    buf = EpisodeReplay(10, T, obs_dim=1, act_dim=1, goal_dim=1, mu_dim=2,
                        compute_reward=reward_fn, her_strategy=strategy, her_k=k)
    # achieved goals 0, 10, 20, 30, 40, 50 (distinct per step), desired goal 999 (never reached)
    ag = np.arange(T + 1, dtype=np.float32)[:, None] * 10
    buf.add(obs=ag, action=np.zeros((T, 1)), achieved_goal=ag,
            desired_goal=np.full((T, 1), 999.0), mu=np.array([0.5, -0.5]))
    return buf, ag[:, 0]


def test_future_goals_come_from_later_in_the_episode():
    buf, ag = make_buffer("future")
    rng = np.random.default_rng(0)
    relabelled = 0
    for _ in range(400):
        goal, reward = buf.relabel(np.array([0]), rng)
        for t in range(T):
            g = goal[0, t, 0]
            if g == 999.0:
                assert reward[0, t] == -1.0
                continue
            relabelled += 1
            src = int(g // 10)
            assert t + 1 <= src <= T  # strictly after transition t: achieved_goal[t'] t' > t
            assert reward[0, t] == (0.0 if src == t + 1 else -1.0)
    assert abs(relabelled / (400 * T) - 0.8) < 0.03  # k=4 -> probability 0.8


def test_final_strategy_uses_last_achieved_goal():
    buf, ag = make_buffer("final")
    goal, reward = buf.relabel(np.array([0]), np.random.default_rng(1))
    mask = goal[0, :, 0] != 999.0
    assert mask.any()
    assert np.all(goal[0, mask, 0] == ag[-1])
    # only the last transition reaches the final achieved goal
    np.testing.assert_array_equal(reward[0, mask], np.where(np.arange(T)[mask] == T - 1, 0, -1))


def test_episode_strategy_uses_any_achieved_goal_of_the_episode():
    buf, ag = make_buffer("episode")
    rng = np.random.default_rng(2)
    seen = set()
    for _ in range(200):
        goal, _ = buf.relabel(np.array([0]), rng)
        seen |= {g for g in goal[0, :, 0] if g != 999.0}
    assert seen == set(ag[1:])


def test_none_keeps_the_original_goals_and_rewards():
    buf, _ = make_buffer("none")
    goal, reward = buf.relabel(np.array([0]), np.random.default_rng(3))
    assert np.all(goal == 999.0) and np.all(reward == -1.0)


def test_sample_returns_whole_episodes_with_prev_actions_and_mu():
    buf = EpisodeReplay(4, 3, 2, 1, 1, 2, reward_fn)
    buf.add(np.zeros((4, 2)), np.array([[1.0], [2.0], [3.0]]), np.zeros((4, 1)), np.zeros((3, 1)),
            np.array([0.1, 0.2]))
    b = buf.sample(2, np.random.default_rng(0))
    assert b.obs.shape == (2, 4, 2) and b.action.shape == (2, 3, 1)
    np.testing.assert_array_equal(b.prev_action[0, :, 0], [0.0, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(b.mu[0], [0.1, 0.2])


def test_ring_buffer_overwrites_oldest_and_roundtrips():
    buf = EpisodeReplay(2, 1, 1, 1, 1, 0, reward_fn)
    for i in range(3):
        buf.add(np.full((2, 1), i), np.zeros((1, 1)), np.zeros((2, 1)), np.zeros((1, 1)),
                np.zeros(0))
    assert buf.size == 2 and set(buf.obs[:, 0, 0]) == {1.0, 2.0}
    other = EpisodeReplay(2, 1, 1, 1, 1, 0, reward_fn)
    other.load_state_dict(buf.state_dict())
    np.testing.assert_array_equal(other.obs, buf.obs)
    assert (other.size, other.next) == (buf.size, buf.next)


def test_bad_strategy_rejected():
    with pytest.raises(ValueError, match="her_strategy"):
        EpisodeReplay(2, 1, 1, 1, 1, 0, reward_fn, her_strategy="random")


def test_moved_fraction_favours_episodes_where_the_object_moved():
    buf = EpisodeReplay(100, 2, 1, 1, 1, 0, reward_fn, moved_fraction=0.5)
    for i in range(100):
        end = 1.0 if i == 7 else 0.0  # only episode 7 moves its achieved goal
        ag = np.array([[0.0], [0.0], [end]])
        buf.add(ag, np.zeros((2, 1)), ag, np.zeros((2, 1)), np.zeros(0))
    assert np.flatnonzero(buf.moved).tolist() == [7]
    b = buf.sample(200, np.random.default_rng(0))
    moved_rows = np.sum(b.achieved_goal[:, -1, 0] == 1.0)
    assert 100 <= moved_rows <= 110  # half the batch, plus the uniform share's 1%
    plain = EpisodeReplay(100, 2, 1, 1, 1, 0, reward_fn)
    plain.load_state_dict(buf.state_dict())
    assert plain.moved[7] and plain.moved.sum() == 1


def test_demonstrations_are_marked_sampled_with_their_goals_and_roundtrip():
    buf = EpisodeReplay(10, 2, 1, 1, 1, 0, reward_fn, her_strategy="future")
    for i in range(6):
        ag = np.array([[0.0], [0.0], [float(i)]])
        buf.add(ag, np.full((2, 1), i), ag, np.full((2, 1), 100.0 + i), np.zeros(0),
                demo=i in (2, 4))
    assert buf.n_demos == 2
    b = buf.sample_demos(50, np.random.default_rng(0))
    assert set(b.action[:, 0, 0]) == {2.0, 4.0}
    np.testing.assert_array_equal(b.goal[:, :, 0], 100.0 + b.action[:, :, 0])  # not relabelled
    other = EpisodeReplay(10, 2, 1, 1, 1, 0, reward_fn)
    other.load_state_dict(buf.state_dict())
    assert np.flatnonzero(other.demo).tolist() == [2, 4]
    with pytest.raises(RuntimeError, match="no demonstrations"):
        EpisodeReplay(10, 2, 1, 1, 1, 0, reward_fn).sample_demos(1, np.random.default_rng(0))


def test_expert_labels_are_sampled_with_original_goals_and_roundtrip():
    buf = EpisodeReplay(10, 2, 1, 1, 1, 0, reward_fn, her_strategy="future")
    for i in range(6):
        ag = np.array([[0.0], [0.0], [float(i)]])
        labels = np.full((2, 1), -float(i)) if i % 2 else None
        buf.add(ag, np.full((2, 1), i), ag, np.full((2, 1), 100.0 + i), np.zeros(0),
                expert_action=labels)
    assert buf.n_labelled == 3
    b = buf.sample_labelled(50, np.random.default_rng(0))
    assert set(b.action[:, 0, 0]) == {1.0, 3.0, 5.0}
    np.testing.assert_array_equal(b.expert_action, -b.action)  # each episode's own labels
    np.testing.assert_array_equal(b.goal[:, :, 0], 100.0 + b.action[:, :, 0])  # not relabelled
    assert buf.sample(4, np.random.default_rng(0)).expert_action is None
    other = EpisodeReplay(10, 2, 1, 1, 1, 0, reward_fn)
    other.load_state_dict(buf.state_dict())
    assert np.flatnonzero(other.labelled).tolist() == [1, 3, 5]
    np.testing.assert_array_equal(other.expert_action[:6], buf.expert_action[:6])
    wrong = EpisodeReplay(10, 2, 1, 2, 1, 0, reward_fn)
    state = buf.state_dict()
    state["action"] = np.zeros((6, 2, 2), np.float32)
    with pytest.raises(ValueError, match="expert_action"):
        wrong.load_state_dict(state)
    with pytest.raises(RuntimeError, match="no expert-labelled"):
        EpisodeReplay(10, 2, 1, 1, 1, 0, reward_fn).sample_labelled(1, np.random.default_rng(0))


def test_whether_each_label_was_informed_is_kept_and_roundtrips():
    buf = EpisodeReplay(10, 3, 1, 1, 1, 0, reward_fn, her_strategy="future")
    ag = np.zeros((4, 1))
    for i in range(4):  # episode i: labels given knowing the dynamics from step i on
        informed = np.arange(3) >= i
        buf.add(ag, np.full((3, 1), i), ag, np.zeros((3, 1)), np.zeros(0),
                expert_action=np.zeros((3, 1)), expert_informed=informed)
    buf.add(ag, np.full((3, 1), 9), ag, np.zeros((3, 1)), np.zeros(0),
            expert_action=np.zeros((3, 1)))  # no flags given: all informed
    for i in range(4):
        np.testing.assert_array_equal(buf.expert_informed[i], np.arange(3) >= i)
    assert buf.expert_informed[4].all()
    other = EpisodeReplay(10, 3, 1, 1, 1, 0, reward_fn)
    other.load_state_dict(buf.state_dict())
    np.testing.assert_array_equal(other.expert_informed[:5], buf.expert_informed[:5])
    state = buf.state_dict()
    del state["expert_informed"]  # a checkpoint from before the flag: every label informed
    other.load_state_dict(state)
    assert other.expert_informed.all()
