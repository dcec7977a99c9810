"""`stateset-sequencer-admin`: operate the sequencer from a shell (also `python -m app.cli`).

Works against `DATABASE_URL`, or against the embedded PostgreSQL under ./var/ when it is unset (as `bin/run` does).
Exit codes: 0 success, 1 the operation failed, 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import uuid

from app.errors import SequencerError
from app.startup import CommandError
from app.startup import open_database
from app.startup import settings_or_exit
from app.startup import with_database


def _database():
    """An engine on DATABASE_URL (or the embedded PostgreSQL), migrated to head unless DB_MIGRATE_ON_STARTUP=0."""
    return open_database(with_database(settings_or_exit()))


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a UUID: {value!r}") from None


def _u32(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if not 0 <= number <= 0xFFFFFFFF:
        raise argparse.ArgumentTypeError("must fit in u32")
    return number


def _timestamp(value: str) -> datetime.datetime:
    try:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 timestamp: {value!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError("timestamp needs a time zone (e.g. Z)")
    return moment


def cmd_migrate(args) -> int:
    from app.db.migrations import head_revision
    from app.db.migrations import upgrade_to_head

    engine = open_database(with_database(settings_or_exit()), pool_size=1, migrate=False)
    try:
        applied = upgrade_to_head(engine)
    finally:
        engine.dispose()
    print(f"database {'migrated' if applied else 'already'} at revision {head_revision()}")
    return 0


def cmd_create_api_key(args) -> int:
    from app.api.wire import NewApiKeyOut
    from app.services.api_keys import create_api_key

    engine = _database()
    try:
        secret, record = create_api_key(engine, tenant_id=args.tenant, permissions=args.permissions,
                                        store_ids=args.store or [], agent_id=args.agent, rate_limit=args.rate_limit,
                                        description=args.description)
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(NewApiKeyOut().dump((secret, record))))
    else:
        print(f"key_id:  {record.key_id}")
        print(f"api_key: {secret}")
        print("Store the key now: it is not shown again and only its hash is kept.", file=sys.stderr)
    return 0


def cmd_list_api_keys(args) -> int:
    from app.api.wire import ApiKeyOut
    from app.services.api_keys import list_api_keys

    engine = _database()
    try:
        records = list_api_keys(engine, args.tenant)
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(ApiKeyOut(many=True).dump(records)))
        return 0
    for r in records:
        state = f"revoked {r.revoked_at.isoformat()}" if r.revoked_at else "active"
        stores = ",".join(str(s) for s in r.store_ids) or "*"
        print(f"{r.key_id}  {r.key_prefix}…  tenant={r.tenant_id or '*'}  stores={stores}  {r.permissions}  {state}")
    return 0


def cmd_revoke_api_key(args) -> int:
    from app.services.api_keys import revoke_api_key

    engine = _database()
    try:
        found = revoke_api_key(engine, args.key_id)
    finally:
        engine.dispose()
    if not found:
        raise CommandError(f"no API key with id {args.key_id}")
    print(f"revoked {args.key_id}")
    return 0


def cmd_register_agent_key(args) -> int:
    from app.services.agent_keys import register_agent_key
    from app.ves.encoding import parse_key_material
    from app.ves.errors import VesError

    try:
        public_key = parse_key_material(args.public_key, 32, "public key")
    except VesError as exc:
        raise CommandError(str(exc)) from None
    engine = _database()
    try:
        record, created = register_agent_key(engine, args.tenant, args.agent, args.key_id, public_key,
                                             args.valid_from, args.valid_to)
    finally:
        engine.dispose()
    print(f"{'registered' if created else 'already registered'}: tenant={record.tenant_id} agent={record.agent_id} "
          f"key_id={record.key_id}")
    return 0


def cmd_retire_sequencer_key(args) -> int:
    from app.services.sequencer_keys import retire_key

    engine = _database()
    try:
        record = retire_key(engine, args.version, args.cutoff)
    finally:
        engine.dispose()
    print(f"sequencer key version {record.version} retired from {record.retired_at.isoformat()}: receipts it signs "
          "for events sequenced at or after that moment are no longer trusted")
    return 0


def cmd_list_sequencer_keys(args) -> int:
    from app.services.sequencer_keys import list_versions

    engine = _database()
    try:
        versions = list_versions(engine)
    finally:
        engine.dispose()
    for v in versions:
        retired = f"  retired from {v.retired_at.isoformat()}" if v.retired_at else ""
        until = v.valid_until.isoformat() if v.valid_until else "-"
        print(f"{v.version}  {v.public_key.hex()}  valid {v.valid_from.isoformat()} .. {until}{retired}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stateset-sequencer-admin", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("migrate", help="migrate the database to the latest schema (Alembic head)")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("create-api-key", help="create an API key and print it once")
    p.add_argument("--tenant", type=_uuid, help="tenant id (omit only for a global admin key)")
    p.add_argument("--store", type=_uuid, action="append", help="restrict to this store (repeatable)")
    p.add_argument("--permissions", required=True, choices=("read", "read_write", "admin"))
    p.add_argument("--agent", type=_uuid, help="agent id the key acts for")
    p.add_argument("--rate-limit", type=int, help="requests per minute for this key")
    p.add_argument("--description")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_create_api_key)

    p = sub.add_parser("list-api-keys", help="list API keys (never their secrets)")
    p.add_argument("--tenant", type=_uuid)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list_api_keys)

    p = sub.add_parser("revoke-api-key", help="revoke an API key; it stops working at once")
    p.add_argument("key_id", type=_uuid)
    p.set_defaults(func=cmd_revoke_api_key)

    p = sub.add_parser("register-agent-key", help="register an agent's Ed25519 public key")
    p.add_argument("--tenant", type=_uuid, required=True)
    p.add_argument("--agent", type=_uuid, required=True)
    p.add_argument("--key-id", type=_u32, required=True)
    p.add_argument("--public-key", required=True, help="32-byte Ed25519 public key, hex or base64")
    p.add_argument("--valid-from", type=_timestamp)
    p.add_argument("--valid-to", type=_timestamp)
    p.set_defaults(func=cmd_register_agent_key)

    p = sub.add_parser("retire-sequencer-key", help="retire a receipt-signing key version from a cutoff (a "
                                                    "compromised key: docs/KEYS.md)")
    p.add_argument("--version", type=int, required=True, help="the key version (GET /api/v1/ves/sequencer)")
    p.add_argument("--from", dest="cutoff", type=_timestamp, required=True,
                   help="RFC 3339 instant; receipts of this version sequenced at or after it are not trusted")
    p.set_defaults(func=cmd_retire_sequencer_key)

    p = sub.add_parser("list-sequencer-keys", help="list the receipt-signing key versions")
    p.set_defaults(func=cmd_list_sequencer_keys)

    from app import anchoring
    from app import fence_cli
    from app import stream_logs_cli
    from app.verify import cli as verify_cli

    anchoring.register_cli(sub)
    fence_cli.register_cli(sub)
    stream_logs_cli.register_cli(sub)
    verify_cli.register_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CommandError, SequencerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
