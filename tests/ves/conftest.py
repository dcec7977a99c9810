"""Fixtures for the pure VES core: the public vector file, loaded once and parametrised by case name.

A test that takes `payload_case`, `signing_case`, `receipt_case`, `merkle_batch`, `state_chain` or `key_case` runs
once per case of the matching section of tests/vectors/ves_v1_public.json (ids are the case names).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

VECTORS_PATH = Path(__file__).resolve().parents[1] / "vectors" / "ves_v1_public.json"

SECTION_BY_FIXTURE = {
    "key_case": "keys",
    "payload_case": "payload_hash",
    "signing_case": "event_signing",
    "receipt_case": "receipts",
    "merkle_batch": "merkle_batches",
    "state_chain": "state_chains",
}


@functools.lru_cache(maxsize=1)
def load_vectors() -> dict:
    return json.loads(VECTORS_PATH.read_text(encoding="utf-8"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for fixture_name, section in SECTION_BY_FIXTURE.items():
        if fixture_name in metafunc.fixturenames:
            cases = load_vectors()[section]
            metafunc.parametrize(fixture_name, cases, ids=[case["name"] for case in cases])


@pytest.fixture(scope="session")
def vectors() -> dict:
    return load_vectors()


@pytest.fixture(scope="session")
def batches_by_name(vectors: dict) -> dict[str, dict]:
    return {batch["name"]: batch for batch in vectors["merkle_batches"]}
