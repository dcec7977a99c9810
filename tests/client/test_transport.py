"""SequencerClient's transport against a scripted loopback HTTP server: retries, Retry-After, error mapping.

The server answers each request with the next scripted response and records what it received, so the tests see
exactly what the client sent on every attempt.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

import pytest

from app.client import SequencerAPIError
from app.client import SequencerClient


class ScriptedServer:
    def __init__(self, script: list[tuple[int, dict, object]]):
        self.script = list(script)
        self.received: list[dict] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                owner.received.append({"method": self.command, "path": self.path,
                                       "auth": self.headers.get("Authorization"),
                                       "body": json.loads(body) if body else None})
                status, headers, payload = owner.script.pop(0)
                data = json.dumps(payload).encode() if payload is not None else b"not json"
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def ingest_answer(first: int, count: int, duplicate: bool = False) -> dict:
    return {"batchId": f"b{first}", "eventsAccepted": count, "eventsRejected": 0, "headSequence": first + count - 1,
            "rejections": [], "receipts": [{"sequenceNumber": first + i, "duplicate": duplicate}
                                           for i in range(count)]}


def make_client(url: str, slept: list[float], **kwargs) -> SequencerClient:
    return SequencerClient(url, "secret-key", sleep=slept.append, backoff=0.5, timeout=5, **kwargs)


def test_ingest_resends_the_same_events_after_5xx_and_429_honouring_retry_after():
    events = [{"event_id": f"e{i}"} for i in range(3)]
    script = [
        (503, {"Retry-After": "1"}, {"error": "db down", "code": "DATABASE_UNAVAILABLE", "request_id": "r1"}),
        (429, {"Retry-After": "7"}, {"error": "slow down", "code": "RATE_LIMITED", "request_id": "r2"}),
        (500, {}, None),
        (200, {}, ingest_answer(1, 2, duplicate=True)),
        (200, {}, ingest_answer(3, 1)),
    ]
    slept = []
    with ScriptedServer(script) as server:
        result = make_client(server.url, slept).ingest(events, "agent-1", batch_size=2, retries=3)
    assert slept == [1.0, 7.0, 2.0]
    bodies = [request["body"] for request in server.received]
    assert bodies[:4] == [{"agentId": "agent-1", "events": events[:2]}] * 4
    assert bodies[4] == {"agentId": "agent-1", "events": events[2:]}
    assert all(request["auth"] == "ApiKey secret-key" for request in server.received)
    assert (result.events_accepted, result.duplicates, result.sequence_numbers) == (3, 2, [1, 2, 3])
    assert (result.batch_ids, result.head_sequence) == (["b1", "b3"], 3)


def test_a_4xx_is_raised_at_once_with_the_servers_code_and_request_id():
    script = [(409, {"X-Request-ID": "hdr"}, {"error": "Key differs", "code": "CONFLICT", "request_id": "rq-9"})]
    slept = []
    with ScriptedServer(script) as server:
        with pytest.raises(SequencerAPIError) as caught:
            make_client(server.url, slept).register_agent_key("t", "a", 1, b"\x01" * 32)
    error = caught.value
    assert (error.status, error.code, error.message, error.request_id) == (409, "CONFLICT", "Key differs", "rq-9")
    assert slept == [] and len(server.received) == 1
    assert server.received[0]["body"]["publicKey"] == "0x" + "01" * 32


def test_retries_run_out_with_the_last_error():
    script = [(503, {}, {"error": "down", "code": "DATABASE_UNAVAILABLE", "request_id": "x"})] * 3
    slept = []
    with ScriptedServer(script) as server:
        with pytest.raises(SequencerAPIError) as caught:
            make_client(server.url, slept, retries=2).head("t", "s")
    assert caught.value.status == 503 and caught.value.retryable
    assert slept == [0.5, 1.0]


def test_a_non_json_error_body_still_maps_to_an_error():
    with ScriptedServer([(404, {"X-Request-ID": "abc"}, None)]) as server:
        with pytest.raises(SequencerAPIError) as caught:
            make_client(server.url, []).commitment("nope")
    assert (caught.value.status, caught.value.code, caught.value.request_id) == (404, "HTTP_ERROR", "abc")


def test_an_unranged_commitment_is_never_retried():
    with ScriptedServer([(503, {}, {"error": "down", "code": "X", "request_id": "r"})]) as server:
        with pytest.raises(SequencerAPIError):
            make_client(server.url, []).create_commitment("t", "s")
    assert len(server.received) == 1


def test_connection_refused_is_status_0_after_retries():
    slept = []
    with ScriptedServer([]) as server:
        url = server.url
    with pytest.raises(SequencerAPIError) as caught:
        make_client(url, slept, retries=1).sequencer_info()
    assert (caught.value.status, caught.value.code) == (0, "CONNECTION_FAILED")
    assert slept == [0.5]


def test_iter_events_pages_by_next_from_and_stops_at_to():
    page = lambda numbers, next_from: (200, {}, {"events": [{"sequence_number": n} for n in numbers],  # noqa: E731
                                                 "count": len(numbers), "head_sequence": 9, "next_from": next_from})
    with ScriptedServer([page([1, 2], 3), page([3, 4], 5), page([5], 6)]) as server:
        numbers = [e["sequence_number"] for e in make_client(server.url, []).iter_events("t", "s", to=5,
                                                                                          page_size=2)]
    assert numbers == [1, 2, 3, 4, 5]
    assert [r["path"].split("?")[1] for r in server.received] == [
        "tenant_id=t&store_id=s&from=1&limit=2", "tenant_id=t&store_id=s&from=3&limit=2",
        "tenant_id=t&store_id=s&from=5&limit=1"]


def test_follow_sleeps_retry_after_when_the_server_had_no_long_poll_slot():
    empty = {"events": [], "count": 0, "head_sequence": 0, "next_from": 1}
    event = {"sequence_number": 1, "event_id": "e1"}
    page = {"events": [event], "count": 1, "head_sequence": 1, "next_from": 2}
    slept = []
    with ScriptedServer([(200, {"Retry-After": "1"}, empty), (200, {}, page)]) as server:
        client = SequencerClient(server.url, "k", sleep=slept.append)
        followed = client.follow("11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222",
                                 wait=5)
        assert next(followed) == event
    assert slept == [1.0]
    assert [r["path"].count("wait=5") for r in server.received] == [1, 1]


def test_min_sequence_is_sent_on_every_page_and_on_head_only_when_given():
    page = {"events": [{"sequence_number": 4}], "count": 1, "head_sequence": 4, "next_from": 5}
    empty = {"events": [], "count": 0, "head_sequence": 4, "next_from": 5}
    script = [(200, {}, page), (200, {}, empty), (200, {}, {"head_sequence": 4}), (200, {}, {"head_sequence": 4})]
    with ScriptedServer(script) as server:
        client = make_client(server.url, [])
        assert [e["sequence_number"] for e in client.iter_events("t", "s", from_=4, min_sequence=4)] == [4]
        assert client.head("t", "s", min_sequence=4) == 4 and client.head("t", "s") == 4
    queries = [r["path"].split("?")[1] for r in server.received]
    assert queries == ["tenant_id=t&store_id=s&from=4&limit=1000&min_sequence=4",
                       "tenant_id=t&store_id=s&from=5&limit=1000&min_sequence=4",
                       "tenant_id=t&store_id=s&min_sequence=4", "tenant_id=t&store_id=s"]
