#!/usr/bin/env bash
# Backups of the sequencer database (runbook: docs/RESTORE.md).
#
# Usage: backup.sh [logical|base]
#   logical (default)  pg_dump custom format of the database: restore with restore.sh into an empty database.
#   base               physical base backup of the whole server (pg_basebackup, tar, gzip). With the WAL archive
#                      that sequencer.conf's archive_command fills, it restores to any moment after the backup
#                      ended (restore-pitr.sh, recovery_target_time). The WAL itself comes from the archive.
#
# Connection: DATABASE_URL (postgres:// URL, including the multi-host form with target_session_attrs=read-write)
#   or the libpq variables PGHOST/PGPORT/PGUSER/PGDATABASE/PGPASSWORD. A base backup needs a role with the
#   REPLICATION attribute and a `replication` line in pg_hba.conf.
# BACKUP_DIR              where backups go (default /backups/postgres)
# BACKUP_RETENTION_DAYS   delete this script's backups of the same kind older than N days (default 7; 0 keeps
#                         everything). The newest base backup is always kept.
# WAL_ARCHIVE_DIR         base only, optional: after the retention sweep, delete archived WAL older than the
#                         oldest base backup still kept (pg_archivecleanup), so the archive does not grow forever.
# BACKUP_ENCRYPTION_KEY_FILE  file holding a passphrase: encrypt with openssl AES-256-CBC + PBKDF2 (.enc)
# BACKUP_ENCRYPTION_KEY       the passphrase itself (prefer the _FILE form; env is visible to the same user)
# BACKUP_GPG_RECIPIENT    encrypt to this gpg public key instead (.gpg)
# PG_BIN_DIR              directory of pg_dump / pg_basebackup to use (major version >= the server's for pg_dump,
#                         equal to the server's for pg_basebackup)
#
# Prints the path of the finished backup on stdout. The file appears under its final name only when complete.
set -euo pipefail
umask 077

kind=${1:-logical}
BACKUP_DIR=${BACKUP_DIR:-/backups/postgres}
BACKUP_RETENTION_DAYS=${BACKUP_RETENTION_DAYS:-7}
PG_DUMP=${PG_BIN_DIR:+$PG_BIN_DIR/}pg_dump
PG_BASEBACKUP=${PG_BIN_DIR:+$PG_BIN_DIR/}pg_basebackup
PG_ARCHIVECLEANUP=${PG_BIN_DIR:+$PG_BIN_DIR/}pg_archivecleanup

die() { echo "backup.sh: $*" >&2; exit 1; }

case "$kind" in
    logical|base) ;;
    *) die "usage: backup.sh [logical|base]" ;;
esac
[[ $# -le 1 ]] || die "usage: backup.sh [logical|base]"
[[ "$BACKUP_RETENTION_DAYS" =~ ^[0-9]+$ ]] || die "BACKUP_RETENTION_DAYS must be a whole number of days"
if [[ -n "${BACKUP_ENCRYPTION_KEY_FILE:-}" && ! -r "$BACKUP_ENCRYPTION_KEY_FILE" ]]; then
    die "BACKUP_ENCRYPTION_KEY_FILE is not readable"
fi
if [[ -n "${WAL_ARCHIVE_DIR:-}" && ! -d "$WAL_ARCHIVE_DIR" ]]; then
    die "WAL_ARCHIVE_DIR is not a directory: $WAL_ARCHIVE_DIR"
fi

connection=()
if [[ -n "${DATABASE_URL:-}" ]]; then
    # libpq does not know SQLAlchemy's driver suffix.
    connection=(--dbname="${DATABASE_URL/postgresql+psycopg2:/postgresql:}")
fi

mkdir -p "$BACKUP_DIR"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
if [[ "$kind" == logical ]]; then
    base="$BACKUP_DIR/sequencer_${stamp}.dump"
else
    label="sequencer_base_${stamp}"
    base="$BACKUP_DIR/${label}.tar.gz"
fi

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
[[ ! -e "$target" ]] || die "$target already exists"

partial="$target.partial"
trap 'rm -f "$partial"' EXIT
if [[ "$kind" == logical ]]; then
    "$PG_DUMP" --format=custom --compress=6 --no-password "${connection[@]}" | encrypt "$partial"
else
    # One tar on stdout: the data directory and backup_manifest, no WAL (--wal-method=none): the archive has it,
    # and pg_basebackup returns only once the backup's last WAL segment is archived.
    "$PG_BASEBACKUP" --pgdata=- --format=tar --wal-method=none --checkpoint=fast --label="$label" \
        --no-password "${connection[@]}" | gzip -6 | encrypt "$partial"
fi
mv "$partial" "$target"
trap - EXIT

if [[ "$kind" == logical ]]; then
    if (( BACKUP_RETENTION_DAYS > 0 )); then
        find "$BACKUP_DIR" -maxdepth 1 -type f -name 'sequencer_*.dump*' ! -name '*.partial' \
            -mtime +"$BACKUP_RETENTION_DAYS" -delete
    fi
else
    if (( BACKUP_RETENTION_DAYS > 0 )); then
        find "$BACKUP_DIR" -maxdepth 1 -type f -name 'sequencer_base_*.tar.gz*' ! -name '*.partial' \
            ! -path "$target" -mtime +"$BACKUP_RETENTION_DAYS" -delete
    fi
    if [[ -n "${WAL_ARCHIVE_DIR:-}" ]]; then
        # The oldest base backup still kept; its label names the .backup history file the server archived for it.
        oldest=$(find "$BACKUP_DIR" -maxdepth 1 -type f -name 'sequencer_base_*.tar.gz*' ! -name '*.partial' \
            -printf '%f\n' | sort | head -n 1)
        oldest_label=${oldest%%.tar.gz*}
        history=$(grep -l -s -x "LABEL: $oldest_label" "$WAL_ARCHIVE_DIR"/*.backup | head -n 1 || true)
        if [[ -n "$history" ]]; then
            "$PG_ARCHIVECLEANUP" "$WAL_ARCHIVE_DIR" "$(basename "$history")"
        else
            echo "backup.sh: no archived .backup file for $oldest_label in $WAL_ARCHIVE_DIR; archive not pruned" >&2
        fi
    fi
fi

echo "$target"
