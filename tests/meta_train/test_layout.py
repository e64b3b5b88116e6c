"""The library's layout holds: no import cycles in ``meta_train``, ``common`` imports no method,
and no method imports a sibling (methods meet through ``common``, saved runs and exported
models). Imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from meta_train.cli import SHARED, build_parser, method_cli_modules

ROOT = Path(__file__).resolve().parents[2] / "meta_train"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(name: str) -> str | None:
    """The ``meta_train`` module an import of ``name`` loads (a package's ``__init__``, or
    the longest existing prefix for ``from pkg import name``), or None outside meta_train."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str) -> set[str]:
    """The ``meta_train`` modules ``module`` imports, at its top or inside functions."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        for t in targets:
            hit = _resolve(t)
            if hit is not None and hit != module:
                out.add(hit)
    return out


GRAPH = {m: imports_of(m) for m in MODULES}


def _method_of(module: str) -> str | None:
    """The method sub-package a module belongs to (None: ``common`` or the top level)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in _methods() else None


def _methods() -> set[str]:
    return {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()} - {SHARED}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_checker_sees_cycles_and_relative_imports():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    # a method's trainer imports its own config and the shared parts, found as modules
    assert "meta_train.rdpg.config" in GRAPH["meta_train.rdpg.trainer"]
    assert "meta_train.common.checkpoint" in GRAPH["meta_train.rdpg.trainer"]


def test_meta_train_has_no_import_cycle():
    assert _cycles(GRAPH) == []


def test_common_imports_no_method():
    bad = {m: sorted(d for d in deps if _method_of(d))
           for m, deps in GRAPH.items() if m.startswith(f"meta_train.{SHARED}")}
    assert {m: d for m, d in bad.items() if d} == {}


def test_common_imports_not_the_command_line():
    """Shared parts sit below the CLI: they find methods' modules by name, never through it."""
    bad = sorted(m for m, deps in GRAPH.items()
                 if m.startswith(f"meta_train.{SHARED}") and "meta_train.cli" in deps)
    assert bad == []


@pytest.mark.parametrize("method", sorted(_methods()))
def test_a_method_imports_no_sibling(method):
    mine = {m: deps for m, deps in GRAPH.items() if _method_of(m) == method}
    assert mine, f"no modules found for {method}"
    bad = {m: sorted(d for d in deps if _method_of(d) not in (None, method))
           for m, deps in mine.items()}
    assert {m: d for m, d in bad.items() if d} == {}


def test_every_method_registers_its_own_subcommands():
    assert {m.split(".")[1] for m in method_cli_modules()} == _methods()
    commands = set(build_parser()._subparsers._group_actions[0].choices)
    assert {"rdpg-her", "evaluate", "table2", "export", "estimator"} <= commands
    cli = (ROOT / "cli.py").read_text()
    for command in commands:  # the top-level CLI names no method's command in its code
        assert f'"{command}"' not in cli
