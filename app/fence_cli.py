"""`stateset-sequencer-admin` commands of the post-restore fence (docs/RESTORE.md, "After a restore: the fence"):

- `export-watermark --out FILE`: every stream's head and receipt hash there, written atomically to a file that must
  live outside the database (run it from cron next to the base backups; copy it off the host);
- `fence [--watermark FILE ...] [--no-chain]` (also `import-watermark --watermark FILE`): after a restore, compare
  the heads with the watermark(s) and with the registry contract (when L2_RPC_URL and SET_REGISTRY_ADDRESS are set)
  and fence the streams that are behind (`STREAM_FENCED`) or disagree (`STREAM_DIVERGED`). Prints a JSON report;
  exit 0 when no stream is fenced, 3 when some are;
- `heal --bundle FILE` (or `--exports DIR`, every fenced stream from `DIR/<tenant_id>-<store_id>.json`): re-ingest
  the events a restore forgot from a `ves-verify export` bundle, in their original order (same numbers, receipt
  hashes and signatures); the fence lifts when the head reaches the published one;
- `declare-loss --tenant --store --reason`: the operator accepts the loss; the fence is removed, audited;
- `list-fences`: the fenced streams.

Log lines are JSON on stdout (ids and numbers; never keys or payloads); results are JSON on stdout too.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path

from app.startup import CommandError
from app.startup import open_database
from app.startup import settings_or_exit
from app.startup import with_database

FENCED_EXIT_CODE = 3


def _uuid(value: str):
    import uuid

    try:
        return uuid.UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a UUID: {value!r}") from None


def _setup(*rules):
    from app.logging import configure_logging

    settings = with_database(settings_or_exit(*rules))
    configure_logging(settings.log_level)
    return settings, open_database(settings)


def _actor(args) -> str:
    if getattr(args, "operator", None):
        return args.operator
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def cmd_export_watermark(args) -> int:
    from app.services.fence import export_watermark
    from app.services.fence import write_watermark

    settings, engine = _setup()
    try:
        document = export_watermark(engine, settings.sequencer_id)
    finally:
        engine.dispose()
    write_watermark(Path(args.out), document)
    print(json.dumps({"watermark": str(args.out), "streams": len(document["streams"]),
                      "exported_at": document["exported_at"]}))
    return 0


def cmd_fence(args) -> int:
    from app.chain import ChainError
    from app.services import fence
    from app.services.anchoring import registry_client

    settings, engine = _setup()
    try:
        published = []
        for path in args.watermark or []:
            published.extend(fence.read_watermark(Path(path)))
        sources = [f"watermark:{path}" for path in args.watermark or []]
        if not args.no_chain and settings.l2_rpc_url and settings.set_registry_address:
            streams = set(fence.known_streams(engine)) | {p.stream for p in published}
            try:
                client = registry_client(settings, read_only=True)
                client.ensure_deployed()
                published.extend(fence.chain_positions(client, sorted(streams, key=str)))
            except ChainError as error:
                raise CommandError(f"cannot read the registry ({error}); nothing was fenced. Retry, or pass "
                                   "--no-chain to fence from the watermark alone") from None
            sources.append(f"chain:{settings.set_registry_address}")
        if not sources:
            raise CommandError("nothing to compare with: pass --watermark FILE, or configure L2_RPC_URL and "
                               "SET_REGISTRY_ADDRESS for the chain")
        report = fence.fence_streams(engine, published, actor=_actor(args))
        still = fence.list_fences(engine)
    finally:
        engine.dispose()
    print(json.dumps({"sources": sources, **report.to_dict(), "fenced_now": len(still)}, indent=1))
    return FENCED_EXIT_CODE if still else 0


def _read_bundle(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as source:
            return json.load(source)
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror}") from None
    except ValueError:
        raise CommandError(f"{path} is not JSON") from None


def cmd_heal(args) -> int:
    from app.keyfiles import ensure_receipt_signing_key
    from app.services.fence import list_fences
    from app.services.heal import heal_from_bundle
    from app.services.ingest import ReceiptSigner

    if bool(args.bundle) == bool(args.exports):
        raise CommandError("give --bundle FILE (one stream) or --exports DIR (every fenced stream)")
    settings, engine = _setup(ensure_receipt_signing_key)
    signer = ReceiptSigner(settings.sequencer_id, settings.sequencer_signing_key)
    try:
        if args.bundle:
            report = heal_from_bundle(engine, settings, signer, _read_bundle(Path(args.bundle)), actor=_actor(args))
            print(json.dumps(report.to_dict(), indent=1))
            return 0 if report.fence in ("none", "lifted") else FENCED_EXIT_CODE
        results = []
        for fenced in list_fences(engine):
            path = Path(args.exports) / f"{fenced['tenant_id']}-{fenced['store_id']}.json"
            if not path.exists():
                results.append({**fenced, "fence": "still_fenced", "error": f"no export at {path}"})
                continue
            report = heal_from_bundle(engine, settings, signer, _read_bundle(path), actor=_actor(args))
            results.append(report.to_dict())
    finally:
        engine.dispose()
    print(json.dumps(results, indent=1))
    return 0 if all(r["fence"] in ("none", "lifted") for r in results) else FENCED_EXIT_CODE


def cmd_declare_loss(args) -> int:
    from app.services.fence import declare_loss

    _, engine = _setup()
    try:
        result = declare_loss(engine, args.tenant, args.store, args.reason, _actor(args))
    finally:
        engine.dispose()
    print(json.dumps(result, indent=1))
    return 0


def cmd_list_fences(args) -> int:
    from app.services.fence import list_fences

    _, engine = _setup()
    try:
        fences = list_fences(engine)
    finally:
        engine.dispose()
    print(json.dumps(fences, indent=1))
    return 0


def register_cli(subparsers) -> None:
    p = subparsers.add_parser("export-watermark", help="write every stream's head and receipt hash to a file "
                              "outside the database (the post-restore fence reads it)")
    p.add_argument("--out", required=True, help="file to write (atomically); keep copies off this host")
    p.set_defaults(func=cmd_export_watermark)

    p = subparsers.add_parser("fence", aliases=["import-watermark"],
                              help="after a restore: fence streams behind the watermark or the chain")
    p.add_argument("--watermark", action="append", help="a watermark file (repeatable)")
    p.add_argument("--no-chain", action="store_true", help="do not read the registry contract")
    p.add_argument("--operator", help="who runs this (audited; default: the login name)")
    p.set_defaults(func=cmd_fence)

    p = subparsers.add_parser("heal", help="re-ingest events a restore forgot from a `ves-verify export` bundle")
    p.add_argument("--bundle", help="one stream's export bundle")
    p.add_argument("--exports", help="a directory of exports named <tenant_id>-<store_id>.json: heal every fenced "
                   "stream that has one")
    p.add_argument("--operator", help="who runs this (audited; default: the login name)")
    p.set_defaults(func=cmd_heal)

    p = subparsers.add_parser("declare-loss", help="accept the loss of a fenced stream's events after its head")
    p.add_argument("--tenant", type=_uuid, required=True)
    p.add_argument("--store", type=_uuid, required=True)
    p.add_argument("--reason", required=True)
    p.add_argument("--operator", help="who declares it (audited; default: the login name)")
    p.set_defaults(func=cmd_declare_loss)

    p = subparsers.add_parser("list-fences", help="list the streams fenced after a restore")
    p.set_defaults(func=cmd_list_fences)


def main(argv: list[str] | None = None) -> int:
    from app.cli import main as admin_main

    return admin_main(argv)


if __name__ == "__main__":
    sys.exit(main())
