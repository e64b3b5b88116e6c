"""Rollout datasets: collected from a real policy run or an exported model, in one process or
several (the same episodes), saved and loaded whole, refused when damaged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from meta_train.common.policies import load_actor_from_run
from meta_train.common.rollouts import (
    ActorPolicy,
    DatasetError,
    Exploration,
    RolloutDataset,
    RuntimePolicy,
    collect_rollouts,
)

SHIPPED = Path(__file__).resolve().parents[3] / "models" / "pusher_policy.onnx"


@pytest.fixture(scope="module")
def dataset(tiny_run) -> RolloutDataset:
    actor, run = load_actor_from_run(tiny_run, "final")
    return collect_rollouts(ActorPolicy(actor, run), "train", episodes=3, seed=50,
                            noise_std=0.1)


def test_a_dataset_holds_whole_episodes_with_their_dynamics(dataset, tiny_run):
    n, t = 3, 50
    assert len(dataset) == n and dataset.horizon == t
    assert dataset.obs.shape == (n, t + 1, 9) and dataset.action.shape == (n, t, 3)
    assert dataset.achieved_goal.shape == (n, t + 1, 2) and dataset.desired_goal.shape == (n, 2)
    assert dataset.reset_seed.tolist() == [50, 51, 52]
    assert np.all(np.abs(dataset.mu) <= 1.0) and np.std(dataset.mu, axis=0).max() > 0
    assert np.all(np.abs(dataset.action) <= 0.05 + 1e-6)
    np.testing.assert_array_equal(dataset.prev_action[:, 0], 0.0)
    np.testing.assert_array_equal(dataset.prev_action[:, 1:], dataset.action)
    s, a, s2 = dataset.transitions()
    np.testing.assert_array_equal(s[:, 1:], s2[:, :-1])
    assert a.shape[:2] == s.shape[:2] == (n, t)
    assert len(dataset.info["mu_names"]) == dataset.mu.shape[1]
    assert dataset.info["policy"].endswith("final")


def test_collection_is_reproducible_and_the_noise_is_seeded(tiny_run, dataset):
    actor, run = load_actor_from_run(tiny_run, "final")
    again = collect_rollouts(ActorPolicy(actor, run), "train", episodes=3, seed=50,
                             noise_std=0.1)
    np.testing.assert_array_equal(again.action, dataset.action)
    quiet = collect_rollouts(ActorPolicy(actor, run), "train", episodes=1, seed=50,
                             noise_std=0.0)
    assert not np.array_equal(quiet.action[0], dataset.action[0])
    np.testing.assert_array_equal(quiet.mu[0], dataset.mu[0])  # same task, other actions


def test_an_exported_policy_in_two_processes_gives_the_episodes_of_one():
    policy = RuntimePolicy(SHIPPED)
    kw = dict(exploration=Exploration(noise_std=0.05, probe_fraction=0.5, probe_steps=4),
              env_kwargs={"episode_steps": 30})
    one = collect_rollouts(policy, "train", 4, 70, **kw)
    two = collect_rollouts(policy, "train", 4, 70, workers=2, **kw)
    for name in RolloutDataset._ARRAYS:
        np.testing.assert_array_equal(getattr(one, name), getattr(two, name))
    assert one.horizon == 30 and (one.contact_step >= 0).any()
    assert one.info["policy"] == str(SHIPPED) and policy.refused == 0
    # one parameter sampled from a band beyond its range, mu still over the training range
    band = collect_rollouts(policy, "train", 3, 90, env_kwargs={"episode_steps": 10},
                            sample_ranges={"puck_friction": (0.03, 0.1)})
    i = band.info["mu_names"].index("puck_friction")
    assert np.all(band.mu[:, i] < -1.0)


def test_save_and_load_round_trip_and_damage_is_refused(dataset, tmp_path):
    path = dataset.save(tmp_path / "sub" / "d.npz")
    back = RolloutDataset.load(path)
    for name in RolloutDataset._ARRAYS:
        np.testing.assert_array_equal(getattr(back, name), getattr(dataset, name))
    assert back.info == dataset.info
    assert [p.name for p in path.parent.iterdir()] == ["d.npz"]  # no temporary left behind
    sub = dataset.subset([2, 0])
    np.testing.assert_array_equal(sub.reset_seed, [52, 50])
    with pytest.raises(DatasetError, match="no such dataset"):
        RolloutDataset.load(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(path.read_bytes()[:200])
    with pytest.raises(DatasetError, match="not a rollout dataset"):
        RolloutDataset.load(tmp_path / "bad.npz")
    with pytest.raises(DatasetError, match="mu has shape"):
        RolloutDataset(dataset.obs, dataset.action, dataset.desired_goal, dataset.achieved_goal,
                       dataset.mu[:2], dataset.reset_seed, dataset.contact_step,
                       dataset.success)
    # episodes whose observations leave the data's robust range (a puck thrown off the
    # table) are told apart
    wild = RolloutDataset.concatenate([dataset.subset([0])] * 4)
    wild.obs[-1, 5, -1] = -30.0
    np.testing.assert_array_equal(wild.inliers(quantile=0.02), [True, True, True, False])
