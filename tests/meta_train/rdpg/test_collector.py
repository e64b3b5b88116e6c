"""The collector process: it rolls out exactly what the inline collector would, a pipelined run
trains and resumes exactly, and its failures reach the learner as clear errors."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
import torch
from rdpg_helpers import small_pusher

from meta_train.cli import main
from meta_train.common.config import ConfigError
from meta_train.common.policies import build_actor
from meta_train.rdpg.collector import Collector, CollectorError, CollectorProcess
from meta_train.rdpg.trainer import RDPGTrainer

DIMS = ("obs_dim", "goal_dim", "act_dim", "mu_dim", "horizon")


def _labelled(tmp_path, **kw):
    return small_pusher(tmp_path, demo_episodes=2, demo_fraction=0.5, expert_labels=True,
                        bc_weight=1.0, **kw)


def _fields(ro):
    return [ro.obs, ro.action, ro.achieved_goal, ro.desired_goal, ro.mu, ro.expert_action,
            ro.expert_informed]


def test_the_collector_process_rolls_out_what_the_inline_collector_does(tmp_path):
    cfg = _labelled(tmp_path, warmup_episodes=0)
    trainer = RDPGTrainer(cfg)  # inline: its collector acts with the trainer's actor
    dims = {k: v for k, v in trainer._dims().items() if k in DIMS}
    torch.manual_seed(1)
    for p in trainer.actor.parameters():  # weights the fresh copy in the process cannot guess
        p.data.normal_(0.0, 0.3)
    weights = trainer._actor_weights()
    state = np.random.default_rng([7, 1]).bit_generator.state
    inline = Collector(cfg, trainer.actor, np.random.default_rng([7, 1]), "cpu", dims,
                       trainer.action_scale)
    copy = build_actor(cfg.actor_spec(), dims["obs_dim"], dims["goal_dim"], dims["act_dim"],
                       trainer.action_scale.tolist())
    remote = CollectorProcess(cfg, copy, dims, trainer.action_scale, state)
    try:
        expected = [inline.demo()] + inline.iteration(warm=False, room=10_000)
        demos, _ = remote.demos(1)
        remote.submit(weights, warm=False, room=10_000)
        got, rng_after = remote.receive()
        got = demos + got
        assert [ro.demo for ro in got] == [ro.demo for ro in expected]
        assert len(got) >= 2
        for a, b in zip(got, expected, strict=True):
            for x, y in zip(_fields(a), _fields(b), strict=True):
                np.testing.assert_array_equal(x, y)
        assert rng_after == inline.rng.bit_generator.state
        # the policy's episodes depend on the weights sent with the request
        remote.submit({k: v * 0.5 for k, v in weights.items()}, warm=False, room=0)
        other, _ = remote.receive()
        assert len(other) == 1  # no room left for a demonstration
        assert not np.array_equal(other[0].action, expected[1].action)
    finally:
        remote.close()
        inline.close()
        trainer.close()


def test_a_pipelined_run_trains_and_stores_every_episode(tmp_path):
    trainer = RDPGTrainer(_labelled(tmp_path, collector="process", total_env_steps=800))
    with pytest.raises(RuntimeError, match="collector process"):
        trainer.envs  # noqa: B018  (the envs live in the other process)
    trainer.train()
    trainer.close()
    assert trainer.remote is None  # stopped at the end of the run
    horizon = trainer.horizon
    assert trainer.env_steps == trainer.replay.size * horizon
    assert trainer.env_steps <= 800 and trainer.env_steps + 2 * horizon > 800
    assert trainer.replay.demo[: trainer.replay.size].sum() >= 2  # the initial ones at least
    assert trainer.updates == (trainer.iteration - 1) * 2  # warm-up: one iteration of two
    assert (tmp_path / "run" / "final").is_dir()
    with open(tmp_path / "run" / "progress.csv", newline="") as f:
        waits = [float(r["learner_wait_share"]) for r in csv.DictReader(f)]
    assert waits and all(0.0 <= w <= 1.0 for w in waits)  # the learner's time spent waiting


@pytest.mark.parametrize("collector", ["inline", "process"])
def test_a_run_resumed_from_a_checkpoint_mid_run_equals_one_run_through(tmp_path, collector):
    straight = RDPGTrainer(_labelled(tmp_path / "a", collector=collector, total_env_steps=900))
    straight.train()
    straight.close()
    # the same run killed after its checkpoint at iteration 4 (with a collection in flight)
    first = RDPGTrainer(_labelled(tmp_path / "b", collector=collector, total_env_steps=900,
                                  keep_checkpoints=10))
    first.train()
    first.close()
    run = tmp_path / "b" / "run"
    for ckpt in (run / "checkpoints").iterdir():
        if int(ckpt.name.split("_")[1]) > 4:
            shutil.rmtree(ckpt)
    resumed = RDPGTrainer(_labelled(tmp_path / "b", collector=collector, total_env_steps=900),
                          resume=True)
    assert resumed.iteration == 4
    resumed.train()
    resumed.close()
    assert resumed.env_steps == straight.env_steps and resumed.updates == straight.updates
    for (name, p), q in zip(straight.actor.state_dict().items(),
                            resumed.actor.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    np.testing.assert_array_equal(straight.replay.obs, resumed.replay.obs)
    np.testing.assert_array_equal(straight.replay.demo, resumed.replay.demo)


def test_a_failing_collector_process_raises_a_clear_error_and_the_cli_exits_1(tmp_path, capsys):
    trainer = RDPGTrainer(small_pusher(tmp_path, collector="process"))
    trainer._start_remote()
    trainer.remote.receive()
    trainer.remote.submit({"no_such_weight": np.zeros(3, np.float32)}, warm=False, room=0)
    with pytest.raises(CollectorError, match="no_such_weight"):
        trainer.remote.receive()
    trainer.remote._proc.kill()
    trainer.remote._proc.join()
    with pytest.raises(CollectorError, match="exited"):
        trainer.remote.submit(trainer._actor_weights(), warm=False, room=0)
        trainer.remote.receive()
    trainer.close()
    # bad combinations are refused before anything starts
    with pytest.raises(ConfigError, match="vector 'sync'"):
        RDPGTrainer(small_pusher(tmp_path, run_name="x", collector="process", vector="async"))
    assert main(["rdpg-her", "--collector", "threads", "--run-dir", str(tmp_path)]) == 2
    assert "collector must be" in capsys.readouterr().err


def test_the_cli_runs_the_pipelined_preset(tmp_path):
    rc = main(["rdpg-her", "--preset", "pusher", "--collector", "process", "--hidden", "16",
               "--batch-episodes", "4", "--total-env-steps", "1000", "--demo-episodes", "2",
               "--eval-every", "2", "--eval-episodes", "1", "--final-eval-episodes", "2",
               "--run-dir", str(tmp_path), "--run-name", "p", "--no-progress"])
    assert rc == 0
    assert "collector: process" in (tmp_path / "p" / "config.yaml").read_text()
    assert (tmp_path / "p" / "final").is_dir()


def test_a_run_error_during_training_is_one_line_and_exit_1(tmp_path, capsys, monkeypatch):
    def fail(self):
        raise CollectorError("the collector process exited with code -9")

    monkeypatch.setattr(RDPGTrainer, "train", fail)
    rc = main(["rdpg-her", "--preset", "pusher", "--hidden", "16", "--total-env-steps", "1000",
               "--demo-episodes", "0", "--run-dir", str(tmp_path), "--run-name", "e",
               "--no-progress"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "exited with code -9" in err and "the last complete checkpoint is kept" in err
