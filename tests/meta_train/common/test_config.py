"""Shared config helpers: presets, flags, unknown keys, and removed options."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from meta_train.common.config import (
    ConfigError,
    RemovedOption,
    add_dataclass_flags,
    build_config,
    drop_removed,
    flags_to_values,
    load_preset,
    option,
)


@dataclass
class Toy:
    """A config with one of each kind of field."""

    steps: int = option(10, "steps")
    rate: float = option(0.5, "rate")
    name: str = option("a", "name")
    on: bool = option(True, "switch")
    extra: dict = option({}, "mapping")

    def validate(self) -> None:
        if self.steps < 1:
            raise ConfigError("steps must be >= 1")


def test_flags_are_generated_from_the_fields_and_only_given_ones_count():
    parser = argparse.ArgumentParser()
    add_dataclass_flags(parser, Toy)
    args = parser.parse_args(["--steps", "3", "--no-on", "--extra", '{"k": 1}'])
    assert flags_to_values(args, Toy) == {"steps": 3, "on": False, "extra": {"k": 1}}
    assert "steps (default 10)" in parser.format_help()
    assert Toy().extra is not Toy().extra  # mutable defaults are per instance


def test_build_config_validates_and_refuses_unknown_keys():
    assert build_config(Toy, {"steps": 2}).steps == 2
    with pytest.raises(ConfigError, match="unknown Toy fields: nope"):
        build_config(Toy, {"nope": 1})
    with pytest.raises(ConfigError, match="steps must be"):
        build_config(Toy, {"steps": 0})


def test_presets_by_name_or_path_and_their_errors(tmp_path):
    (tmp_path / "fast.yaml").write_text("steps: 4\n")
    assert load_preset("fast", tmp_path) == {"steps": 4}
    assert load_preset(str(tmp_path / "fast.yaml"), tmp_path / "elsewhere") == {"steps": 4}
    with pytest.raises(ConfigError, match="known presets: fast"):
        load_preset("slow", tmp_path)
    (tmp_path / "bad.yaml").write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_preset("bad", tmp_path)
    (tmp_path / "broken.yaml").write_text("steps: [\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_preset("broken", tmp_path)


def test_removed_options_drop_at_their_off_value_and_name_the_commit_otherwise():
    removed = {"n_step": RemovedOption(1, "0123456789abcdef"), "tag": RemovedOption({}, "fe")}
    assert drop_removed({"steps": 2, "n_step": 1, "tag": {}}, removed, "run x") == {"steps": 2}
    assert drop_removed({"steps": 2}, removed, "run x") == {"steps": 2}
    with pytest.raises(ConfigError, match=r"run x was made with --n-step 3.*0123456789ab"):
        drop_removed({"n_step": 3}, removed, "run x")
