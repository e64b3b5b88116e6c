"""Make the ROS 2 package's pure-Python modules importable without a colcon build."""

import sys
from pathlib import Path

import pytest

_META_CONTROL = Path(__file__).resolve().parents[1] / "ros2_ws" / "src" / "meta_control"
if str(_META_CONTROL) not in sys.path:
    sys.path.insert(0, str(_META_CONTROL))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A finished 400-step pusher run (checkpoints, best/, final/, progress.csv), shared read-only
    by the tests of the tools that consume runs."""
    from meta_train.config import RDPGConfig
    from meta_train.rdpg import RDPGTrainer

    root = tmp_path_factory.mktemp("runs")
    cfg = RDPGConfig(env_id="MetaPusherPush-v0", hidden=16, updates_per_iteration=2,
                     batch_episodes=4, warmup_episodes=2, eval_every=2, eval_episodes=1,
                     checkpoint_every=2, total_env_steps=400, progress=False,
                     run_dir=str(root), run_name="tiny")
    trainer = RDPGTrainer(cfg)
    trainer.train()
    trainer.close()
    return root / "tiny"
