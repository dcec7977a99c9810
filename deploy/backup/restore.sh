#!/usr/bin/env bash
# Restore a backup made by backup.sh into an EMPTY database (runbook: docs/RESTORE.md).
#
# Usage: restore.sh BACKUP_FILE
# Connection: DATABASE_URL or PGHOST/PGPORT/PGUSER/PGDATABASE/PGPASSWORD, as for backup.sh.
# Decryption: BACKUP_ENCRYPTION_KEY_FILE / BACKUP_ENCRYPTION_KEY for .enc files; gpg's keyring for .gpg files.
# PG_BIN_DIR: directory of pg_restore to use.
# Refuses to touch a database that already has an events table unless RESTORE_FORCE=1, because restoring over a
# live log would interleave two histories.
set -euo pipefail

die() { echo "restore.sh: $*" >&2; exit 1; }

[[ $# -eq 1 ]] || die "usage: restore.sh BACKUP_FILE"
backup=$1
[[ -r "$backup" ]] || die "cannot read $backup"

PG_RESTORE=${PG_BIN_DIR:+$PG_BIN_DIR/}pg_restore
PSQL=${PG_BIN_DIR:+$PG_BIN_DIR/}psql

connection=()
if [[ -n "${DATABASE_URL:-}" ]]; then
    connection=(--dbname="${DATABASE_URL/postgresql+psycopg2:/postgresql:}")
fi

existing=$("$PSQL" --no-password --tuples-only --no-align "${connection[@]}" \
    --command="SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = 'events'")
if [[ "$existing" != "0" && "${RESTORE_FORCE:-0}" != "1" ]]; then
    die "target database already has an events table; restore into an empty database (or set RESTORE_FORCE=1)"
fi

case "$backup" in
    *.enc)
        if [[ -n "${BACKUP_ENCRYPTION_KEY_FILE:-}" ]]; then pass="file:$BACKUP_ENCRYPTION_KEY_FILE"
        elif [[ -n "${BACKUP_ENCRYPTION_KEY:-}" ]]; then pass="env:BACKUP_ENCRYPTION_KEY"
        else die "$backup is encrypted: set BACKUP_ENCRYPTION_KEY_FILE or BACKUP_ENCRYPTION_KEY"; fi
        decrypt() { openssl enc -d -aes-256-cbc -pbkdf2 -iter 200000 -pass "$pass" -in "$backup"; } ;;
    *.gpg)
        decrypt() { gpg --batch --quiet --decrypt "$backup"; } ;;
    *)
        decrypt() { cat "$backup"; } ;;
esac

# One transaction: a failed restore leaves the target database as it was.
decrypt | "$PG_RESTORE" --no-password --no-owner --no-privileges --single-transaction --exit-on-error \
    "${connection[@]}"

"$PSQL" --no-password --tuples-only --no-align "${connection[@]}" \
    --command="SELECT 'restored ' || (SELECT count(*) FROM events) || ' events in ' || (SELECT count(DISTINCT (tenant_id, store_id)) FROM events) || ' streams'"
