"""The whole training loop on a CUDA device (skipped without one).

Uses the PointGoal toy env to keep it short; the push envs go through exactly the same trainer
code, and ``bench/gpu_workstation.sh train`` runs the pusher preset on CUDA end to end.
"""

from __future__ import annotations

import pytest
import torch

from meta_train.rdpg.config import RDPGConfig
from meta_train.rdpg.trainer import RDPGTrainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def cfg(tmp_path, **kw) -> RDPGConfig:
    base = dict(env_id="PointGoal-v0", variant="lstm", hidden=64, n_envs=2,
                updates_per_iteration=8, batch_episodes=32, warmup_episodes=10, eval_every=10,
                eval_episodes=10, checkpoint_every=10, total_env_steps=4000, progress=False,
                device="cuda", run_dir=str(tmp_path), run_name="cuda", actor_lr=1e-3,
                critic_lr=1e-3)
    base.update(kw)
    return RDPGConfig(**base)


def test_recurrent_training_learns_on_cuda_and_resumes(tmp_path):
    trainer = RDPGTrainer(cfg(tmp_path, total_env_steps=2000))
    assert next(trainer.actor.parameters()).is_cuda
    assert next(trainer.critic_target.parameters()).is_cuda
    trainer.train()
    trainer.close()
    resumed = RDPGTrainer(cfg(tmp_path, total_env_steps=4000), resume=True)
    assert resumed.env_steps == 2000 and next(resumed.actor.parameters()).is_cuda
    resumed.train()
    result = resumed.evaluate(episodes=30)
    resumed.close()
    assert result.success_005 >= 0.8


def test_a_cuda_learner_with_a_collector_process_learns(tmp_path):
    """The collector process acts on the CPU with the CUDA learner's weights."""
    # 6,000 steps: with its collection an iteration behind, 4,000 left some seeds short
    # (seeds 0, 2, 5 on a CPU: 0.40-0.60 at 4,000 steps, 1.0 at 6,000)
    trainer = RDPGTrainer(cfg(tmp_path, collector="process", total_env_steps=6000))
    assert next(trainer.actor.parameters()).is_cuda
    trainer.train()
    result = trainer.evaluate(episodes=30)
    trainer.close()
    assert trainer.env_steps == 6000
    assert result.success_005 >= 0.8


def test_export_from_a_cuda_actor_matches_onnxruntime(tmp_path):
    import numpy as np

    from meta_control.runtime import ModelMetadata, PolicyRuntime
    from meta_train.common.onnx_export import export_policy

    trainer = RDPGTrainer(cfg(tmp_path, total_env_steps=400))
    trainer.train()
    actor = trainer.actor
    n = trainer.obs_dim
    meta = ModelMetadata(
        kind="policy", env_id="PointGoal-v0",
        obs_terms=[{"name": "position", "size": n, "units": "1"}], obs_dim=n, goal_dim=n,
        act_dim=n, joint_names=[f"axis{i}" for i in range(n)], action_meaning="position_offset",
        action_low=[-0.2] * n, action_high=[0.2] * n, joint_limits_low=[-1.0] * n,
        joint_limits_high=[1.0] * n, control_period_s=1.0, mu_names=[], mu_train_low=[],
        mu_train_high=[], obs_low=[-1.0] * n, obs_high=[1.0] * n, goal_low=[-1.0] * n,
        goal_high=[1.0] * n,
    )
    path = export_policy(actor, tmp_path / "p.onnx", meta)
    rt = PolicyRuntime(path)
    state = actor.initial_state(1, "cuda")
    prev = torch.zeros(1, 1, n, device="cuda")
    rng = np.random.default_rng(0)
    for _ in range(20):
        o = rng.uniform(-1, 1, n).astype(np.float32)
        g = rng.uniform(-1, 1, n).astype(np.float32)
        with torch.no_grad():
            a, state = actor(torch.as_tensor(o, device="cuda")[None, None],
                             torch.as_tensor(g, device="cuda")[None, None], prev, state)
        prev = a
        np.testing.assert_allclose(rt.step(o, g), a[0, 0].cpu().numpy(), atol=1e-4)
    trainer.close()
