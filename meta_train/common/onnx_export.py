"""Export trained policies and dynamics estimators to self-describing ONNX files.

Following Isaac Lab's deployment exporter, the graph takes one step for a batch of one, with the
LSTM state as explicit inputs/outputs (``h_in``/``c_in`` -> ``h_out``/``c_out``), and contains the
observation/goal normalisation and the action scaling and clipping, so the runtime feeds raw
sensor values and applies the output directly. The legacy TorchScript exporter is used
(``dynamo=False``): it emits the native ONNX ``LSTM`` operator and needs no onnxscript.

Each export writes ``<name>.onnx`` and the sidecar ``<name>.json`` atomically (temporary file +
``os.replace``), and embeds the same :class:`ModelMetadata` in the ONNX ``metadata_props``. The
exporter fills in the fields it owns (``kind``, ``recurrent``, ``hidden_size``, ``history``,
``opset``, ``contract_hash``, ``onnx_sha256``, and ``source_commit`` when left ``"unknown"``),
checks the rest against the network, and verifies the written file with the same loader the
robot uses.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import subprocess
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from meta_control.runtime import (
    METADATA_KEY,
    EstimatorRuntime,
    ModelMetadata,
    PolicyRuntime,
    contract_hash,
    expected_io,
    sidecar_path,
)
from meta_train.common.files import atomic_write

__all__ = ["OPSET", "ModelMetadata", "export_estimator", "export_policy", "git_commit"]

OPSET = 17
"""ONNX opset of exported graphs."""

_PARITY_TOL = 1e-4
"""Largest torch-vs-onnxruntime difference accepted by the post-export check."""


class _PolicyStep(nn.Module):
    """One step of a recurrent actor, batch 1, with explicit state and clipping."""

    def __init__(self, actor: nn.Module) -> None:
        super().__init__()
        self.actor = actor

    def forward(
        self,
        obs: torch.Tensor,
        goal: torch.Tensor,
        prev_action: torch.Tensor,
        h_in: torch.Tensor,
        c_in: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        action, (h, c) = self.actor(
            obs.unsqueeze(1), goal.unsqueeze(1), prev_action.unsqueeze(1), (h_in, c_in)
        )
        scale = self.actor.action_scale
        return torch.clamp(action.squeeze(1), -scale, scale), h, c


class _FeedforwardPolicyStep(nn.Module):
    """One step of a feedforward actor, batch 1, with clipping."""

    def __init__(self, actor: nn.Module) -> None:
        super().__init__()
        self.actor = actor

    def forward(self, obs: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        action, _ = self.actor(obs, goal)
        scale = self.actor.action_scale
        return torch.clamp(action, -scale, scale)


class _EstimatorStep(nn.Module):
    """One step of a dynamics estimator, batch 1, with explicit state."""

    def __init__(self, estimator: nn.Module) -> None:
        super().__init__()
        self.estimator = estimator

    def forward(
        self,
        obs: torch.Tensor,
        prev_action: torch.Tensor,
        h_in: torch.Tensor,
        c_in: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        mean, logvar, (h, c) = self.estimator(
            obs.unsqueeze(1), prev_action.unsqueeze(1), (h_in, c_in)
        )
        return mean.squeeze(1), logvar.squeeze(1), h, c


class _DeltaEstimatorStep(nn.Module):
    """One step of a dynamics estimator that also reads the previous observation and reports
    its forward head's error on the change it observed (io_version 2)."""

    def __init__(self, estimator: nn.Module) -> None:
        super().__init__()
        self.estimator = estimator

    def forward(
        self,
        obs: torch.Tensor,
        prev_obs: torch.Tensor,
        prev_action: torch.Tensor,
        h_in: torch.Tensor,
        c_in: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        est = self.estimator
        error = est.observation_error(obs, prev_obs, prev_action, h_in[0])
        mean, logvar, (h, c) = est(
            obs.unsqueeze(1), prev_action.unsqueeze(1), (h_in, c_in), prev_obs.unsqueeze(1)
        )
        return mean.squeeze(1), logvar.squeeze(1), h, c, error


def git_commit(cwd: Path | None = None) -> str:
    """``git rev-parse HEAD`` of the repository holding this file, or ``"unknown"``."""
    cwd = Path(__file__).resolve().parent if cwd is None else cwd
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else "unknown"


def _check_dim(name: str, meta_value: int, net_value: int) -> None:
    if meta_value != net_value:
        raise ValueError(f"metadata {name}={meta_value} but the network has {name}={net_value}")


def _check_action_bounds(meta: ModelMetadata, scale: torch.Tensor) -> None:
    scale_np = scale.detach().cpu().double().numpy()
    if not (
        np.allclose(meta.action_high, scale_np, rtol=1e-6, atol=1e-9)
        and np.allclose(meta.action_low, -scale_np, rtol=1e-6, atol=1e-9)
    ):
        raise ValueError(
            f"metadata action_low/high {meta.action_low}/{meta.action_high} do not match the "
            f"network's action_scale {scale_np.tolist()} (the graph clips to +-action_scale)"
        )


def _finalise(meta: ModelMetadata, **owned: object) -> ModelMetadata:
    """Fill in exporter-owned fields and the contract hash, then validate."""
    meta = dataclasses.replace(meta, opset=OPSET, onnx_sha256="", **owned)
    if meta.source_commit in ("", "unknown"):
        meta = dataclasses.replace(meta, source_commit=git_commit())
    meta = dataclasses.replace(meta, contract_hash=contract_hash(meta))
    meta.validate()
    return meta


def _to_onnx(
    module: nn.Module, example: tuple[torch.Tensor, ...], meta: ModelMetadata
) -> onnx.ModelProto:
    inputs, outputs = expected_io(meta)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # The legacy exporter is chosen on purpose (native LSTM op, no onnxscript); its
        # deprecation and tracer notices say nothing about this model.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            example,
            buffer,
            dynamo=False,
            opset_version=OPSET,
            input_names=list(inputs),
            output_names=list(outputs),
            do_constant_folding=True,
        )
    model = onnx.load_from_string(buffer.getvalue())
    entry = model.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = meta.to_json()
    model.doc_string = f"meta_control {meta.kind} for {meta.env_id}"
    onnx.checker.check_model(model)
    return model


