"""Errors raised by the chain client. Every one is a `ChainError`.

None of them means the sequencer's own data is wrong: the anchoring job logs the error, leaves
the commitment unanchored and retries on its next run.
"""


class ChainError(Exception):
    """Base class: anything that went wrong talking to the L2 or the registry contract."""


class ChainUnavailable(ChainError):
    """The RPC endpoint could not be reached or did not answer in time (retry later)."""

    def __init__(self, endpoint: str, cause: BaseException):
        super().__init__(f"L2 RPC endpoint is unreachable (endpoint: {endpoint}, cause: {type(cause).__name__}: {cause})")
        self.endpoint = endpoint


class RegistryNotDeployed(ChainError):
    """No contract code at the configured registry address (check SET_REGISTRY_ADDRESS and L2_CHAIN_ID)."""

    def __init__(self, address: str):
        super().__init__(f"No SetRegistry contract at this address (address: {address})")
        self.address = address


class TransactionReverted(ChainError):
    """The contract rejected a call or transaction.

    `reason` is the contract's revert string (e.g. "SetRegistry: sequence gap") when the node
    reported it, else None. `tx_hash` is set when the transaction was mined and failed; it is
    None when the revert was caught before sending (gas estimation or a dry-run call).
    """

    def __init__(self, reason: str | None, tx_hash: bytes | None = None):
        context = f"reason: {reason or 'unknown'}"
        if tx_hash is not None:
            context += f", tx: 0x{bytes(tx_hash).hex()}"
        super().__init__(f"Registry transaction reverted ({context})")
        self.reason = reason
        self.tx_hash = tx_hash


class ReceiptTimeout(ChainError):
    """A sent transaction was not mined within the timeout; it may still be mined later."""

    def __init__(self, tx_hash: bytes, timeout: float):
        super().__init__(f"Transaction not mined in time (tx: 0x{bytes(tx_hash).hex()}, timeout: {timeout}s)")
        self.tx_hash = tx_hash
        self.timeout = timeout
