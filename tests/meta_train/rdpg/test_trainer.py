"""Tiny-budget runs of the real trainer and CLI: HER works, resume is exact, mu reaches only
the critic, bad checkpoints and flags are refused."""

from __future__ import annotations

import inspect
import json
import shutil

import numpy as np
import pytest
import torch
from rdpg_helpers import small_pusher

from meta_train.cli import main
from meta_train.common.checkpoint import CheckpointError, latest_checkpoint
from meta_train.common.config import ConfigError, build_config
from meta_train.common.evaluation import make_eval_env
from meta_train.common.policies import load_actor_from_run
from meta_train.rdpg.config import PRESETS_DIR, TEACHERS, RDPGConfig, preset_values
from meta_train.rdpg.trainer import RDPGTrainer, td_target
from sim.planner import TEACHERS as SIM_TEACHERS

POINT = dict(env_id="PointGoal-v0", variant="ff", hidden=64, n_envs=2, updates_per_iteration=8,
             batch_episodes=32, warmup_episodes=10, actor_lr=1e-3, critic_lr=1e-3,
             eval_every=1000, checkpoint_every=1000, progress=False)


def point_success(tmp_path, her: str) -> float:
    cfg = RDPGConfig(**POINT, total_env_steps=4000, her_strategy=her, run_dir=str(tmp_path),
                     run_name=her)
    trainer = RDPGTrainer(cfg)
    trainer.train()
    result = trainer.evaluate(episodes=30)
    trainer.close()
    return result.success_005


def test_her_solves_the_toy_goal_env_and_fails_without_it(tmp_path):
    assert point_success(tmp_path, "future") >= 0.8
    assert point_success(tmp_path, "none") <= 0.2


