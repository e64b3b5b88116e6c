"""The dynamics estimator: training on a (tiny) run's rollouts, its report and export."""

from __future__ import annotations

import json

import pytest

from meta_control.runtime import EstimatorRuntime
from meta_train.cli import main
from meta_train.estimator.config import EstimatorConfig
from meta_train.estimator.train import train_estimator


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
