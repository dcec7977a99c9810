"""Fixtures for commitment tests: a fresh stream per test, an appender of event rows, and API keys for it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from tests.commitments.event_rows import append_events
from tests.controls import api_key
from tests.controls import auth


@dataclass(frozen=True)
class Stream:
    tenant_id: uuid.UUID
    store_id: uuid.UUID

    @property
    def query(self) -> str:
        return f"tenant_id={self.tenant_id}&store_id={self.store_id}"


@pytest.fixture
def stream() -> Stream:
    return Stream(uuid.uuid4(), uuid.uuid4())


@pytest.fixture
def append(engine, stream):
    """`append(count, unsigned=frozenset())`: add events to the test's stream; returns the inserted rows."""

    def _append(count: int, unsigned: frozenset[int] = frozenset(), target: Stream | None = None) -> list[dict]:
        target = target or stream
        return append_events(engine, target.tenant_id, target.store_id, count, unsigned)

    return _append


@pytest.fixture
def writer(engine, stream) -> dict[str, str]:
    """Headers of a read_write key scoped to the test's tenant."""
    return auth(api_key(engine, stream.tenant_id, "read_write"))


@pytest.fixture
def reader(engine, stream) -> dict[str, str]:
    return auth(api_key(engine, stream.tenant_id, "read"))


@pytest.fixture
def stranger(engine) -> dict[str, str]:
    """Headers of a read_write key of another tenant."""
    return auth(api_key(engine, uuid.uuid4(), "read_write"))


@pytest.fixture
def make_stream():
    """A factory of further fresh streams (each a new tenant)."""
    return lambda: Stream(uuid.uuid4(), uuid.uuid4())