@pytest.mark.parametrize("lr_decay_from", [1.0, 0.25])
def test_resume_continues_with_identical_state(tmp_path, lr_decay_from):
    straight = RDPGTrainer(small_pusher(tmp_path / "a", total_env_steps=800,
                                        lr_decay_from=lr_decay_from))
    straight.train()
    straight.close()

    # a run killed after its checkpoint at 400 steps (it had logged two more evaluations):
    # run it through, then drop every later checkpoint
    first = RDPGTrainer(small_pusher(tmp_path / "b", total_env_steps=800, keep_checkpoints=10,
                                     lr_decay_from=lr_decay_from))
    first.train()
    first.close()
    run = tmp_path / "b" / "run"
    shutil.rmtree(run / "final")
    for ckpt in (run / "checkpoints").iterdir():
        if int(ckpt.name.split("_")[1]) > 4:
            shutil.rmtree(ckpt)
    progress = run / "progress.csv"
    logged = progress.read_text().splitlines()
    resumed = RDPGTrainer(small_pusher(tmp_path / "b", total_env_steps=800,
                                       lr_decay_from=lr_decay_from), resume=True)
    assert resumed.iteration == 4 and resumed.env_steps == 400
    assert progress.read_text().splitlines() == logged[:3]  # rows after the checkpoint dropped
    resumed.train()
    resumed.close()
    assert resumed.updates == straight.updates
    for (name, p), q in zip(straight.actor.state_dict().items(),
                            resumed.actor.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    for p, q in zip(straight.critic_target.parameters(), resumed.critic_target.parameters(),
                    strict=True):
        assert torch.equal(p, q)
    np.testing.assert_array_equal(straight.replay.obs, resumed.replay.obs)
    # one row per evaluation, and the wall clock carries on across the resume
    rows = [line.split(",") for line in progress.read_text().splitlines()[1:]]
    assert [int(r[0]) for r in rows] == [2, 4, 6, 8]
    walls = [float(r[3]) for r in rows]
    assert walls == sorted(walls) and walls[2] >= walls[1]


def _tensorboard_scalars(logdir) -> dict[str, list[tuple[int, float]]]:
    """Scalars of every event file under ``logdir`` as TensorBoard shows them: a session
    START at step s (a resumed run's purge) drops what was logged earlier at steps >= s."""
    import struct

    from tensorboardX.proto import event_pb2

    series: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(logdir.glob("events.out.tfevents.*")):
        data, pos = path.read_bytes(), 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
            pos += 12 + length + 4
            if event.session_log.status == event_pb2.SessionLog.START:
                series = {k: [(s, v) for s, v in pts if s < event.step]
                          for k, pts in series.items()}
            for value in event.summary.value:
                series.setdefault(value.tag, []).append((event.step, value.simple_value))
    return series


def test_progress_rows_go_to_tensorboard_and_a_resume_purges_the_rows_it_logs_again(tmp_path):
    first = RDPGTrainer(small_pusher(tmp_path, total_env_steps=800, keep_checkpoints=10))
    first.train()
    first.close()
    run = tmp_path / "run"
    for ckpt in (run / "checkpoints").iterdir():
        if int(ckpt.name.split("_")[1]) > 4:
            shutil.rmtree(ckpt)
    resumed = RDPGTrainer(small_pusher(tmp_path, total_env_steps=800), resume=True)
    resumed.train()
    resumed.close()
    lines = (run / "progress.csv").read_text().splitlines()
    steps = [int(v) for v in _column(lines, "env_steps")]
    scalars = _tensorboard_scalars(run / "tensorboard")
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 2
    for column, tag in (("eval_success_0.05", "eval/eval_success_0.05"),
                        ("critic_loss", "train/critic_loss")):
        expected = [(s, float(v)) for s, v in zip(steps, _column(lines, column), strict=True)]
        assert [(s, pytest.approx(v)) for s, v in scalars[tag]] == expected, tag
    off = RDPGTrainer(small_pusher(tmp_path, run_name="off", tensorboard=False))
    off.train()
    off.close()
    assert not (tmp_path / "off" / "tensorboard").exists()


def test_a_wall_time_budget_stops_the_run_and_saves_the_final_policy(tmp_path, capsys):
    trainer = RDPGTrainer(small_pusher(tmp_path, total_env_steps=4000, max_wall_s=25.0))
    trainer._wall_s = lambda: 10.0 * trainer.iteration  # a clock that ticks per iteration
    trainer.train()
    trainer.close()
    assert trainer.iteration == 3 and trainer.env_steps == 3 * 2 * trainer.horizon
    assert "wall-time budget of 25 s reached" in capsys.readouterr().err
    state = json.loads((tmp_path / "run" / "final" / "state.json").read_text())
    assert state["env_steps"] == trainer.env_steps
    # with the real clock a resumed run over its budget does not train further
    resumed = RDPGTrainer(small_pusher(tmp_path, total_env_steps=4000, max_wall_s=1e-9),
                          resume=True)
    resumed.train()
    resumed.close()
    assert resumed.env_steps == 3 * 2 * trainer.horizon
    with pytest.raises(ConfigError, match="max_wall_s"):
        small_pusher(tmp_path, max_wall_s=-1.0).validate()


def test_async_rollout_workers_train_exactly_as_in_process_envs(tmp_path):
    """``--vector async`` (one process per env, the GPU-workstation setting) gives the same run."""
    actors = {}
    for vector in ("sync", "async"):
        trainer = RDPGTrainer(small_pusher(tmp_path, n_envs=4, vector=vector, run_name=vector,
                                           total_env_steps=800, teacher="contact"))
        trainer.train()
        trainer.close()
        actors[vector] = trainer.actor.state_dict()
    for name, value in actors["sync"].items():
        torch.testing.assert_close(actors["async"][name], value, rtol=0, atol=0)


def test_the_actor_ema_averages_the_weights_and_becomes_the_saved_policy(tmp_path):
    """--actor-ema: one update moves the average by (1 - decay) towards the online actor;
    training is unchanged; evaluations, final/ and checkpoints use the average; resume keeps
    it exactly."""
    plain = RDPGTrainer(small_pusher(tmp_path, run_name="plain", total_env_steps=800))
    plain.train()
    plain.close()
    ema = RDPGTrainer(small_pusher(tmp_path, run_name="ema", total_env_steps=800,
                                   actor_ema=0.9, keep_checkpoints=10))
    ema.train()
    for (name, p), q in zip(plain.actor.state_dict().items(), ema.actor.state_dict().values(),
                            strict=True):
        assert torch.equal(p, q), name  # the online actor trains exactly as without it
    before = {k: v.clone() for k, v in ema.actor_ema.named_parameters()}
    ema.update()
    online = dict(ema.actor.named_parameters())
    moved = 0
    for name, param in ema.actor_ema.named_parameters():
        want = before[name] + 0.1 * (online[name].detach() - before[name])
        torch.testing.assert_close(param.detach(), want)
        moved += int(not torch.equal(param, online[name]))
    assert moved > 0 and ema.policy_actor is ema.actor_ema
    ema.save()
    ema._save_final()
    ema.close()
    run = tmp_path / "ema"
    for which, net in (("final", ema.actor_ema), ("latest", ema.actor_ema),
                       ("latest-online", ema.actor)):
        loaded, _ = load_actor_from_run(run, which)
        for name, param in loaded.state_dict().items():
            if ".fk." not in name and not name.startswith("fk."):
                assert torch.equal(param, net.state_dict()[name]), (which, name)
    # resumed from the checkpoint at 400 steps, the average ends as in the straight run
    straight = {k: v.clone() for k, v in ema.actor_ema.state_dict().items()}
    for ckpt in (run / "checkpoints").iterdir():
        if int(ckpt.name.split("_")[1]) > 4:
            shutil.rmtree(ckpt)
    resumed = RDPGTrainer(small_pusher(tmp_path, run_name="ema", total_env_steps=800,
                                       actor_ema=0.9), resume=True)
    resumed.train()
    resumed.update()
    resumed.close()
    for name, value in resumed.actor_ema.state_dict().items():
        assert torch.equal(value, straight[name]), name
    with pytest.raises(ConfigError, match="actor_ema"):
        small_pusher(tmp_path, actor_ema=1.0).validate()


def test_critic_width_can_differ_from_the_actors(tmp_path):
    trainer = RDPGTrainer(small_pusher(tmp_path, hidden=24, critic_hidden=8))
    assert trainer.actor.net.lstm.hidden_size == 24
    assert trainer.critic.net.lstm.hidden_size == trainer.critic_target.net.lstm.hidden_size == 8
    trainer.train()
    trainer.close()
    # the width is part of the checkpoint's contract; the error names the option
    with pytest.raises(CheckpointError, match="--critic-hidden: run 8, now 0"):
        RDPGTrainer(small_pusher(tmp_path, hidden=24, total_env_steps=800), resume=True)
    resumed = RDPGTrainer(small_pusher(tmp_path, hidden=24, critic_hidden=8,
                                       total_env_steps=800), resume=True)
    assert resumed.env_steps == 400
    resumed.close()


def test_learning_rates_decay_over_the_end_of_the_budget(tmp_path):
    cfg = small_pusher(tmp_path, total_env_steps=800, lr_decay_from=0.5, lr_final=0.1,
                       actor_lr=1e-3, critic_lr=2e-3)
    trainer = RDPGTrainer(cfg)
    for steps, scale in ((0, 1.0), (400, 1.0), (600, 0.55), (800, 0.1)):
        trainer.env_steps = steps
        assert trainer.lr_scale() == pytest.approx(scale)
    trainer.env_steps = 0
    trainer.train()
    trainer.close()
    # each iteration's updates run at the rate of the env steps collected so far
    assert trainer.actor_opt.param_groups[0]["lr"] == pytest.approx(1e-4)
    assert trainer.critic_opt.param_groups[0]["lr"] == pytest.approx(2e-4)
    rows = (tmp_path / "run" / "progress.csv").read_text().splitlines()
    assert [float(r) for r in _column(rows, "lr_scale")] == pytest.approx([1, 1, 0.55, 0.1])


def _column(lines: list[str], name: str) -> list[str]:
    header = lines[0].split(",")
    return [line.split(",")[header.index(name)] for line in lines[1:]]


def test_progress_rows_keep_the_files_columns(tmp_path):
    """A run resumed with options that log other keys still writes rows under its header."""
    first = RDPGTrainer(small_pusher(tmp_path))
    first.train()
    first.close()
    progress = tmp_path / "run" / "progress.csv"
    header = progress.read_text().splitlines()[0].split(",")
    progress.write_text(progress.read_text().replace(",lr_scale", "").replace(",1.0,", ","))
    resumed = RDPGTrainer(small_pusher(tmp_path, total_env_steps=800), resume=True)
    resumed.train()
    resumed.close()
    lines = progress.read_text().splitlines()
    assert lines[0].split(",") == [h for h in header if h != "lr_scale"]
    assert all(len(line.split(",")) == len(header) - 1 for line in lines[1:])
    assert [int(v) for v in _column(lines, "env_steps")] == [200, 400, 600, 800]


def test_critic_receives_true_mu_and_actor_never_does(tmp_path):
    trainer = RDPGTrainer(small_pusher(tmp_path))
    actor_net = getattr(trainer.actor, "net", trainer.actor)  # inside the kinematic features
    critic_net = getattr(trainer.critic, "net", trainer.critic)
    assert "mu" not in inspect.signature(actor_net.forward).parameters
    assert "mu" in inspect.signature(critic_net.forward).parameters
    trainer.iteration = 10  # past warm-up: the actor acts
    trainer.collect()
    # the stored mu is the env's true normalised dynamics of each episode
    assert trainer.replay.size == 2
    assert np.all(np.abs(trainer.replay.mu[:2]) <= 1.0)
    assert np.std(trainer.replay.mu[:2], axis=0).max() > 0  # two different sampled dynamics

    seen = {}
    original = trainer.critic.forward

    def spy(obs, goal, action, prev_action, mu=None, state=None, **kw):
        seen.setdefault("mu", []).append(mu.detach().clone())
        return original(obs, goal, action, prev_action, mu, state, **kw)

    trainer.critic.forward = spy
    trainer.update()
    assert seen["mu"] and all(m is not None for m in seen["mu"])
    stored = torch.as_tensor(trainer.replay.mu[:2])
    for m in seen["mu"]:
        per_episode = m[:, 0]
        assert all(any(torch.allclose(row, s) for s in stored) for row in per_episode)
    # and the critic's value depends on mu
    b = trainer.replay.sample(2, np.random.default_rng(0))
    t = lambda x: torch.as_tensor(x)  # noqa: E731
    mu = t(b.mu)[:, None].expand(-1, trainer.horizon, -1)
    q1, _ = original(t(b.obs[:, :-1]), t(b.goal), t(b.action), t(b.prev_action[:, :-1]), mu)
    q2, _ = original(t(b.obs[:, :-1]), t(b.goal), t(b.action), t(b.prev_action[:, :-1]), -mu)
    assert not torch.allclose(q1, q2)
    trainer.close()


def test_td_targets_bootstrap_every_transition_and_clip():
    reward = torch.tensor([[-1.0, -1.0, 0.0], [-1.0, -1.0, -1.0]])
    q_next = torch.tensor([[-5.0, -4.0, -3.0], [-5.0, -4.0, -3.0]])
    # the time limit is not part of the state: the last transition bootstraps like the others
    expect = torch.tensor([[-5.5, -4.6, -2.7], [-5.5, -4.6, -3.7]])
    assert torch.allclose(td_target(reward, q_next, 0.9, False), expect)
    # clipping bounds the targets to what rewards in [-1, 0] allow
    far = td_target(reward, torch.full((2, 3), -50.0), 0.9, True)
    assert torch.allclose(far, torch.full((2, 3), -10.0))
    assert td_target(-reward, q_next * 0, 0.9, True).max() == 0.0


@pytest.mark.parametrize("variant", ["lstm", "ff_history", "ff_norand"])
def test_cli_smoke_run_writes_run_artefacts(tmp_path, variant, capsys):
    rc = main(["rdpg-her", "--preset", "pusher", "--variant", variant, "--hidden", "16",
               "--total-env-steps", "400", "--updates-per-iteration", "2", "--batch-episodes",
               "4", "--warmup-episodes", "2", "--eval-every", "2", "--eval-episodes", "1",
               "--checkpoint-every", "2", "--final-eval-episodes", "2", "--demo-episodes", "2",
               "--run-dir",
               str(tmp_path), "--run-name", "smoke", "--no-progress"])
    assert rc == 0
    run = tmp_path / "smoke"
    for name in ("config.yaml", "progress.csv", "final_eval.json", "best", "final"):
        assert (run / name).exists(), name
    ckpts = sorted((run / "checkpoints").iterdir())
    assert 1 <= len(ckpts) <= 2 and not any(p.name.endswith(".tmp") for p in ckpts)
    result = json.loads((run / "final_eval.json").read_text())
    assert set(result) == {"train", "heldout"}
    assert result["train"]["episodes"] == 2
    out = json.loads(capsys.readouterr().out)
    assert out["env_steps"] == 400


def test_corrupt_and_mismatched_checkpoints_are_refused(tmp_path, capsys):
    trainer = RDPGTrainer(small_pusher(tmp_path))
    trainer.train()
    trainer.close()
    ckpt = latest_checkpoint(tmp_path / "run")
    # mismatched configuration: the error names the options that changed
    with pytest.raises(CheckpointError, match="--hidden: run 16, now 32"):
        RDPGTrainer(small_pusher(tmp_path, hidden=32, total_env_steps=800), resume=True)
    with pytest.raises(CheckpointError, match="--critic-hidden: run 0, now 8"):
        RDPGTrainer(small_pusher(tmp_path, critic_hidden=8, total_env_steps=800), resume=True)
    # a different episode length changes the replay's shape: refused by the dimensions check
    with pytest.raises(CheckpointError, match="made for"):
        RDPGTrainer(small_pusher(tmp_path, env_kwargs={"episode_steps": 25},
                                 total_env_steps=800), resume=True)
    # options that do not shape the networks may change on resume (here: the learning rate)
    RDPGTrainer(small_pusher(tmp_path, actor_lr=1e-4, total_env_steps=800), resume=True).close()
    # corrupted weights
    bad = tmp_path / "bad_copy"
    shutil.copytree(tmp_path / "run", bad)
    weights = latest_checkpoint(bad) / "actor.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum"):
        RDPGTrainer(small_pusher(tmp_path, run_name="bad_copy", total_env_steps=800),
                    resume=True)
    # a new run on top of an existing one must not silently overwrite it
    with pytest.raises(CheckpointError, match="--resume"):
        RDPGTrainer(small_pusher(tmp_path))
    # the CLI turns it into one line and exit code 2
    rc = main(["rdpg-her", "--preset", "pusher", "--run-dir", str(tmp_path), "--run-name",
               "bad_copy", "--hidden", "16", "--batch-episodes", "4", "--resume",
               "--no-progress", "--total-env-steps", "800"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "CheckpointError" in err and "Traceback" not in err
    assert ckpt.exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["rdpg-her", "--preset", "no_such_preset"],
        ["rdpg-her", "--variant", "transformer"],
        ["rdpg-her", "--gamma", "1.5"],
        ["rdpg-her", "--env-kwargs", '{"episod_steps": 100}'],  # unknown env argument
        ["evaluate", "/nonexistent/run"],
    ],
)
def test_bad_cli_input_exits_2(argv, capsys, tmp_path):
    assert main(argv + (["--run-dir", str(tmp_path)] if argv[0] == "rdpg-her" else [])) == 2
    assert "error" in capsys.readouterr().err


