"""docs/spec/ holds byte-identical copies of the shared specifications (required to be present under CI)."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.mark.parametrize("name", ["VES.md", "API.md"])
def test_spec_copy_matches_shared(name):
    copy = ROOT / "docs" / "spec" / name
    assert copy.is_file()
    if os.environ.get("CI"):
        assert (SHARED / name).is_file(), f"CI requires the shared specification at {SHARED / name}"
    if (SHARED / name).is_file():
        assert copy.read_bytes() == (SHARED / name).read_bytes(), f"docs/spec/{name} drifted from ../shared/"
