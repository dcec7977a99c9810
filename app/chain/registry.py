"""web3.py client for the SetRegistry contract (contracts/SetRegistry.sol).

Free of Flask and SQLAlchemy: the anchoring service owns transactions and persistence and calls
this module for chain I/O only. Transactions are signed locally (EIP-155 chain id) and sent raw,
so the node never holds a key. Every failure surfaces as an `app.chain.errors.ChainError`.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from eth_abi import abi
from eth_abi.exceptions import DecodingError
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import HTTPProvider
from web3 import Web3
from web3.exceptions import BadFunctionCallOutput
from web3.exceptions import ContractLogicError
from web3.exceptions import ProviderConnectionError
from web3.exceptions import TimeExhausted
from web3.types import TxParams
from web3.types import TxReceipt

from app.chain.errors import ChainError
from app.chain.errors import ChainUnavailable
from app.chain.errors import ReceiptTimeout
from app.chain.errors import RegistryNotDeployed
from app.chain.errors import TransactionReverted

ARTIFACT_PATH = Path(__file__).resolve().parents[2] / "contracts" / "SetRegistry.json"
DEFAULT_RPC_TIMEOUT_SECONDS = 10.0
DEFAULT_RECEIPT_TIMEOUT_SECONDS = 120.0
GAS_HEADROOM_PERCENT = 20
_ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")
_REVERT_MESSAGE_PREFIXES = ("execution reverted: ", "VM Exception while processing transaction: revert ")
_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    requests.exceptions.RequestException,
    ProviderConnectionError,
    ConnectionError,
    TimeoutError,
)


def _revert_error_types() -> tuple[type[BaseException], ...]:
    """ContractLogicError from real nodes; eth-tester's TransactionFailed from the in-process EVM."""
    try:
        from eth_tester.exceptions import TransactionFailed
    except ImportError:
        return (ContractLogicError,)
    return (ContractLogicError, TransactionFailed)


_REVERT_ERRORS = _revert_error_types()


def load_artifact(path: Path = ARTIFACT_PATH) -> dict[str, Any]:
    """Return the compiled artifact built by contracts/build.js (abi, bytecode, compiler...)."""
    with open(path, encoding="utf-8") as artifact_file:
        artifact = json.load(artifact_file)
    missing = {"abi", "bytecode"} - artifact.keys()
    if missing:
        raise ChainError(f"Contract artifact is incomplete (path: {path}, missing: {sorted(missing)})")
    return artifact


def connect(rpc_url: str, timeout: float = DEFAULT_RPC_TIMEOUT_SECONDS) -> Web3:
    """Web3 over HTTP with a per-request timeout in seconds and no provider-level retries.

    Does no I/O: an unreachable endpoint shows up as ChainUnavailable on first use.
    """
    provider = HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None)
    return Web3(provider)


@dataclass(frozen=True)
class OnChainBatch:
    """A batch as stored by SetRegistry.commitBatch. Hashes are 32 raw bytes."""

    batch_id: uuid.UUID
    stream_id: bytes
    sequence_start: int
    sequence_end: int
    event_count: int
    merkle_root: bytes
    prev_state_root: bytes
    new_state_root: bytes
    block_number: int
    submitter: str


def _endpoint_of(w3: Web3) -> str:
    return str(getattr(w3.provider, "endpoint_uri", None) or type(w3.provider).__name__)


def _decode_error_string(payload: object) -> str | None:
    """Decode Solidity `Error(string)` revert data (hex str or bytes); None if it is not one."""
    if isinstance(payload, str) and payload.startswith("0x"):
        payload = bytes.fromhex(payload[2:])
    if not isinstance(payload, (bytes, bytearray)) or payload[:4] != _ERROR_STRING_SELECTOR:
        return None
    try:
        return abi.decode(["string"], bytes(payload[4:]))[0]
    except DecodingError:
        return None