def test_scripted_demonstrations_enter_the_replay(tmp_path):
    trainer = RDPGTrainer(small_pusher(tmp_path, demo_episodes=4, total_env_steps=200))
    for _ in range(4):
        trainer.collect_demo()
    assert trainer.replay.size == 4 and trainer.env_steps == 4 * trainer.horizon
    assert trainer.replay.moved[:4].any()  # the scripted pusher moves the puck
    assert np.all(np.abs(trainer.replay.action[:4]) <= trainer.action_scale + 1e-6)
    trainer.close()
    with pytest.raises(ValueError, match="push env"):
        RDPGTrainer(RDPGConfig(**POINT, total_env_steps=100, demo_episodes=2,
                               run_dir=str(tmp_path), run_name="toy"))


def test_behaviour_cloning_pulls_the_actor_towards_demonstrations_through_the_q_filter(
    tmp_path,
):
    trainer = RDPGTrainer(small_pusher(tmp_path, demo_episodes=4, total_env_steps=400,
                                       bc_weight=1.0, bc_batch_episodes=4))
    for _ in range(4):
        trainer.collect_demo()
    assert trainer.replay.n_demos == 4
    batch = trainer.replay.sample_demos(4, np.random.default_rng(0))
    trainer.replay.sample_demos = lambda n, rng: batch
    demo = torch.as_tensor(batch.action)

    def critic(sign):  # Q = -sign * |a - a_demo|^2: sign 1 rates the demonstration best
        return lambda obs, goal, a, prev, mu: (-sign * ((a - demo) ** 2).sum(-1, True), None)

    trainer.critic = critic(1.0)
    for group in trainer.actor_opt.param_groups:
        group["lr"] = 1e-2
    losses = []
    for _ in range(30):
        bc, kept = trainer._bc_loss()
        assert kept == 1.0
        trainer.actor_opt.zero_grad()
        bc.backward()
        trainer.actor_opt.step()
        losses.append(bc.item())
    assert losses[-1] < 0.8 * losses[0]
    trainer.critic = critic(-1.0)  # the critic prefers the actor's own actions: no cloning
    bc, kept = trainer._bc_loss()
    assert kept == 0.0 and bc.item() == 0.0
    trainer.cfg.bc_q_filter = False  # unfiltered: clones every step whatever the critic says
    bc, kept = trainer._bc_loss()
    assert kept == 1.0 and bc.item() > 0.0
    trainer.close()
    with pytest.raises(ValueError, match="demonstrations"):
        RDPGConfig(bc_weight=1.0).validate()


