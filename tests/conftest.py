"""Fixtures shared by the whole test suite. ``meta_control`` is imported as the installed
package (``pip install -e ros2_ws/src/meta_control``, see ``scripts/setup.sh``)."""

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A finished 400-step pusher run (checkpoints, best/, final/, progress.csv), shared read-only
    by the tests of the tools that consume runs."""
    from meta_train.rdpg.config import RDPGConfig
    from meta_train.rdpg.trainer import RDPGTrainer

    root = tmp_path_factory.mktemp("runs")
    cfg = RDPGConfig(env_id="MetaPusherPush-v0", hidden=16, updates_per_iteration=2,
                     batch_episodes=4, warmup_episodes=2, eval_every=2, eval_episodes=1,
                     checkpoint_every=2, total_env_steps=400, progress=False,
                     run_dir=str(root), run_name="tiny")
    trainer = RDPGTrainer(cfg)
    trainer.train()
    trainer.close()
    return root / "tiny"
