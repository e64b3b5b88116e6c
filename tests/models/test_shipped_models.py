"""Every shipped model loads through the robot's runtime and still earns the headline its
sidecar records, on a small fixed subset of the same tasks (a floor derived from the recorded
interval, not a timing)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from meta_control.runtime import EstimatorRuntime, PolicyRuntime, load_metadata
from meta_train.export.evaluate_model import evaluate_model

MODELS = Path(__file__).resolve().parents[2] / "models"
SHIPPED = sorted(MODELS.glob("*.onnx"))
SMALL = {"policy": 40, "estimator": 20}


def test_models_are_shipped_for_every_robot():
    """The demo's and the launch files' defaults: ``models/<robot>_{policy,estimator}.onnx``."""
    from sim.robots import ROBOTS

    for robot in ROBOTS:
        for kind in ("policy", "estimator"):
            assert load_metadata(MODELS / f"{robot}_{kind}.onnx").kind == kind


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_a_shipped_model_loads_and_holds_its_headline(path):
    meta = load_metadata(path)
    (PolicyRuntime if meta.kind == "policy" else EstimatorRuntime)(path)
    ev = meta.evaluation
    assert ev, f"{path.name}: its sidecar records no evaluation (meta-train evaluate-model)"
    assert ev["kind"] == meta.kind and ev["episodes"] >= 100 and "command" in ev
    n = SMALL[meta.kind]
    got = evaluate_model(path, n, ev["dynamics"], ev["reset_seed"], ev["episode_steps"],
                         contact_k=ev.get("contact_k"), limits=ev.get("limits"))
    lo, hi = ev["ci95"]
    if meta.kind == "policy":
        # success may not fall 3 binomial standard deviations (at n tasks) below the recorded
        # interval's lower end
        p = ev["value"]
        floor = lo - 3.0 * math.sqrt(p * (1.0 - p) / n)
        assert got["value"] >= floor, (got["value"], floor)
        assert got["refused_inputs"] == 0
    else:
        # the error ratio may not rise 3 standard errors (scaled to n episodes) above it
        sigma = (hi - lo) / 3.92 * math.sqrt(ev["episodes"] / n)
        ceiling = hi + 3.0 * sigma
        assert got["value"] <= ceiling, (got["value"], ceiling)
