"""Run directories: names, and a learning curve that a resume trims exactly."""

from __future__ import annotations

import csv

from meta_train.common.runs import ProgressLog, default_run_name


def test_run_names_follow_the_env_algo_seed_time_pattern():
    name = default_run_name("MetaPusherPush-v0", "rdpg_her", "lstm", 3)
    parts = name.split("__")
    assert parts[:4] == ["MetaPusherPush-v0", "rdpg_her", "lstm", "3"] and parts[4].isdigit()


def test_rows_keep_the_files_columns_and_a_resume_trims_later_rows(tmp_path):
    log = ProgressLog(tmp_path, tensorboard=False)
    for i in range(1, 5):
        log.log({"iteration": i, "env_steps": 100 * i, "loss": 1.0 / i})
    log.log({"iteration": 5, "env_steps": 500, "loss": 0.2, "new_key": 1})  # dropped column
    rows = list(csv.DictReader(open(tmp_path / "progress.csv")))
    assert [r["iteration"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert "new_key" not in rows[0]
    resumed = ProgressLog(tmp_path, tensorboard=False)
    resumed.trim(last_index=2, last_step=200)
    rows = list(csv.DictReader(open(tmp_path / "progress.csv")))
    assert [r["iteration"] for r in rows] == ["1", "2"]
    assert not list(tmp_path.glob("*.tmp"))
