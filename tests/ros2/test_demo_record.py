"""The demo records its run to a bag, and the replay evaluation reproduces it offline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from ros_helpers import export_models, ros_env

pytestmark = pytest.mark.ros


@pytest.mark.parametrize("storage", ["mcap"])
def test_recorded_demo_replays_to_the_same_actions_and_outcome(tmp_path: Path, storage):
    policy, estimator = export_models(tmp_path)
    env = ros_env(offset=29)
    bag, demo_json = tmp_path / "run_bag", tmp_path / "demo.json"
    demo = subprocess.run(
        [sys.executable, "-m", "meta_control.demo", "--episodes", "2", "--seed", "5",
         "--policy", str(policy), "--estimator", str(estimator),
         "--domain-id", env["ROS_DOMAIN_ID"], "--output-json", str(demo_json),
         "--record", str(bag), "--record-storage", storage],
        env=env, capture_output=True, text=True, timeout=240,
    )
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert (bag / "metadata.yaml").is_file()
    out = tmp_path / "report"
    ev = subprocess.run(
        [sys.executable, "-m", "meta_control.bag_eval", str(bag), "--policy", str(policy),
         "--estimator", str(estimator), "--out", str(out), "--format", "json,md",
         "--no-progress"],
        capture_output=True, text=True, timeout=240,
    )
    assert ev.returncode == 0, ev.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    # the offline replay computes exactly the actions the controller published
    assert report["action_agreement"]["n"] >= 2 * 50
    assert report["action_agreement"]["max_abs"] < 1e-5
    # and the task outcome read from the bag is the demo's, up to the simulated tracker's noise:
    # the bag holds the puck pose as sensed (observation noise <= 5% of 0.1 m per axis), the
    # demo scores the true pose.
    ran = json.loads(demo_json.read_text())["episodes"]
    replayed = report["outcome"]["episodes"]
    assert len(replayed) == len(ran)
    for r, d in zip(replayed, ran, strict=True):
        assert r["final_distance_m"] == pytest.approx(d["final_distance_m"], abs=0.02)


def test_demo_reports_missing_models_without_traceback(tmp_path: Path):
    proc = subprocess.run(
        [sys.executable, "-m", "meta_control.demo", "--policy", str(tmp_path / "none.onnx"),
         "--estimator", str(tmp_path / "none.onnx")],
        env=ros_env(offset=31), capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "not found" in proc.stderr and "Traceback" not in proc.stderr
