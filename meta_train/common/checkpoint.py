"""Atomic, code-free checkpoints: safetensors for tensors, JSON for everything else.

A checkpoint is a directory ``<run>/checkpoints/iter_XXXXXXX/`` written under a temporary name
and renamed into place once complete, so a killed run never leaves a half-written checkpoint
under a final name. ``manifest.json`` lists each file's sha256; loading verifies them, so a
truncated or altered checkpoint is refused with :class:`CheckpointError`. safetensors cannot run
code on load (unlike pickled ``torch.save`` files).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import load_file as load_numpy
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import load_file as load_torch
from safetensors.torch import save_file as save_torch

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete, corrupt or does not match the configuration."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(
    directory: Path,
    torch_groups: dict[str, dict[str, torch.Tensor]],
    numpy_groups: dict[str, dict[str, np.ndarray]],
    state: dict[str, Any],
) -> Path:
    """Write a checkpoint directory atomically.

    Args:
        directory: final path, e.g. ``run/checkpoints/iter_0000100``.
        torch_groups: name -> flat tensor dict, each saved as ``<name>.safetensors``.
        numpy_groups: name -> flat array dict, each saved as ``<name>.npy.safetensors``.
        state: JSON-serialisable state (counters, RNG states, config).
    """
    directory = Path(directory)
    tmp = directory.with_name(directory.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    files = {}
    for name, tensors in torch_groups.items():
        path = tmp / f"{name}.safetensors"
        save_torch({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path))
        files[path.name] = _sha256(path)
    for name, arrays in numpy_groups.items():
        path = tmp / f"{name}.npy.safetensors"
        save_numpy({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(path))
        files[path.name] = _sha256(path)
    state_path = tmp / "state.json"
    state_path.write_text(json.dumps(state, indent=1, sort_keys=True))
    files[state_path.name] = _sha256(state_path)
    manifest = {"format_version": FORMAT_VERSION, "files": files}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    for p in tmp.iterdir():
        with open(p, "rb") as f:
            os.fsync(f.fileno())
    if directory.exists():
        shutil.rmtree(directory)
    os.replace(tmp, directory)
    _fsync_dir(directory.parent)
    return directory


def load_checkpoint(
    directory: Path,
) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, dict[str, np.ndarray]], dict[str, Any]]:
    """Load and verify a checkpoint written by :func:`save_checkpoint`."""
    directory = Path(directory)
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise CheckpointError(f"{directory}: not a complete checkpoint (no {MANIFEST})")
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise CheckpointError(f"{manifest_path}: unreadable manifest ({e})") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{directory}: checkpoint format {manifest.get('format_version')}, "
            f"this code reads {FORMAT_VERSION}"
        )
    for name, digest in files.items():
        path = directory / name
        if not path.is_file():
            raise CheckpointError(f"{directory}: missing file {name}")
        if _sha256(path) != digest:
            raise CheckpointError(f"{path}: checksum mismatch (truncated or corrupted)")
    torch_groups, numpy_groups = {}, {}
    try:
        for name in files:
            if name.endswith(".npy.safetensors"):
                numpy_groups[name[: -len(".npy.safetensors")]] = load_numpy(str(directory / name))
            elif name.endswith(".safetensors"):
                torch_groups[name[: -len(".safetensors")]] = load_torch(str(directory / name))
        state = json.loads((directory / "state.json").read_text())
    except Exception as e:  # safetensors raises its own error types
        raise CheckpointError(f"{directory}: cannot decode checkpoint ({e})") from None
    return torch_groups, numpy_groups, state


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run (ignores ``*.tmp`` leftovers), or None."""
    ckpt_dir = Path(run_dir) / "checkpoints"
    if not ckpt_dir.is_dir():
        return None
    done = sorted(
        p for p in ckpt_dir.iterdir()
        if p.is_dir() and not p.name.endswith(".tmp") and (p / MANIFEST).is_file()
    )
    return done[-1] if done else None


def optimizer_to_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Flatten an optimizer's state into tensors plus JSON-able hyperparameters."""
    sd = opt.state_dict()
    tensors = {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            t = v if torch.is_tensor(v) else torch.tensor(v)
            tensors[f"{pid}.{k}"] = t
    return tensors, {"param_groups": sd["param_groups"]}


def optimizer_from_tensors(
    opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict
) -> None:
    """Inverse of :func:`optimizer_to_tensors`."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, v in tensors.items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
