"""The launch files, executed with stand-in ``launch``/``launch_ros`` modules (not installable
here): every Node must name a real console script of its package and only declared parameters;
parameter files must exist in the package's config folder."""

from __future__ import annotations

import ast
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

from meta_control.config import parameter_names

REPO = Path(__file__).resolve().parents[2]
LAUNCH = REPO / "launch"
PKG = REPO / "ros2_ws" / "src" / "meta_control"


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


def _console_scripts() -> dict[str, str]:
    tree = ast.parse((PKG / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "entry_points":
            entries = ast.literal_eval(node.value)["console_scripts"]
            return {e.split("=")[0].strip(): e.split("=")[1].strip() for e in entries}
    raise AssertionError("setup.py has no console_scripts")


def _nodes(path: Path, monkeypatch: pytest.MonkeyPatch) -> list[_Node]:
    for name, mod in _stand_ins().items():
        monkeypatch.setitem(sys.modules, name, mod)
    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [a for a in module.generate_launch_description() if isinstance(a, _Node)]


def _config_path(join: _Join) -> Path:
    parts = []
    for p in join.args[0]:
        if isinstance(p, _Join):
            parts.append(str(_config_path(p)))
        elif isinstance(p, _Share):
            assert p.args[0] == "meta_control"
            parts.append(str(PKG))
        else:
            parts.append(p)
    return Path(*parts)


LAUNCH_FILES = sorted(LAUNCH.glob("*.launch.py"))


def test_the_three_launch_files_exist() -> None:
    assert {p.name for p in LAUNCH_FILES} >= {
        "sim_demo.launch.py",
        "real_robot.launch.py",
        "bag_replay.launch.py",
    }


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_nodes_use_real_executables_and_declared_parameters(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripts = _console_scripts()
    nodes = _nodes(path, monkeypatch)
    assert nodes, f"{path.name} starts no node"
    for node in nodes:
        kw = node.kwargs
        assert kw["package"] == "meta_control"
        exe = kw["executable"]
        assert exe in scripts, f"{exe} is not a console script of meta_control"
        module = scripts[exe].split(":")[0]
        assert importlib.util.find_spec(module) is not None
        declared = parameter_names(exe)
        for entry in kw.get("parameters", []):
            if isinstance(entry, dict):
                unknown = set(entry) - declared
                assert not unknown, f"{path.name}: {exe} does not declare {unknown}"
            else:
                yaml_path = _config_path(entry)
                assert yaml_path.is_file(), yaml_path
                raw = yaml.safe_load(yaml_path.read_text())
                (params,) = [v["ros__parameters"] for v in raw.values()]
                assert set(params) <= declared, set(params) - declared
                assert kw["name"] in raw, f"{yaml_path.name} is not keyed by node {kw['name']}"


def test_real_robot_launch_remaps_to_ros2_control_topics(monkeypatch) -> None:
    nodes = _nodes(LAUNCH / "real_robot.launch.py", monkeypatch)
    assert {n.kwargs["executable"] for n in nodes} == {"controller_node", "estimator_node"}
    ctrl = next(n for n in nodes if n.kwargs["executable"] == "controller_node")
    sources = {src for src, _ in ctrl.kwargs["remappings"]}
    assert {"/joint_states", "/forward_position_controller/commands"} <= sources


def test_yaml_files_match_the_config_dataclasses() -> None:
    for exe, yaml_name in (
        ("sim_arm_node", "sim_arm.yaml"),
        ("controller_node", "controller.yaml"),
        ("estimator_node", "estimator.yaml"),
    ):
        raw = yaml.safe_load((PKG / "config" / yaml_name).read_text())
        (params,) = [v["ros__parameters"] for v in raw.values()]
        assert set(params) == parameter_names(exe) - {"use_sim_time"}