def _check_parity(
    module: nn.Module, example: tuple[torch.Tensor, ...], data: bytes, meta: ModelMetadata
) -> None:
    """Compare torch and onnxruntime on ``example``; raise if they disagree."""
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    inputs, _ = expected_io(meta)
    feed = {name: t.numpy() for name, t in zip(inputs, example, strict=True)}
    got = session.run(None, feed)
    with torch.no_grad():
        ref = module(*example)
    ref = ref if isinstance(ref, tuple) else (ref,)
    for name, r, g in zip(session.get_outputs(), ref, got, strict=True):
        diff = float(np.max(np.abs(r.numpy() - g))) if g.size else 0.0
        if not diff <= _PARITY_TOL:
            raise RuntimeError(
                f"exported output {name.name!r} differs from torch by {diff:.3g} "
                f"(> {_PARITY_TOL}); the exporter mistranslated the network"
            )


def _write(
    model: onnx.ModelProto, path: Path, meta: ModelMetadata, module: nn.Module, example: tuple
) -> Path:
    data = model.SerializeToString()
    _check_parity(module, example, data, meta)
    meta = dataclasses.replace(meta, onnx_sha256=hashlib.sha256(data).hexdigest())
    atomic_write(path, data)
    atomic_write(sidecar_path(path), (meta.to_json() + "\n").encode("utf-8"))
    return path


def _example(*shapes: tuple[int, ...], seed: int = 0) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(*shape, generator=gen) * 0.5 for shape in shapes)


