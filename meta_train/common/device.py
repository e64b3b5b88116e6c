"""Torch devices: ``auto`` picks CUDA where present, explicit names are checked."""

from __future__ import annotations

import torch


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; explicit names are checked.

    Raises:
        ValueError: a CUDA device is named but CUDA is not available.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return dev
