"""The launch files, executed with stand-in ``launch``/``launch_ros`` modules (not installable
here): every Node must name a real console script of its package and only declared parameters,
typed as the node declares them; parameter files must exist in the package's config folder;
every launch configuration used is a declared argument. Each check runs on the source copies
(``ros2_ws/src/meta_control/launch``) and on the copies ``colcon build`` installs into
``share/meta_control/launch`` (resolving ``FindPackageShare`` to that share folder), including
real_robot.launch.py's defaults and remaps against the node configs and limit files installed
beside it; the top-level ``launch/`` folder holds relative symlinks to the package's files."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from ros_helpers import PKG, REPO, console_scripts

from meta_control.config import COMMAND_MODES, ControllerConfig, parameter_names
from meta_control.limits import enforced_limits, load_robot_limits, parse_joint_map

PANDA_JOINTS = [f"panda_joint{i}" for i in range(1, 8)]
FR3_JOINTS = ",".join(f"fr3_joint{i}" for i in range(1, 8))

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
    executables = frozenset(p.name for p in lib.iterdir() if p.is_file() and os.access(p, os.X_OK))
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


class _Arg(_Recorder):
    pass


class _Config(_Recorder):
    pass


class _Value(_Recorder):
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
        "launch_ros.parameter_descriptions",
        "launch_ros.substitutions",
    ):
        mods[name] = types.ModuleType(name)
    mods["launch"].LaunchDescription = lambda actions: list(actions)
    mods["launch.actions"].DeclareLaunchArgument = _Arg
    for attr in (
        "ExecuteProcess",
        "IncludeLaunchDescription",
        "GroupAction",
        "RegisterEventHandler",
    ):
        setattr(mods["launch.actions"], attr, type(attr, (_Recorder,), {}))
    mods["launch.substitutions"].LaunchConfiguration = _Config
    mods["launch_ros.parameter_descriptions"].ParameterValue = _Value
    mods["launch.substitutions"].PathJoinSubstitution = _Join
    mods["launch.conditions"].IfCondition = type("IfCondition", (_Recorder,), {})
    mods["launch.conditions"].UnlessCondition = type("UnlessCondition", (_Recorder,), {})
    mods["launch_ros.actions"].Node = _Node
    mods["launch_ros.actions"].LifecycleNode = _Node
    mods["launch_ros.substitutions"].FindPackageShare = _Share
    return mods


def _actions(path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    for name, mod in _stand_ins().items():
        monkeypatch.setitem(sys.modules, name, mod)
    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.generate_launch_description())


def _nodes(path: Path, monkeypatch: pytest.MonkeyPatch) -> list[_Node]:
    return [a for a in _actions(path, monkeypatch) if isinstance(a, _Node)]


def _arguments(path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Declared launch arguments and their defaults."""
    return {
        a.args[0]: a.kwargs.get("default_value")
        for a in _actions(path, monkeypatch)
        if isinstance(a, _Arg)
    }


def _configs(obj: Any) -> set[str]:
    """Names of every LaunchConfiguration inside ``obj`` (recursively)."""
    if isinstance(obj, _Config):
        return {obj.args[0]}
    if isinstance(obj, _Recorder):
        return _configs(list(obj.args)) | _configs(obj.kwargs)
    if isinstance(obj, dict):
        return set().union(set(), *(_configs(v) for v in obj.values()))
    if isinstance(obj, list | tuple):
        return set().union(set(), *(_configs(v) for v in obj))
    return set()


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


