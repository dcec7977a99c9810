#!/usr/bin/env bash
# Logical backup of the sequencer database: pg_dump custom format, optional encryption, retention.
#
# Connection: DATABASE_URL (postgres:// URL) or the libpq variables PGHOST/PGPORT/PGUSER/PGDATABASE/PGPASSWORD.
# BACKUP_DIR              where dumps go (default /backups/postgres)
# BACKUP_RETENTION_DAYS   delete this script's dumps older than N days (default 7; 0 keeps everything)
# BACKUP_ENCRYPTION_KEY_FILE  file holding a passphrase: encrypt with openssl AES-256-CBC + PBKDF2 (.dump.enc)
# BACKUP_ENCRYPTION_KEY       the passphrase itself (prefer the _FILE form; env is visible to the same user)
# BACKUP_GPG_RECIPIENT    encrypt to this gpg public key instead (.dump.gpg)
# PG_BIN_DIR              directory of pg_dump to use (its major version must be >= the server's)
#
# Prints the path of the finished backup on stdout. The file appears under its final name only when complete.
set -euo pipefail
umask 077

BACKUP_DIR=${BACKUP_DIR:-/backups/postgres}
BACKUP_RETENTION_DAYS=${BACKUP_RETENTION_DAYS:-7}
PG_DUMP=${PG_BIN_DIR:+$PG_BIN_DIR/}pg_dump

die() { echo "backup.sh: $*" >&2; exit 1; }

[[ "$BACKUP_RETENTION_DAYS" =~ ^[0-9]+$ ]] || die "BACKUP_RETENTION_DAYS must be a whole number of days"
if [[ -n "${BACKUP_ENCRYPTION_KEY_FILE:-}" && ! -r "$BACKUP_ENCRYPTION_KEY_FILE" ]]; then
    die "BACKUP_ENCRYPTION_KEY_FILE is not readable"
fi

connection=()
if [[ -n "${DATABASE_URL:-}" ]]; then
    # libpq does not know SQLAlchemy's driver suffix.
    connection=(--dbname="${DATABASE_URL/postgresql+psycopg2:/postgresql:}")
fi

mkdir -p "$BACKUP_DIR"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
base="$BACKUP_DIR/sequencer_${stamp}.dump"

if [[ -n "${BACKUP_ENCRYPTION_KEY_FILE:-}" || -n "${BACKUP_ENCRYPTION_KEY:-}" ]]; then
    target="$base.enc"
    if [[ -n "${BACKUP_ENCRYPTION_KEY_FILE:-}" ]]; then pass="file:$BACKUP_ENCRYPTION_KEY_FILE"; else pass="env:BACKUP_ENCRYPTION_KEY"; fi
    encrypt() { openssl enc -aes-256-cbc -pbkdf2 -iter 200000 -salt -pass "$pass" -out "$1"; }
elif [[ -n "${BACKUP_GPG_RECIPIENT:-}" ]]; then
    target="$base.gpg"
    encrypt() { gpg --batch --yes --trust-model always --encrypt --recipient "$BACKUP_GPG_RECIPIENT" --output "$1"; }
else
    target="$base"
    encrypt() { cat > "$1"; }
fi

partial="$target.partial"
trap 'rm -f "$partial"' EXIT
"$PG_DUMP" --format=custom --compress=6 --no-password "${connection[@]}" | encrypt "$partial"
mv "$partial" "$target"
trap - EXIT

if (( BACKUP_RETENTION_DAYS > 0 )); then
    find "$BACKUP_DIR" -maxdepth 1 -type f -name 'sequencer_*.dump*' ! -name '*.partial' \
        -mtime +"$BACKUP_RETENTION_DAYS" -delete
fi

echo "$target"
