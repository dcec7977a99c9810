"""app/ves is the pure core: no web framework, database, environment or clock (DESIGN.md, STYLE.md §12).

Scans the source with `ast`, so a forbidden import fails this test even if it is never executed.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

VES_DIR = Path(__file__).resolve().parents[2] / "app" / "ves"
ALLOWED_THIRD_PARTY = {"rfc8785", "nacl"}
FORBIDDEN_MODULES = {"os", "time", "datetime", "flask", "werkzeug", "sqlalchemy", "psycopg2", "web3", "socket",
                     "subprocess", "random", "secrets", "requests", "logging"}
FORBIDDEN_NAMES = {"environ", "getenv", "now", "utcnow", "today", "time_ns", "monotonic", "perf_counter"}


def violations(source: str) -> list[str]:
    """Every import outside stdlib-minus-forbidden, rfc8785, nacl and app.ves, and every clock/env name used."""
    found = []
    for node in ast.walk(ast.parse(source)):
        modules = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""] if node.level == 0 else []
            found.extend(f"name {alias.name}" for alias in node.names if alias.name in FORBIDDEN_NAMES)
        for module in modules:
            root = module.split(".")[0]
            if module == "app.ves" or module.startswith("app.ves."):
                continue
            if root in FORBIDDEN_MODULES:
                found.append(f"import {module}")
            elif root not in sys.stdlib_module_names and root not in ALLOWED_THIRD_PARTY:
                found.append(f"import {module}")
        if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_NAMES:
            found.append(f"attribute .{node.attr}")
        if isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            found.append(f"name {node.id}")
        if isinstance(node, ast.Name) and node.id in {"__import__", "importlib"}:
            found.append(f"dynamic import {node.id}")
    return found


def ves_sources() -> list[Path]:
    return sorted(VES_DIR.rglob("*.py"))


def test_the_core_has_the_expected_modules():
    names = {path.name for path in ves_sources()}
    assert {"__init__.py", "encoding.py", "errors.py", "hashing.py", "merkle.py", "signing.py", "tlog.py", "note.py",
            "checkpoint.py"} <= names


@pytest.mark.parametrize("path", ves_sources(), ids=lambda path: path.name)
def test_module_is_pure(path):
    assert violations(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "source",
    [
        "import os",
        "import os.path",
        "from os import environ",
        "import flask",
        "from flask import current_app",
        "import sqlalchemy as sa",
        "from sqlalchemy.engine import Connection",
        "import time",
        "from time import time",
        "from datetime import datetime",
        "import datetime",
        "import app.config",
        "from app.db import tables",
        "x = environ['KEY']",
        "import uuid\nclock = uuid.datetime.now()",
        "m = __import__('os')",
        "import yaml",
    ],
)
def test_scanner_catches_forbidden_source(source):
    assert violations(source)


def test_scanner_allows_the_permitted_dependencies():
    allowed = "import hashlib\nimport uuid\nimport rfc8785\nimport nacl.signing\nfrom app.ves.errors import VesError\n"
    assert violations(allowed) == []
