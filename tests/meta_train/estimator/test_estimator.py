"""The dynamics estimator end to end on a tiny budget: datasets from a policy's interaction,
training, the OOD rule, export, the report; the runtime's OOD score is the report's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from meta_control.runtime import EstimatorRuntime
from meta_train.cli import main
from meta_train.common.rollouts import RolloutDataset
from meta_train.estimator.config import EstimatorConfig
from meta_train.estimator.report import auroc, identification
from meta_train.estimator.train import ood_score, train_estimator, window_mean

SHIPPED_POLICY = Path(__file__).resolve().parents[3] / "models" / "pusher_policy.onnx"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("estimator")
    cfg = EstimatorConfig(policy=str(SHIPPED_POLICY), episode_steps=40,
                          train_episodes=12, val_episodes=8, test_episodes=8, band_episodes=4,
                          band_parameters=["puck_friction"], hidden=16, epochs=2, workers=1,
                          data_dir=str(root / "data"), out=str(root / "est.onnx"),
                          progress=False, torch_threads=1)
    report = train_estimator(cfg, command="meta-train estimator (test)")
    return cfg, report, root


def test_it_exports_an_io_v2_estimator_with_its_rule_and_contract(trained):
    cfg, report, root = trained
    rt = EstimatorRuntime(root / "est.onnx")
    m = rt.metadata
    assert m.io_version == 2 and m.ood_error_threshold > 0 and m.ood_error_window == 10
    assert m.ood_mu_margin == pytest.approx(report["ood_rule"]["ood_mu_margin"])
    assert len(m.mu_laws) == len(m.mu_units) == len(m.mu_names) == 15
    assert m.mu_laws[m.mu_names.index("puck_friction")] == "log_uniform"
    # physical units through the log for log-uniform parameters: the centre is the geometric mean
    i = m.mu_names.index("puck_friction")
    assert rt.to_physical(np.zeros(15))[i] == pytest.approx(np.sqrt(0.1 * 5.0))
    assert m.training_config["estimator"]["hidden"] == 16


def test_the_report_has_both_tables_and_the_datasets_are_kept(trained):
    cfg, report, root = trained
    saved = json.loads((root / "est_report.json").read_text())
    assert saved["command"] == "meta-train estimator (test)"
    rows = saved["identification"]["train"]["rows"]
    assert {(r["since"], r["k"]) for r in rows} >= {("contact", 0), ("contact", 5),
                                                    ("contact", 20), ("reset", 1)}
    assert set(saved["identification"]) == {"train", "puck_friction below",
                                            "puck_friction above"}
    bands = saved["ood"]["bands"]
    assert set(bands) == {"puck_friction below", "puck_friction above"}
    assert bands["puck_friction below"]["band"][1] == pytest.approx(0.1)
    assert 0.0 <= saved["ood"]["in_range_flagged"] <= 1.0
    assert "### Identification" in (root / "est_report.md").read_text()
    kept = sorted(p.name.split("_")[0] for p in (root / "data").glob("*.npz"))
    assert kept == ["band", "band", "test", "train", "val"]


def test_the_runtimes_ood_score_is_the_reports(trained):
    """Stepping the exported graph through the runtime gives, at every step, the score the
    report computed from the same outputs (the window and the terms agree)."""
    cfg, report, root = trained
    rt = EstimatorRuntime(root / "est.onnx")
    data = RolloutDataset.load(next((root / "data").glob("test_*.npz")))
    means, stds, errs, scores = [], [], [], []
    for o, p in zip(data.obs[0], data.prev_action[0], strict=True):
        mean, std = rt.step(o, p)
        means.append(mean)
        stds.append(std)
        errs.append(float(np.mean(rt.obs_error**2)))
        scores.append(rt.ood_score)
    rule = {k: getattr(rt.metadata, k) for k in ("ood_mu_margin", "ood_std_threshold",
                                                 "ood_error_threshold", "ood_error_window")}
    want = ood_score(np.array(means)[None], np.array(stds)[None], np.array(errs)[None], rule)
    np.testing.assert_allclose(scores, want[0], rtol=1e-9, atol=1e-12)
    assert errs[0] == 0.0 and max(errs) > 0.0


def test_window_mean_and_auroc_by_hand():
    err = np.array([[0.0, 2.0, 4.0, 6.0]])
    np.testing.assert_allclose(window_mean(err, 2), [[0.0, 2.0, 3.0, 5.0]])
    assert auroc(np.array([0.0, 1.0]), np.array([2.0, 3.0])) == 1.0
    assert auroc(np.array([1.0, 1.0]), np.array([1.0])) == 0.5
    mean = np.zeros((2, 3, 1))
    mean[:, 2] = 0.5
    tab = identification(mean, np.array([[0.5], [0.5]]), np.array([0, -1]), ["p"],
                         contact_steps=(2,), reset_steps=(2,), n_boot=10)
    contact, reset = tab["rows"]
    assert contact["n"] == 1 and reset["n"] == 2 and tab["without_contact"] == 1
    assert contact["ratio"]["p"] == pytest.approx(0.0)


def test_bad_input_exits_2(capsys, tmp_path):
    assert main(["estimator", "--policy", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["estimator", "--preset", "pusher", "--forward-weight", "0"]) == 2
    assert "forward_weight" in capsys.readouterr().err
