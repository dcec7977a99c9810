"""`ves-verify`: export an audit bundle, verify one offline or straight from a sequencer, or check one proof.

Exit codes: 0 verified, 1 a discrepancy (the first one is printed), 2 usage or I/O error (bad bundle file,
sequencer or RPC endpoint unreachable, no registry at the address), 3 no discrepancy but not fully verified (a check
could not run: receipts the sequencer did not sign). `verify --rpc-url` also checks commitments
against the SetRegistry contract; web3 is imported only then. `verify --checkpoint` also checks the events against a
transparency-log checkpoint the auditor holds; `monitor` follows streams' logs (app/verify/monitor.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.client import SequencerAPIError
from app.client import SequencerClient
from app.client.log import LogVerificationError
from app.client.log import VerifiedCheckpoint
from app.verify.bundle import export_bundle
from app.verify.monitor import STATE_FORMAT
from app.verify.monitor import StateError
from app.verify.monitor import StreamRef
from app.verify.monitor import run_monitor
from app.verify.core import verify_bundle
from app.ves import VesError
from app.ves import parse_hex
from app.ves import verify_inclusion

EXIT_OK = 0
EXIT_DISCREPANCY = 1
EXIT_ERROR = 2
EXIT_INCOMPLETE = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ves-verify", description="Verify a VES sequencer's log independently.")
    add_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def register_cli(subparsers) -> None:
    """Offer `export`, `verify` and `verify-proof` as `stateset-sequencer-admin` subcommands too."""
    add_commands(subparsers)


def add_commands(commands) -> None:
    def add_source(sub, required: bool) -> None:
        sub.add_argument("--url", required=required, help="sequencer base URL, e.g. https://sequencer.example")
        sub.add_argument("--api-key", required=required, help="API key with read access to the stream")
        sub.add_argument("--tenant", required=required, help="tenant UUID")
        sub.add_argument("--store", required=required, help="store UUID")
        sub.add_argument("--from", dest="from_", type=int, default=1, help="first sequence number (default 1)")
        sub.add_argument("--to", type=int, default=None, help="last sequence number (default: the head)")
        sub.add_argument("--timeout", type=float, default=30.0, help="HTTP timeout in seconds")

    export = commands.add_parser("export", help="write a self-contained audit bundle")
    add_source(export, required=True)
    export.add_argument("-o", "--output", required=True, help="bundle file to write ('-' for stdout)")

    verify = commands.add_parser("verify", help="verify a bundle (--bundle) or a live stream (--url …)")
    verify.add_argument("--bundle", help="bundle file written by 'export' (no network access)")
    add_source(verify, required=False)
    verify.add_argument("--sequencer-public-key", help="pin the sequencer's receipt key (0x hex)")
    verify.add_argument("--json", action="store_true", help="print the full report as JSON")
    verify.add_argument("--rpc-url", help="also check commitments against the SetRegistry on this L2 RPC endpoint")
    verify.add_argument("--registry-address", help="SetRegistry contract address (0x…); required with --rpc-url")
    verify.add_argument("--chain-id", type=int, default=None,
                        help="the endpoint must be on this chain id (default: whatever it reports)")

    verify.add_argument("--log-public-key", help="pin the transparency-log key (hex) instead of the bundle's")
    verify.add_argument("--checkpoint", help="a checkpoint the events must also hash to: a JSON file with "
                                             "{note, verifier_key}, or a `monitor` state file")

    monitor = commands.add_parser("monitor", help="verify that streams' transparency logs only ever grow")
    monitor.add_argument("--url", required=True, help="sequencer base URL")
    monitor.add_argument("--api-key", help="API key with read access (not needed for stream ids on LOG_PUBLIC=1)")
    monitor.add_argument("--state", required=True, help="state file holding the last verified checkpoints")
    monitor.add_argument("--stream", action="append", required=True, type=_stream_ref,
                         help="TENANT:STORE, or a hex stream id (public paths); repeatable")
    monitor.add_argument("--log-public-key", help="pin the log key (hex); default: the state file's, else the "
                                                  "sequencer's published one (trusted on first use)")
    monitor.add_argument("--audit-events", type=int, default=0, metavar="N",
                         help="also prove N served events (the newest, the rest at random) in the new checkpoint")
    monitor.add_argument("--timeout", type=float, default=30.0, help="HTTP timeout in seconds")

    proof = commands.add_parser("verify-proof", help="check one Merkle inclusion proof")
    proof.add_argument("--leaf-hash", required=True)
    proof.add_argument("--merkle-root", required=True)
    proof.add_argument("--leaf-index", required=True, type=int)
    proof.add_argument("--proof-path", default="", help="comma-separated sibling hashes, leaf level first")
    proof.add_argument("--leaf-count", type=int, default=None, help="the commitment's leaf_count (stricter)")
    for sub in (export, verify, monitor, proof):
        sub.set_defaults(func=run)


def run(args) -> int:
    try:
        return {"export": _export, "verify": _verify, "monitor": _monitor,
                "verify-proof": _verify_proof}[args.command](args)
    except (SequencerAPIError, OSError, ValueError, LogVerificationError) as error:
        print(f"ves-verify: error: {error}", file=sys.stderr)
        return EXIT_ERROR


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


def _client(args) -> SequencerClient:
    return SequencerClient(args.url, args.api_key, timeout=args.timeout)


def _export(args) -> int:
    bundle = export_bundle(_client(args), args.tenant, args.store, args.from_, args.to)
    text = json.dumps(bundle, indent=1, sort_keys=True)
    if args.output == "-":
        print(text)
    else:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
        print(f"exported {len(bundle['events'])} events and {len(bundle['commitments'])} commitments "
              f"to {args.output}")
    return EXIT_OK


class OnChainCheck:
    """A `chain_checker` for `verify_bundle` over a read-only RegistryClient (VES.md §Anchoring).

    Each commitment is looked up by batch id. One the registry holds must match it field for field (stream, range,
    event count, Merkle root, both state roots); one it does not hold is a discrepancy only when the bundle records
    it as anchored (`is_anchored`), as is an anchored commitment whose `chain_id` is not the checked chain's.
    `checked` counts commitments compared with the chain; `not_anchored` those neither anchored nor on chain.
    """

    def __init__(self, client):
        from app.chain.checks import bundle_chain_checker

        self.client = client
        self._check = bundle_chain_checker(client)
        self.checked = 0
        self.not_anchored = 0

    def __call__(self, commitment, stream_id: bytes):
        from app.verify.report import Discrepancy

        found = self._check(commitment, stream_id)
        if found is not None and found.found == "absent" and not commitment.get("is_anchored"):
            self.not_anchored += 1
            return None
        self.checked += 1
        recorded_chain = commitment.get("chain_id")
        if found is None and commitment.get("is_anchored") and recorded_chain not in (None, self.client.chain_id):
            return Discrepancy("chain_anchor", "The commitment is recorded as anchored on another chain", None,
                               str(commitment.get("batch_id")), self.client.chain_id, recorded_chain)
        return found

    def summary(self) -> str:
        return (f"checked {self.checked} commitments on chain {self.client.chain_id} "
                f"(registry {self.client.address}); {self.not_anchored} not anchored yet")

    def to_dict(self) -> dict:
        return {"chain_id": self.client.chain_id, "registry_address": self.client.address,
                "commitments_checked_on_chain": self.checked, "commitments_not_anchored": self.not_anchored}


def on_chain_check(rpc_url: str, registry_address: str, chain_id: int | None, timeout: float) -> OnChainCheck:
    """Connect read-only and confirm the endpoint is on `chain_id` with a registry deployed (ChainError if not)."""
    from app.chain import RegistryClient

    client = RegistryClient.from_url(rpc_url, registry_address, chain_id=chain_id, timeout=timeout)
    client.ensure_deployed()
    return OnChainCheck(client)


def _verify(args) -> int:
    chain_check = None
    if args.rpc_url or args.registry_address or args.chain_id is not None:
        if not (args.rpc_url and args.registry_address):
            print("ves-verify: error: --rpc-url and --registry-address go together", file=sys.stderr)
            return EXIT_ERROR
        from app.chain import ChainError

        try:
            chain_check = on_chain_check(args.rpc_url, args.registry_address, args.chain_id, args.timeout)
        except ChainError as error:
            print(f"ves-verify: error: {error}", file=sys.stderr)
            return EXIT_ERROR
    if args.bundle:
        bundle = json.loads(Path(args.bundle).read_text(encoding="utf-8"))
    elif args.url and args.api_key and args.tenant and args.store:
        bundle = export_bundle(_client(args), args.tenant, args.store, args.from_, args.to)
    else:
        print("ves-verify: error: give --bundle, or --url, --api-key, --tenant and --store", file=sys.stderr)
        return EXIT_ERROR
    pinned = parse_hex(args.sequencer_public_key, 32, "--sequencer-public-key") if args.sequencer_public_key \
        else None
    log_key = parse_hex(args.log_public_key, 32, "--log-public-key") if args.log_public_key else None
    checkpoint = _held_checkpoint(Path(args.checkpoint), bundle) if args.checkpoint else None
    report = verify_bundle(bundle, chain_checker=chain_check, sequencer_public_key=pinned, log_checkpoint=checkpoint,
                           log_public_key=log_key)
    if args.json:
        document = report.to_dict()
        if chain_check is not None:
            document["chain"] = chain_check.to_dict()
        print(json.dumps(document, indent=1, default=str))
    else:
        print(report.summary())
        if chain_check is not None:
            print(chain_check.summary())
        for note in report.notes:
            print(f"note: {note}")
    if not report.ok:
        return EXIT_DISCREPANCY
    return EXIT_OK if report.complete else EXIT_INCOMPLETE


def _held_checkpoint(path: Path, bundle: dict) -> VerifiedCheckpoint:
    """`--checkpoint`: `{note, verifier_key}`, or the bundle's stream's record in a monitor state file."""
    record = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(record, dict) and record.get("format") == STATE_FORMAT:
        stream = StreamRef(str(bundle.get("tenant_id")), str(bundle.get("store_id")))
        origin = stream.origin(record.get("log_origin") or "")
        if origin not in record["streams"]:
            raise ValueError(f"{path} holds no checkpoint of {origin}")
        record = record["streams"][origin]
    return VerifiedCheckpoint.from_dict(record)


def _stream_ref(text: str) -> StreamRef:
    try:
        return StreamRef.parse(text)
    except VesError as error:
        raise argparse.ArgumentTypeError(f"expected TENANT:STORE or a hex stream id ({error.message})") from None


def _monitor(args) -> int:
    client = SequencerClient(args.url, args.api_key, timeout=args.timeout)
    key = parse_hex(args.log_public_key, 32, "--log-public-key") if args.log_public_key else None
    try:
        code, findings = run_monitor(client, args.stream, Path(args.state), key, audit_events=args.audit_events)
    except StateError as error:
        print(f"ves-verify: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    for finding in findings:
        print(finding.line, file=sys.stdout if finding.ok else sys.stderr)
    return EXIT_OK if code == 0 else EXIT_DISCREPANCY


def _verify_proof(args) -> int:
    try:
        leaf = parse_hex(args.leaf_hash, 32, "--leaf-hash")
        root = parse_hex(args.merkle_root, 32, "--merkle-root")
        path = [parse_hex(item.strip(), 32, "--proof-path") for item in args.proof_path.split(",") if item.strip()]
    except VesError as error:
        print(f"ves-verify: error: {error.message}", file=sys.stderr)
        return EXIT_ERROR
    if verify_inclusion(leaf, root, path, args.leaf_index, args.leaf_count):
        print(f"proof valid: leaf {args.leaf_index} is included under {args.merkle_root}")
        return EXIT_OK
    print(f"proof INVALID: leaf {args.leaf_index} does not fold to {args.merkle_root}")
    return EXIT_DISCREPANCY


if __name__ == "__main__":
    sys.exit(main())
