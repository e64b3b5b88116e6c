"""The few-shot and pusher studies end to end through the real CLI on tiny data: every method
and baseline runs, and ``compare-adaptation`` pairs them on the same test tasks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from meta_train.cli import main
from meta_train.common.tasks.compare import compare

SHIPPED_POLICY = Path(__file__).resolve().parents[3] / "models" / "pusher_policy.onnx"
QUIET = ["--no-progress", "--no-tensorboard", "--seed", "0"]


@pytest.mark.slow
def test_fewshot_study_runs_and_compares(tmp_path):
    data = ["--glyph-train-classes", "40", "--glyph-test-classes", "10", "--glyph-samples",
            "8", "--val-classes", "8", "--query", "3", "--train-query", "2", "--filters", "8",
            "--eval-episodes", "20", "--data-dir", str(tmp_path / "data"), "--val-tasks", "5",
            "--eval-batch", "10", "--run-dir", str(tmp_path), *QUIET]
    assert main(["maml", "fewshot", "--iterations", "10", "--log-every", "5", *data,
                 "--run-name", "maml"]) == 0
    assert main(["meta-lstm", "fewshot", "--iterations", "4", "--log-every", "2",
                 "--meta-batch", "2", "--lstm-hidden", "4", "--updates", "2", "--eval-steps",
                 "2", *data, "--run-name", "lstm"]) == 0
    assert main(["baselines", "fewshot", "--iterations", "20", "--log-every", "10",
                 "--pretrain-batch", "32", "--finetune-lrs", "[0.1]", "--finetune-steps",
                 "[5]", "--val-batches", "1", *data, "--run-name", "base"]) == 0
    c = compare([tmp_path / "maml", tmp_path / "lstm", tmp_path / "base"], ["fine-tune"])
    assert set(c["summary"]) == {"maml", "meta-lstm", "fine-tune", "ncm"}
    for m, s in c["summary"].items():
        assert 0.0 <= s["acc/final"]["mean"] <= 1.0 and s["acc/final"]["n"] == 20, m
    assert c["methods"]["maml"]["final_step"] == 3 and c["methods"]["fine-tune"]["steps"] == 5
    assert "acc/final" in c["paired"]["ncm"]["fine-tune"]


@pytest.mark.slow
def test_pusher_study_runs_and_compares(tmp_path):
    task = ["--policy", str(SHIPPED_POLICY), "--data-dir", str(tmp_path / "data"),
            "--episode-steps", "30", "--train-episodes", "6", "--val-episodes", "3",
            "--test-episodes", "4", "--band-episodes", "2", "--band-parameters",
            '["puck_friction"]', "--workers", "1", "--hidden", "16", "--adapt-sizes", "[5, 10]",
            "--anchors", "[10, 15]", "--query-steps", "5", "--timing-repeats", "2",
            "--val-tasks", "8", "--meta-batch", "4", "--run-dir", str(tmp_path), *QUIET]
    assert main(["maml", "pusher-dynamics", "--iterations", "10", "--log-every", "5", *task,
                 "--run-name", "maml"]) == 0
    assert main(["meta-lstm", "pusher-dynamics", "--iterations", "4", "--log-every", "2",
                 "--lstm-hidden", "4", "--updates", "2", "--eval-steps", "2", *task,
                 "--run-name", "lstm"]) == 0
    assert main(["baselines", "pusher-dynamics", "--iterations", "10", "--log-every", "5",
                 "--finetune-lrs", "[0.01]", "--finetune-steps", "[1, 2]", "--val-batches",
                 "2", "--rebal-hidden", "8", *task, "--run-name", "base"]) == 0
    kept = sorted(p.name.split("_")[0] for p in (tmp_path / "data").glob("*.npz"))
    assert kept == ["band", "band", "test", "train", "val"]  # made once, then reused
    out = tmp_path / "cmp.json"
    assert main(["compare-adaptation", str(tmp_path / "maml"), str(tmp_path / "lstm"),
                 str(tmp_path / "base"), "--out", str(out)]) == 0
    c = json.loads(out.read_text())
    assert set(c["summary"]) == {"maml", "meta-lstm", "no-adaptation", "fine-tune", "rebal",
                                 "oracle"}
    s = c["summary"]["maml"]
    for split in ("train", "heldout"):
        for m in (5, 10):
            for part in ("all", "arm", "puck"):
                assert np.isfinite(s[f"{split}/M{m}/{part}"]["mean"]), (split, m, part)
    assert s["train/M5/all"]["n"] <= 4 and s["heldout/M5/all"]["n"] <= 4
    assert set(c["bands"]) == {"puck_friction below", "puck_friction above"}
    assert c["contact_ratio"]["no-adaptation"]["train/contact/M5/puck_m2"]["ratio"] == \
        pytest.approx(1.0)
    assert c["timing_ms"]["maml"]["adapt_ms/M10"] > 0
    assert "heldout/M5/all" in c["paired_ratio"]["maml"]["fine-tune"]
    # a run on other test tasks is refused
    other = tmp_path / "other"
    assert main(["maml", "pusher-dynamics", "--iterations", "2", "--log-every", "1",
                 *task, "--anchors", "[10]", "--run-name", "other"]) == 0
    with pytest.raises(ValueError, match="not the same test tasks"):
        compare([tmp_path / "maml", other], [])
