"""What the README and docs/ name exists: dotted `app.…` names import and resolve, and repository paths in
backticks are files or directories (or globs that match some)."""

from __future__ import annotations

import importlib
import re

import pytest

from tests.support.servers import ROOT

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), ROOT / "tests" / "vectors" / "README.md"]
DOTTED = re.compile(r"`(app(?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
PATH = re.compile(r"`((?:app|tests|bin|deploy|docs|config|nginx|contracts|bench|alembic)/[A-Za-z0-9_./*-]*)")


def _references(pattern: re.Pattern) -> list[tuple[str, str]]:
    found = set()
    for document in DOCUMENTS:
        for name in pattern.findall(document.read_text()):
            found.add((document.relative_to(ROOT).as_posix(), name.rstrip(".")))
    return sorted(found)


def resolve(dotted: str) -> object:
    """Import the longest importable module prefix of `dotted`, then follow the rest as attributes."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            target = importlib.import_module(".".join(parts[:split]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[split:]:
            target = getattr(target, attribute)
        return target
    raise ModuleNotFoundError(dotted)


def test_the_resolver_rejects_a_wrong_module():
    assert resolve("app.chain.checks.bundle_chain_checker")
    with pytest.raises(AttributeError):
        resolve("app.services.anchoring.bundle_chain_checker")


@pytest.mark.parametrize(("document", "dotted"), _references(DOTTED), ids=str)
def test_dotted_names_resolve(document, dotted):
    try:
        resolve(dotted)
    except (ImportError, AttributeError) as error:
        pytest.fail(f"{document} names {dotted}, which does not exist ({error})")


@pytest.mark.parametrize(("document", "path"), _references(PATH), ids=str)
def test_paths_exist(document, path):
    assert (ROOT / path).exists() or list(ROOT.glob(path)), f"{document} names {path}, which does not exist"
