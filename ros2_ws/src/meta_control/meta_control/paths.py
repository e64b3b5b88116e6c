"""Where the shipped models and the package's YAML configs live, in a checkout or an install.

A source checkout keeps the models in ``<repo>/models`` and the configs in
``ros2_ws/src/meta_control/config``; an installed package (``colcon build`` or a non-editable
``pip install``) keeps them under ``<prefix>/share/meta_control/{models,config}``.
``META_CONTROL_REPO`` overrides the repository root.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE = "meta_control"
_PKG_SRC = Path(__file__).resolve().parents[1]


def repo_root() -> Path | None:
    """The repository root (the folder holding ``models/`` and ``ros2_ws/``), if found."""
    env = os.environ.get("META_CONTROL_REPO")
    if env:
        return Path(env).resolve()
    for parent in [Path.cwd(), *Path(__file__).resolve().parents]:
        if (parent / "ros2_ws").is_dir() and (parent / "models").is_dir():
            return parent
    return None


def share_dir() -> Path | None:
    """``<prefix>/share/meta_control`` of an installed package, if any: this module's own
    prefix first, then the ROS prefixes, then the interpreter's."""
    # An installed module sits at <prefix>/lib/pythonX.Y/site-packages/meta_control/.
    candidates = [Path(__file__).resolve().parents[4]]
    for var in ("AMENT_PREFIX_PATH", "COLCON_PREFIX_PATH"):
        candidates += [Path(p) for p in os.environ.get(var, "").split(os.pathsep) if p]
    candidates.append(Path(sys.prefix))
    for prefix in candidates:
        share = prefix / "share" / PACKAGE
        if (share / "package.xml").is_file():
            return share
    return None


def models_dir() -> Path:
    """Folder of the shipped ONNX models (``<repo>/models``, else ``<share>/models``)."""
    root = repo_root()
    if root is not None:
        return root / "models"
    share = share_dir()
    if share is not None:
        return share / "models"
    raise FileNotFoundError(
        "cannot find the models folder: run from the repository checkout, install the "
        "meta_control package, or set META_CONTROL_REPO to the repository root"
    )


def default_model(robot: str, kind: str) -> Path:
    """``models/<robot>_<kind>.onnx``, e.g. ``default_model("pusher", "policy")``."""
    if kind not in ("policy", "estimator"):
        raise ValueError(f"kind must be 'policy' or 'estimator', got {kind!r}")
    return models_dir() / f"{robot}_{kind}.onnx"


def config_file(name: str) -> Path:
    """Path of ``config/<name>`` in the source package or the installed share folder."""
    src = _PKG_SRC / "config" / name
    if src.is_file():
        return src
    share = share_dir()
    if share is not None and (share / "config" / name).is_file():
        return share / "config" / name
    raise FileNotFoundError(f"config {name!r} not found in {src.parent} nor in the share folder")


def package_file(rel: str) -> Path:
    """Path of ``<rel>`` (e.g. ``urdf/planar_pusher.urdf``) in the source package or the
    installed share folder."""
    src = _PKG_SRC / rel
    if src.is_file():
        return src
    share = share_dir()
    if share is not None and (share / rel).is_file():
        return share / rel
    raise FileNotFoundError(f"{rel!r} not found in {_PKG_SRC} nor in the share folder")