def test_panda_trains_exports_and_replays_in_the_runtime(tmp_path):
    from meta_control.runtime import PolicyRuntime
    from meta_train.export.run import export_run_policy

    cfg = small_pusher(tmp_path, env_id="MetaPandaPush-v0", total_env_steps=400,
                       demo_episodes=1)
    trainer = RDPGTrainer(cfg)
    assert trainer.obs_dim == 17 and trainer.act_dim == 7 and trainer.mu_dim == 28
    trainer.train()
    trainer.close()
    path = export_run_policy(trainer.run_dir, tmp_path / "panda.onnx", which="final")
    rt = PolicyRuntime(path)
    assert rt.metadata.joint_names == [f"panda_joint{i}" for i in range(1, 8)]
    assert rt.metadata.env_id == "MetaPandaPush-v0"


def test_table2_command_trains_and_evaluates_the_variants(tmp_path, capsys):
    out = tmp_path / "table2.json"
    code = main(["table2", "--env-id", "MetaPusherPush-v0", "--hidden", "16",
                 "--total-env-steps", "400", "--batch-episodes", "4", "--warmup-episodes", "2",
                 "--updates-per-iteration", "1", "--eval-every", "2", "--eval-episodes", "1",
                 "--no-progress", "--run-dir", str(tmp_path), "--episodes", "2",
                 "--variants", "lstm", "ff_history", "--out", str(out)])
    assert code == 0
    results = json.loads(out.read_text())["results"]
    assert set(results) == {"lstm", "ff_history"}
    for r in results.values():
        assert r["env_steps"] == 400 and r["train"]["episodes"] == 2
        assert set(r) >= {"train", "heldout", "train_wall_s"}
    assert "FF + 8 past states/actions" in capsys.readouterr().out


