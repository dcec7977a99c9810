"""The SDK and the verifier depend on requests, PyNaCl, rfc8785 and app.ves only: no Flask, no SQLAlchemy.

Scans the source with `ast`, so a forbidden import fails even on a path no other test runs.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"
ALLOWED_THIRD_PARTY = {"requests", "nacl", "rfc8785"}
ALLOWED_APP_PACKAGES = ("app.ves", "app.client", "app.verify")


OPTIONAL_LAZY_PACKAGES = ("app.chain",)


def _lazy_imports(tree: ast.AST) -> set[int]:
    """ids of import nodes inside a function body (imported only when that function runs)."""
    return {id(node) for function in ast.walk(tree) if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
            for node in ast.walk(function) if isinstance(node, (ast.Import, ast.ImportFrom))}


def foreign_imports(source: str) -> list[str]:
    """Imports outside the SDK's dependencies. `app.chain` (web3) is allowed only lazily, inside a function: the
    verifier's optional on-chain check (`--rpc-url`) needs it, nothing else does."""
    found = []
    tree = ast.parse(source)
    lazy = _lazy_imports(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            modules = [node.module or ""]
        else:
            continue
        for module in modules:
            if module.startswith(ALLOWED_APP_PACKAGES):
                continue
            if id(node) in lazy and module.startswith(OPTIONAL_LAZY_PACKAGES):
                continue
            root = module.split(".")[0]
            if root not in sys.stdlib_module_names and root not in ALLOWED_THIRD_PARTY:
                found.append(module)
    return found


SOURCES = sorted([*(APP / "client").rglob("*.py"), *(APP / "verify").rglob("*.py")])


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_module_imports_only_the_sdk_dependencies(path):
    assert foreign_imports(path.read_text(encoding="utf-8")) == []


def test_the_scan_catches_a_forbidden_import():
    assert foreign_imports("import flask\nfrom sqlalchemy import text\nfrom app.db import engine") == [
        "flask", "sqlalchemy", "app.db"]


def test_app_chain_is_allowed_only_as_a_lazy_import():
    assert foreign_imports("from app.chain import RegistryClient") == ["app.chain"]
    assert foreign_imports("def f():\n    from app.chain import RegistryClient\n") == []
    assert foreign_imports("def f():\n    import web3\n") == ["web3"]
