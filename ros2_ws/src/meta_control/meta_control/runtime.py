"""Torch-free runtime for exported policies and dynamics estimators.

An exported model is two files: ``<name>.onnx`` and its sidecar ``<name>.json`` holding a
:class:`ModelMetadata`, the deployment contract (ordered observation terms, joint names, action
meaning and limits, control period, training ranges). The same metadata is embedded in the ONNX
``metadata_props`` under :data:`METADATA_KEY`, with ``onnx_sha256`` blank since a file cannot
contain its own hash, and ``evaluation`` blank since the model is measured after it is written.
Loading refuses anything that does not verify (:class:`ModelError`), and every step validates
its inputs *before* inference (:class:`InputRejected`), so a bad observation never reaches the
network nor its recurrent state.

This module imports numpy, onnx and onnxruntime only, so the ROS nodes and the bag tools can use
it without torch, pybullet or ``meta_train``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

__all__ = [
    "METADATA_KEY",
    "OPSET_ALLOWED",
    "EstimatorRuntime",
    "InputRejected",
    "ModelError",
    "ModelMetadata",
    "PolicyRuntime",
    "contract_hash",
    "expected_io",
    "load_metadata",
    "sidecar_path",
]

METADATA_KEY = "meta_control.metadata"
"""Key of the ONNX ``metadata_props`` entry holding the metadata JSON."""

OPSET_ALLOWED = range(13, 21)
"""Default-domain opsets the runtime accepts (13..20)."""

OPTIONAL_FIELDS = (
    "evaluation",
    "mu_laws",
    "mu_units",
    "io_version",
    "ood_error_threshold",
    "ood_error_window",
)
"""Metadata fields a sidecar or an embedded copy may leave out (their default applies)."""

_RANGE_ABS_SLACK = 1e-6
"""Absolute slack added to every widened range, so features constant in training still accept
their own value after float32 rounding."""


class ModelError(Exception):
    """A model file or its metadata is missing, corrupt, inconsistent or not the expected one."""


class InputRejected(Exception):
    """An observation (or goal, or previous action) was refused before inference.

    Attributes:
        reason: ``"non_finite"``, ``"wrong_length"`` or ``"out_of_range"``.
        field: Which input was refused (``"obs"``, ``"goal"``, ``"prev_action"``).
        indices: Offending feature indices (empty for ``wrong_length``).
    """

    REASONS = ("non_finite", "wrong_length", "out_of_range")

    def __init__(
        self, reason: str, message: str, *, field: str = "", indices: Sequence[int] = ()
    ) -> None:
        if reason not in self.REASONS:
            raise ValueError(f"unknown InputRejected reason {reason!r}")
        super().__init__(message)
        self.reason = reason
        self.field = field
        self.indices = tuple(int(i) for i in indices)


@dataclass
class ModelMetadata:
    """Deployment contract that travels with every exported model (sidecar JSON + ONNX props).

    Lists of floats are per feature, in the order of the model's input/output vectors.
    """

    kind: str
    """``"policy"`` or ``"estimator"``."""
    env_id: str
    """Gymnasium id of the training environment."""
    obs_terms: list[dict[str, Any]]
    """Ordered observation terms, each ``{"name": str, "size": int, "units": str}``."""
    obs_dim: int
    """Observation vector size (sum of term sizes, or the stacked size when ``history > 0``)."""
    goal_dim: int
    """Goal vector size (0 for estimators)."""
    act_dim: int
    """Action vector size."""
    joint_names: list[str]
    """Controlled joints, in action order."""
    action_meaning: str
    """What an action is, e.g. ``"joint_position_offset"``."""
    action_low: list[float]
    """Lower action bound per dimension (rad for joint actions); the graph clips to it."""
    action_high: list[float]
    """Upper action bound per dimension."""
    joint_limits_low: list[float]
    """Lower joint position limits (rad), per joint."""
    joint_limits_high: list[float]
    """Upper joint position limits (rad), per joint."""
    control_period_s: float
    """Time between two policy steps in training."""
    mu_names: list[str]
    """Names of the randomised dynamics parameters ``mu``."""
    mu_train_low: list[float]
    """Lower bound of each ``mu`` in training (normalised value -1)."""
    mu_train_high: list[float]
    """Upper bound of each ``mu`` in training (normalised value +1)."""
    obs_low: list[float]
    """Smallest value of each observation feature seen in training."""
    obs_high: list[float]
    """Largest value of each observation feature seen in training."""
    goal_low: list[float]
    """Smallest value of each goal feature seen in training."""
    goal_high: list[float]
    """Largest value of each goal feature seen in training."""
    recurrent: bool = False
    """Whether the model carries ``h``/``c`` state (set by the exporter)."""
    hidden_size: int = 0
    """LSTM width ``H`` (set by the exporter; 0 when feedforward)."""
    history: int = 0
    """Number of stacked past frames in ``obs`` for frame-stacking baselines."""
    opset: int = 17
    """ONNX opset of the graph (set by the exporter)."""
    training_config: dict[str, Any] = field(default_factory=dict)
    """The trainer's configuration, for provenance."""
    source_commit: str = "unknown"
    """``git rev-parse HEAD`` of the code that trained the model."""
    contract_hash: str = ""
    """:func:`contract_hash` of this metadata (set by the exporter)."""
    onnx_sha256: str = ""
    """sha256 of the ``.onnx`` file (sidecar only; blank in the embedded copy)."""
    ood_mu_margin: float = 0.25
    """Estimator OOD rule: normalised ``|mu_mean|`` above ``1 + ood_mu_margin`` is OOD."""
    ood_std_threshold: float = 0.5
    """Estimator OOD rule: predicted normalised ``mu`` std above this is OOD."""
    mu_laws: list[str] = field(default_factory=list)
    """Sampling law of each ``mu`` (``uniform`` or ``log_uniform``): normalised values are
    linear in the physical value, or in its logarithm. Empty (models exported before the field):
    linear for all."""
    mu_units: list[str] = field(default_factory=list)
    """Physical units of each ``mu`` (empty: unknown)."""
    io_version: int = 1
    """Estimators' graph interface: 1 = ``obs, prev_action, h, c -> mu_mean, mu_logvar, h, c``;
    2 = also ``prev_obs`` in (which the runtime keeps between steps) and ``obs_error`` out, how
    far the observed change is from the graph's forward model, in standard deviations."""
    ood_error_threshold: float = 0.0
    """Estimator OOD rule (io_version 2): the forward model's mean squared error over the last
    ``ood_error_window`` steps above this is OOD; 0 leaves the term out."""
    ood_error_window: int = 10
    """Steps the forward model's error is averaged over."""
    evaluation: dict[str, Any] = field(default_factory=dict)
    """The model's headline measurement (metric, value, interval, episodes, reset seeds, the
    command that measured it); sidecar only, like ``onnx_sha256``, and optional: provenance,
    not contract."""

    def to_json(self) -> str:
        """Serialise to canonical, human-readable JSON (sorted keys, no NaN/inf)."""
        try:
            return json.dumps(dataclasses.asdict(self), sort_keys=True, indent=2, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"metadata is not JSON-serialisable: {exc}") from exc

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelMetadata:
        """Parse JSON written by :meth:`to_json`; every field must be present and no other.

        Raises:
            ModelError: on invalid JSON, missing or unknown fields, or inconsistent values.
        """
        try:
            raw = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelError(f"metadata is not valid JSON: {exc}") from exc
        if not isinstance(raw, dict):
            raise ModelError("metadata JSON must be an object")
        names = {f.name for f in dataclasses.fields(cls)}
        missing = sorted(names - raw.keys() - set(OPTIONAL_FIELDS))
        extra = sorted(raw.keys() - names)
        if missing or extra:
            raise ModelError(
                f"metadata fields do not match ModelMetadata: missing {missing}, unknown {extra}"
                " (was the model exported by a different version of meta_train.export?)"
            )
        meta = cls(**raw)
        meta.validate()
        return meta

    def validate(self) -> None:
        """Check types and internal consistency.

        Raises:
            ModelError: naming the first inconsistent field.
        """
        if self.kind not in ("policy", "estimator"):
            raise ModelError(f"kind must be 'policy' or 'estimator', got {self.kind!r}")
        for name in ("obs_dim", "goal_dim", "act_dim", "hidden_size", "history", "opset"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ModelError(f"{name} must be a non-negative int, got {value!r}")
        if not isinstance(self.recurrent, bool):
            raise ModelError(f"recurrent must be a bool, got {self.recurrent!r}")
        if self.recurrent and self.hidden_size < 1:
            raise ModelError("a recurrent model needs hidden_size >= 1")
        if not isinstance(self.obs_terms, list):
            raise ModelError("obs_terms must be a list")
        for term in self.obs_terms:
            if (
                not isinstance(term, dict)
                or set(term) != {"name", "size", "units"}
                or not isinstance(term["name"], str)
                or not isinstance(term["units"], str)
                or not isinstance(term["size"], int)
                or term["size"] < 1
            ):
                raise ModelError(f"obs_terms entries must be {{name, size>=1, units}}, got {term}")
        term_total = sum(t["size"] for t in self.obs_terms)
        if self.history == 0 and term_total != self.obs_dim:
            raise ModelError(f"obs_terms sizes sum to {term_total} but obs_dim is {self.obs_dim}")
        lengths = {
            "obs_low": self.obs_dim,
            "obs_high": self.obs_dim,
            "goal_low": self.goal_dim,
            "goal_high": self.goal_dim,
            "action_low": self.act_dim,
            "action_high": self.act_dim,
            "joint_limits_low": len(self.joint_names),
            "joint_limits_high": len(self.joint_names),
            "mu_train_low": len(self.mu_names),
            "mu_train_high": len(self.mu_names),
        }
        for name, n in lengths.items():
            values = getattr(self, name)
            if not isinstance(values, list) or len(values) != n:
                raise ModelError(f"{name} must be a list of {n} numbers, got {values!r}")
            if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
                raise ModelError(f"{name} must hold finite numbers, got {values!r}")
        for lo, hi in (
            ("obs_low", "obs_high"),
            ("goal_low", "goal_high"),
            ("action_low", "action_high"),
            ("joint_limits_low", "joint_limits_high"),
            ("mu_train_low", "mu_train_high"),
        ):
            if any(a > b for a, b in zip(getattr(self, lo), getattr(self, hi), strict=True)):
                raise ModelError(f"{lo} must be <= {hi} element-wise")
        if not all(isinstance(n, str) for n in self.joint_names + self.mu_names):
            raise ModelError("joint_names and mu_names must be strings")
        if not (isinstance(self.control_period_s, (int, float)) and self.control_period_s > 0):
            raise ModelError(f"control_period_s must be > 0, got {self.control_period_s!r}")
        if not isinstance(self.training_config, dict):
            raise ModelError("training_config must be a dict")
        if not isinstance(self.evaluation, dict):
            raise ModelError("evaluation must be a dict")
        if self.mu_laws and (
            len(self.mu_laws) != len(self.mu_names)
            or not set(self.mu_laws) <= {"uniform", "log_uniform"}
        ):
            raise ModelError("mu_laws must give 'uniform' or 'log_uniform' for every mu")
        if "log_uniform" in self.mu_laws and any(
            low <= 0
            for low, law in zip(self.mu_train_low, self.mu_laws, strict=True)
            if law == "log_uniform"
        ):
            raise ModelError("a log_uniform mu needs a positive training range")
        if self.mu_units and len(self.mu_units) != len(self.mu_names):
            raise ModelError("mu_units must give the units of every mu")
        if self.io_version not in (1, 2) or (self.io_version == 2 and self.kind != "estimator"):
            raise ModelError(
                f"io_version must be 1, or 2 for an estimator, got {self.io_version!r}"
            )
        if not (
            isinstance(self.ood_error_threshold, (int, float))
            and math.isfinite(self.ood_error_threshold)
            and self.ood_error_threshold >= 0
        ):
            raise ModelError("ood_error_threshold must be a finite number >= 0")
        if not isinstance(self.ood_error_window, int) or self.ood_error_window < 1:
            raise ModelError("ood_error_window must be an int >= 1")
        if self.ood_error_threshold > 0 and self.io_version != 2:
            raise ModelError("ood_error_threshold needs io_version 2 (the obs_error output)")
        for name in ("ood_mu_margin", "ood_std_threshold"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ModelError(f"{name} must be a finite number > 0, got {value!r}")


def contract_hash(meta: ModelMetadata) -> str:
    """sha256 (hex) of the interface a deployment depends on.

    Covers ``obs_terms``, ``joint_names``, ``act_dim``, ``goal_dim``, ``action_meaning`` and
    ``mu_names`` in canonical JSON (sorted keys, no whitespace). Two models with the same hash
    can be swapped without touching the nodes that feed them.
    """
    payload = {
        "obs_terms": meta.obs_terms,
        "joint_names": meta.joint_names,
        "act_dim": meta.act_dim,
        "goal_dim": meta.goal_dim,
        "action_meaning": meta.action_meaning,
        "mu_names": meta.mu_names,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def sidecar_path(model_path: str | Path) -> Path:
    """``models/reach.onnx`` -> ``models/reach.json``."""
    return Path(model_path).with_suffix(".json")


def load_metadata(path: str | Path) -> ModelMetadata:
    """Read metadata from a sidecar ``.json``, or from the sidecar of a ``.onnx`` path.

    This does not verify the model file; the runtimes do.
    """
    path = Path(path)
    json_path = path if path.suffix == ".json" else sidecar_path(path)
    try:
        text = json_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelError(
            f"cannot read model metadata {json_path}: {exc}; every exported model needs its "
            "sidecar JSON next to it"
        ) from exc
    try:
        return ModelMetadata.from_json(text)
    except ModelError as exc:
        raise ModelError(f"{json_path}: {exc}") from exc


def expected_io(meta: ModelMetadata) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """Input and output names and shapes (batch 1, one step) the graph must have.

    Shared by the exporter and the runtime so the two cannot disagree.
    """
    state = [1, 1, meta.hidden_size]
    if meta.kind == "policy":
        inputs = {"obs": [1, meta.obs_dim], "goal": [1, meta.goal_dim]}
        outputs = {"action": [1, meta.act_dim]}
        if meta.recurrent:
            inputs.update(prev_action=[1, meta.act_dim], h_in=state, c_in=state)
            outputs.update(h_out=state, c_out=state)
    else:
        if not meta.recurrent:
            raise ModelError("estimators must be recurrent")
        mu = [1, len(meta.mu_names)]
        inputs = {"obs": [1, meta.obs_dim]}
        if meta.io_version == 2:
            inputs["prev_obs"] = [1, meta.obs_dim]
        inputs["prev_action"] = [1, meta.act_dim]
        inputs.update(h_in=state, c_in=state)
        outputs = {"mu_mean": mu, "mu_logvar": mu, "h_out": state, "c_out": state}
        if meta.io_version == 2:
            outputs["obs_error"] = [1, meta.obs_dim]
    return inputs, outputs


def _value_info_shape(vi: onnx.ValueInfoProto) -> tuple[int, list[int | str]]:
    ttype = vi.type.tensor_type
    dims: list[int | str] = [
        d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in ttype.shape.dim
    ]
    return ttype.elem_type, dims


def _check_graph_io(model: onnx.ModelProto, meta: ModelMetadata) -> None:
    exp_in, exp_out = expected_io(meta)
    for what, values, expected in (
        ("input", model.graph.input, exp_in),
        ("output", model.graph.output, exp_out),
    ):
        got = {vi.name: vi for vi in values}
        if set(got) != set(expected):
            raise ModelError(
                f"graph {what}s are {sorted(got)}, expected {sorted(expected)} for a "
                f"{'recurrent' if meta.recurrent else 'feedforward'} {meta.kind}"
            )
        for name, shape in expected.items():
            elem, dims = _value_info_shape(got[name])
            if elem != onnx.TensorProto.FLOAT:
                dtype = onnx.TensorProto.DataType.Name(elem)
                raise ModelError(f"{what} {name!r} has dtype {dtype}, expected FLOAT (float32)")
            if dims != shape:
                raise ModelError(f"{what} {name!r} has shape {dims}, metadata implies {shape}")


def _check_tensors_finite(model: onnx.ModelProto) -> None:
    tensors = [(t.name, t) for t in model.graph.initializer]
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR:
                tensors.append((f"{node.name or node.op_type}.{attr.name}", attr.t))
    for name, tensor in tensors:
        try:
            arr = numpy_helper.to_array(tensor)
        except Exception as exc:  # malformed tensor payloads raise assorted errors
            raise ModelError(f"tensor {name!r} cannot be decoded: {exc}") from exc
        if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
            raise ModelError(f"tensor {name!r} contains NaN or inf: the weights are corrupt")


def _load_verified(
    model_path: str | Path, kind: str, expected_contract_hash: str | None
) -> tuple[ModelMetadata, bytes]:
    """Read and fully verify a model and its sidecar; return the metadata and the file bytes."""
    path = Path(model_path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    meta = load_metadata(path)
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != meta.onnx_sha256:
        raise ModelError(
            f"{path}: sha256 is {digest[:16]}..., but its sidecar says "
            f"{meta.onnx_sha256[:16] or '<empty>'}...; the file is truncated or modified, or "
            "was replaced without its sidecar. Copy the .onnx and .json together or re-export."
        )
    try:
        model = onnx.load_from_string(data)
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise ModelError(f"{path}: not a valid ONNX file: {exc}") from exc
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ModelError(f"{path}: ONNX checker failed: {exc}") from exc
    for imp in model.opset_import:
        if imp.domain not in ("", "ai.onnx"):
            raise ModelError(f"{path}: uses operator domain {imp.domain!r}; only ai.onnx allowed")
        if imp.version not in OPSET_ALLOWED:
            raise ModelError(
                f"{path}: opset {imp.version} not in the allowed range "
                f"{OPSET_ALLOWED.start}..{OPSET_ALLOWED.stop - 1}"
            )
    props = {p.key: p.value for p in model.metadata_props}
    if METADATA_KEY not in props:
        raise ModelError(f"{path}: no {METADATA_KEY!r} in ONNX metadata_props; re-export it")
    try:
        embedded = ModelMetadata.from_json(props[METADATA_KEY])
    except ModelError as exc:
        raise ModelError(f"{path}: embedded metadata: {exc}") from exc
    embedded = dataclasses.replace(
        embedded, onnx_sha256=meta.onnx_sha256, evaluation=meta.evaluation
    )
    if embedded != meta:
        differing = [
            f.name
            for f in dataclasses.fields(meta)
            if getattr(embedded, f.name) != getattr(meta, f.name)
        ]
        raise ModelError(
            f"{path}: sidecar {sidecar_path(path).name} does not match the metadata embedded in "
            f"the model (fields {differing}); the two files come from different exports"
        )
    if meta.kind != kind:
        raise ModelError(f"{path}: is a {meta.kind!r} model, expected a {kind!r}")
    recomputed = contract_hash(meta)
    if recomputed != meta.contract_hash:
        raise ModelError(
            f"{path}: stored contract_hash {meta.contract_hash[:16]}... does not match the "
            f"metadata's contract ({recomputed[:16]}...); the metadata was edited after export"
        )
    if expected_contract_hash is not None and expected_contract_hash != meta.contract_hash:
        raise ModelError(
            f"{path}: contract_hash {meta.contract_hash[:16]}... differs from the expected "
            f"{expected_contract_hash[:16]}...: the model's observation/action interface "
            "(obs_terms, joint_names, act_dim, goal_dim, action_meaning, mu_names) is not the "
            "one this deployment was configured for"
        )
    _check_graph_io(model, meta)
    _check_tensors_finite(model)
    return meta, data


def _make_session(data: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelError(f"onnxruntime could not load the model: {exc}") from exc


def _widened(low: Sequence[float], high: Sequence[float], margin: float) -> tuple[Any, Any]:
    lo = np.asarray(low, dtype=np.float64)
    hi = np.asarray(high, dtype=np.float64)
    slack = margin * (hi - lo) + _RANGE_ABS_SLACK
    return lo - slack, hi + slack


class _VectorCheck:
    """Validates one 1-D input vector: numeric, finite, right length, inside widened range."""

    def __init__(self, name: str, low: Sequence[float], high: Sequence[float], margin: float):
        self.name = name
        self.size = len(low)
        self.low, self.high = _widened(low, high, margin)

    def __call__(self, x: Any) -> np.ndarray:
        """Return ``x`` as a float64 array, or raise :class:`InputRejected`."""
        try:
            arr = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InputRejected(
                "non_finite", f"{self.name} is not numeric: {exc}", field=self.name
            ) from exc
        if arr.shape != (self.size,):
            raise InputRejected(
                "wrong_length",
                f"{self.name} has shape {arr.shape}, expected ({self.size},)",
                field=self.name,
            )
        # One pass on the hot path: NaN fails both comparisons, +-inf fails one of them.
        if (self.low <= arr).all() and (arr <= self.high).all():
            return arr
        if not np.isfinite(arr).all():
            bad = np.flatnonzero(~np.isfinite(arr))
            raise InputRejected(
                "non_finite",
                f"{self.name}[{bad.tolist()}] is NaN or inf",
                field=self.name,
                indices=bad,
            )
        bad = np.flatnonzero((arr < self.low) | (arr > self.high))
        detail = ", ".join(
            f"[{i}]={arr[i]:.4g} not in [{self.low[i]:.4g}, {self.high[i]:.4g}]" for i in bad[:5]
        )
        raise InputRejected(
            "out_of_range",
            f"{self.name} outside the training range widened by the margin: {detail}",
            field=self.name,
            indices=bad,
        )


class _RecurrentSession:
    """Loads a verified model and owns the pre-allocated feed buffers and LSTM state."""

    def __init__(
        self, model_path: str | Path, kind: str, expected_contract_hash: str | None
    ) -> None:
        self.metadata, data = _load_verified(model_path, kind, expected_contract_hash)
        self.model_path = Path(model_path)
        self._session = _make_session(data)
        inputs, outputs = expected_io(self.metadata)
        self._feed = {name: np.zeros(shape, dtype=np.float32) for name, shape in inputs.items()}
        self._output_names = list(outputs)
        self._recurrent = self.metadata.recurrent

    def _run(self) -> list[np.ndarray]:
        return self._session.run(self._output_names, self._feed)

    def _commit_state(self, h: np.ndarray, c: np.ndarray) -> None:
        # onnxruntime returns fresh arrays every run, so keeping them avoids two copies.
        self._feed["h_in"] = h
        self._feed["c_in"] = c

    def _zero_state(self) -> None:
        for name in ("h_in", "c_in", "prev_action"):
            if name in self._feed:
                self._feed[name].fill(0.0)

    def state_snapshot(self) -> dict[str, np.ndarray]:
        """Copies of the recurrent inputs (``h_in``, ``c_in``, ``prev_action`` when present)."""
        return {k: v.copy() for k, v in self._feed.items() if k in ("h_in", "c_in", "prev_action")}


class PolicyRuntime(_RecurrentSession):
    """Runs an exported policy one control step at a time.

    Loading verifies the file end to end (see :class:`ModelError`); :meth:`step` validates the
    observation and goal against the ranges seen in training, widened on each side by
    ``range_margin`` times the range, and raises :class:`InputRejected` *without* touching the
    recurrent state. The LSTM state and the previous action are kept between steps;
    :meth:`reset` zeroes them (call it at the start of every episode).

    Args:
        model_path: Path to the ``.onnx`` file; its ``.json`` sidecar must sit next to it.
        range_margin: Fraction of each feature's training range tolerated outside it.
        expected_contract_hash: When given, the model's contract hash must equal it.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        range_margin: float = 0.5,
        expected_contract_hash: str | None = None,
    ) -> None:
        super().__init__(model_path, "policy", expected_contract_hash)
        meta = self.metadata
        self._check_obs = _VectorCheck("obs", meta.obs_low, meta.obs_high, range_margin)
        self._check_goal = _VectorCheck("goal", meta.goal_low, meta.goal_high, range_margin)

    def reset(self) -> None:
        """Zero the recurrent state and the previous action."""
        self._zero_state()

    def validate(self, obs: Any, goal: Any) -> None:
        """Raise :class:`InputRejected` if ``obs`` or ``goal`` would be refused by :meth:`step`."""
        self._check_obs(obs)
        self._check_goal(goal)

    def step(self, obs: Any, goal: Any) -> np.ndarray:
        """Validate, run one step, advance the state; return the action as float64 ``[act_dim]``.

        Raises:
            InputRejected: the inputs were refused; no state changed.
        """
        obs_arr = self._check_obs(obs)
        goal_arr = self._check_goal(goal)
        self._feed["obs"][0] = obs_arr
        self._feed["goal"][0] = goal_arr
        outputs = self._run()
        action = outputs[0]
        if not np.isfinite(action).all():
            raise ModelError("the policy produced a non-finite action; state not advanced")
        if self._recurrent:
            self._commit_state(outputs[1], outputs[2])
            self._feed["prev_action"] = action
        return action[0].astype(np.float64)

    def observe_action(self, action: Any) -> None:
        """Record the action actually executed after the last :meth:`step`, when something
        changed it (exploration noise, a limiter): the next step's previous action.

        Raises:
            InputRejected: ``action`` is not ``act_dim`` finite values.
        """
        arr = np.asarray(action, dtype=np.float64)
        if arr.shape != (self.metadata.act_dim,):
            raise InputRejected(
                "wrong_length", f"action has shape {arr.shape}", field="prev_action"
            )
        if not np.isfinite(arr).all():
            raise InputRejected("non_finite", "action is not finite", field="prev_action")
        if self._recurrent:
            self._feed["prev_action"] = arr[None].astype(np.float32)


class EstimatorRuntime(_RecurrentSession):
    """Runs an exported :class:`DynamicsEstimator` and flags out-of-distribution dynamics.

    :meth:`step` returns the mean and standard deviation of the *normalised* dynamics vector
    (``-1``/``+1`` = ``mu_train_low``/``mu_train_high``, in each parameter's sampling space);
    :meth:`to_physical` maps a mean back to physical units.

    OOD rule: with ``m = ood_mu_margin``, ``s = ood_std_threshold`` and ``e =
    ood_error_threshold`` from the metadata,

        ood_score = max(max_i (|mean_i| - 1) / m, max_i std_i / s, err / e)

    where ``err`` is the mean over the last ``ood_error_window`` steps of the squared
    ``obs_error`` (io_version 2: how far each observed change of the observation is from the
    graph's forward model, trained on the training dynamics, in standard deviations; the term is
    left out when ``e`` is 0). The estimate is OOD when ``ood_score > 1``: a parameter estimated
    beyond its training range, an estimator unsure of the dynamics, or transitions that no
    training dynamics explain. Right after :meth:`reset` the std is high and the window short,
    so callers should ignore the flag for the first few steps of an episode.

    Args:
        model_path: Path to the ``.onnx`` file; its ``.json`` sidecar must sit next to it.
        range_margin: Fraction of each feature's training range tolerated outside it.
        expected_contract_hash: When given, the model's contract hash must equal it.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        range_margin: float = 0.5,
        expected_contract_hash: str | None = None,
    ) -> None:
        super().__init__(model_path, "estimator", expected_contract_hash)
        meta = self.metadata
        self._check_obs = _VectorCheck("obs", meta.obs_low, meta.obs_high, range_margin)
        self._check_action = _VectorCheck(
            "prev_action", meta.action_low, meta.action_high, range_margin
        )
        self._mu_low = np.asarray(meta.mu_train_low, dtype=np.float64)
        self._mu_high = np.asarray(meta.mu_train_high, dtype=np.float64)
        self._log = np.array([law == "log_uniform" for law in meta.mu_laws], dtype=bool)
        if not len(self._log):
            self._log = np.zeros(len(meta.mu_names), dtype=bool)
        self._errors = np.zeros(meta.ood_error_window)
        self.obs_error = np.zeros(meta.obs_dim)
        self.reset()

    def reset(self) -> None:
        """Zero the recurrent state, the forward model's error window and the OOD score."""
        self._zero_state()
        self._ood_score = 0.0
        self._fresh = True  # the next step is an episode's first: its own previous observation
        self._errors.fill(0.0)
        self._n_errors = 0
        self.obs_error = np.zeros(self.metadata.obs_dim)

    def validate(self, obs: Any, prev_action: Any) -> None:
        """Raise :class:`InputRejected` if the inputs would be refused by :meth:`step`."""
        self._check_obs(obs)
        self._check_action(prev_action)

    def step(self, obs: Any, prev_action: Any) -> tuple[np.ndarray, np.ndarray]:
        """Validate, run one step, advance the state; return ``(mu_mean, mu_std)`` (float64).
        With io_version 2, :attr:`obs_error` holds the step's forward-model error.

        Raises:
            InputRejected: the inputs were refused; no state changed.
        """
        obs_arr = self._check_obs(obs)
        act_arr = self._check_action(prev_action)
        v2 = self.metadata.io_version == 2
        if v2:
            # the last observation stepped (or this one, at an episode's start)
            self._feed["prev_obs"][0] = obs_arr if self._fresh else self._feed["obs"][0]
        self._feed["obs"][0] = obs_arr
        self._feed["prev_action"][0] = act_arr
        outputs = self._run()
        mean32, logvar32, h, c = outputs[:4]
        mean = mean32[0].astype(np.float64)
        std = np.exp(0.5 * logvar32[0].astype(np.float64))
        error = outputs[4][0].astype(np.float64) if v2 else None
        if not (np.isfinite(mean).all() and np.isfinite(std).all()) or (
            error is not None and not np.isfinite(error).all()
        ):
            raise ModelError("the estimator produced non-finite output; state not advanced")
        self._commit_state(h, c)
        if error is not None:
            # an episode's first step has no prediction to compare with
            self.obs_error = np.zeros_like(error) if self._fresh else error
            if not self._fresh:
                self._errors[self._n_errors % len(self._errors)] = float(np.mean(error**2))
                self._n_errors += 1
        self._fresh = False
        self._ood_score = self.score(mean, std)
        return mean, std

    @property
    def error_window_mean(self) -> float:
        """Mean squared forward-model error over the last ``ood_error_window`` steps (0 before
        any)."""
        n = min(self._n_errors, len(self._errors))
        return float(self._errors[:n].mean()) if n else 0.0

    def score(self, mean: np.ndarray, std: np.ndarray) -> float:
        """OOD score of an estimate with the current error window (see the class docstring);
        > 1 means OOD."""
        meta = self.metadata
        over = (np.abs(mean) - 1.0) / meta.ood_mu_margin
        score = float(max(over.max(), (std / meta.ood_std_threshold).max()))
        if meta.ood_error_threshold > 0:
            score = max(score, self.error_window_mean / meta.ood_error_threshold)
        return score

    def ood(self, mean: np.ndarray, std: np.ndarray) -> bool:
        """True when the estimate ``(mean, std)`` is out of distribution (score > 1)."""
        return self.score(mean, std) > 1.0

    @property
    def ood_score(self) -> float:
        """OOD score of the last :meth:`step` (0 after :meth:`reset`)."""
        return self._ood_score

    def to_physical(self, mu_norm: np.ndarray) -> np.ndarray:
        """Map normalised ``mu`` (-1..1 over the training range) to physical units (through
        the logarithm for log-uniform parameters, ``mu_laws``)."""
        mu_norm = np.asarray(mu_norm, dtype=np.float64)
        frac = (mu_norm + 1.0) * 0.5
        linear = self._mu_low + frac * (self._mu_high - self._mu_low)
        if not self._log.any():
            return linear
        lo = np.log(np.where(self._log, self._mu_low, 1.0))
        hi = np.log(np.where(self._log, self._mu_high, 1.0))
        return np.where(self._log, np.exp(lo + frac * (hi - lo)), linear)
