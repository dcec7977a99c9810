"""`SequencerClient`: the HTTP API of API.md over `requests`, with safe retries and local verification."""

from __future__ import annotations

import dataclasses
import email.utils
import time
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence

import requests

from app.client.errors import SequencerAPIError
from app.client.log import VerifiedCheckpoint
from app.client.log import check_consistency
from app.client.log import check_inclusion
from app.client.log import expected_verifier_key
from app.client.log import open_log_checkpoint
from app.client.wire import event_leaf_hash
from app.client.wire import field
from app.client.wire import proof_is_valid
from app.client.wire import receipt_is_valid
from app.client.wire import receipt_keys
from app.ves import parse_hex
from app.ves import to_hex

DEFAULT_TIMEOUT = 10.0
MAX_RETRY_AFTER = 30.0


@dataclasses.dataclass
class IngestResult:
    """The outcome of `ingest`/`ingest_unsigned` over all batches, in the order the events were given.

    `receipts` hold one receipt per accepted event (a replay of an already sequenced event is accepted again with
    `duplicate: true` and its original number); `rejections` one entry per rejected event.
    """

    events_accepted: int = 0
    events_rejected: int = 0
    receipts: list[dict] = dataclasses.field(default_factory=list)
    rejections: list[dict] = dataclasses.field(default_factory=list)
    batch_ids: list[str] = dataclasses.field(default_factory=list)
    head_sequence: int | None = None
    attempts: int = 0

    @property
    def sequence_numbers(self) -> list[int]:
        return [field(receipt, "sequence_number") for receipt in self.receipts]

    @property
    def duplicates(self) -> int:
        return sum(1 for receipt in self.receipts if receipt.get("duplicate"))

    def add(self, response: Mapping) -> None:
        self.events_accepted += field(response, "events_accepted", 0)
        self.events_rejected += field(response, "events_rejected", 0)
        self.receipts.extend(field(response, "receipts", []))
        self.rejections.extend(field(response, "rejections", []))
        batch_id = field(response, "batch_id")
        if batch_id is not None:
            self.batch_ids.append(batch_id)
        head = field(response, "head_sequence")
        if head is not None:
            self.head_sequence = head


