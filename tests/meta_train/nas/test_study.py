"""Studies through the real command line: SQLite storage, the best config, joining a study by
its name, two worker processes on one study, a killed worker's trial retried once, and one
clear error (exit status 2) for bad storage URLs and bad spaces."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml

from meta_train.cli import main
from meta_train.common.config import ConfigError
from meta_train.nas.sampler import BATCHES_ATTR, DIGEST_ATTR, ERROR_ATTR, STRING_ATTR
from meta_train.nas.study import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)
ROOT = Path(__file__).resolve().parents[3]
SMALL = {"decisions": [{"name": "optimizer", "choices": ["sgd", "adam"]},
                       {"name": "batch", "choices": [16, 32, 64]}],
         "layers": {"count": {"name": "n_layers", "choices": [1, 2, 3]}, "skip": True,
                    "decisions": [{"name": "width", "choices": [16, 32, 64]}]}}


def _nas(tmp_path, *args) -> list[str]:
    return ["nas", "--preset", "synthetic", "--space", json.dumps(SMALL), "--storage",
            f"sqlite:///{tmp_path / 's.db'}", "--no-progress", *args]


def _cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "meta_train.cli", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_study_runs_writes_its_best_config_and_is_joined_by_name(tmp_path, capsys):
    out = tmp_path / "best.yaml"
    assert main(_nas(tmp_path, "--n-trials", "6", "--batch-size", "2", "--out",
                     str(out))) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["study"] == "synthetic__controller__0" and summary["counted"] == 6
    best = yaml.safe_load(out.read_text())
    assert best["n_layers"] == len(best["layers"]) and "target_seed" not in best
    assert "# Best config of study synthetic__controller__0" in out.read_text()
    storage = f"sqlite:///{tmp_path / 's.db'}"
    # another worker joins by the study's name alone: the search is read from the study
    assert main(["nas", "--storage", storage, "--study-name", "synthetic__controller__0",
                 "--n-trials", "9", "--no-progress", "--out", str(tmp_path / "b2.yaml")]) == 0
    study = optuna.load_study(study_name="synthetic__controller__0", storage=storage)
    assert len(study.trials) == 9
    assert main(["nas-best", "--storage", storage, "--study-name", "synthetic__controller__0",
                 "--out", str(tmp_path / "b3.yaml")]) == 0
    assert yaml.safe_load((tmp_path / "b3.yaml").read_text()) == \
        yaml.safe_load((tmp_path / "b2.yaml").read_text())


@pytest.mark.parametrize("url, message", [
    ("runs/nas.db", "is not a database URL"),
    ("redis://localhost/0", "takes sqlite, postgresql or mysql"),
    ("sqlite://", "in-memory database is not shared"),
    ("sqlite:///:memory:", "in-memory database is not shared"),
    ("postgresql://user:secret@localhost:1/nas", "postgresql"),
])
def test_a_bad_storage_url_gives_one_clear_error(tmp_path, url, message):
    with pytest.raises(ConfigError) as e:
        open_storage(url)
    assert message in str(e.value) and "secret" not in str(e.value)


def test_a_directory_is_no_sqlite_file(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        open_storage(f"sqlite:///{tmp_path}")


@pytest.mark.parametrize("args, message", [
    (["--storage", "nonsense"], "is not a database URL"),
    (["--space", json.dumps({"decisions": [{"name": "a"}]})], "give choices, or a range"),
    (["--preset", "estimator", "--space",
      json.dumps({"decisions": [{"name": "cell", "choices": ["lstm", "gru"]}]})],
     "the space sets cell, which the estimator config does not have"),
    (["--preset", "estimator", "--space",
      json.dumps({"decisions": [{"name": "hidden", "choices": [0, 64]}]})],
     "decision hidden=0 makes an invalid estimator config: hidden must be >= 1"),
    (["--objective", "nothing"], "unknown objective 'nothing'"),
    (["--sampler", "cmaes"], "sampler must be one of"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, args, message):
    assert main(_nas(tmp_path, "--n-trials", "1", *args)) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and err.startswith("meta-train: error:") and "\n" not in err


@pytest.mark.slow
def test_two_worker_processes_share_one_study_and_agree_on_the_controller(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    args = _nas(tmp_path, "--n-trials", "12", "--batch-size", "2", "--study-name", "shared",
                "--budget", json.dumps({"target_seed": 0, "delay_s": 1.5}))
    workers = [_cli(*args), _cli(*args)]  # as on two machines: the same command twice
    for p in workers:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    study = optuna.load_study(study_name="shared", storage=storage)
    done = [t for t in study.trials if t.state.is_finished()]
    assert 12 <= len(done) <= 13 and all(t.state.name == "COMPLETE" for t in done)
    assert len({t.user_attrs["worker"] for t in done}) == 2
    by_batches: dict[int, set] = {}
    for t in done:
        by_batches.setdefault(t.system_attrs[BATCHES_ATTR], set()).add(
            t.system_attrs[DIGEST_ATTR])
    assert all(len(d) == 1 for d in by_batches.values())  # one controller per history
    assert max(by_batches) >= 3


@pytest.mark.slow
def test_a_killed_workers_trial_ends_fail_and_is_retried_once(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    common = ["--heartbeat-s", "1", "--grace-s", "2"]
    a = _cli(*_nas(tmp_path, "--n-trials", "4", "--study-name", "kill", *common,
                   "--budget", json.dumps({"target_seed": 0, "delay_s": 4.0})))
    deadline = time.time() + 120
    running = []
    while time.time() < deadline and not running:
        time.sleep(0.5)
        try:
            study = optuna.load_study(study_name="kill", storage=open_storage(storage))
            # mid-trial: the controller has drawn and recorded its string (a worker killed
            # between creating the trial and sampling it has nothing to replay)
            running = [t for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
                       if STRING_ATTR in t.system_attrs]
        except (KeyError, ConfigError):
            pass
    assert running, a.communicate()[1]
    a.kill()  # SIGKILL mid-trial: no cleanup, the trial stays RUNNING, its heartbeat stops
    a.communicate()
    lost = running[0]
    b = _cli("nas", "--storage", storage, "--study-name", "kill", "--n-trials", "4",
             "--no-progress", *common, "--out", str(tmp_path / "best.yaml"))
    _, err = b.communicate(timeout=240)
    assert b.returncode == 0, err
    study = optuna.load_study(study_name="kill", storage=storage)
    states = [t.state.name for t in study.trials]
    assert states.count("FAIL") == 1 and states.count("COMPLETE") == 4, states
    failed = study.trials[lost.number]
    assert failed.state.name == "FAIL" and ERROR_ATTR not in failed.user_attrs
    retries = [t for t in study.trials if t.system_attrs.get("failed_trial") == lost.number]
    assert len(retries) == 1 and retries[0].state.name == "COMPLETE"
    # the retry evaluates the lost trial's string: the values it had suggested and, for any
    # it had not yet (killed between two suggestions), the controller's recorded draw
    retry = retries[0]
    assert retry.system_attrs[STRING_ATTR] == failed.system_attrs[STRING_ATTR]
    assert {k: retry.params[k] for k in failed.params} == failed.params
