"""From a (tiny) training run to deployable models: policy export and estimator training."""

from __future__ import annotations

import json

import numpy as np
import pytest

from meta_control.runtime import EstimatorRuntime, PolicyRuntime
from meta_train.cli import main
from meta_train.estimator import EstimatorConfig, train_estimator


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


def test_estimator_training_exports_a_model_and_report(tiny_run, tmp_path):
    cfg = EstimatorConfig(policy_run=str(tiny_run), policy_which="latest", train_episodes=12,
                          val_episodes=6, heldout_episodes=6, epochs=2, hidden=16,
                          out=str(tmp_path / "est.onnx"))
    report = train_estimator(cfg)
    rt = EstimatorRuntime(tmp_path / "est.onnx")
    assert rt.metadata.kind == "estimator"
    assert rt.metadata.ood_mu_margin == pytest.approx(report["ood"]["margin"])
    assert rt.metadata.ood_std_threshold == pytest.approx(report["ood"]["std_threshold"])
    saved = json.loads((tmp_path / "est_report.json").read_text())
    assert set(saved["rmse_after_k_steps"]) == {"train_dynamics", "heldout_dynamics"}
    assert set(saved["rmse_after_k_steps"]["train_dynamics"]) == {"1", "5", "10", "20", "50"}
    names = rt.metadata.mu_names
    assert sorted(saved["identifiable"] + saved["not_identifiable"]) == sorted(names)
    assert saved["ood"]["fpr_train_per_step"] <= 0.1


def test_estimator_requires_a_policy_run(capsys):
    assert main(["estimator"]) == 2
    assert "--policy-run" in capsys.readouterr().err