def _revert_reason(error: BaseException) -> str | None:
    """The contract's revert string, from the error data (geth: hex str; ganache: dict) or message."""
    data = getattr(error, "data", None)
    if isinstance(data, dict):
        data = data.get("result") or data.get("data")
    reason = _decode_error_string(data)
    if reason is not None:
        return reason
    message = getattr(error, "message", None) or (str(error.args[0]) if error.args else "")
    for prefix in _REVERT_MESSAGE_PREFIXES:
        if message.startswith(prefix):
            message = message[len(prefix) :]
    return message or None


@contextlib.contextmanager
def _chain_errors(w3: Web3, address: str | None = None) -> Iterator[None]:
    """Translate web3/requests/eth-tester exceptions raised inside the block into ChainErrors."""
    try:
        yield
    except ChainError:
        raise
    except _REVERT_ERRORS as error:
        raise TransactionReverted(_revert_reason(error)) from error
    except _UNAVAILABLE_ERRORS as error:
        raise ChainUnavailable(_endpoint_of(w3), error) from error
    except BadFunctionCallOutput as error:
        if address is None:
            raise ChainError(str(error)) from error
        raise RegistryNotDeployed(address) from error


def _as_account(private_key_or_account: Any) -> LocalAccount:
    if isinstance(private_key_or_account, LocalAccount):
        return private_key_or_account
    return Account.from_key(private_key_or_account)


def _fixed_bytes(name: str, value: bytes, length: int) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != length:
        raise ValueError(f"{name} must be {length} raw bytes (got: {type(value).__name__} of length {len(value)})")
    return bytes(value)


def _batch_id_bytes(batch_id: uuid.UUID | bytes) -> bytes:
    """UUID(u) per VES.md §Primitives: the 16 RFC 4122 bytes."""
    if isinstance(batch_id, uuid.UUID):
        return batch_id.bytes
    return _fixed_bytes("batch_id", batch_id, 16)


def _with_gas_headroom(tx: TxParams) -> TxParams:
    return {**tx, "gas": int(tx["gas"]) * (100 + GAS_HEADROOM_PERCENT) // 100}


def _send_signed(w3: Web3, account: LocalAccount, tx: TxParams) -> bytes:
    signed = account.sign_transaction(tx)
    return bytes(w3.eth.send_raw_transaction(signed.raw_transaction))


def _wait_for_success(w3: Web3, tx_hash: bytes, timeout: float) -> TxReceipt:
    """The receipt of a mined, successful tx. Raises ReceiptTimeout or TransactionReverted."""
    try:
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout, poll_latency=0.1)
    except TimeExhausted as error:
        raise ReceiptTimeout(tx_hash, timeout) from error
    if receipt["status"] != 1:
        raise TransactionReverted(_replayed_revert_reason(w3, tx_hash, receipt["blockNumber"]), tx_hash)
    return receipt


def _replayed_revert_reason(w3: Web3, tx_hash: bytes, block_number: int) -> str | None:
    """Best effort: replay the failed tx as a call on the state after its block.

    A commit that lost a race to a conflicting commit in the same block reverts again there
    with the contract's reason; if the replay succeeds the reason is unknown (None).
    """
    tx = w3.eth.get_transaction(tx_hash)
    call = {"from": tx["from"], "to": tx["to"], "data": tx["input"], "value": tx["value"], "gas": tx["gas"]}
    try:
        w3.eth.call(call, block_identifier=block_number)
    except _REVERT_ERRORS as error:
        return _revert_reason(error)
    return None


def deploy_registry(
    w3: Web3,
    private_key_or_account: Any,
    chain_id: int | None = None,
    timeout: float = DEFAULT_RECEIPT_TIMEOUT_SECONDS,
) -> str:
    """Deploy SetRegistry from the given key and return its checksum address.

    The deployer becomes owner and an authorised submitter. `chain_id` defaults to the node's.
    """
    account = _as_account(private_key_or_account)
    artifact = load_artifact()
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    with _chain_errors(w3):
        tx = factory.constructor().build_transaction(
            {
                "from": account.address,
                "nonce": w3.eth.get_transaction_count(account.address, "pending"),
                "chainId": chain_id if chain_id is not None else w3.eth.chain_id,
            }
        )
        tx_hash = _send_signed(w3, account, _with_gas_headroom(tx))
        receipt = _wait_for_success(w3, tx_hash, timeout)
    return Web3.to_checksum_address(receipt["contractAddress"])


