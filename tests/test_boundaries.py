"""The layering rules of ARCHITECTURE.md, checked on the source: who may import whom."""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent / "tracenn"


def _imports(path: pathlib.Path):
    """Absolute module names a file imports (relative imports resolved against its package)."""
    tree = ast.parse(path.read_text())
    pkg = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            yield mod
            for a in node.names:
                yield f"{mod}.{a.name}"


def _files(sub):
    return sorted((ROOT / sub).rglob("*.py"))


def test_ops_import_nothing_else_from_tracenn():
    for f in _files("ops"):
        for mod in _imports(f):
            if mod.startswith("tracenn"):
                assert mod.startswith("tracenn.ops"), f"{f.name} imports {mod}"


def test_runtime_never_imports_the_tracer():
    for f in _files("runtime"):
        for mod in _imports(f):
            assert not mod.startswith("tracenn.compiler"), f"{f.name} imports {mod}"


@pytest.mark.parametrize("sub", ["autograd", "_api"])
def test_core_does_not_import_compiler_or_nn(sub):
    for f in _files(sub):
        for mod in _imports(f):
            assert not mod.startswith(("tracenn.compiler", "tracenn.runtime", "tracenn.nn")), f"{f} imports {mod}"


def test_the_checker_sees_imports():
    # Guard against a vacuous pass: the resolver must find real imports.
    mods = set(_imports(ROOT / "_dispatch.py"))
    assert "tracenn.ops" in mods and "tracenn.autograd.graph" in mods
