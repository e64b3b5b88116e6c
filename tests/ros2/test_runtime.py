"""Tests for meta_control.runtime on real exported models and onnxruntime sessions."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from meta_control.runtime import (
    METADATA_KEY,
    EstimatorRuntime,
    InputRejected,
    ModelError,
    ModelMetadata,
    PolicyRuntime,
    contract_hash,
    sidecar_path,
)
from meta_train.common.networks import DynamicsEstimator, RecurrentActor
from meta_train.common.onnx_export import export_estimator, export_policy

OBS, GOAL, ACT, MU, H = 5, 3, 2, 2, 16
OBS_LOW, OBS_HIGH = -1.0, 1.0


def make_metadata(kind: str = "policy") -> ModelMetadata:
    """Metadata for a 2-joint toy arm whose observations stayed in [-1, 1] in training."""
    goal_dim = GOAL if kind == "policy" else 0
    return ModelMetadata(
        kind=kind,
        env_id="ToyReach-v0",
        obs_terms=[
            {"name": "joint_pos", "size": 2, "units": "rad"},
            {"name": "joint_vel", "size": 2, "units": "rad/s"},
            {"name": "contact", "size": 1, "units": "1"},
        ],
        obs_dim=OBS,
        goal_dim=goal_dim,
        act_dim=ACT,
        joint_names=["shoulder", "elbow"],
        action_meaning="joint_position_offset",
        action_low=[-0.4, -0.4],
        action_high=[0.4, 0.4],
        joint_limits_low=[-2.5, -2.0],
        joint_limits_high=[2.5, 2.0],
        control_period_s=0.02,
        mu_names=["link_mass_scale", "joint_damping"],
        mu_train_low=[0.5, 0.0],
        mu_train_high=[2.0, 0.3],
        obs_low=[OBS_LOW] * OBS,
        obs_high=[OBS_HIGH] * OBS,
        goal_low=[-0.5] * goal_dim,
        goal_high=[0.5] * goal_dim,
        source_commit="test",
    )


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with one exported recurrent policy and one estimator (pristine copies)."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("models")
    actor = RecurrentActor(OBS, GOAL, ACT, 0.4, hidden=H)
    actor.obs_norm.update(torch.rand(200, OBS) * 2 - 1)
    export_policy(actor.eval(), root / "policy.onnx", make_metadata())
    est = DynamicsEstimator(OBS, ACT, MU, hidden=H, action_scale=0.4)
    export_estimator(est.eval(), root / "estimator.onnx", make_metadata("estimator"))
    return root


@pytest.fixture
def policy_path(model_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the exported policy and its sidecar, free to corrupt."""
    for name in ("policy.onnx", "policy.json"):
        shutil.copy(model_dir / name, tmp_path / name)
    return tmp_path / "policy.onnx"


def _inputs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(-0.9, 0.9, size=(n, OBS)), rng.uniform(-0.4, 0.4, size=(n, GOAL))


def _rewrite(path: Path, model: onnx.ModelProto, edit_sidecar: dict | None = None) -> None:
    """Save ``model`` and refresh the sidecar's hash, so only deeper checks can object."""
    data = model.SerializeToString()
    path.write_bytes(data)
    raw = json.loads(sidecar_path(path).read_text())
    raw.update(edit_sidecar or {})
    raw["onnx_sha256"] = hashlib.sha256(data).hexdigest()
    sidecar_path(path).write_text(json.dumps(raw))


def test_step_and_reset_reproduce_the_same_sequence(policy_path: Path) -> None:
    runtime = PolicyRuntime(policy_path)
    assert runtime.metadata.joint_names == ["shoulder", "elbow"]
    obs, goal = _inputs(30)
    first = np.stack([runtime.step(o, g) for o, g in zip(obs, goal, strict=True)])
    assert first.dtype == np.float64 and first.shape == (30, ACT)
    assert np.all(np.abs(first) <= 0.4)
    runtime.reset()
    assert all(not v.any() for v in runtime.state_snapshot().values())
    second = np.stack([runtime.step(o, g) for o, g in zip(obs, goal, strict=True)])
    np.testing.assert_array_equal(first, second)
    # the state matters: the same observation gives a different action later in the episode
    runtime.reset()
    assert not np.allclose(runtime.step(obs[-1], goal[-1]), first[-1], atol=1e-7)