class RegistryClient:
    """Reads and writes one deployed SetRegistry.

    Construction does no I/O. Writes need `private_key`; `chain_id` (EIP-155) is read from the
    node on first use when not given. Methods raise ChainUnavailable when the RPC endpoint is
    unreachable, RegistryNotDeployed when there is no contract at `address`, and
    TransactionReverted (with the contract's reason string when known) when it rejects a write.
    """

    def __init__(self, w3: Web3, address: str, private_key: Any = None, chain_id: int | None = None):
        self.w3 = w3
        self.address = Web3.to_checksum_address(address)
        self._account = _as_account(private_key) if private_key is not None else None
        self._chain_id = chain_id
        self._contract = w3.eth.contract(address=self.address, abi=load_artifact()["abi"])

    @classmethod
    def from_url(
        cls,
        rpc_url: str,
        address: str,
        private_key: Any = None,
        chain_id: int | None = None,
        timeout: float = DEFAULT_RPC_TIMEOUT_SECONDS,
    ) -> RegistryClient:
        """A client over HTTP (see `connect` for the timeout semantics)."""
        return cls(connect(rpc_url, timeout), address, private_key=private_key, chain_id=chain_id)

    @property
    def sender(self) -> str | None:
        """Checksum address that signs writes, or None for a read-only client."""
        return self._account.address if self._account is not None else None

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            with self._errors():
                self._chain_id = self.w3.eth.chain_id
        return self._chain_id

    def ensure_deployed(self) -> None:
        """Raise ChainError unless the node is on `chain_id` and has code at `address`."""
        with self._errors():
            node_chain_id = self.w3.eth.chain_id
            code = self.w3.eth.get_code(self.address)
        if node_chain_id != self.chain_id:
            raise ChainError(f"RPC endpoint is on another chain (expected: {self.chain_id}, actual: {node_chain_id})")
        if not code:
            raise RegistryNotDeployed(self.address)

    def get_head(self, stream_id: bytes) -> tuple[int, bytes]:
        """(head_sequence_end, head_state_root) of the stream; (0, 32 zero bytes) if never anchored."""
        with self._errors():
            sequence_end, state_root = self._contract.functions.getHead(
                _fixed_bytes("stream_id", stream_id, 32)
            ).call()
        return int(sequence_end), bytes(state_root)

    def get_batch(self, batch_id: uuid.UUID | bytes) -> OnChainBatch | None:
        """The batch stored under `batch_id`, or None if the registry never accepted it."""
        batch_id_bytes = _batch_id_bytes(batch_id)
        with self._errors():
            fields = self._contract.functions.getBatch(batch_id_bytes).call()
        (stream_id, start, end, count, merkle_root, prev_root, new_root, block_number, submitter, exists) = fields
        if not exists:
            return None
        return OnChainBatch(
            batch_id=uuid.UUID(bytes=batch_id_bytes),
            stream_id=bytes(stream_id),
            sequence_start=int(start),
            sequence_end=int(end),
            event_count=int(count),
            merkle_root=bytes(merkle_root),
            prev_state_root=bytes(prev_root),
            new_state_root=bytes(new_root),
            block_number=int(block_number),
            submitter=Web3.to_checksum_address(submitter),
        )

    def find_commit_transaction(self, batch_id: uuid.UUID | bytes) -> bytes | None:
        """Hash of the transaction that committed `batch_id`, or None if it is not on chain.

        For recovery after a crash between sending and recording: looks only in the block the
        registry recorded for the batch.
        """
        batch = self.get_batch(batch_id)
        if batch is None:
            return None
        with self._errors():
            logs = self._contract.events.BatchCommitted.get_logs(
                argument_filters={"batchId": batch.batch_id.bytes},
                from_block=batch.block_number,
                to_block=batch.block_number,
            )
        return bytes(logs[0]["transactionHash"]) if logs else None

    def owner(self) -> str:
        with self._errors():
            return Web3.to_checksum_address(self._contract.functions.owner().call())

    def is_submitter(self, address: str) -> bool:
        with self._errors():
            return bool(self._contract.functions.isSubmitter(Web3.to_checksum_address(address)).call())

    def build_commit_tx(
        self,
        stream_id: bytes,
        sequence_start: int,
        sequence_end: int,
        event_count: int,
        merkle_root: bytes,
        prev_state_root: bytes,
        new_state_root: bytes,
        batch_id: uuid.UUID | bytes,
        nonce: int | None = None,
    ) -> TxParams:
        """Unsigned commitBatch transaction with nonce, fees and gas filled in.

        Gas is estimated against the current head, so a commit the contract would reject
        raises TransactionReverted here, before anything is sent. `nonce` defaults to the
        sender's pending transaction count.
        """
        function = self._contract.functions.commitBatch(
            _fixed_bytes("stream_id", stream_id, 32),
            sequence_start,
            sequence_end,
            event_count,
            _fixed_bytes("merkle_root", merkle_root, 32),
            _fixed_bytes("prev_state_root", prev_state_root, 32),
            _fixed_bytes("new_state_root", new_state_root, 32),
            _batch_id_bytes(batch_id),
        )
        return self._build_tx(function, nonce)

    def send_commit_batch(
        self,
        stream_id: bytes,
        sequence_start: int,
        sequence_end: int,
        event_count: int,
        merkle_root: bytes,
        prev_state_root: bytes,
        new_state_root: bytes,
        batch_id: uuid.UUID | bytes,
    ) -> bytes:
        """Sign and send commitBatch; return the 32-byte tx hash (not yet mined)."""
        tx = self.build_commit_tx(
            stream_id, sequence_start, sequence_end, event_count, merkle_root, prev_state_root, new_state_root, batch_id
        )
        return self.send_transaction(tx)

    def set_submitter(self, address: str, allowed: bool) -> bytes:
        """Owner only: allow or disallow `address` to commit. Returns the tx hash."""
        function = self._contract.functions.setSubmitter(Web3.to_checksum_address(address), allowed)
        return self.send_transaction(self._build_tx(function))

    def transfer_ownership(self, new_owner: str) -> bytes:
        """Owner only: hand ownership to `new_owner`. Returns the tx hash."""
        function = self._contract.functions.transferOwnership(Web3.to_checksum_address(new_owner))
        return self.send_transaction(self._build_tx(function))

    def send_transaction(self, tx: TxParams) -> bytes:
        """Sign `tx` locally with the client's key and send it raw; return the tx hash."""
        account = self._require_account()
        with self._errors():
            return _send_signed(self.w3, account, tx)

    def wait_for_receipt(self, tx_hash: bytes, timeout: float = DEFAULT_RECEIPT_TIMEOUT_SECONDS) -> TxReceipt:
        """Receipt of a successfully mined tx; raises ReceiptTimeout, or TransactionReverted if status is 0."""
        with self._errors():
            return _wait_for_success(self.w3, tx_hash, timeout)

    def _build_tx(self, function: Any, nonce: int | None = None) -> TxParams:
        account = self._require_account()
        with self._errors():
            if nonce is None:
                nonce = self.w3.eth.get_transaction_count(account.address, "pending")
            tx = function.build_transaction({"from": account.address, "nonce": nonce, "chainId": self.chain_id})
        return _with_gas_headroom(tx)

    def _require_account(self) -> LocalAccount:
        if self._account is None:
            raise ChainError("This RegistryClient is read-only: pass private_key to send transactions")
        return self._account

    def _errors(self) -> contextlib.AbstractContextManager[None]:
        return _chain_errors(self.w3, self.address)
