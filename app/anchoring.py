"""Anchoring cron entrypoint: `stateset-sequencer-admin anchor` or `python -m app.anchoring` (never in gunicorn).

One run checks the chain first (RPC up, right chain id, registry deployed), takes the transaction-level advisory lock
ANCHOR_RUN_LOCK_KEY (a concurrent run logs a line and exits 0), commits every stream's pending events in commitments
of at most ANCHOR_MAX_EVENTS events, then anchors unanchored commitments oldest first per stream.
Exit codes: 0 done (or another run held the lock), 1 the chain was unreachable or a stream failed (fork, revert),
2 bad usage or configuration (including anchoring not configured). Log lines are JSON on stdout; the one-line
failure reason goes to stderr.

Also registers `deploy-registry`, which deploys contracts/SetRegistry.json and prints the address.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from app.chain import ChainError
from app.config import Settings
from app.startup import CommandError
from app.startup import exit_misconfigured
from app.startup import open_database
from app.startup import settings_or_exit
from app.startup import with_database

log = logging.getLogger("stateset_sequencer.anchoring")

DEFAULT_INTERVAL_SECONDS = 300.0


def _positive_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0 < seconds <= 86400:
        raise argparse.ArgumentTypeError("must be between 0 and 86400 seconds")
    return seconds


def _anchoring_client(settings: Settings):
    from app.services.anchoring import AnchoringNotConfigured
    from app.services.anchoring import registry_client

    try:
        return registry_client(settings)
    except AnchoringNotConfigured as exc:
        exit_misconfigured(exc.message)


def _run_once(engine, client, settings: Settings, after_send) -> int:
    from app.services.anchoring import run_once

    try:
        report = run_once(engine, client, settings.anchor_max_events, after_send=after_send)
    except ChainError as exc:
        log.error("anchoring run aborted", extra={"error": str(exc)})
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if report.lock_busy:
        return 0
    log.info("anchoring run finished", extra={
        "commitments_created": len(report.committed), "commitments_anchored": len(report.outcomes),
        "streams_failed": len(report.failures), "streams_fenced": len(report.skipped_fenced)})
    for tenant_id, store_id in report.skipped_fenced:
        print(f"warning: stream {tenant_id}/{store_id} is fenced after a restore (STREAM_FENCED): not anchored; "
              "see docs/RESTORE.md", file=sys.stderr)
    for failure in report.failures:
        print(f"error: stream {failure.tenant_id}/{failure.store_id}: {failure.code}: {failure.message}",
              file=sys.stderr)
    return 0 if report.ok else 1


def cmd_anchor(args, after_send=None) -> int:
    """Run once (default) or every `--interval` seconds until SIGTERM/SIGINT (`--loop`)."""
    from app.logging import configure_logging

    settings = settings_or_exit()
    configure_logging(settings.log_level)
    client = _anchoring_client(settings)
    try:
        client.ensure_deployed()
    except ChainError as exc:
        if not args.loop:
            log.error("anchoring run aborted before touching the database", extra={"error": str(exc)})
            print(f"error: {exc}", file=sys.stderr)
            return 1
        log.warning("chain not reachable at start; will retry each interval", extra={"error": str(exc)})

    engine = open_database(with_database(settings))
    try:
        if not args.loop:
            return _run_once(engine, client, settings, after_send)
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        while not stop.is_set():
            _run_once(engine, client, settings, after_send)
            stop.wait(args.interval)
        return 0
    finally:
        engine.dispose()


def cmd_deploy_registry(args) -> int:
    """Deploy SetRegistry with the key in `--private-key-env` and print its address (stdout, one line)."""
    from app.chain import connect
    from app.chain import deploy_registry

    settings = settings_or_exit()
    rpc_url = args.rpc_url or settings.l2_rpc_url
    if not rpc_url:
        exit_misconfigured("give --rpc-url or set L2_RPC_URL")
    private_key = os.environ.get(args.private_key_env, "").strip()
    if not private_key:
        exit_misconfigured(f"{args.private_key_env} is unset (the deployer's private key)")
    chain_id = args.chain_id or settings.l2_chain_id
    try:
        w3 = connect(rpc_url)
        node_chain_id = w3.eth.chain_id
    except Exception as exc:  # noqa: BLE001 - web3/requests raise many types; all mean "not reachable"
        raise CommandError(f"L2 RPC endpoint is unreachable (endpoint: {rpc_url}, "
                           f"cause: {type(exc).__name__})") from None
    if node_chain_id != chain_id:
        raise CommandError(f"RPC endpoint is on another chain (expected: {chain_id}, actual: {node_chain_id})")
    try:
        address = deploy_registry(w3, private_key, chain_id=chain_id)
    except (ChainError, ValueError) as exc:
        raise CommandError(f"deploy failed: {exc}") from None
    print(address)
    return 0


def add_anchor_arguments(parser: argparse.ArgumentParser) -> None:
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="one run, then exit (default)")
    mode.add_argument("--loop", action="store_true", help="run every --interval seconds until SIGTERM")
    parser.add_argument("--interval", type=_positive_seconds, default=DEFAULT_INTERVAL_SECONDS,
                        help=f"seconds between runs with --loop (default {DEFAULT_INTERVAL_SECONDS:g})")


def register_cli(subparsers) -> None:
    """Add `anchor` and `deploy-registry` to `stateset-sequencer-admin` (called by app.cli)."""
    p = subparsers.add_parser("anchor", help="commit pending events and anchor unanchored commitments on the L2")
    add_anchor_arguments(p)
    p.set_defaults(func=cmd_anchor)

    p = subparsers.add_parser("deploy-registry", help="deploy the SetRegistry contract and print its address")
    p.add_argument("--rpc-url", help="L2 JSON-RPC URL (default: L2_RPC_URL)")
    p.add_argument("--private-key-env", default="SEQUENCER_PRIVATE_KEY",
                   help="name of the environment variable holding the deployer key (default: SEQUENCER_PRIVATE_KEY)")
    p.add_argument("--chain-id", type=int, help="expected chain id (default: L2_CHAIN_ID)")
    p.set_defaults(func=cmd_deploy_registry)


def main(argv: list[str] | None = None, after_send=None) -> int:
    """`python -m app.anchoring [--once | --loop --interval SECONDS]`. `after_send` is a test seam (see
    app.services.anchoring.AfterSend); production never sets it."""
    parser = argparse.ArgumentParser(prog="python -m app.anchoring", description=__doc__.split("\n")[0])
    add_anchor_arguments(parser)
    return cmd_anchor(parser.parse_args(argv), after_send=after_send)


if __name__ == "__main__":
    sys.exit(main())
