"""docs/spec/ holds the shared specifications byte for byte, optionally followed by one appended section that records
where this implementation follows the original sequencer's code instead (required to be present under CI)."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
RECORDED = "\n## Recorded differences"


@pytest.mark.parametrize("name", ["VES.md", "API.md"])
def test_spec_copy_matches_shared(name):
    copy = ROOT / "docs" / "spec" / name
    assert copy.is_file()
    if os.environ.get("CI"):
        assert (SHARED / name).is_file(), f"CI requires the shared specification at {SHARED / name}"
    if (SHARED / name).is_file():
        text, shared = copy.read_text(), (SHARED / name).read_text()
        assert text.startswith(shared), f"docs/spec/{name} drifted from ../shared/"
        appended = text[len(shared):]
        assert appended == "" or appended.startswith(RECORDED), (
            f"docs/spec/{name} may only append a section starting with {RECORDED.strip()!r}")
