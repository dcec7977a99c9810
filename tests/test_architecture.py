"""The boundaries between the HTTP edge and the rest (STYLE.md §8, §12), measured on the source and the import graph.

- Services are Flask-free: nothing under app/services imports app.api, flask or werkzeug, even transitively.
- The chain client and the commitment value need neither Flask nor a database.
- Views are small: each `@operation` view is parse → authorise → one service call → render.
- Domain errors carry a `code`, never an HTTP status or headers (app/api/wire.py maps them).
- Entry points share one start-up helper; app/anchoring.py and app/cli.py do not import each other's helpers, and
  the admin CLI loads no blueprint.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app"
MAX_VIEW_LINES = 15
BLUEPRINT_MODULES = sorted(p for p in (APP / "api").glob("*.py") if "Blueprint(" in p.read_text(encoding="utf-8"))


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at any depth of the file (function-level imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def loaded_after_import(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after running `statement`."""
    script = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def _is_web(module: str) -> bool:
    return module.split(".")[0] in {"flask", "werkzeug"} or module == "app.api" or module.startswith("app.api.")


@pytest.mark.parametrize("path", sorted((APP / "services").glob("*.py")), ids=lambda p: p.name)
def test_a_service_module_imports_nothing_of_the_web_layer(path):
    assert {m for m in imported_modules(path) if _is_web(m)} == set()


def test_services_chain_and_the_commitment_value_load_no_web_framework():
    modules = [f"app.services.{p.stem}" for p in sorted((APP / "services").glob("*.py")) if p.stem != "__init__"]
    loaded = loaded_after_import("\n".join(f"import {m}" for m in modules))
    assert {m for m in loaded if _is_web(m)} == set()
    chain = loaded_after_import("import app.chain.checks\nimport app.commitment")
    assert {m for m in chain if _is_web(m) or m.split(".")[0] in {"sqlalchemy", "psycopg2"}} == set()
    wire = loaded_after_import("import app.api.wire")
    assert {m for m in wire if m.split(".")[0] in {"flask", "werkzeug"}} == set()


def test_the_admin_cli_loads_no_blueprint_and_the_anchoring_job_not_the_cli():
    loaded = loaded_after_import("import app.cli\napp.cli.build_parser()")
    blueprints = {f"app.api.{p.stem}" for p in BLUEPRINT_MODULES}
    assert loaded & blueprints == set()
    assert "app.cli" not in loaded_after_import("import app.anchoring\napp.anchoring.main.__doc__")


def test_no_module_imports_another_modules_private_names():
    offenders = []
    for path in sorted(APP.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("app"):
                offenders += [f"{path.relative_to(ROOT)}: {node.module}.{a.name}" for a in node.names
                              if a.name.startswith("_") and not a.name.startswith("__")]
    assert offenders == []


def test_settings_are_read_or_exit_2_in_one_place():
    catching = [str(p.relative_to(ROOT)) for p in sorted(APP.rglob("*.py")) + [ROOT / "config" / "gunicorn.conf.py"]
                if re.search(r"except\s+\(?[\w, ]*ConfigError", p.read_text(encoding="utf-8"))]
    assert catching == ["app/startup.py"]


def test_the_largest_sequence_number_is_spelled_once():
    spelled = [str(p.relative_to(ROOT)) for p in sorted(APP.rglob("*.py"))
               for _ in re.finditer(r"2\s*\*\*\s*63", p.read_text(encoding="utf-8"))]
    assert spelled == ["app/api/wire.py"]


def _views(path: Path):
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef):
            decorators = [ast.unparse(d) for d in node.decorator_list]
            if any(d.startswith("operation(") for d in decorators) or node.name.startswith("_"):
                yield node


@pytest.mark.parametrize("path", BLUEPRINT_MODULES, ids=lambda p: p.name)
def test_views_and_their_helpers_stay_small(path):
    """Lines from `def` to the end of the body, docstring included."""
    sizes = {node.name: node.end_lineno - node.lineno + 1 for node in _views(path)}
    assert sizes, "no view found"
    assert {name: lines for name, lines in sizes.items() if lines > MAX_VIEW_LINES} == {}


def test_every_route_declares_its_operation(app):
    undeclared = [rule.rule for rule in app.url_map.iter_rules()
                  if not hasattr(app.view_functions[rule.endpoint], "operation")]
    assert undeclared == []


def test_domain_errors_carry_a_code_and_no_http_status():
    import app.api.wire  # noqa: F401 - imports every service, so every error class is defined
    import app.services.anchoring  # noqa: F401
    from app.errors import SequencerError

    classes, stack = [], [SequencerError]
    while stack:
        cls = stack.pop()
        classes.append(cls)
        stack.extend(cls.__subclasses__())
    assert len(classes) > 15
    for cls in classes:
        assert re.fullmatch(r"[A-Z][A-Z0-9_]+", cls.code), cls
        assert not {"status", "headers", "status_code"} & set(vars(cls)), cls
