"""``meta-train meta-lstm sinusoid`` end to end through the real CLI on a tiny seeded budget:
it beats no adaptation on the same test tasks."""

from __future__ import annotations

import json

from meta_train.cli import main
from meta_train.common.tasks.compare import compare

COMMON = ["--eval-tasks", "60", "--hidden", "20", "--val-tasks", "20", "--seed", "0",
          "--no-progress", "--no-tensorboard", "--log-every", "50"]


def test_meta_lstm_beats_no_adaptation(tmp_path):
    # a larger first step (input-gate bias) and meta step than the paper's, so that 150
    # meta-iterations of 5 tasks suffice here; a 2 x 20 learner (the coordinate-wise LSTM's
    # cost grows with the learner's size) keeps the test short
    assert main(["meta-lstm", "sinusoid", "--iterations", "150", "--meta-batch", "5",
                 "--updates", "5", "--eval-steps", "5", "--eval-max-steps", "5",
                 "--input-bias", "[-3, -2.5]", "--meta-lr", "0.005", *COMMON,
                 "--run-dir", str(tmp_path), "--run-name", "lstm"]) == 0
    assert main(["baselines", "sinusoid", "--which", '["no-adaptation"]', "--iterations",
                 "300", *COMMON, "--run-dir", str(tmp_path), "--run-name", "base"]) == 0
    c = compare([tmp_path / "lstm", tmp_path / "base"], ["no-adaptation"])
    assert c["paired"]["meta-lstm"]["no-adaptation"]["K10/step5"]["below"]
    s = c["summary"]["meta-lstm"]
    assert s["K10/step5"]["mean"] < s["K10/step0"]["mean"]
    results = json.loads((tmp_path / "lstm" / "results.json").read_text())
    assert results["config"]["method"]["lstm_hidden"] == 20
    assert results["config"]["method"]["input_bias"] == [-3, -2.5]
    assert results["config"]["task"]["hidden"] == 20