@pytest.mark.parametrize("which", ["best", "final", "latest"])
def test_evaluate_command_picks_the_checkpoint(tmp_path, which):
    trainer = RDPGTrainer(small_pusher(tmp_path, total_env_steps=200))
    trainer.train()
    trainer.close()
    out = tmp_path / f"{which}.json"
    assert main(["evaluate", str(trainer.run_dir), "--episodes", "2", "--which", which,
                 "--dynamics", "train", "nominal", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result) == {"train", "nominal"} and result["train"]["episodes"] == 2
    assert result["train"]["episode_steps"] == trainer.envs.envs[0].unwrapped.max_episode_steps


def test_evaluate_can_run_longer_or_shorter_episodes_than_training(tmp_path, capsys):
    trainer = RDPGTrainer(small_pusher(tmp_path, total_env_steps=200))
    trainer.train()
    trainer.close()
    out = tmp_path / "long.json"
    assert main(["evaluate", str(trainer.run_dir), "--episodes", "1", "--dynamics", "train",
                 "--episode-steps", "7", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["train"]["episode_steps"] == 7
    assert main(["evaluate", str(trainer.run_dir), "--episode-steps", "0"]) == 2
    assert "episode_steps" in capsys.readouterr().err


def test_episode_length_is_set_by_episode_steps_not_by_a_time_limit_wrapper(tmp_path, capsys):
    # gym.make(max_episode_steps=) only adds gymnasium's TimeLimit: the env would still end
    # its episodes at its own length. The trainer refuses it and names the right argument.
    assert main(["rdpg-her", "--preset", "pusher", "--run-dir", str(tmp_path), "--no-progress",
                 "--env-kwargs", '{"max_episode_steps": 100}']) == 2
    assert "episode_steps" in capsys.readouterr().err
    trainer = RDPGTrainer(small_pusher(tmp_path, total_env_steps=100,
                                       env_kwargs={"episode_steps": 25}))
    assert trainer.envs.envs[0].unwrapped.max_episode_steps == 25
    trainer.close()


def test_expert_labels_supervise_the_actors_own_episodes(tmp_path):
    trainer = RDPGTrainer(small_pusher(tmp_path, expert_labels=True, bc_weight=1.0,
                                       bc_batch_episodes=4, bc_q_filter=False))
    trainer.collect()
    assert trainer.replay.n_labelled == 2 and trainer.replay.n_demos == 0
    labels = trainer.replay.expert_action[:2]
    assert np.abs(labels).max() > 0 and not np.allclose(labels, trainer.replay.action[:2])
    batch = trainer.replay.sample_labelled(4, np.random.default_rng(0))
    trainer.replay.sample_labelled = lambda n, rng: batch
    bc, kept = trainer._bc_loss()
    obs, prev = torch.as_tensor(batch.obs), torch.as_tensor(batch.prev_action)
    with torch.no_grad():
        pi, _ = trainer.actor(obs[:, :-1], torch.as_tensor(batch.goal), prev[:, :-1])
    scale = trainer.actor.action_scale
    expected = (((pi - torch.as_tensor(batch.expert_action)) / scale) ** 2).sum(-1).mean()
    assert kept == 1.0 and bc.item() == pytest.approx(expected.item(), rel=1e-5)
    stats = trainer.update()  # the loss enters the actor's update without demonstrations
    assert stats["bc_loss"] > 0
    trainer.close()
    with pytest.raises(ValueError, match="bc_weight"):
        RDPGConfig(expert_labels=True).validate()
    with pytest.raises(ValueError, match="push env"):
        RDPGTrainer(RDPGConfig(**POINT, total_env_steps=100, expert_labels=True, bc_weight=1.0,
                               run_dir=str(tmp_path), run_name="toy"))


@pytest.mark.parametrize("teacher", ["observing", "contact"])
def test_the_teacher_option_picks_who_labels_and_demonstrates(tmp_path, teacher):
    cfg = small_pusher(tmp_path, expert_labels=True, bc_weight=1.0, demo_episodes=1,
                       teacher=teacher, teacher_prior_friction=0.15)
    trainer = RDPGTrainer(cfg)
    assert trainer.demo_policy.knowledge == teacher
    assert all(env.expert.knowledge == teacher for env in trainer.envs.envs)
    assert trainer.demo_policy.prior_friction == 0.15
    assert all(env.expert.prior_friction == 0.15 for env in trainer.envs.envs)
    trainer.collect_demo()
    trainer.collect()
    assert trainer.replay.n_demos == 1 and trainer.replay.n_labelled == 3
    trainer.close()
    with pytest.raises(ValueError, match="teacher"):
        RDPGConfig(teacher="oracle").validate()
    with pytest.raises(ValueError, match="teacher_prior_friction"):
        RDPGConfig(teacher_prior_friction=0.0).validate()
    assert TEACHERS == SIM_TEACHERS  # the config's names are the teachers sim makes


def test_evaluate_can_hold_dynamics_parameters_at_nominal(tmp_path, capsys):
    for dynamics in ("train", "heldout"):
        env = make_eval_env("MetaPusherPush-v0", {}, dynamics,
                            fixed=["puck_friction", "joint_damping_scale"])
        names = env.mu_names
        for seed in range(3):
            mu = dict(zip(names, env.reset(seed=seed)[1]["mu_raw"], strict=True))
            assert mu["puck_friction"] == pytest.approx(0.7)  # nominal
            assert all(mu[n] == pytest.approx(1.0) for n in names if "damping_scale" in n)
            assert mu["puck_mass"] != pytest.approx(0.25)  # the others are still sampled
        env.close()
    trainer = RDPGTrainer(small_pusher(tmp_path, total_env_steps=200))
    trainer.train()
    trainer.close()
    run = str(trainer.run_dir)
    assert main(["evaluate", run, "--episodes", "2", "--which", "final", "--dynamics", "train",
                 "heldout", "--fix", "obs_noise_frac"]) == 0
    assert main(["evaluate", run, "--fix", "no_such_param"]) == 2
    assert "no_such_param" in capsys.readouterr().err


@pytest.mark.parametrize("preset", sorted(p.stem for p in PRESETS_DIR.glob("*.yaml")))
def test_every_preset_is_a_valid_configuration(preset):
    cfg = build_config(RDPGConfig, preset_values(preset))
    assert cfg.total_env_steps > 0
