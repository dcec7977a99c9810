"""Fixtures for the SDK: the public VES vectors (tests/vectors/ves_v1_public.json), loaded once."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

VECTORS_PATH = Path(__file__).resolve().parents[1] / "vectors" / "ves_v1_public.json"


@functools.lru_cache(maxsize=1)
def load_vectors() -> dict:
    return json.loads(VECTORS_PATH.read_text(encoding="utf-8"))


@pytest.fixture
def vectors() -> dict:
    return json.loads(json.dumps(load_vectors()))