@pytest.mark.parametrize(
    ("field", "mutate", "reason"),
    [
        ("obs", lambda o, g: (np.where(np.arange(OBS) == 2, np.nan, o), g), "non_finite"),
        ("obs", lambda o, g: (np.where(np.arange(OBS) == 0, np.inf, o), g), "non_finite"),
        ("goal", lambda o, g: (o, np.array([0.0, -np.inf, 0.0])), "non_finite"),
        ("obs", lambda o, g: (o[:-1], g), "wrong_length"),
        ("obs", lambda o, g: (o.reshape(1, -1), g), "wrong_length"),
        ("goal", lambda o, g: (o, np.zeros(GOAL + 1)), "wrong_length"),
        ("obs", lambda o, g: (np.where(np.arange(OBS) == 4, 2.5, o), g), "out_of_range"),
        ("goal", lambda o, g: (o, np.array([0.0, 0.0, -1.2])), "out_of_range"),
        ("obs", lambda o, g: (["a"] * OBS, g), "non_finite"),
    ],
)
def test_bad_inputs_are_rejected_without_touching_state(
    policy_path: Path, field: str, mutate, reason: str
) -> None:
    runtime = PolicyRuntime(policy_path)
    reference = PolicyRuntime(policy_path)
    obs, goal = _inputs(6)
    for o, g in zip(obs[:5], goal[:5], strict=True):
        runtime.step(o, g)
        reference.step(o, g)
    before = runtime.state_snapshot()
    bad_obs, bad_goal = mutate(obs[5], goal[5])
    with pytest.raises(InputRejected) as info:
        runtime.step(bad_obs, bad_goal)
    assert info.value.reason == reason and info.value.field == field
    with pytest.raises(InputRejected):
        runtime.validate(bad_obs, bad_goal)
    after = runtime.state_snapshot()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    np.testing.assert_array_equal(runtime.step(obs[5], goal[5]), reference.step(obs[5], goal[5]))


def test_range_margin_widens_the_training_range(policy_path: Path) -> None:
    obs, goal = _inputs(1)
    slightly_out = obs[0].copy()
    slightly_out[1] = OBS_HIGH + 0.9  # within 0.5 * (1 - -1) = 1.0 of the range
    PolicyRuntime(policy_path).step(slightly_out, goal[0])
    strict = PolicyRuntime(policy_path, range_margin=0.1)
    with pytest.raises(InputRejected) as info:
        strict.step(slightly_out, goal[0])
    assert info.value.reason == "out_of_range" and info.value.indices == (1,)


def test_truncated_file_is_refused(policy_path: Path) -> None:
    data = policy_path.read_bytes()
    policy_path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="truncated or modified"):
        PolicyRuntime(policy_path)


