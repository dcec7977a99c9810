"""Steady ingest through the real HTTP API by client threads that behave as the SDK advises: each batch of signed
events is retried with the same events (same event ids, same signatures) after a 503 or a connection error, until
it gets its receipts. Every attempt and every receipt is recorded, so a test can check afterwards what clients saw
and that every receipt they hold is in the database."""

from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import dataclass
from dataclasses import field

import requests

from app.client.signer import AgentSigner

RETRYABLE_CODES = {"DATABASE_UNAVAILABLE", "DATABASE_BUSY", "DATABASE_TIMEOUT", "STREAM_BUSY"}


@dataclass(frozen=True)
class Attempt:
    """One HTTP request: monotonic start and end, and what came back (`200`, `503 DATABASE_UNAVAILABLE`,
    `ConnectionError`, ...)."""

    started: float
    ended: float
    outcome: str
    new_receipts: int = 0
    """How many of the answer's receipts were new (not `duplicate: true` replays of an earlier commit)."""


@dataclass(frozen=True)
class HeldReceipt:
    sequence_number: int
    receipt_hash: str


def register_signer(base_url: str, admin_headers: dict, tenant_id: uuid.UUID) -> tuple[AgentSigner, uuid.UUID]:
    agent_id = uuid.uuid4()
    signer = AgentSigner(os.urandom(32), tenant_id, agent_id, 1)
    response = requests.post(f"{base_url}/api/v1/agents/keys", headers=admin_headers, timeout=30, json={
        "tenant_id": str(tenant_id), "agent_id": str(agent_id), "key_id": 1, "public_key": signer.public_key_hex})
    assert response.status_code == 200, response.text
    return signer, agent_id


@dataclass
class StreamWriter:
    """A client thread appending batches of `batch_size` signed events to one stream until `stop()`; the batch in
    flight when `stop()` is called is still retried to completion (bounded by `finish_within` seconds)."""

    base_url: str
    headers: dict
    tenant_id: uuid.UUID
    signer: AgentSigner
    agent_id: uuid.UUID
    batch_size: int = 5
    request_timeout: float = 30.0
    retry_pause: float = 0.1
    finish_within: float = 60.0
    store_id: uuid.UUID = field(default_factory=uuid.uuid4)
    receipts: dict[str, HeldReceipt] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    batches_done: int = 0

    def __post_init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"writer-{self.store_id}", daemon=True)
        self._session = requests.Session()
        self._counter = 0

    def start(self) -> "StreamWriter":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"writer for {self.store_id} did not finish"

    def deliver(self, batches: int) -> None:
        """Deliver `batches` new batches in the calling thread (instead of `start()`), each until receipted."""
        for _ in range(batches):
            self._deliver(self._next_batch())

    def successes_after(self, moment: float) -> list[Attempt]:
        """Requests sent at or after `moment` that got receipts for new events (writes acknowledged then)."""
        return [a for a in list(self.attempts) if a.outcome == "200" and a.new_receipts and a.started >= moment]

    def _next_batch(self) -> list[dict]:
        batch = []
        for _ in range(self.batch_size):
            self._counter += 1
            batch.append(self.signer.build_event(self.store_id, "order", f"order-{self._counter % 7}",
                                                 "order.updated", {"n": self._counter}))
        return batch

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._deliver(self._next_batch())
        except Exception as error:  # noqa: BLE001 - reported through `unexpected`
            self.unexpected.append(f"writer crashed: {error!r}")

    def _deliver(self, batch: list[dict]) -> None:
        """Send `batch` until it is receipted; a stop request only bounds how long that may still take."""
        deadline = None
        while True:
            if self._stop.is_set() and deadline is None:
                deadline = time.monotonic() + self.finish_within
            if deadline is not None and time.monotonic() > deadline:
                self.unexpected.append(f"batch not receipted within {self.finish_within}s after stop")
                return
            started = time.monotonic()
            try:
                response = self._session.post(f"{self.base_url}/api/v1/ves/events/ingest", headers=self.headers,
                                              json={"agentId": str(self.agent_id), "events": batch},
                                              timeout=self.request_timeout)
            except requests.ConnectionError:
                self.attempts.append(Attempt(started, time.monotonic(), "ConnectionError"))
                self._session = requests.Session()
                time.sleep(self.retry_pause)
                continue
            except requests.RequestException as error:
                self.attempts.append(Attempt(started, time.monotonic(), type(error).__name__))
                self.unexpected.append(f"{type(error).__name__}: {error}")
                time.sleep(self.retry_pause)
                continue
            ended = time.monotonic()
            if response.status_code == 200:
                body = response.json()
                fresh = sum(1 for receipt in body.get("receipts", []) if not receipt.get("duplicate"))
                self.attempts.append(Attempt(started, ended, "200", fresh))
                self._record(batch, body)
                self.batches_done += 1
                return
            code = _error_code(response)
            self.attempts.append(Attempt(started, ended, f"{response.status_code} {code}"))
            if response.status_code != 503 or code not in RETRYABLE_CODES:
                self.unexpected.append(f"HTTP {response.status_code} {code}: {response.text[:300]}")
            time.sleep(self.retry_pause)

    def _record(self, batch: list[dict], body: dict) -> None:
        receipts = body.get("receipts", [])
        if body.get("eventsRejected") or len(receipts) != len(batch):
            self.unexpected.append(f"batch not fully receipted: {body}")
        for event, receipt in zip(batch, receipts):
            event_id = receipt["eventId"]
            if event_id != str(event["event_id"]):
                self.unexpected.append(f"receipt for {event_id} answers another event")
            held = HeldReceipt(receipt["sequenceNumber"], receipt["receiptHash"])
            earlier = self.receipts.setdefault(event_id, held)
            if earlier != held:
                self.unexpected.append(f"event {event_id} receipted twice differently: {earlier} then {held}")


def _error_code(response: requests.Response) -> str:
    try:
        return str(response.json().get("code"))
    except ValueError:
        return "non-JSON body"
