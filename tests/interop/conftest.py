"""The Go verifier, built once per session (tests/support/golang.py)."""

from __future__ import annotations

import pytest

from tests.support.golang import build_tlogverify


@pytest.fixture(scope="session")
def tlogverify(tmp_path_factory):
    return build_tlogverify(tmp_path_factory.mktemp("tlogverify"))