def test_flipped_weight_byte_is_refused(policy_path: Path) -> None:
    model = onnx.load(str(policy_path))
    weight = max(model.graph.initializer, key=lambda t: len(t.raw_data))
    data = bytearray(policy_path.read_bytes())
    offset = bytes(data).find(weight.raw_data)
    assert offset > 0
    data[offset + len(weight.raw_data) // 2] ^= 0x01
    policy_path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        PolicyRuntime(policy_path)


def test_non_finite_weight_is_refused_even_with_a_matching_hash(policy_path: Path) -> None:
    model = onnx.load(str(policy_path))
    weight = max(model.graph.initializer, key=lambda t: len(t.raw_data))
    array = numpy_helper.to_array(weight).copy()
    array.flat[0] = np.nan
    weight.CopyFrom(numpy_helper.from_array(array, weight.name))
    _rewrite(policy_path, model)
    with pytest.raises(ModelError, match="NaN or inf"):
        PolicyRuntime(policy_path)


def test_sidecar_that_does_not_match_the_model_is_refused(policy_path: Path) -> None:
    raw = json.loads(sidecar_path(policy_path).read_text())
    raw["control_period_s"] = 0.01
    sidecar_path(policy_path).write_text(json.dumps(raw))
    with pytest.raises(ModelError, match="control_period_s"):
        PolicyRuntime(policy_path)


def test_missing_sidecar_is_refused(policy_path: Path) -> None:
    sidecar_path(policy_path).unlink()
    with pytest.raises(ModelError, match="sidecar"):
        PolicyRuntime(policy_path)


def test_contract_hash_checks(policy_path: Path) -> None:
    meta = PolicyRuntime(policy_path).metadata
    PolicyRuntime(policy_path, expected_contract_hash=meta.contract_hash)
    other = contract_hash(dataclasses.replace(meta, joint_names=["elbow", "shoulder"]))
    with pytest.raises(ModelError, match="contract_hash"):
        PolicyRuntime(policy_path, expected_contract_hash=other)
    # metadata edited consistently in both places, but the stored hash no longer matches
    model = onnx.load(str(policy_path))
    entry = next(p for p in model.metadata_props if p.key == METADATA_KEY)
    embedded = json.loads(entry.value)
    embedded["joint_names"] = ["elbow", "shoulder"]
    entry.value = json.dumps(embedded)
    _rewrite(policy_path, model, {"joint_names": ["elbow", "shoulder"]})
    with pytest.raises(ModelError, match="contract_hash"):
        PolicyRuntime(policy_path)


def test_disallowed_opset_is_refused(policy_path: Path) -> None:
    model = onnx.load(str(policy_path))
    model.opset_import[0].version = 21
    _rewrite(policy_path, model)
    with pytest.raises(ModelError, match="opset"):
        PolicyRuntime(policy_path)


def test_wrong_kind_is_refused(model_dir: Path) -> None:
    with pytest.raises(ModelError, match="estimator"):
        PolicyRuntime(model_dir / "estimator.onnx")
    with pytest.raises(ModelError, match="policy"):
        EstimatorRuntime(model_dir / "policy.onnx")


def test_estimator_step_ood_and_physical_units(model_dir: Path) -> None:
    runtime = EstimatorRuntime(model_dir / "estimator.onnx")
    obs, _ = _inputs(10)
    for o in obs:
        mean, std = runtime.step(o, np.array([0.1, -0.2]))
    assert mean.shape == std.shape == (MU,) and np.all(std > 0)
    assert runtime.ood_score == pytest.approx(runtime.score(mean, std))
    before = runtime.state_snapshot()
    with pytest.raises(InputRejected) as info:
        runtime.step(obs[0], np.array([np.nan, 0.0]))
    assert info.value.field == "prev_action"
    assert all(np.array_equal(before[k], v) for k, v in runtime.state_snapshot().items())
    # rule: |mean| > 1 + ood_mu_margin (0.25) or std > ood_std_threshold (0.5)
    small = np.array([0.1, 0.1])
    assert not runtime.ood(np.array([0.9, -1.2]), small)
    assert runtime.ood(np.array([0.0, -1.3]), small)
    assert runtime.ood(np.zeros(MU), np.array([0.1, 0.6]))
    np.testing.assert_allclose(runtime.to_physical([-1.0, 1.0]), [0.5, 0.3])
    np.testing.assert_allclose(runtime.to_physical([0.0, 0.0]), [1.25, 0.15])
    runtime.reset()
    assert runtime.ood_score == 0.0


def test_runtime_module_does_not_import_torch() -> None:
    code = (
        "import sys, meta_control.runtime; "
        "bad = {'torch', 'pybullet', 'meta_train', 'rclpy'} & set(sys.modules); "
        "sys.exit(f'imported {bad}' if bad else 0)"
    )
    root = Path(__file__).resolve().parents[2] / "ros2_ws" / "src" / "meta_control"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr + result.stdout
