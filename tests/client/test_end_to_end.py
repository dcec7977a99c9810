"""The SDK and ves-verify against a real gunicorn (2 workers) on the test database, through real HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from app.client import AgentSigner
from app.client import SequencerAPIError
from app.client import SequencerClient
from app.ves import public_key_from_seed
from tests.support.servers import start_gunicorn

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ADMIN_KEY = "e2e-sdk-admin-key-0123456789abcdef"
SEQUENCER_SEED = bytes([7]) * 32


@pytest.fixture(scope="module")
def server(database_url):
    env = {"BOOTSTRAP_ADMIN_API_KEY": ADMIN_KEY, "VES_SEQUENCER_SIGNING_KEY": SEQUENCER_SEED.hex(),
           "LONG_POLL_MAX_SECONDS": "5"}
    with start_gunicorn(database_url, env=env, workers=2) as running:
        yield running


@pytest.fixture
def sdk(server) -> SequencerClient:
    return SequencerClient(server.url, ADMIN_KEY, timeout=10)


def new_signer() -> AgentSigner:
    return AgentSigner(uuid.uuid4().bytes * 2, uuid.uuid4(), uuid.uuid4(), 1)


def test_register_ingest_read_commit_prove_export_verify(sdk, server, tmp_path):
    signer, store = new_signer(), str(uuid.uuid4())
    assert sdk.sequencer_info()["public_key"] == public_key_from_seed(SEQUENCER_SEED).hex()
    sdk.register_signer(signer)
    assert sdk.register_signer(signer)["public_key"] == signer.public_key_hex.removeprefix("0x")
    events = [
        signer.build_event(store, "order", f"o-{i % 2}", "OrderPlaced", {"total": i, "note": "café"},
                           ves_version=1 + i % 2, command_id=uuid.uuid4() if i % 2 else None)
        for i in range(5)
    ]
    result = sdk.ingest(events, signer.agent_id, batch_size=2)
    assert (result.events_accepted, result.events_rejected, result.sequence_numbers) == (5, 0, [1, 2, 3, 4, 5])
    assert len(result.batch_ids) == 3
    assert all(sdk.verify_receipt(receipt, event) for receipt, event in zip(result.receipts, events))
    assert not sdk.verify_receipt(result.receipts[0], events[1])

    replay = sdk.ingest(events[:2], signer.agent_id)
    assert (replay.sequence_numbers, replay.duplicates) == ([1, 2], 2)

    unsigned = sdk.ingest_unsigned([{"event_id": str(uuid.uuid4()), "tenant_id": signer.tenant_id,
                                     "store_id": store, "entity_type": "note", "entity_id": "n",
                                     "event_type": "NoteAdded", "payload": {"n": 1}}], signer.agent_id)
    assert unsigned.sequence_numbers == [6]
    assert sdk.head(signer.tenant_id, store) == 6

    served = list(sdk.iter_events(signer.tenant_id, store, page_size=4))
    assert [event["sequence_number"] for event in served] == [1, 2, 3, 4, 5, 6]
    assert all(sdk.verify_receipt(event["sequencer_receipt"], event) for event in served)

    first = sdk.create_commitment(signer.tenant_id, store, sequence_start=1, sequence_end=4)
    second = sdk.create_commitment(signer.tenant_id, store)
    assert (second["sequence_start"], second["sequence_end"]) == (5, 6)
    assert [c["batch_id"] for c in sdk.commitments(signer.tenant_id, store)] == [first["batch_id"],
                                                                                 second["batch_id"]]
    for event in served:
        commitment = first if event["sequence_number"] <= 4 else second
        proof = sdk.proof(signer.tenant_id, store, event["sequence_number"])
        assert sdk.verify_proof_locally(proof, commitment, event)
        assert not sdk.verify_proof_locally(proof, commitment, served[event["sequence_number"] % 6])

    bundle_path = tmp_path / "bundle.json"
    source = ["--url", server.url, "--api-key", ADMIN_KEY, "--tenant", signer.tenant_id, "--store", store]
    exported = subprocess.run([sys.executable, "-m", "app.verify.cli", "export", *source, "-o", str(bundle_path)],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert exported.returncode == 0, exported.stderr
    bundle = json.loads(bundle_path.read_text())
    assert len(bundle["events"]) == 6 and len(bundle["commitments"]) == 2
    verified = subprocess.run([sys.executable, "-m", "app.verify.cli", "verify", "--bundle", str(bundle_path)],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (verified.returncode, verified.stdout.strip()) == (0, "verified 6 events in 2 commitments"), \
        verified.stdout + verified.stderr


def test_follow_long_polls_until_an_event_arrives(sdk):
    signer, store = new_signer(), str(uuid.uuid4())
    sdk.register_signer(signer)
    received = []
    follower = SequencerClient(sdk.base_url, ADMIN_KEY, timeout=10)

    def consume():
        for event in follower.follow(signer.tenant_id, store, wait=4):
            received.append((event["sequence_number"], time.monotonic()))
            return

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    time.sleep(0.5)
    sent_at = time.monotonic()
    sdk.ingest([signer.build_event(store, "e", "1", "Happened", {})], signer.agent_id)
    thread.join(timeout=8)
    assert [number for number, _ in received] == [1]
    assert received[0][1] - sent_at < 2.0


def test_errors_carry_status_code_and_request_id(sdk, server):
    with pytest.raises(SequencerAPIError) as caught:
        SequencerClient(server.url, "not-a-key", retries=0).head(uuid.uuid4(), uuid.uuid4())
    assert caught.value.status == 401 and caught.value.request_id
    signer = new_signer()
    sdk.register_signer(signer)
    with pytest.raises(SequencerAPIError) as caught:
        sdk.register_agent_key(signer.tenant_id, signer.agent_id, 1, bytes(range(32)))
    assert caught.value.status == 409


class LosingProxy:
    """Forwards to the real server but drops the response of the first `lose` ingest requests with a 502, as a
    load balancer does when the upstream answer is lost after the commit."""

    def __init__(self, upstream: str, lose: int):
        self.lose = lose
        self.forwarded = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _proxy(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")}
                upstream_response = requests.request(self.command, upstream + self.path, data=body, headers=headers,
                                                     timeout=30)
                owner.forwarded += 1
                if self.path.startswith("/api/v1/ves/events/ingest") and owner.lose > 0:
                    owner.lose -= 1
                    status, data = 502, b'{"error": "upstream response lost", "code": "BAD_GATEWAY"}'
                else:
                    status, data = upstream_response.status_code, upstream_response.content
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _proxy

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_lost_response_is_retried_without_sequencing_twice(sdk, server):
    signer, store = new_signer(), str(uuid.uuid4())
    sdk.register_signer(signer)
    proxy = LosingProxy(server.url, lose=2)
    try:
        client = SequencerClient(proxy.url, ADMIN_KEY, sleep=lambda seconds: None)
        events = [signer.build_event(store, "e", str(i), "Happened", {"i": i}) for i in range(3)]
        result = client.ingest(events, signer.agent_id, retries=3)
    finally:
        proxy.close()
    assert proxy.forwarded == 3
    assert (result.sequence_numbers, result.duplicates) == ([1, 2, 3], 3)
    assert sdk.head(signer.tenant_id, store) == 3
