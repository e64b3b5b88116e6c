"""Fixtures of the ROS 2 package tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ros_helpers import REPO

COLCON_TIMEOUT_S = 300


@pytest.fixture(scope="session")
def colcon_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``colcon build`` of ``ros2_ws/src`` (the meta_control package) into a temporary prefix,
    once per session; returns the package's install prefix ``<install>/meta_control``.

    Build, install and log folders all live in the temporary folder: the checkout stays clean.
    """
    venv_colcon = Path(sys.executable).with_name("colcon")
    colcon = str(venv_colcon) if venv_colcon.exists() else shutil.which("colcon")
    if colcon is None:
        pytest.skip("colcon is not installed (pip install colcon-common-extensions)")
    root = tmp_path_factory.mktemp("colcon")
    cmd = [
        colcon,
        "--log-base",
        str(root / "log"),
        "build",
        "--base-paths",
        str(REPO / "ros2_ws" / "src"),
        "--build-base",
        str(root / "build"),
        "--install-base",
        str(root / "install"),
    ]
    result = subprocess.run(
        cmd, cwd=root, capture_output=True, text=True, timeout=COLCON_TIMEOUT_S
    )
    assert result.returncode == 0, f"colcon build failed:\n{result.stdout}\n{result.stderr}"
    return root / "install" / "meta_control"
