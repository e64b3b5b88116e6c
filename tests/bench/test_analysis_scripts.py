"""The analysis scripts under bench/analysis/ (and the pipeline benchmark) run as their docs
show them, on a real (tiny) run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sim.scripted import KNOWLEDGE

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _script(name: str, *args: str) -> subprocess.CompletedProcess:
    """Run ``bench/analysis/<name>`` (or ``bench/<name>``, a benchmark) as a user would."""
    path = BENCH / "analysis" / name
    if not path.is_file():
        path = BENCH / name
    return subprocess.run([sys.executable, str(path), *args], capture_output=True,
                          text=True, timeout=300)


def test_success_by_friction_splits_episodes_by_band(tiny_run, tmp_path):
    out = tmp_path / "table.json"
    res = _script("success_by_friction.py", str(tiny_run), "--episodes", "3", "--json", str(out))
    assert res.returncode == 0, res.stderr
    assert "| all | 3 |" in res.stdout
    rows = json.loads(out.read_text())["rows"]
    total = rows[-1]
    assert total["band"] == "all" and total["episodes"] == 3
    assert sum(r["episodes"] for r in rows[:-1]) == 3
    # a failure after reaching the goal is a failure
    assert total["policy, failed after reaching"] <= 1.0 - total["policy"] + 1e-9
    assert set(total) >= {f"{k} teacher" for k in KNOWLEDGE}


def test_success_by_friction_compares_with_the_teachers_named(tiny_run, tmp_path):
    out = tmp_path / "table.json"
    res = _script("success_by_friction.py", str(tiny_run), "--episodes", "2", "--teachers",
                  "planning", "--json", str(out))
    assert res.returncode == 0, res.stderr
    total = json.loads(out.read_text())["rows"][-1]
    assert "planning teacher" in total and "privileged teacher" not in total


def test_success_by_friction_refuses_a_missing_run(tmp_path):
    res = _script("success_by_friction.py", str(tmp_path / "nope"))
    assert res.returncode == 2 and "error" in res.stderr and "Traceback" not in res.stderr


def test_curve_windows_reads_a_progress_file(tiny_run, tmp_path):
    res = _script("curve_windows.py", str(tiny_run / "progress.csv"))
    assert res.returncode == 0, res.stderr
    row = res.stdout.splitlines()[-1].split(" | ")
    assert row[0] == "| progress" and row[7] == "400"  # its last env step count
    res = _script("curve_windows.py", "--windows", "0-0.3,0.3-0.5", str(tiny_run / "progress.csv"))
    assert res.returncode == 0, res.stderr
    assert "| 0-0.3k | 0.3-0.5k |" in res.stdout
    row = res.stdout.splitlines()[-1].split(" | ")
    assert row[1] != "-" and row[2] != "-"  # evaluations at 200 and 400 steps fall in them
    svg = tmp_path / "curve.svg"
    res = _script("curve_windows.py", "--windows", "0-0.3,0.3-0.5", "--plot", str(svg),
                  str(tiny_run / "progress.csv"))
    assert res.returncode == 0, res.stderr
    assert svg.read_text().startswith("<?xml") and "success at 0.05 m" in svg.read_text()
    res = _script("curve_windows.py", "--windows", "5-1", str(tiny_run / "progress.csv"))
    assert res.returncode == 2 and "expected windows" in res.stderr
    bad = tmp_path / "progress.csv"
    bad.write_text("a,b\n1,2\n")
    res = _script("curve_windows.py", str(bad))
    assert res.returncode == 2 and "Traceback" not in res.stderr


def test_contact_reveal_counts_first_taps():
    res = _script("contact_reveal.py", "--episodes", "3")
    assert res.returncode == 0, res.stderr
    assert "3 tasks (reset seeds 20000+): 3 first taps" in res.stdout
    assert _script("contact_reveal.py", "--episodes", "0").returncode == 2


def test_teacher_prior_compares_priors_on_the_same_tasks(tmp_path):
    out = tmp_path / "priors.json"
    res = _script("teacher_prior.py", "--priors", "0.1", "0.3", "--episodes", "3",
                  "--json", str(out))
    assert res.returncode == 0, res.stderr
    assert "| puck friction | episodes | prior 0.1 | prior 0.3 |" in res.stdout
    rows = json.loads(out.read_text())["rows"]
    assert rows[-1]["band"] == "all" and rows[-1]["episodes"] == 3
    assert sum(r["episodes"] for r in rows[:-1]) == 3
    assert all(0.0 <= r["prior 0.1"] <= 1.0 for r in rows)
    res = _script("teacher_prior.py", "--priors", "0", "--episodes", "1")
    assert res.returncode == 2 and "Traceback" not in res.stderr


def test_first_push_measures_the_policy_and_the_teacher(tiny_run, tmp_path):
    out = tmp_path / "push.json"
    res = _script("first_push.py", str(tiny_run), "--episodes", "3", "--json", str(out))
    assert res.returncode == 0, res.stderr
    rows = json.loads(out.read_text())["rows"]
    total = rows[-1]
    assert total["band"] == "all" and total["episodes"] == 3
    teacher = total["contact teacher"]
    # the teacher pushes the puck in every task: a first push was measured
    assert 0.0 < teacher["median"] <= teacher["p90"] < 5.0
    res = _script("first_push.py", str(tmp_path / "nope"))
    assert res.returncode == 2 and "error" in res.stderr and "Traceback" not in res.stderr


def test_pool_evals_sums_chunks_and_refuses_a_repeated_seed(tmp_path):
    def chunk(name: str, n: int, s5: float, s7: float) -> None:
        result = {"train": {"episodes": n, "success_0.05": s5, "success_0.07": s7}}
        (tmp_path / f"{name}.json").write_text(json.dumps(result))

    chunk("R_final_train_s10000", 200, 0.9, 0.95)
    chunk("R_final_train_s10200", 200, 0.8, 0.85)
    chunk("Q_final_train", 100, 0.5, 0.5)
    res = _script("pool_evals.py", *sorted(str(p) for p in tmp_path.glob("*.json")))
    assert res.returncode == 0, res.stderr
    rows = {r.split(" | ")[0]: r for r in res.stdout.splitlines()[2:]}
    assert "| 400 | 0.850 [" in rows["| R_final_train"] and "(340)" in rows["| R_final_train"]
    assert "0.900 [" in rows["| R_final_train"].split(" | ")[4]  # (190 + 170) / 400 at 0.07 m
    assert "| 100 | 0.500 [" in rows["| Q_final_train"]
    chunk("R_final_train_s010000", 200, 0.9, 0.95)  # the same reset seed again
    res = _script("pool_evals.py", *sorted(str(p) for p in tmp_path.glob("*.json")))
    assert res.returncode == 2 and "counted twice" in res.stderr and "Traceback" not in res.stderr


def test_pipeline_speedup_times_both_collectors_over_the_same_iterations(tmp_path):
    out = tmp_path / "speedup.json"
    res = _script("pipeline_speedup.py", "--seconds", "12", "--from-iteration", "2",
                  "--json", str(out), "--", "--hidden", "16", "--batch-episodes", "4",
                  "--demo-episodes", "2", "--eval-every", "2", "--eval-episodes", "1",
                  "--updates-per-iteration", "1", "--warmup-episodes", "2")
    assert res.returncode == 0, res.stderr
    assert "process / inline" in res.stdout
    result = json.loads(out.read_text())
    a, b = result["window_iterations"]
    assert 2 <= a < b
    # the same iterations: the same updates in both, and the ratio is of their speeds
    assert result["inline"]["updates"] == result["process"]["updates"] == b - a
    speed = {m: result[m]["env_steps_per_s"] for m in ("inline", "process")}
    assert result["speedup"] == round(speed["process"] / speed["inline"], 3)


def test_pipeline_speedup_refuses_a_failing_run(tmp_path):
    res = _script("pipeline_speedup.py", "--seconds", "1", "--", "--gamma", "2")
    assert res.returncode == 2 and "gamma" in res.stderr and "Traceback" not in res.stderr


def test_model_step_times_only_inputs_both_shipped_models_accept(tmp_path):
    out = tmp_path / "step.json"
    res = _script("bench_model_step.py", "--episodes", "2", "--steps", "30", "--json", str(out))
    assert res.returncode == 0, res.stderr
    got = json.loads(out.read_text())
    assert got["skipped_episodes"] >= 0
    for kind in ("policy", "estimator"):
        assert got[kind]["n"] == 2 * 30, got[kind]
        assert 0 < got[kind]["p50_us"] <= got[kind]["p99_us"] <= got[kind]["max_us"]


@pytest.mark.ros
def test_ros_loop_runs_the_policy_on_every_state(tmp_path):
    """A short loop at 100 Hz: every state comes back as a command computed by the policy (a
    controller that held instead, e.g. on a pose frame it refuses, would measure nothing)."""
    out = tmp_path / "loop.json"
    res = _script("bench_ros_loop.py", "--rates", "100", "--duration", "2", "--executors",
                  "events", "--output-json", str(out))
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    (row,) = json.loads(out.read_text())["rows"]
    assert row["commands"] > 150 and row["controller_holds"] == 0, row


def test_bench_teacher_scores_teachers_on_the_same_tasks_with_their_label_cost(tmp_path):
    out = tmp_path / "teachers.json"
    res = _script("bench_teacher.py", "--env", "MetaPusherPush-v0", "--teachers", "planning",
                  "privileged", "--episodes", "2", "--label-episodes", "1", "--jobs", "2",
                  "--json", str(out))
    assert res.returncode == 0, res.stderr
    rows = json.loads(out.read_text())["results"]
    assert [(r["teacher"], r["driver"]) for r in rows] == [
        ("planning", "teacher"), ("privileged", "teacher"),
        ("planning", "teacher + noise 0.5"), ("privileged", "teacher + noise 0.5")]
    for r in rows:
        assert r["n"] == (2 if r["driver"] == "teacher" else 1)
        assert r["labels"] == r["n"] * 50  # every step of the pusher's 50-step episodes
        assert r["label_s_mean"] > 0.0 and r["label_s_p99"] > 0.0
        assert r["ci95"][0] <= r["success"] <= r["ci95"][1]
    bad = _script("bench_teacher.py", "--episodes", "0")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
