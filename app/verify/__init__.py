"""The offline verifier: re-derive a stream's hashes, signatures, receipts, Merkle roots and state-root chain.

`verify_bundle(bundle)` is pure; `export_bundle(client, …)` fetches a bundle; `ves-verify` (`app.verify.cli`) is
the command line over both.
"""

from app.verify.bundle import export_bundle
from app.verify.core import BUNDLE_FORMAT
from app.verify.core import ChainChecker
from app.verify.core import verify_bundle
from app.verify.report import Discrepancy
from app.verify.report import VerificationReport

__all__ = ["BUNDLE_FORMAT", "ChainChecker", "Discrepancy", "VerificationReport", "export_bundle", "verify_bundle"]
