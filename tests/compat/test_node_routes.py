"""The original's routes that issue 18 added, called by a Node client of the original (tests/compat/routes.mjs:
nothing but Node's `crypto`, its inclusion proofs folded with the original's own VES hashes) against a real
gunicorn."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest

from tests.compat.test_node_client import HERE
from tests.compat.test_node_client import node
from tests.controls import BOOTSTRAP_KEY
from tests.support.servers import start_gunicorn

pytestmark = pytest.mark.slow
# One check of every part, so a run that silently stopped early cannot pass.
PARTS = {"commitments.get_batch_commitment_serde", "proofs.folds_to_events_root", "anchor_service.already_anchored",
         "agents.revoke_api_key", "agents.register_disabled", "schemas.delete", "admin.agents",
         "health.detailed_admin_only"}


@pytest.fixture(scope="module")
def server(database_url):
    env = {"BOOTSTRAP_ADMIN_API_KEY": BOOTSTRAP_KEY, "VES_SEQUENCER_SIGNING_KEY": "23" * 32, "LOG_LEVEL": "warning"}
    with start_gunicorn(database_url, env=env, workers=2) as running:
        yield running


def test_the_original_client_calls_every_added_route(server):
    completed = subprocess.run(
        [node(), str(HERE / "routes.mjs"), "--base-url", server.url, "--admin-key", BOOTSTRAP_KEY,
         "--tenant", str(uuid.uuid4())], capture_output=True, text=True, timeout=120)
    lines = [json.loads(line) for line in completed.stdout.splitlines() if line.strip()]
    checks = [line for line in lines if "check" in line]
    report = "\n".join(f"{c['status']:>5}  {c['check']}  {c['detail']}" for c in checks)
    summary = next((line["summary"] for line in lines if "summary" in line), None)
    assert summary is not None, f"no summary (exit {completed.returncode}):\n{completed.stderr}\n{report}"
    assert summary["aborted"] is None and summary["fail"] == 0, f"{summary}\n{report}"
    assert PARTS <= {c["check"] for c in checks if c["status"] == "pass"}, report
    assert completed.returncode == 0, completed.stderr
