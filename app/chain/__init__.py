"""Chain I/O for anchoring: the SetRegistry client and its errors (no Flask, no SQLAlchemy)."""

from app.chain.errors import ChainError
from app.chain.errors import ChainUnavailable
from app.chain.errors import ReceiptTimeout
from app.chain.errors import RegistryNotDeployed
from app.chain.errors import TransactionReverted
from app.chain.registry import OnChainBatch
from app.chain.registry import RegistryClient
from app.chain.registry import connect
from app.chain.registry import deploy_registry
from app.chain.registry import load_artifact

__all__ = [
    "ChainError",
    "ChainUnavailable",
    "OnChainBatch",
    "ReceiptTimeout",
    "RegistryClient",
    "RegistryNotDeployed",
    "TransactionReverted",
    "connect",
    "deploy_registry",
    "load_artifact",
]
