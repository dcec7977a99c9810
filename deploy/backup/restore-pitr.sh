#!/usr/bin/env bash
# Prepare a point-in-time restore (runbook: docs/RESTORE.md, "Point-in-time recovery"): unpack a base backup made by
# `backup.sh base` into a NEW data directory and configure recovery from the WAL archive up to a target time.
# It starts nothing: start PostgreSQL on the directory afterwards; it replays the archived WAL up to the target,
# then promotes itself (a new timeline) and accepts writes.
#
# Usage: restore-pitr.sh BASE_BACKUP DATA_DIR
# WAL_ARCHIVE_DIR        the archive sequencer.conf's archive_command fills (required; read with restore_command)
# RECOVERY_TARGET_TIME   replay transactions committed up to and including this moment, with an explicit zone
#                        ("2024-01-15 10:00:00+00", "2024-01-15T10:00:00Z"). Unset: replay everything archived.
# Decryption: BACKUP_ENCRYPTION_KEY_FILE / BACKUP_ENCRYPTION_KEY for .enc files; gpg's keyring for .gpg files.
# Run it as the user PostgreSQL runs as (postgres); DATA_DIR must not exist or be empty.
set -euo pipefail
umask 077

die() { echo "restore-pitr.sh: $*" >&2; exit 1; }

[[ $# -eq 2 ]] || die "usage: restore-pitr.sh BASE_BACKUP DATA_DIR"
backup=$1
data_dir=$2
[[ -r "$backup" ]] || die "cannot read $backup"
archive=${WAL_ARCHIVE_DIR:-}
[[ -n "$archive" ]] || die "WAL_ARCHIVE_DIR is not set"
[[ -d "$archive" && -r "$archive" ]] || die "WAL_ARCHIVE_DIR is not a readable directory: $archive"
[[ "$archive" == /* ]] || die "WAL_ARCHIVE_DIR must be an absolute path (restore_command runs in DATA_DIR)"
[[ "$archive" != *"'"* && "$archive" != *'"'* ]] || die "WAL_ARCHIVE_DIR must not contain quotes"
target_time=${RECOVERY_TARGET_TIME:-}
if [[ -n "$target_time" ]]; then
    # Without a zone PostgreSQL would read the time in the server's TimeZone: refuse the ambiguity.
    [[ "$target_time" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}[T\ ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?\ ?(Z|UTC|[+-][0-9]{2}(:?[0-9]{2})?)$ ]] ||
        die "RECOVERY_TARGET_TIME must look like '2024-01-15 10:00:00+00' (with an explicit zone), got '$target_time'"
fi
if [[ -e "$data_dir" ]]; then
    [[ -d "$data_dir" && -z "$(ls -A "$data_dir")" ]] || die "$data_dir exists and is not empty; restore into a new directory"
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

mkdir -p "$data_dir"
chmod 0700 "$data_dir"
decrypt | gzip -dc | tar -x -C "$data_dir"
[[ -f "$data_dir/backup_label" ]] || die "$backup is not a base backup made by backup.sh base (no backup_label)"
mkdir -p "$data_dir/pg_wal"
# A restored server must not resume as anything but itself: no leftover recovery or standby settings.
rm -f "$data_dir/standby.signal" "$data_dir/postmaster.pid"

{
    echo ""
    echo "# Point-in-time recovery settings written by restore-pitr.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ)."
    echo "# They act only while recovery.signal exists (PostgreSQL removes it when it promotes); afterwards remove"
    echo "# them with ALTER SYSTEM RESET restore_command (and each recovery_target_* line below)."
    echo "restore_command = 'cp \"$archive/%f\" \"%p\"'"
    if [[ -n "$target_time" ]]; then
        echo "recovery_target_time = '$target_time'"
        echo "recovery_target_inclusive = on"
        echo "recovery_target_action = 'promote'"
    fi
    echo "recovery_target_timeline = 'latest'"
} >> "$data_dir/postgresql.auto.conf"
touch "$data_dir/recovery.signal"

echo "prepared $data_dir: start PostgreSQL on it; it replays $archive ${target_time:+up to $target_time }and promotes"
