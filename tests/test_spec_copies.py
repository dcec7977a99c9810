"""docs/spec/ and tests/vectors/ hold checked copies of the shared specifications, so the suite needs nothing outside
the repository (a hosted CI clone has no ../shared).

A spec copy is the shared page byte for byte, optionally followed by one appended section (`## Recorded
differences`) saying where this implementation follows the original sequencer's code instead. The shared part of
each copy must have the SHA-256 recorded next to it in SHA256SUMS (`sha256sum -c` format of the shared file), which
catches an edit of the copy alone; when ../shared is present (a checkout next to the project's shared folder), the
shared part must also be byte-identical to the shared file, which catches a shared file that changed without being
copied again.
"""

import hashlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
RECORDED = b"\n\n## Recorded differences"
COPIES = {
    "docs/spec/VES.md": "VES.md",
    "docs/spec/API.md": "API.md",
    "docs/spec/LOG.md": "LOG.md",
    "tests/vectors/ves_v1_public.json": "vectors/ves_v1_public.json",
}


def recorded_sha256(copy: Path) -> str:
    """The digest SHA256SUMS in the copy's directory records for it."""
    for line in (copy.parent / "SHA256SUMS").read_text().splitlines():
        digest, _, name = line.partition("  ")
        if name == copy.name:
            return digest
    raise AssertionError(f"{copy.parent / 'SHA256SUMS'} has no line for {copy.name}")


def shared_part(copy: Path) -> bytes:
    """The copy without its appended `## Recorded differences` section (spec pages only)."""
    data = copy.read_bytes()
    if copy.suffix != ".md":
        return data
    cut = data.find(RECORDED)
    return data if cut < 0 else data[:cut + 1]


@pytest.mark.parametrize("copy_name", sorted(COPIES))
def test_copy_matches_its_recorded_digest_and_shared_when_present(copy_name):
    copy = ROOT / copy_name
    part = shared_part(copy)
    assert hashlib.sha256(part).hexdigest() == recorded_sha256(copy), (
        f"{copy_name} is not the copy SHA256SUMS records: copy the shared file again instead of editing the copy, "
        "then update SHA256SUMS")
    shared = SHARED / COPIES[copy_name]
    if shared.is_file():
        assert part == shared.read_bytes(), f"{copy_name} drifted from {shared}"


@pytest.mark.parametrize("name", ["VES.md", "API.md", "LOG.md"])
def test_spec_copy_appends_only_a_recorded_differences_section(name):
    data = (ROOT / "docs" / "spec" / name).read_bytes()
    appended = data[len(shared_part(ROOT / "docs" / "spec" / name)):]
    assert appended == b"" or appended.startswith(RECORDED[1:]), (
        f"docs/spec/{name} may only append a section starting with {RECORDED.decode().strip()!r}")
