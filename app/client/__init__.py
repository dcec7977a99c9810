"""The Python SDK of the sequencer: sign VES events as an agent and talk to the HTTP API (API.md).

Depends on `requests`, PyNaCl, rfc8785 and the pure `app.ves` core only (no Flask, no SQLAlchemy).

    signer = AgentSigner(seed, tenant_id, agent_id, key_id=1)
    client = SequencerClient("https://sequencer.example", api_key)
    client.register_signer(signer)
    result = client.ingest([signer.build_event(store_id, "order", "42", "OrderPlaced", {"total": 5})], signer.agent_id)
    assert all(client.verify_receipt(r, e) for r, e in zip(result.receipts, events))
"""

from app.client.client import IngestResult
from app.client.client import SequencerClient
from app.client.errors import SequencerAPIError
from app.client.log import LogVerificationError
from app.client.log import VerifiedCheckpoint
from app.client.signer import AgentSigner
from app.client.signer import rfc3339_millis
from app.client.wire import proof_is_valid
from app.client.wire import ReceiptKey
from app.client.wire import receipt_is_valid
from app.client.wire import receipt_keys

__all__ = [
    "AgentSigner",
    "IngestResult",
    "LogVerificationError",
    "SequencerAPIError",
    "SequencerClient",
    "VerifiedCheckpoint",
    "proof_is_valid",
    "ReceiptKey",
    "receipt_is_valid",
    "receipt_keys",
    "rfc3339_millis",
]
