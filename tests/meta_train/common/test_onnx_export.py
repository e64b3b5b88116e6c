"""Tests for meta_train.common.onnx_export: torch/onnxruntime parity, metadata, atomic writes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from meta_control.runtime import (
    METADATA_KEY,
    EstimatorRuntime,
    ModelError,
    ModelMetadata,
    PolicyRuntime,
    contract_hash,
    load_metadata,
)
from meta_train.common.networks import DynamicsEstimator, FeedforwardActor, RecurrentActor
from meta_train.common.onnx_export import export_estimator, export_policy

OBS, GOAL, ACT, MU, H = 8, 3, 2, 2, 24
SCALE = [0.3, 0.6]
STEPS, RESET_AT = 100, 50


def make_metadata(obs_dim: int = OBS, goal_dim: int = GOAL) -> ModelMetadata:
    """Metadata for a 2-joint toy arm with wide observation ranges."""
    return ModelMetadata(
        kind="policy",
        env_id="ToyReach-v0",
        obs_terms=[
            {"name": "joint_pos", "size": 2, "units": "rad"},
            {"name": "misc", "size": obs_dim - 2, "units": "1"},
        ],
        obs_dim=obs_dim,
        goal_dim=goal_dim,
        act_dim=ACT,
        joint_names=["shoulder", "elbow"],
        action_meaning="joint_position_offset",
        action_low=[-s for s in SCALE],
        action_high=list(SCALE),
        joint_limits_low=[-2.5, -2.0],
        joint_limits_high=[2.5, 2.0],
        control_period_s=0.02,
        mu_names=["link_mass_scale", "joint_damping"],
        mu_train_low=[0.5, 0.0],
        mu_train_high=[2.0, 0.3],
        obs_low=[-10.0] * obs_dim,
        obs_high=[10.0] * obs_dim,
        goal_low=[-5.0] * goal_dim,
        goal_high=[5.0] * goal_dim,
        training_config={"algo": "rdpg", "seed": 3},
        source_commit="test",
    )


def _with_stats(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give the normalisers non-trivial statistics so parity covers them."""
    gen = torch.Generator().manual_seed(seed)
    module.obs_norm.update(torch.randn(500, module.obs_dim, generator=gen) * 2.0 + 0.5)
    if hasattr(module, "goal_norm"):
        module.goal_norm.update(torch.randn(500, module.goal_dim, generator=gen) - 1.0)
    return module.eval()