def export_policy(actor: nn.Module, path: str | Path, metadata: ModelMetadata) -> Path:
    """Export a :class:`~meta_train.common.networks.RecurrentActor` or ``FeedforwardActor``.

    Recurrent: inputs ``obs [1, obs_dim]``, ``goal [1, goal_dim]``, ``prev_action [1, act_dim]``,
    ``h_in``/``c_in [1, 1, H]``; outputs ``action [1, act_dim]``, ``h_out``, ``c_out``.
    Feedforward: inputs ``obs``, ``goal``; output ``action``.

    Args:
        actor: The trained actor (any device; it is copied to CPU, the original is untouched).
        path: Destination ``.onnx`` path; the sidecar goes to ``path.with_suffix(".json")``.
        metadata: Deployment contract; dims and action bounds must match the actor.

    Returns:
        ``path``, after the written pair has been verified by :class:`PolicyRuntime`.
    """
    path = Path(path)
    actor = copy.deepcopy(actor).cpu().float().eval()
    recurrent = bool(actor.is_recurrent)
    meta = _finalise(
        metadata,
        kind="policy",
        recurrent=recurrent,
        hidden_size=int(actor.hidden) if recurrent else 0,
        history=int(getattr(actor, "history", 0)),
    )
    _check_dim("obs_dim", meta.obs_dim, actor.obs_dim)
    _check_dim("goal_dim", meta.goal_dim, actor.goal_dim)
    _check_dim("act_dim", meta.act_dim, actor.act_dim)
    _check_action_bounds(meta, actor.action_scale)
    inputs, _ = expected_io(meta)
    example = _example(*(tuple(s) for s in inputs.values()))
    step = _PolicyStep(actor) if recurrent else _FeedforwardPolicyStep(actor)
    _write(_to_onnx(step, example, meta), path, meta, step, example)
    PolicyRuntime(path)
    return path


def export_estimator(estimator: nn.Module, path: str | Path, metadata: ModelMetadata) -> Path:
    """Export a :class:`~meta_train.common.networks.DynamicsEstimator`.

    Inputs ``obs [1, obs_dim]`` (with ``obs_deltas`` also ``prev_obs [1, obs_dim]``, which the
    runtime keeps), ``prev_action [1, act_dim]``, ``h_in``/``c_in [1, 1, H]``; outputs
    ``mu_mean``, ``mu_logvar [1, mu_dim]``, ``h_out``, ``c_out`` (and with ``obs_deltas``
    ``obs_error [1, obs_dim]``, the forward head's error on the observed change: io_version 2).

    Args:
        estimator: The trained estimator (copied to CPU; the original is untouched).
        path: Destination ``.onnx`` path; the sidecar goes to ``path.with_suffix(".json")``.
        metadata: Deployment contract; ``obs_dim``, ``act_dim`` and ``len(mu_names)`` must match.

    Returns:
        ``path``, after the written pair has been verified by :class:`EstimatorRuntime`.
    """
    path = Path(path)
    estimator = copy.deepcopy(estimator).cpu().float().eval()
    deltas = bool(getattr(estimator, "obs_deltas", False))
    if deltas and not getattr(estimator, "forward_head", False):
        raise ValueError("an estimator with obs_deltas exports with its forward head "
                         "(io_version 2 reports the head's error)")
    meta = _finalise(
        metadata, kind="estimator", recurrent=True, hidden_size=int(estimator.hidden), history=0,
        io_version=2 if deltas else 1,
    )
    _check_dim("obs_dim", meta.obs_dim, estimator.obs_dim)
    _check_dim("act_dim", meta.act_dim, estimator.act_dim)
    _check_dim("mu_dim", len(meta.mu_names), estimator.mu_dim)
    inputs, _ = expected_io(meta)
    example = _example(*(tuple(s) for s in inputs.values()))
    step = _DeltaEstimatorStep(estimator) if deltas else _EstimatorStep(estimator)
    _write(_to_onnx(step, example, meta), path, meta, step, example)
    EstimatorRuntime(path)
    return path
