"""`stateset-sequencer-admin build-logs`: build the transparency logs of streams that predate them (LOG.md 13.7).

Resumable and bounded: each chunk is one short transaction under the stream's lock, so ingest continues (it waits
at most one chunk); progress is committed per chunk, so a killed run loses at most one chunk and the next run
resumes. Run it until it reports nothing remaining; checkpoints of a stream are signed only once its log is
complete. Exit codes: 0 done (or the `--max-events` budget spent), 1 an error, 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import sys


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def cmd_build_logs(args) -> int:
    from app.logging import configure_logging
    from app.services.stream_logs import backfill_logs
    from app.startup import open_database
    from app.startup import settings_or_exit
    from app.startup import with_database

    settings = with_database(settings_or_exit())
    configure_logging(settings.log_level)
    engine = open_database(settings)

    def report(progress) -> None:
        if args.verbose:
            print(f"stream {progress.tenant_id}/{progress.store_id}: {progress.tree_size} of "
                  f"{progress.head_sequence} events logged", flush=True)

    try:
        summary = backfill_logs(engine, chunk_events=args.chunk, max_events=args.max_events, on_progress=report)
    finally:
        engine.dispose()
    print(f"logs built: {summary.streams_completed} streams completed, {summary.events_logged} events logged; "
          f"remaining: {summary.streams_remaining} streams, {summary.events_remaining} events", flush=True)
    return 0


def register_cli(subparsers) -> None:
    """Add `build-logs` to `stateset-sequencer-admin` (called by app.cli)."""
    p = subparsers.add_parser("build-logs", help="build the transparency logs of streams that predate them "
                                                 "(resumable; safe while ingest runs)")
    p.add_argument("--chunk", type=_positive, default=2000, help="events per transaction (default 2000)")
    p.add_argument("--max-events", type=_positive, help="stop after about this many events (a bounded run)")
    p.add_argument("--verbose", action="store_true", help="print one line per chunk")
    p.set_defaults(func=cmd_build_logs)


if __name__ == "__main__":
    from app.cli import main

    sys.exit(main(["build-logs", *sys.argv[1:]]))
