"""The launch files, executed with stand-in ``launch``/``launch_ros`` modules (not installable
here): every Node must name a real console script of its package and only declared parameters;
parameter files must exist in the package's config folder. Each check runs on the source copies
(``ros2_ws/src/meta_control/launch``) and on the copies ``colcon build`` installs into
``share/meta_control/launch`` (resolving ``FindPackageShare`` to that share folder); the
top-level ``launch/`` folder holds relative symlinks to the package's files."""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from ros_helpers import PKG, REPO, console_scripts

from meta_control.config import parameter_names

LAUNCH_NAMES = sorted(p.name for p in (PKG / "launch").glob("*.launch.py"))


@dataclass(frozen=True)
class Layout:
    """Where one copy of the package keeps its launch files, share data and executables."""

    launch: Path
    share: Path
    """What ``FindPackageShare("meta_control")`` resolves to."""
    executables: frozenset[str]


@pytest.fixture(params=["source", "installed"])
def layout(request: pytest.FixtureRequest) -> Layout:
    """The source package, or its ``colcon build`` install (built once per session)."""
    if request.param == "source":
        return Layout(PKG / "launch", PKG, frozenset(console_scripts()))
    prefix: Path = request.getfixturevalue("colcon_install")
    lib = prefix / "lib" / "meta_control"
    executables = frozenset(
        p.name for p in lib.iterdir() if p.is_file() and os.access(p, os.X_OK)
    )
    share = prefix / "share" / "meta_control"
    return Layout(share / "launch", share, executables)


class _Recorder:
    """Base of every stand-in action/substitution: keeps its arguments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs


class _Node(_Recorder):
    pass


class _Share(_Recorder):
    pass


class _Join(_Recorder):
    pass


def _stand_ins() -> dict[str, types.ModuleType]:
    mods: dict[str, types.ModuleType] = {}
    for name in (
        "launch",
        "launch.actions",
        "launch.substitutions",
        "launch.conditions",
        "launch_ros",
        "launch_ros.actions",
        "launch_ros.substitutions",
    ):
        mods[name] = types.ModuleType(name)
    mods["launch"].LaunchDescription = lambda actions: list(actions)
    for attr in (
        "DeclareLaunchArgument",
        "ExecuteProcess",
        "IncludeLaunchDescription",
        "GroupAction",
        "RegisterEventHandler",
    ):
        setattr(mods["launch.actions"], attr, type(attr, (_Recorder,), {}))
    mods["launch.substitutions"].LaunchConfiguration = type(
        "LaunchConfiguration", (_Recorder,), {}
    )
    mods["launch.substitutions"].PathJoinSubstitution = _Join
    mods["launch.conditions"].IfCondition = type("IfCondition", (_Recorder,), {})
    mods["launch.conditions"].UnlessCondition = type("UnlessCondition", (_Recorder,), {})
    mods["launch_ros.actions"].Node = _Node
    mods["launch_ros.actions"].LifecycleNode = _Node
    mods["launch_ros.substitutions"].FindPackageShare = _Share
    return mods


def _nodes(path: Path, monkeypatch: pytest.MonkeyPatch) -> list[_Node]:
    for name, mod in _stand_ins().items():
        monkeypatch.setitem(sys.modules, name, mod)
    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [a for a in module.generate_launch_description() if isinstance(a, _Node)]


def _config_path(join: _Join, share: Path) -> Path:
    parts = []
    for p in join.args[0]:
        if isinstance(p, _Join):
            parts.append(str(_config_path(p, share)))
        elif isinstance(p, _Share):
            assert p.args[0] == "meta_control"
            parts.append(str(share))
        else:
            parts.append(p)
    return Path(*parts)


def test_the_three_launch_files_are_in_the_package_and_linked_from_launch() -> None:
    assert set(LAUNCH_NAMES) >= {
        "sim_demo.launch.py",
        "real_robot.launch.py",
        "bag_replay.launch.py",
    }
    for name in LAUNCH_NAMES:
        link = REPO / "launch" / name
        assert link.is_symlink(), f"launch/{name} must be a symlink to the package's file"
        assert not Path(os.readlink(link)).is_absolute(), f"launch/{name} must be relative"
        assert link.resolve() == (PKG / "launch" / name).resolve()


@pytest.mark.parametrize("name", LAUNCH_NAMES)
def test_nodes_use_real_executables_and_declared_parameters(
    name: str, layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = layout.launch / name
    assert path.is_file() and not path.is_symlink(), path
    scripts = console_scripts()
    nodes = _nodes(path, monkeypatch)
    assert nodes, f"{name} starts no node"
    for node in nodes:
        kw = node.kwargs
        assert kw["package"] == "meta_control"
        exe = kw["executable"]
        assert exe in layout.executables, f"{exe} is not an executable of meta_control"
        module = scripts[exe].split(":")[0]
        assert importlib.util.find_spec(module) is not None
        declared = parameter_names(exe)
        for entry in kw.get("parameters", []):
            if isinstance(entry, dict):
                unknown = set(entry) - declared
                assert not unknown, f"{name}: {exe} does not declare {unknown}"
            else:
                yaml_path = _config_path(entry, layout.share)
                assert yaml_path.is_file(), yaml_path
                raw = yaml.safe_load(yaml_path.read_text())
                (params,) = [v["ros__parameters"] for v in raw.values()]
                assert set(params) <= declared, set(params) - declared
                assert kw["name"] in raw, f"{yaml_path.name} is not keyed by node {kw['name']}"


def test_real_robot_launch_remaps_to_ros2_control_topics(monkeypatch) -> None:
    nodes = _nodes(PKG / "launch" / "real_robot.launch.py", monkeypatch)
    assert {n.kwargs["executable"] for n in nodes} == {"controller_node", "estimator_node"}
    ctrl = next(n for n in nodes if n.kwargs["executable"] == "controller_node")
    sources = {src for src, _ in ctrl.kwargs["remappings"]}
    assert {"/joint_states", "/forward_position_controller/commands"} <= sources


def test_yaml_files_match_the_config_dataclasses(layout: Layout) -> None:
    for exe, yaml_name in (
        ("sim_arm_node", "sim_arm.yaml"),
        ("controller_node", "controller.yaml"),
        ("estimator_node", "estimator.yaml"),
    ):
        raw = yaml.safe_load((layout.share / "config" / yaml_name).read_text())
        (params,) = [v["ros__parameters"] for v in raw.values()]
        assert set(params) == parameter_names(exe) - {"use_sim_time"}
