"""meta_control installs as an ordinary package: ``colcon build`` and a pip wheel put the launch
files, node configs and shipped models into ``share/meta_control`` (following the package's
``models`` symlink), the console scripts into ``lib/meta_control``, and an installed copy finds
its models and configs there; package.xml declares every import."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from ros_helpers import PKG, REPO, console_scripts

from meta_control.topics import CONTRACT_TOPICS

SHARE_GLOBS = (
    "launch/*.launch.py",
    "config/*.yaml",
    "config/limits/*.yaml",
    "urdf/*.urdf",
    "models/*.onnx",
    "models/*.json",
)


def _expected_share_files() -> set[str]:
    files = {"package.xml", "requirements.txt"}
    for pattern in SHARE_GLOBS:
        files |= {str(p.relative_to(PKG)) for p in PKG.glob(pattern)}
    return files


def test_the_package_links_the_repository_models_and_the_pusher_urdf() -> None:
    link = PKG / "models"
    assert link.is_symlink() and not Path(os.readlink(link)).is_absolute()
    assert link.resolve() == (REPO / "models").resolve()
    urdf = PKG / "urdf" / "planar_pusher.urdf"
    assert urdf.is_symlink() and not Path(os.readlink(urdf)).is_absolute()
    assert urdf.resolve() == (REPO / "sim" / "assets" / "planar_pusher.urdf").resolve()
    names = {p.name for p in link.glob("*.onnx")}
    assert {"pusher_policy.onnx", "pusher_estimator.onnx"} <= names


def test_colcon_build_installs_share_data_and_console_scripts(colcon_install: Path) -> None:
    share = colcon_install / "share" / "meta_control"
    expected = _expected_share_files()
    assert {"launch/sim_demo.launch.py", "config/controller.yaml"} <= expected
    assert {"models/pusher_policy.onnx", "models/pusher_policy.json"} <= expected
    assert {"config/limits/panda.yaml", "urdf/planar_pusher.urdf"} <= expected
    for rel in sorted(expected):
        installed = share / rel
        assert installed.is_file() and not installed.is_symlink(), f"{rel} not installed"
        assert installed.read_bytes() == (PKG / rel).read_bytes(), f"{rel} differs"
    index = colcon_install / "share" / "ament_index" / "resource_index" / "packages"
    assert (index / "meta_control").is_file()
    lib = colcon_install / "lib" / "meta_control"
    for script in console_scripts():
        assert os.access(lib / script, os.X_OK), f"console script {script} not installed"


def test_installed_package_runs_from_its_prefix(colcon_install: Path, tmp_path: Path) -> None:
    """Outside the checkout, the installed module, its default model, its node config, the
    default limits file and the pusher's URDF all come from the install prefix, and its console
    scripts start."""
    (site,) = colcon_install.glob("lib/python3*/site-packages")
    env = {k: v for k, v in os.environ.items() if k != "META_CONTROL_REPO"}
    env["PYTHONPATH"] = str(site)
    code = (
        "import meta_control, meta_control.paths as p\n"
        "from meta_control.runtime import PolicyRuntime\n"
        "model = p.default_model('pusher', 'policy')\n"
        "PolicyRuntime(model)\n"
        "from meta_control.limits import resolve_limits_path, resolve_urdf\n"
        "urdf = resolve_urdf('package://meta_control/urdf/planar_pusher.urdf', None)\n"
        "print(meta_control.__file__, model, p.config_file('controller.yaml'),\n"
        "      resolve_limits_path('', 'panda'), urdf, sep='\\n')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    module, model, config, limits, urdf = (Path(line) for line in result.stdout.split())
    share = colcon_install / "share" / "meta_control"
    assert module.is_relative_to(site)
    assert model == share / "models" / "pusher_policy.onnx"
    assert config == share / "config" / "controller.yaml"
    assert limits == share / "config" / "limits" / "panda.yaml"
    assert urdf == share / "urdf" / "planar_pusher.urdf" and not urdf.is_symlink()
    script = colcon_install / "lib" / "meta_control" / "meta-bag-eval"
    result = subprocess.run(
        [str(script), "--help"], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120,
    )
    assert result.returncode == 0 and "meta-bag-eval" in result.stdout, result.stderr


def test_pip_wheel_carries_the_share_data(tmp_path: Path) -> None:
    """A wheel built by pip from a copy of the package (its ``models`` symlink kept, pointing
    to a copy of the models) holds the same share files as the colcon install."""
    src = tmp_path / "src"
    shutil.copytree(
        PKG, src / "ros2_ws" / "src" / "meta_control", symlinks=True,
        ignore=shutil.ignore_patterns("*.egg-info", "__pycache__", "build"),
    )
    shutil.copytree(REPO / "models", src / "models")
    shutil.copytree(REPO / "sim" / "assets", src / "sim" / "assets")
    assert (src / "ros2_ws" / "src" / "meta_control" / "models").is_symlink()
    cmd = [
        sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "--wheel-dir", str(tmp_path / "wheel"), str(src / "ros2_ws" / "src" / "meta_control"),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = (tmp_path / "wheel").glob("meta_control-*.whl")
    prefix = re.compile(r"^meta_control-[^/]+\.data/data/share/meta_control/")
    with zipfile.ZipFile(wheel) as z:
        share = {prefix.sub("", n): n for n in z.namelist() if prefix.match(n)}
        assert set(share) == _expected_share_files()
        for rel, name in share.items():
            assert z.read(name) == (PKG / rel).read_bytes(), f"{rel} differs in the wheel"


# Python modules -> the package.xml key (rosdep key) that provides them.
_ROSDEP_PYTHON = {
    "numpy": "python3-numpy",
    "yaml": "python3-yaml",
    "ruamel": "python3-ruamel.yaml",
    "matplotlib": "python3-matplotlib",
    "tqdm": "python3-tqdm",
}
# Imported only to salvage compressed MCAP chunks, each behind an ImportError fallback.
_OPTIONAL = {"backports", "compression", "lz4"}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_package_xml_declares_every_import() -> None:
    """Every third-party import of the package and its launch files is an exec_depend of
    package.xml (rosdep key) or a line of requirements.txt (pip); so are the message packages
    the recorder imports by name from the topic contract."""
    xml = (PKG / "package.xml").read_text()
    depends = set(re.findall(r"<exec_depend>([^<]+)</exec_depend>", xml))
    assert "requirements.txt" in xml
    requirements = (PKG / "requirements.txt").read_text()
    pip_names = {
        re.split(r"[<>=!~\[; ]", line.strip())[0].lower()
        for line in requirements.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }
    sources = [*(PKG / "meta_control").glob("*.py"), *(PKG / "launch").glob("*.launch.py")]
    imported = set().union(*(_imports(p) for p in sources))
    imported |= {msgtype.split("/")[0] for msgtype in CONTRACT_TOPICS.values()}
    third_party = imported - set(sys.stdlib_module_names) - {"meta_control"} - _OPTIONAL
    assert {"rclpy", "onnxruntime", "rosbags", "launch_ros"} <= third_party
    missing = []
    for name in sorted(third_party):
        if name == "sim":  # the repository's package, for sim_arm_node: named in a comment
            ok = "`sim` package" in requirements
        elif name in _ROSDEP_PYTHON:
            ok = _ROSDEP_PYTHON[name] in depends
        else:
            ok = name in depends or name.lower() in pip_names
        if not ok:
            missing.append(name)
    assert not missing, f"imports not declared in package.xml or requirements.txt: {missing}"
