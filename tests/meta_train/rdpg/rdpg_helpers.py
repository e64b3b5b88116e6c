"""Shared by the RDPG tests: tiny-budget configurations of the real trainer."""

from __future__ import annotations

from meta_train.rdpg.config import RDPGConfig


def small_pusher(tmp_path, **kw) -> RDPGConfig:
    """A 400-step pusher run of 16-unit networks in ``tmp_path / "run"`` (``kw`` overrides)."""
    base = dict(env_id="MetaPusherPush-v0", hidden=16, n_envs=2, updates_per_iteration=2,
                batch_episodes=4, warmup_episodes=2, eval_every=2, eval_episodes=1,
                checkpoint_every=2, total_env_steps=400, progress=False,
                run_dir=str(tmp_path), run_name="run")
    base.update(kw)
    return RDPGConfig(**base)