class SequencerClient:
    """A client for one sequencer at `base_url`, authenticated with `Authorization: ApiKey <api_key>`.

    Safe to share across threads only with a session that is. GETs and idempotent POSTs are retried `retries` times
    on connection errors, 5xx and 429 (honouring `Retry-After`, capped at 30 s); `sleep` is injectable for tests.
    Every error is a `SequencerAPIError`.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        session: requests.Session | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 3,
        backoff: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.session = session or requests.Session()
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self._sequencer_info: dict | None = None

    # transport

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping | None = None,
        json: object = None,
        retries: int | None = None,
        read_timeout: float | None = None,
        expect_empty: bool = False,
        keep_retry_after: bool = False,
        raw: bool = False,
    ) -> dict | requests.Response | None:
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"ApiKey {self.api_key}"
        query = {key: value for key, value in (params or {}).items() if value is not None}
        attempts = 1 + (self.retries if retries is None else retries)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = self.session.request(
                    method,
                    self.base_url + path,
                    params=query,
                    json=json,
                    headers=headers,
                    timeout=(self.timeout, read_timeout or self.timeout),
                )
            except requests.RequestException as error:
                if last:
                    raise SequencerAPIError(0, "CONNECTION_FAILED", f"No response from the sequencer ({error})")
                self._sleep(self.backoff * 2**attempt)
                continue
            if response.status_code < 400:
                if raw:
                    return response
                if expect_empty or response.status_code == 204:
                    return None
                body = response.json()
                if keep_retry_after and "Retry-After" in response.headers:
                    body["retry_after"] = _retry_delay(response, 1.0)
                return body
            error = _api_error(response)
            if last or not error.retryable:
                raise error
            self._sleep(_retry_delay(response, self.backoff * 2**attempt))
        raise AssertionError("unreachable: the last attempt returns or raises")

    # sequencer and keys

    def sequencer_info(self, refresh: bool = False) -> dict:
        """`GET /api/v1/ves/sequencer` → `{sequencer_id, signature_alg, public_key, key_version, keys}`; cached after
        the first call."""
        if self._sequencer_info is None or refresh:
            self._sequencer_info = self._request("GET", "/api/v1/ves/sequencer")
        return self._sequencer_info

    def sequencer_public_key(self) -> bytes | None:
        """The sequencer's 32-byte receipt key, or None when it signs nothing (`signature_alg` "none")."""
        info = self.sequencer_info()
        if info.get("signature_alg") != "ed25519":
            return None
        return parse_hex(info["public_key"], 32, "public_key")

    def register_agent_key(
        self,
        tenant_id: uuid.UUID | str,
        agent_id: uuid.UUID | str,
        key_id: int,
        public_key: bytes | str,
        valid_from: str | None = None,
        valid_to: str | None = None,
    ) -> dict:
        """`POST /api/v1/agents/keys`; re-registering the same key is idempotent, another key for the slot is 409."""
        body = {
            "tenantId": str(tenant_id),
            "agentId": str(agent_id),
            "keyId": key_id,
            "publicKey": to_hex(public_key) if isinstance(public_key, (bytes, bytearray)) else public_key,
        }
        if valid_from is not None:
            body["validFrom"] = valid_from
        if valid_to is not None:
            body["validTo"] = valid_to
        return self._request("POST", "/api/v1/agents/keys", json=body)

    def register_signer(self, signer, valid_from: str | None = None, valid_to: str | None = None) -> dict:
        """Register an `AgentSigner`'s public key under its own `(tenant_id, agent_id, key_id)`."""
        return self.register_agent_key(
            signer.tenant_id, signer.agent_id, signer.key_id, signer.public_key, valid_from, valid_to
        )

    def agent_keys(self, tenant_id: uuid.UUID | str, agent_id: uuid.UUID | str | None = None) -> list[dict]:
        """`GET /api/v1/agents/keys` → the tenant's registered keys (revoked ones included)."""
        params = {"tenant_id": str(tenant_id), "agent_id": str(agent_id) if agent_id else None}
        return self._request("GET", "/api/v1/agents/keys", params=params)["keys"]

    def revoke_agent_key(self, tenant_id: uuid.UUID | str, agent_id: uuid.UUID | str, key_id: int) -> None:
        """`DELETE /api/v1/agents/keys/{agent_id}/{key_id}`: events signed with it are rejected from then on."""
        self._request(
            "DELETE", f"/api/v1/agents/keys/{agent_id}/{key_id}", params={"tenant_id": str(tenant_id)},
            expect_empty=True,
        )

    # ingest

    def ingest(
        self, events: Sequence[Mapping], agent_id: uuid.UUID | str, batch_size: int = 100, retries: int = 3
    ) -> IngestResult:
        """`POST /api/v1/ves/events/ingest` in batches of `batch_size` signed envelopes.

        A failed attempt resends the SAME signed events, so a batch the server committed before the response was
        lost comes back as `duplicate: true` receipts with the original numbers: no event is sequenced twice.
        Raises SequencerAPIError for a 4xx (other than 429) or when every retry failed; earlier batches stay
        committed.
        """
        return self._ingest_batches("/api/v1/ves/events/ingest", "agentId", events, agent_id, batch_size, retries)

    def ingest_unsigned(
        self, events: Sequence[Mapping], agent_id: uuid.UUID | str, batch_size: int = 100, retries: int = 3
    ) -> IngestResult:
        """`POST /api/v1/events/ingest`: events without signatures (`event_id`, `tenant_id`, `store_id`,
        `entity_type`, `entity_id`, `event_type`, `payload`, optional `created_at`, `command_id`,
        `base_version`). Retries are safe for the same reason as `ingest`: each event carries its `event_id`."""
        for event in events:
            if "event_id" not in event:
                raise ValueError("Every unsigned event needs an event_id so that retries are idempotent")
        return self._ingest_batches("/api/v1/events/ingest", "agent_id", events, agent_id, batch_size, retries)

    def _ingest_batches(self, path, agent_key, events, agent_id, batch_size, retries) -> IngestResult:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        result = IngestResult()
        for start in range(0, len(events), batch_size):
            body = {agent_key: str(agent_id), "events": list(events[start : start + batch_size])}
            result.add(self._request("POST", path, json=body, retries=retries))
        return result

    # reads

    def events(
        self,
        tenant_id: uuid.UUID | str,
        store_id: uuid.UUID | str,
        from_: int = 1,
        limit: int = 100,
        wait: float | None = None,
        min_sequence: int | None = None,
    ) -> dict:
        """One page of `GET /api/v1/ves/events`: `{events, count, head_sequence, next_from}`, ascending.

        With `wait` (seconds) an empty page is held open until an event arrives (long poll). When the server had no
        free long-poll slot it answers at once, and the page also has `retry_after` (seconds to wait first).
        `min_sequence` (your last receipt's number, or the highest head you were shown): the page's view of the
        stream reaches at least that far, and a server with a read replica may answer from it without asking the
        primary (docs/DEPLOYMENT.md, "Read replicas"); without it, at least as far as the primary's head.
        """
        params = {"tenant_id": str(tenant_id), "store_id": str(store_id), "from": from_, "limit": limit,
                  "min_sequence": min_sequence}
        if wait is not None:
            params["wait"] = wait
        read_timeout = self.timeout + wait if wait else None
        return self._request("GET", "/api/v1/ves/events", params=params, read_timeout=read_timeout,
                             keep_retry_after=True)

    def iter_events(
        self,
        tenant_id: uuid.UUID | str,
        store_id: uuid.UUID | str,
        from_: int = 1,
        to: int | None = None,
        page_size: int = 1000,
        min_sequence: int | None = None,
    ) -> Iterator[dict]:
        """Every event from `from_` up to `to` (inclusive; default: the head when the last page is read), each page
        with `min_sequence` (see `events`)."""
        position = from_
        while to is None or position <= to:
            limit = page_size if to is None else min(page_size, to - position + 1)
            page = self.events(tenant_id, store_id, from_=position, limit=limit, min_sequence=min_sequence)
            if not page["events"]:
                return
            yield from page["events"]
            position = _next_position(page, position)

    def follow(
        self,
        tenant_id: uuid.UUID | str,
        store_id: uuid.UUID | str,
        from_: int = 1,
        wait: float = 20.0,
        limit: int = 100,
    ) -> Iterator[dict]:
        """Yield events from `from_` forever, long polling with `wait` seconds while the stream is idle (sleeping
        `Retry-After` first when the server had no free long-poll slot)."""
        position = from_
        while True:
            page = self.events(tenant_id, store_id, from_=position, limit=limit, wait=wait)
            yield from page["events"]
            position = _next_position(page, position)
            if not page["events"] and page.get("retry_after"):
                self._sleep(page["retry_after"])

    def event(self, tenant_id: uuid.UUID | str, store_id: uuid.UUID | str, event_id: uuid.UUID | str) -> dict:
        """`GET /api/v1/ves/events/{event_id}`: one event with its receipt."""
        params = {"tenant_id": str(tenant_id), "store_id": str(store_id)}
        return self._request("GET", f"/api/v1/ves/events/{event_id}", params=params)

    def head(self, tenant_id: uuid.UUID | str, store_id: uuid.UUID | str, min_sequence: int | None = None) -> int:
        """`GET /api/v1/ves/head` → the stream's last sequence number (0 when empty); with `min_sequence` (see
        `events`) at least that, possibly from the server's read replica."""
        params = {"tenant_id": str(tenant_id), "store_id": str(store_id), "min_sequence": min_sequence}
        return self._request("GET", "/api/v1/ves/head", params=params)["head_sequence"]

    # commitments and proofs

    def create_commitment(
        self,
        tenant_id: uuid.UUID | str,
        store_id: uuid.UUID | str,
        sequence_start: int | None = None,
        sequence_end: int | None = None,
        max_events: int | None = None,
    ) -> dict:
        """`POST /api/v1/ves/commitments`. Not retried without an explicit range: a retry could commit the next one."""
        body = {"tenant_id": str(tenant_id), "store_id": str(store_id)}
        for name, value in (("sequence_start", sequence_start), ("sequence_end", sequence_end),
                            ("max_events", max_events)):
            if value is not None:
                body[name] = value
        explicit_range = sequence_start is not None and sequence_end is not None
        return self._request("POST", "/api/v1/ves/commitments", json=body, retries=None if explicit_range else 0)

    def commitments(
        self, tenant_id: uuid.UUID | str, store_id: uuid.UUID | str, anchored: bool | None = None
    ) -> list[dict]:
        """`GET /api/v1/ves/commitments` → the stream's commitments."""
        params = {"tenant_id": str(tenant_id), "store_id": str(store_id)}
        if anchored is not None:
            params["anchored"] = "true" if anchored else "false"
        return self._request("GET", "/api/v1/ves/commitments", params=params)["commitments"]

    def commitment(self, batch_id: uuid.UUID | str) -> dict:
        """`GET /api/v1/ves/commitments/{batch_id}`, with its anchoring fields."""
        return self._request("GET", f"/api/v1/ves/commitments/{batch_id}")

    def proof(
        self,
        tenant_id: uuid.UUID | str,
        store_id: uuid.UUID | str,
        sequence_number: int,
        batch_id: uuid.UUID | str | None = None,
    ) -> dict:
        """`GET /api/v1/ves/proofs/{n}`: `{sequence_number, batch_id, merkle_root, leaf_hash, leaf_index,
        proof_path, directions}`; 404 (SequencerAPIError) while no commitment covers `n`."""
        params = {"tenant_id": str(tenant_id), "store_id": str(store_id),
                  "batch_id": str(batch_id) if batch_id else None}
        return self._request("GET", f"/api/v1/ves/proofs/{sequence_number}", params=params)

    # transparency log (LOG.md): every answer is verified before it is returned

    def log_verifier_key(self, tenant_id: uuid.UUID | str, store_id: uuid.UUID | str,
                         log_public_key: bytes | None = None) -> str:
        """The verifier key the stream's checkpoints must carry: from `log_public_key` (pinned) or the sequencer's
        published `log_public_key`, under its `log_origin`."""
        info = self.sequencer_info()
        key = log_public_key if log_public_key is not None else parse_hex(info.get("log_public_key") or "", 32,
                                                                          "log_public_key")
        return expected_verifier_key(info["log_origin"], key, tenant_id, store_id)

    def log_checkpoint_note(self, tenant_id: uuid.UUID | str, store_id: uuid.UUID | str) -> tuple[bytes, str]:
        """`GET /api/v1/ves/log/checkpoint` as served, unverified: `(signed note, X-Log-Vkey)`."""
        response = self._request("GET", "/api/v1/ves/log/checkpoint", raw=True,
                                 params={"tenant_id": str(tenant_id), "store_id": str(store_id)})
        return response.content, response.headers.get("X-Log-Vkey", "")

    def log_checkpoint(self, tenant_id: uuid.UUID | str, store_id: uuid.UUID | str,
                       verifier_key: str | None = None) -> VerifiedCheckpoint:
        """`GET /api/v1/ves/log/checkpoint`, verified: the signature under `verifier_key` (default:
        `log_verifier_key`), and the served `X-Log-Vkey` must be that key. Raises LogVerificationError."""
        expected = verifier_key or self.log_verifier_key(tenant_id, store_id)
        note, served_key = self.log_checkpoint_note(tenant_id, store_id)
        return open_log_checkpoint(note, served_key, expected)

    def log_inclusion_proof(self, tenant_id: uuid.UUID | str, store_id: uuid.UUID | str, sequence_number: int,
                            tree_size: int | None = None) -> dict:
        """`GET /api/v1/ves/log/inclusion/{n}` as served, unverified (see `log_inclusion`)."""
        return self._request("GET", f"/api/v1/ves/log/inclusion/{sequence_number}", params={
            "tenant_id": str(tenant_id), "store_id": str(store_id), "tree_size": tree_size})

    def public_log_checkpoint(self, stream_id_hex: str, verifier_key: str) -> VerifiedCheckpoint:
        """`GET /api/v1/ves/log/public/{stream_id}/checkpoint` (LOG_PUBLIC=1; no key needed), verified under
        `verifier_key`."""
        response = self._request("GET", f"/api/v1/ves/log/public/{stream_id_hex}/checkpoint", raw=True)
        return open_log_checkpoint(response.content, response.headers.get("X-Log-Vkey", ""), verifier_key)

    def log_inclusion(self, tenant_id: uuid.UUID | str, store_id: uuid.UUID | str, sequence_number: int,
                      checkpoint: VerifiedCheckpoint, entry: bytes | None = None) -> dict:
        """`GET /api/v1/ves/log/inclusion/{n}` at the checkpoint's size, verified against its root (and, with
        `entry`, that the proven entry is that VES leaf hash). Returns the proof body."""
        body = self.log_inclusion_proof(tenant_id, store_id, sequence_number, checkpoint.tree_size)
        check_inclusion(body, sequence_number, checkpoint, entry)
        return body

    def verify_event_in_log(self, event: Mapping, checkpoint: VerifiedCheckpoint) -> dict:
        """The event (as served by the read API) is entry `sequence_number - 1` of the signed log: its VES leaf
        hash is computed here and proven against `checkpoint`."""
        tenant_id, store_id = event["tenant_id"], event["store_id"]
        return self.log_inclusion(tenant_id, store_id, int(event["sequence_number"]), checkpoint,
                                  event_leaf_hash(event))

    def log_consistency(self, tenant_id: uuid.UUID | str | None, store_id: uuid.UUID | str | None,
                        old: VerifiedCheckpoint, new: VerifiedCheckpoint, stream_id_hex: str | None = None) -> dict:
        """Prove `new` extends `old` (`GET /api/v1/ves/log/consistency`, or the public path with `stream_id_hex`),
        verified locally. Raises LogVerificationError (`fork`, `rollback`, ...)."""
        body = {"first": old.tree_size, "second": new.tree_size, "proof": []}
        if old.tree_size < new.tree_size:
            params = {"first": old.tree_size, "second": new.tree_size}
            if stream_id_hex is not None:
                body = self._request("GET", f"/api/v1/ves/log/public/{stream_id_hex}/consistency", params=params)
            else:
                body = self._request("GET", "/api/v1/ves/log/consistency", params={
                    "tenant_id": str(tenant_id), "store_id": str(store_id), **params})
        check_consistency(body, old, new)
        return body

    # local verification (no trust in the server's own checks)

    def verify_receipt(self, receipt: Mapping, event: Mapping) -> bool:
        """True iff `receipt` (from ingest or a read) is the sequencer's signed receipt for `event` (VES.md
        §Sequencer receipt), checked against the key of its `sequencerKeyVersion` (docs/KEYS.md: a version retired
        before the event was sequenced is refused). The key list is fetched once, then again when a receipt names
        a version not seen yet (the sequencer's key was rotated since)."""
        keys = receipt_keys(self.sequencer_info())
        version = receipt.get("sequencer_key_version", receipt.get("sequencerKeyVersion"))
        if keys and version is not None and version not in keys:
            keys = receipt_keys(self.sequencer_info(refresh=True))
        if keys:
            return receipt_is_valid(receipt, event, keys)
        public_key = self.sequencer_public_key()
        return public_key is not None and receipt_is_valid(receipt, event, public_key)

    @staticmethod
    def verify_proof_locally(proof: Mapping, commitment: Mapping | None = None, event: Mapping | None = None) -> bool:
        """Strict local check of a proof from `proof()`; see `app.client.wire.proof_is_valid`."""
        return proof_is_valid(proof, commitment, event)


def _next_position(page: Mapping, position: int) -> int:
    events = page["events"]
    if page.get("next_from") is not None:
        return page["next_from"]
    return events[-1]["sequence_number"] + 1 if events else position


def _api_error(response: requests.Response) -> SequencerAPIError:
    request_id = response.headers.get("X-Request-ID")
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return SequencerAPIError(response.status_code, "HTTP_ERROR", response.reason or "HTTP error", request_id)
    return SequencerAPIError(
        response.status_code,
        body.get("code") or "HTTP_ERROR",
        body.get("error") or response.reason or "HTTP error",
        body.get("request_id") or request_id,
    )


def _retry_delay(response: requests.Response, fallback: float) -> float:
    """Seconds to wait before retrying: `Retry-After` (seconds or HTTP date) when present, capped at 30 s."""
    value = response.headers.get("Retry-After")
    if value is None:
        return fallback
    try:
        seconds = float(value)
    except ValueError:
        moment = email.utils.parsedate_to_datetime(value) if value else None
        if moment is None:
            return fallback
        seconds = moment.timestamp() - time.time()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