def _episode(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    obs = rng.normal(0.0, 3.0, size=(STEPS, OBS))
    goal = np.repeat(rng.uniform(-2, 2, size=(1, GOAL)), STEPS, axis=0)
    goal[RESET_AT:] = rng.uniform(-2, 2, size=GOAL)
    return obs, goal


def test_recurrent_policy_parity_over_episode_with_reset(tmp_path: Path) -> None:
    torch.manual_seed(0)
    actor = _with_stats(RecurrentActor(OBS, GOAL, ACT, SCALE, hidden=H))
    path = export_policy(actor, tmp_path / "policy.onnx", make_metadata())
    runtime = PolicyRuntime(path)
    obs, goal = _episode()
    state, prev = actor.initial_state(1), torch.zeros(1, 1, ACT)
    worst = 0.0
    with torch.no_grad():
        for t in range(STEPS):
            if t == RESET_AT:
                runtime.reset()
                state, prev = actor.initial_state(1), torch.zeros(1, 1, ACT)
            o = torch.as_tensor(obs[t], dtype=torch.float32).view(1, 1, -1)
            g = torch.as_tensor(goal[t], dtype=torch.float32).view(1, 1, -1)
            ref, state = actor(o, g, prev, state)
            prev = ref
            got = runtime.step(obs[t], goal[t])
            assert got.dtype == np.float64 and got.shape == (ACT,)
            worst = max(worst, float(np.abs(got - ref.view(-1).numpy()).max()))
    assert worst <= 1e-5
    # the graph holds the LSTM as the native operator
    assert "LSTM" in {n.op_type for n in onnx.load(str(path)).graph.node}


def test_feedforward_policy_parity(tmp_path: Path) -> None:
    torch.manual_seed(0)
    actor = _with_stats(FeedforwardActor(OBS, GOAL, ACT, SCALE, hidden=H))
    runtime = PolicyRuntime(export_policy(actor, tmp_path / "ff.onnx", make_metadata()))
    assert not runtime.metadata.recurrent and runtime.metadata.hidden_size == 0
    obs, goal = _episode()
    with torch.no_grad():
        ref, _ = actor(torch.as_tensor(obs, dtype=torch.float32), torch.as_tensor(goal).float())
    got = np.stack([runtime.step(o, g) for o, g in zip(obs, goal, strict=True)])
    assert np.abs(got - ref.numpy()).max() <= 1e-5


def test_estimator_parity_over_episode_with_reset(tmp_path: Path) -> None:
    torch.manual_seed(0)
    est = _with_stats(DynamicsEstimator(OBS, ACT, MU, hidden=H, action_scale=SCALE))
    meta = dataclasses.replace(make_metadata(goal_dim=0), kind="estimator")
    runtime = EstimatorRuntime(export_estimator(est, tmp_path / "est.onnx", meta))
    rng = np.random.default_rng(2)
    obs = rng.normal(0.0, 3.0, size=(STEPS, OBS))
    act = rng.uniform(-1, 1, size=(STEPS, ACT)) * SCALE
    worst = 0.0
    state = est.initial_state(1)
    with torch.no_grad():
        for t in range(STEPS):
            if t == RESET_AT:
                runtime.reset()
                state = est.initial_state(1)
            o = torch.as_tensor(obs[t], dtype=torch.float32).view(1, 1, -1)
            a = torch.as_tensor(act[t], dtype=torch.float32).view(1, 1, -1)
            mean, logvar, state = est(o, a, state)
            got_mean, got_std = runtime.step(obs[t], act[t])
            ref_std = torch.exp(0.5 * logvar).view(-1).numpy()
            worst = max(
                worst,
                float(np.abs(got_mean - mean.view(-1).numpy()).max()),
                float(np.abs(got_std - ref_std).max()),
            )
    assert worst <= 1e-5


def test_metadata_roundtrip_and_embedding(tmp_path: Path) -> None:
    actor = RecurrentActor(OBS, GOAL, ACT, SCALE, hidden=H)
    path = export_policy(actor, tmp_path / "p.onnx", make_metadata())
    meta = load_metadata(path)
    assert meta == ModelMetadata.from_json(meta.to_json())
    assert meta.kind == "policy" and meta.recurrent and meta.hidden_size == H and meta.opset == 17
    assert meta.training_config == {"algo": "rdpg", "seed": 3}
    assert meta.contract_hash == contract_hash(meta)
    assert meta.onnx_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    embedded = ModelMetadata.from_json(props[METADATA_KEY])
    assert embedded.onnx_sha256 == ""
    assert dataclasses.replace(embedded, onnx_sha256=meta.onnx_sha256) == meta


def test_metadata_json_missing_or_extra_fields_are_named() -> None:
    text = dataclasses.replace(make_metadata(), contract_hash="x").to_json()
    raw = json.loads(text)
    del raw["joint_names"]
    with pytest.raises(ModelError, match="joint_names"):
        ModelMetadata.from_json(json.dumps(raw))
    raw = json.loads(text)
    raw["gain"] = 3
    with pytest.raises(ModelError, match="gain"):
        ModelMetadata.from_json(json.dumps(raw))
    raw = json.loads(text)
    raw["obs_low"] = raw["obs_low"][:-1]
    with pytest.raises(ModelError, match="obs_low"):
        ModelMetadata.from_json(json.dumps(raw))


def test_contract_hash_tracks_interface_only() -> None:
    meta = make_metadata()
    same = dataclasses.replace(meta, control_period_s=0.01, training_config={})
    assert contract_hash(same) == contract_hash(meta)
    renamed = dataclasses.replace(meta, joint_names=["elbow", "shoulder"])
    assert contract_hash(renamed) != contract_hash(meta)


def test_atomic_write_leaves_no_temporary_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    actor = RecurrentActor(OBS, GOAL, ACT, SCALE, hidden=H)
    export_policy(actor, tmp_path / "p.onnx", make_metadata())
    export_policy(actor, tmp_path / "p.onnx", make_metadata())  # overwrite in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json", "p.onnx"]

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        export_policy(actor, tmp_path / "q.onnx", make_metadata())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json", "p.onnx"]


def test_export_does_not_touch_the_trained_module(tmp_path: Path) -> None:
    actor = RecurrentActor(OBS, GOAL, ACT, SCALE, hidden=H).train()
    before = {k: v.clone() for k, v in actor.state_dict().items()}
    export_policy(actor, tmp_path / "p.onnx", make_metadata())
    assert actor.training
    assert all(torch.equal(before[k], v) for k, v in actor.state_dict().items())


def test_export_rejects_metadata_that_disagrees_with_the_network(tmp_path: Path) -> None:
    actor = RecurrentActor(OBS, GOAL, ACT, SCALE, hidden=H)
    wrong_bounds = dataclasses.replace(make_metadata(), action_high=[1.0, 1.0])
    with pytest.raises(ValueError, match="action_scale"):
        export_policy(actor, tmp_path / "p.onnx", wrong_bounds)
    with pytest.raises(ValueError, match="obs_dim"):
        export_policy(actor, tmp_path / "p.onnx", make_metadata(obs_dim=OBS + 1))
    assert not any(tmp_path.iterdir())
