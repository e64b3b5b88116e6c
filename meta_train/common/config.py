"""Configuration as data: dataclass configs, YAML presets and flags generated from fields.

Every method keeps its own dataclass config (``meta_train.<method>.config``); this module holds
what they share. Each field's ``help`` metadata becomes its ``--help`` text (CleanRL style), a
preset is a YAML mapping of field: value, and the resolved config is saved beside every
checkpoint and exported model.

Options that were measured, not adopted and removed from a config stay readable in the runs
saved before: :func:`drop_removed` drops such a key when it holds the value that meant "off",
and refuses any other value with an error naming the commit that still has the code
(``docs/experiments.md`` lists them).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration value, preset or flag is invalid."""


def option(default: Any, help: str, **kw: Any) -> Any:  # noqa: A002 - mirrors argparse's name
    """A dataclass field with ``help`` metadata (its ``--help`` text); mutable defaults are
    copied per instance."""
    if isinstance(default, dict | list):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help},
                     **kw)
    return field(default=default, metadata={"help": help}, **kw)


@dataclass(frozen=True)
class RemovedOption:
    """A config option that was removed after its experiment was not adopted.

    Attributes:
        off: the value that meant the option was off (saved runs holding it still load).
        commit: a commit that still has the option's code (see ``docs/experiments.md``).
    """

    off: Any
    commit: str


def drop_removed(values: Mapping[str, Any], removed: Mapping[str, RemovedOption],
                 what: str) -> dict[str, Any]:
    """``values`` without the removed options that hold their "off" value.

    Raises:
        ConfigError: a removed option holds another value; the message names the commit that
            still has its code.
    """
    out = dict(values)
    for name, spec in removed.items():
        if name not in out:
            continue
        value = out.pop(name)
        if value != spec.off:
            raise ConfigError(
                f"{what} was made with --{name.replace('_', '-')} {value!r}, an option removed "
                f"after its experiment was not adopted (docs/experiments.md); check out commit "
                f"{spec.commit[:12]} to evaluate, export or resume it"
            )
    return out


def load_preset(name_or_path: str, presets_dir: Path) -> dict[str, Any]:
    """Values of a YAML preset: a name under ``presets_dir`` or a path to a ``.yaml`` file."""
    path = Path(name_or_path)
    if not path.suffix:
        path = presets_dir / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in presets_dir.glob("*.yaml")))
        raise ConfigError(f"preset {name_or_path!r} not found (known presets: {known})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a preset must be a mapping of field: value")
    return data


def build_config(cls, values: Mapping[str, Any]):
    """Instantiate a config dataclass from a mapping, rejecting unknown keys, and validate it
    (when the class has ``validate()``)."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} fields: {', '.join(unknown)}")
    try:
        cfg = cls(**values)
    except TypeError as e:
        raise ConfigError(f"{cls.__name__}: {e}") from None
    if hasattr(cfg, "validate"):
        cfg.validate()
    return cfg


def add_dataclass_flags(parser: argparse.ArgumentParser, cls) -> None:
    """One ``--flag`` per field, with the field's help; defaults stay None (unset)."""
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        help_text = f.metadata.get("help", "")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if f.type in ("bool", bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                                help=f"{help_text} (default {default})")
        elif f.type in ("dict", dict, "list", list):
            parser.add_argument(flag, type=json.loads, default=None,
                                help=f"{help_text}; JSON (default {default})")
        else:
            typ = {"int": int, "float": float, "str": str}.get(f.type, str)
            parser.add_argument(flag, type=typ, default=None,
                                help=f"{help_text} (default {default})")


def flags_to_values(args: argparse.Namespace, cls) -> dict[str, Any]:
    """Field values explicitly given on the command line."""
    out = {}
    for f in dataclasses.fields(cls):
        v = getattr(args, f.name, None)
        if v is not None:
            out[f.name] = v
    return out


def save_config(cfg, path: Path) -> None:
    """Write the resolved config as YAML (atomically)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False))
    tmp.replace(path)
