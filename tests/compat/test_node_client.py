"""The Node compatibility client (tests/compat/client.mjs), a client of the original sequencer written with nothing
but Node's `crypto`, against a real gunicorn; then the encrypted event it built is opened here with an independent
implementation (tests/support/ves_enc.py) to show the bytes it sealed are the original's VES-ENC-1."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import requests

from app.ves import EventSigningFields
from app.ves import payload_plain_hash_salted
from tests.controls import BOOTSTRAP_KEY
from tests.support import ves_enc
from tests.support.servers import start_gunicorn

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent
ADMIN = {"Authorization": f"ApiKey {BOOTSTRAP_KEY}"}
PENDING = json.loads((HERE / "pending_differences.json").read_text())["pending"]
# One check of every step of the flow (register key, ingest plaintext and encrypted, replay, tamper, head, events,
# entity history, commitment, proof, verify, schemas, anchor status, auth forms, errors), so a run that silently
# stopped early cannot pass.
FLOW = {"register.accepted", "register.body", "ingest.accepted", "ingest.0.receipt.receipt_hash_recomputes",
        "receipt.sequencer_key_version", "encrypted.accepted", "ours.receipt.signature_verifies",
        "ours.sequencer.key_versions", "replay.same_receipts", "replay.response_fields", "tamper.rejection_fields",
        "tamper.reason_strings", "head.fields", "events.list_fields", "events.sequenced_event_shape",
        "ours.ves_events.encrypted_stored_as_sent", "entity.fields", "entity.offset_paging",
        "commitment.roots_recompute", "proof.folds_to_root", "verify.valid_echoes", "schemas.register",
        "schemas.list_fields", "anchor.status_fields", "ingest.source_agent_mismatch_400", "auth.x_api_key",
        "auth.bare_authorization", "errors.unauthenticated_status", "errors.unauthenticated_code",
        "errors.invalid_api_key_code"}


def node() -> str:
    path = shutil.which("node")
    assert path, "Node.js 20+ is required for tests/compat (bin/install-test-tools checks for it)"
    return path


@pytest.fixture(scope="module")
def server(database_url):
    env = {"BOOTSTRAP_ADMIN_API_KEY": BOOTSTRAP_KEY, "VES_SEQUENCER_SIGNING_KEY": "22" * 32, "LOG_LEVEL": "warning"}
    with start_gunicorn(database_url, env=env, workers=2) as running:
        yield running


@pytest.fixture(scope="module")
def run(server):
    tenant = str(uuid.uuid4())
    created = requests.post(f"{server.url}/api/v1/admin/api-keys", json={"tenant_id": tenant,
                                                                         "permissions": "read_write"},
                            headers=ADMIN, timeout=10)
    assert created.status_code == 201, created.text
    completed = subprocess.run(
        [node(), str(HERE / "client.mjs"), "--base-url", server.url, "--admin-key", BOOTSTRAP_KEY,
         "--api-key", created.json()["api_key"], "--tenant", tenant],
        capture_output=True, text=True, timeout=120)
    lines = [json.loads(line) for line in completed.stdout.splitlines() if line.strip()]
    return completed, lines


def test_the_original_client_flow_passes_except_the_listed_pending_differences(run):
    completed, lines = run
    checks = [line for line in lines if "check" in line]
    summary = next((line["summary"] for line in lines if "summary" in line), None)
    report = "\n".join(f"{c['status']:>7}  {c['check']}  {c['detail']}" for c in checks)
    assert summary is not None, f"no summary (exit {completed.returncode}):\n{completed.stderr}\n{report}"
    assert summary["aborted"] is None, f"{summary['aborted']}\n{report}"
    assert (summary["fail"], summary["fixed"]) == (0, 0), report
    assert completed.returncode == 0, completed.stderr
    assert sorted(c["check"] for c in checks if c["status"] == "pending") == sorted(PENDING)
    passed = {c["check"] for c in checks if c["status"] == "pass"}
    assert FLOW <= passed, f"flow steps missing: {FLOW - passed}\n{report}"


def test_the_node_built_encrypted_event_opens_with_an_independent_implementation(run, server):
    _, lines = run
    artifacts = next(line["artifacts"] for line in lines if "artifacts" in line)
    served = requests.get(f"{server.url}/api/v1/ves/events/{artifacts['encrypted_event_id']}",
                          params={"tenant_id": artifacts["tenant_id"], "store_id": artifacts["store_id"]},
                          headers=ADMIN, timeout=10).json()
    fields = EventSigningFields.from_envelope(served)
    for recipient in artifacts["recipients"]:
        salt, canonical = ves_enc.open_sealed(served["payload_encrypted"], fields, recipient["recipient_kid"],
                                              bytes.fromhex(recipient["private_key_hex"]))
        assert json.loads(canonical) == artifacts["payload"]
        assert payload_plain_hash_salted(artifacts["payload"], salt) == fields.payload_plain_hash
    wrong = bytes(32)
    with pytest.raises(ValueError):
        ves_enc.open_sealed(served["payload_encrypted"], fields, artifacts["recipients"][0]["recipient_kid"], wrong)


def test_the_pending_list_cannot_rot(server, tmp_path):
    """A listed check that passes ("fixed"), a listed id never checked, and a failing check no longer listed all
    fail the run."""
    tenant = str(uuid.uuid4())
    key = requests.post(f"{server.url}/api/v1/admin/api-keys", json={"tenant_id": tenant, "permissions": "read_write"},
                        headers=ADMIN, timeout=10).json()["api_key"]
    pending = tmp_path / "pending.json"
    pending.write_text(json.dumps({"pending": [*PENDING, "head.fields", "no.such.check"]}))
    completed = subprocess.run(
        [node(), str(HERE / "client.mjs"), "--base-url", server.url, "--admin-key", BOOTSTRAP_KEY, "--api-key", key,
         "--tenant", tenant, "--pending", str(pending)], capture_output=True, text=True, timeout=120)
    status = {line["check"]: line["status"] for line in map(json.loads, completed.stdout.splitlines()) if "check" in line}
    assert completed.returncode == 1
    assert (status["head.fields"], status["no.such.check"]) == ("fixed", "fail")


def test_a_check_that_fails_and_is_not_listed_fails_the_run(server):
    """A failing check that is not listed as pending fails the run: here the client is given a tenant its key does
    not belong to, so registering the agent key is refused and the flow stops."""
    tenant = str(uuid.uuid4())
    key = requests.post(f"{server.url}/api/v1/admin/api-keys", json={"tenant_id": tenant, "permissions": "read_write"},
                        headers=ADMIN, timeout=10).json()["api_key"]
    completed = subprocess.run(
        [node(), str(HERE / "client.mjs"), "--base-url", server.url, "--admin-key", BOOTSTRAP_KEY, "--api-key", key,
         "--tenant", "not-the-keys-tenant"], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 1
    summary = next(json.loads(line)["summary"] for line in completed.stdout.splitlines() if '"summary"' in line)
    assert summary["fail"] >= 1 or summary["aborted"]