@pytest.mark.parametrize("name", LAUNCH_NAMES)
def test_every_launch_configuration_is_a_declared_argument(
    name: str, layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = layout.launch / name
    used = _configs(_nodes(path, monkeypatch))
    assert used <= set(_arguments(path, monkeypatch)), used - set(_arguments(path, monkeypatch))


def _yaml_params(share: Path, name: str) -> dict[str, Any]:
    raw = yaml.safe_load((share / "config" / name).read_text())
    (params,) = [v["ros__parameters"] for v in raw.values()]
    return params


def test_real_robot_launch_defaults_and_remaps_match_the_package(
    layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first launch is a dry run of trajectories for a joint_trajectory_controller; its remaps
    start from the topics the node configs use; its parameters carry the node's types; its
    default limits file, and the FR3 invocation of its docstring, load from the package."""
    path = layout.launch / "real_robot.launch.py"
    args = _arguments(path, monkeypatch)
    nodes = {n.kwargs["executable"]: n for n in _nodes(path, monkeypatch)}
    assert set(nodes) == {"controller_node", "estimator_node"}
    assert args["command_mode"] == "trajectory" and args["command_mode"] in COMMAND_MODES
    assert args["dry_run"] == "true"
    assert 0.0 < float(args["velocity_scale"]) <= 1.0
    controller_yaml = _yaml_params(layout.share, "controller.yaml")
    estimator_yaml = _yaml_params(layout.share, "estimator.yaml")
    ctrl_remaps = dict(nodes["controller_node"].kwargs["remappings"])
    expected = {
        controller_yaml["joint_state_topic"]: "joint_states_topic",
        controller_yaml["trajectory_topic"]: "trajectory_topic",
        controller_yaml["command_topic"]: "command_topic",
    }
    assert {src: cfg.args[0] for src, cfg in ctrl_remaps.items()} == expected
    assert args["trajectory_topic"] == controller_yaml["trajectory_topic"]
    assert args["command_topic"] == controller_yaml["command_topic"]
    ((est_src, est_cfg),) = nodes["estimator_node"].kwargs["remappings"]
    assert est_src == estimator_yaml["joint_state_topic"]
    assert est_cfg.args[0] == "joint_states_topic"
    # Parameters from launch arguments are typed as the controller declares them.
    fields = {f.name: type(f.default) for f in dataclasses.fields(ControllerConfig)}
    params = next(p for p in nodes["controller_node"].kwargs["parameters"] if isinstance(p, dict))
    typed = {k: v for k, v in params.items() if isinstance(v, _Value)}
    assert {"dry_run", "velocity_scale", "command_mode", "joint_names", "limits"} <= set(typed)
    for key, value in typed.items():
        assert value.kwargs["value_type"] is fields[key], key
        default = args[value.args[0].args[0]]
        if fields[key] is bool:
            assert default in ("true", "false"), (key, default)
        else:
            fields[key](default)
    # The default limits file of the default robot, and the FR3's, from this copy's share.
    panda = load_robot_limits(layout.share / "config" / "limits" / f"{args['robot']}.yaml")
    assert list(panda.joints.names) == PANDA_JOINTS
    assert parse_joint_map(args["joint_names"], PANDA_JOINTS) == PANDA_JOINTS
    fr3 = load_robot_limits(layout.share / "config" / "limits" / "fr3.yaml")
    fr3_names = parse_joint_map(FR3_JOINTS, PANDA_JOINTS)
    lim = enforced_limits(fr3, fr3_names, panda.joints.position_low, panda.joints.position_high)
    assert lim.names == tuple(fr3_names) and np.all(lim.velocity < fr3.joints.velocity)
    docstring = path.read_text()
    assert f"joint_names:={FR3_JOINTS}" in docstring and "limits:=fr3" in docstring


def test_sim_demo_restarts_the_commanded_motion_at_each_episode(monkeypatch) -> None:
    """The simulated arm jumps to its start pose at every reset: the controller follows."""
    nodes = _nodes(PKG / "launch" / "sim_demo.launch.py", monkeypatch)
    ctrl = next(n for n in nodes if n.kwargs["executable"] == "controller_node")
    params = next(p for p in ctrl.kwargs["parameters"] if isinstance(p, dict))
    assert params["reanchor_on_goal"] is True


def test_yaml_files_match_the_config_dataclasses(layout: Layout) -> None:
    for exe, yaml_name in (
        ("sim_arm_node", "sim_arm.yaml"),
        ("controller_node", "controller.yaml"),
        ("estimator_node", "estimator.yaml"),
    ):
        raw = yaml.safe_load((layout.share / "config" / yaml_name).read_text())
        (params,) = [v["ros__parameters"] for v in raw.values()]
        assert set(params) == parameter_names(exe) - {"use_sim_time"}
