"""``meta-train maml sinusoid`` end to end through the real CLI on a tiny seeded budget: it
beats no adaptation (so does first-order MAML), writes its run and resumes exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from meta_train.cli import main
from meta_train.common.tasks.compare import compare

TINY = ["--iterations", "300", "--log-every", "100", "--checkpoint-every", "100",
        "--eval-tasks", "100", "--val-tasks", "20", "--seed", "0", "--no-progress",
        "--no-tensorboard"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("maml")
    assert main(["baselines", "sinusoid", "--which", '["no-adaptation"]', *TINY,
                 "--run-dir", str(root), "--run-name", "base"]) == 0
    assert main(["maml", "sinusoid", *TINY, "--run-dir", str(root), "--run-name", "maml"]) == 0
    assert main(["maml", "sinusoid", "--first-order", *TINY, "--run-dir", str(root),
                 "--run-name", "fomaml"]) == 0
    return root


@pytest.mark.parametrize(("method", "keys"), [
    ("maml", ("K5/step1", "K10/step1", "K10/step10")),
    # after 300 first-order iterations steps on K = 5 points overfit (worse than none by
    # ten steps); at K = 10, as meta-trained, every step count beats no adaptation
    ("fomaml", ("K10/step1", "K10/step5", "K10/step10")),
])
def test_maml_beats_no_adaptation_on_the_same_tasks(runs, method, keys):
    c = compare([runs / method, runs / "base"], ["no-adaptation"])
    paired = c["paired"][method]["no-adaptation"]
    for key in keys:
        assert paired[key]["below"], (key, paired[key])
    # adaptation itself helps: ten steps beat none on the same learner
    s = c["summary"][method]
    assert s["K10/step10"]["mean"] < s["K10/step0"]["mean"]


def test_the_run_directory_holds_config_progress_checkpoints_and_results(runs):
    run = runs / "maml"
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["method"]["inner_lr"] == 0.01 and cfg["task"]["hidden"] == 40  # the preset
    rows = (run / "progress.csv").read_text().splitlines()
    assert rows[0].startswith("iteration,tasks_seen,wall_s,cpu_s,query_loss,val_loss")
    assert len(rows) == 4
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "iter_00000200", "iter_00000300"]
    results = json.loads((run / "results.json").read_text())
    assert results["command"].startswith("meta-train maml sinusoid --iterations 300")
    assert results["iterations"] == 300 and results["methods"]["maml"]["tasks"] == 100
    with np.load(run / "per_task.npz") as z:
        assert z["maml/K5/step10"].shape == (100,)


def test_resume_continues_exactly(tmp_path, runs):
    common = [*TINY[2:], "--run-dir", str(tmp_path), "--run-name", "cut"]
    assert main(["maml", "sinusoid", "--iterations", "150", *common]) == 0
    assert main(["maml", "sinusoid", "--iterations", "300", "--resume", *common]) == 0
    with np.load(tmp_path / "cut" / "per_task.npz") as a, \
            np.load(runs / "maml" / "per_task.npz") as b:
        np.testing.assert_array_equal(a["maml/K10/step10"], b["maml/K10/step10"])
    rows = (tmp_path / "cut" / "progress.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["100", "150", "200", "300"]
    command = json.loads((tmp_path / "cut" / "results.json").read_text())["command"]
    assert command.startswith("meta-train maml sinusoid --iterations 300") and \
        command.endswith("--resume")


def test_an_existing_run_is_not_overwritten(runs, capsys):
    assert main(["maml", "sinusoid", *TINY, "--run-dir", str(runs), "--run-name", "maml"]) == 2
    assert "--resume" in capsys.readouterr().err


def test_first_order_and_meta_sgd_runs_are_named_by_their_variant(tmp_path):
    args = ["--iterations", "20", "--log-every", "10", "--eval-tasks", "20", "--val-tasks",
            "5", "--no-progress", "--no-tensorboard", "--run-dir", str(tmp_path)]
    assert main(["maml", "sinusoid", "--first-order", *args, "--run-name", "fo"]) == 0
    assert main(["maml", "sinusoid", "--meta-sgd", *args, "--run-name", "sgd"]) == 0
    assert set(json.loads((tmp_path / "fo" / "results.json").read_text())["methods"]) == {
        "fomaml"}
    assert set(json.loads((tmp_path / "sgd" / "results.json").read_text())["methods"]) == {
        "meta-sgd"}


def test_a_cpu_budget_stops_meta_training_and_still_logs_and_evaluates(tmp_path):
    args = ["--iterations", "1000000", "--log-every", "1000000", "--max-cpu-s", "1",
            "--eval-tasks", "20", "--val-tasks", "5", "--no-progress", "--no-tensorboard",
            "--run-dir", str(tmp_path), "--run-name", "budget"]
    assert main(["maml", "sinusoid", *args]) == 0
    rows = (tmp_path / "budget" / "progress.csv").read_text().splitlines()
    assert len(rows) == 2  # the header and the row written at the budget's stop
    iters = int(rows[1].split(",")[0])
    results = json.loads((tmp_path / "budget" / "results.json").read_text())
    assert 0 < iters < 1000000 and results["iterations"] == iters
    assert results["meta_train_cpu_s"] >= 1
