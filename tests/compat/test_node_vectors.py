"""The Node implementation of the original's VES (tests/compat/lib/ves.mjs) against outside known answers, and
against the corrected vectors app/ves reproduces (tests/ves/test_original_vectors.py): two implementations, one file."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.compat.test_node_client import node

HERE = Path(__file__).resolve().parent
CORRECTED = HERE.parent / "vectors" / "original" / "corrected.json"


def test_node_implementation_passes_rfc_and_original_known_answers():
    completed = subprocess.run([node(), str(HERE / "selftest.mjs")], capture_output=True, text=True, timeout=60)
    assert (completed.returncode, completed.stdout.strip()) == (0, "ok"), completed.stderr


def test_node_recomputes_the_corrected_original_vectors():
    completed = subprocess.run([node(), str(HERE / "vectors.mjs")], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout) == json.loads(CORRECTED.read_text())
