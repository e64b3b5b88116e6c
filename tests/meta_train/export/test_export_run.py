"""From a (tiny) training run to a deployable policy: the exported contract."""

from __future__ import annotations

import numpy as np
import pytest

from meta_control.runtime import PolicyRuntime
from meta_train.cli import main


def test_exported_policy_carries_the_env_contract(tiny_run, tmp_path, capsys):
    out = tmp_path / "policy.onnx"
    assert main(["export", str(tiny_run), "--out", str(out)]) == 0
    rt = PolicyRuntime(out)
    m = rt.metadata
    assert m.joint_names == ["joint1", "joint2", "joint3"]
    assert [t["name"] for t in m.obs_terms] == ["joint_positions", "joint_velocities",
                                                "puck_position"]
    assert m.action_high == pytest.approx([0.05] * 3)
    assert len(m.mu_names) == len(m.mu_train_low) == 15
    assert m.training_config["variant"] == "lstm"
    # observation ranges come from the run's replay: the rest pose lies inside them
    lo, hi = np.array(m.obs_low), np.array(m.obs_high)
    assert np.all(lo <= hi) and np.all(lo[:3] <= [-0.95, 1.35, 1.2]) and np.all(hi[:3] >= -0.95)
    a = rt.step(np.clip(np.zeros(9), lo, hi), np.array([0.35, 0.0]))
    assert a.shape == (3,) and np.all(np.abs(a) <= 0.05 + 1e-6)


def test_evaluate_model_without_the_estimators_policy_is_a_clear_error(tmp_path, capsys):
    """An estimator copied away from the policy that drives the arm: one line, exit 2."""
    import shutil
    from pathlib import Path

    models = Path(__file__).resolve().parents[3] / "models"
    for name in ("pusher_estimator.onnx", "pusher_estimator.json"):
        shutil.copy(models / name, tmp_path / name)
    assert main(["evaluate-model", str(tmp_path / "pusher_estimator.onnx"),
                 "--episodes", "1"]) == 2
    err = capsys.readouterr().err
    assert "model file not found" in err and "Traceback" not in err


def test_a_missing_policy_is_one_clear_error_for_every_command_that_reads_it(tmp_path, capsys):
    """The runtime's ModelError reaches the CLI's error line, whichever command raised it."""
    assert main(["estimator", "--preset", "pusher", "--policy", str(tmp_path / "none.onnx"),
                 "--out", str(tmp_path / "e.onnx")]) == 2
    err = capsys.readouterr().err
    assert "ModelError: model file not found" in err and "Traceback" not in err
