"""`ves-verify`: export an audit bundle, verify one offline or straight from a sequencer, or check one proof.

Exit codes: 0 verified, 1 a discrepancy (the first one is printed), 2 usage or I/O error (bad bundle file,
sequencer unreachable).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.client import SequencerAPIError
from app.client import SequencerClient
from app.verify.bundle import export_bundle
from app.verify.core import verify_bundle
from app.ves import VesError
from app.ves import parse_hex
from app.ves import verify_inclusion

EXIT_OK = 0
EXIT_DISCREPANCY = 1
EXIT_ERROR = 2


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

    proof = commands.add_parser("verify-proof", help="check one Merkle inclusion proof")
    proof.add_argument("--leaf-hash", required=True)
    proof.add_argument("--merkle-root", required=True)
    proof.add_argument("--leaf-index", required=True, type=int)
    proof.add_argument("--proof-path", default="", help="comma-separated sibling hashes, leaf level first")
    proof.add_argument("--leaf-count", type=int, default=None, help="the commitment's leaf_count (stricter)")
    for sub in (export, verify, proof):
        sub.set_defaults(func=run)


def run(args) -> int:
    try:
        return {"export": _export, "verify": _verify, "verify-proof": _verify_proof}[args.command](args)
    except (SequencerAPIError, OSError, ValueError) as error:
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


def _verify(args) -> int:
    if args.bundle:
        bundle = json.loads(Path(args.bundle).read_text(encoding="utf-8"))
    elif args.url and args.api_key and args.tenant and args.store:
        bundle = export_bundle(_client(args), args.tenant, args.store, args.from_, args.to)
    else:
        print("ves-verify: error: give --bundle, or --url, --api-key, --tenant and --store", file=sys.stderr)
        return EXIT_ERROR
    pinned = parse_hex(args.sequencer_public_key, 32, "--sequencer-public-key") if args.sequencer_public_key \
        else None
    report = verify_bundle(bundle, sequencer_public_key=pinned)
    if args.json:
        print(json.dumps(report.to_dict(), indent=1, default=str))
    else:
        print(report.summary())
    return EXIT_OK if report.ok else EXIT_DISCREPANCY


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
