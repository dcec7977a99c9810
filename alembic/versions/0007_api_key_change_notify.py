"""NOTIFY `ves_api_keys` on every change to an existing API key, so per-worker key caches drop it at once.

Each worker caches the API keys it has looked up (app/auth.py, `app.db.key_cache.NotifiedCache`) and LISTENs on
`ves_api_keys` (app/db/notify.py). A statement-level trigger, not the revoking code, sends the NOTIFY: a revocation
by the API, the admin CLI or plain SQL all reach every worker of every replica when it commits. Inserts need no
NOTIFY: a key that was not found is never cached. The payload is the changing transaction's txid_current(): each
listener sends it back on `ves_api_keys_ack` once its cache is empty, so a revocation can wait for every worker
(`app.db.key_cache.ChangeAcknowledgements`).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 17:40:00
"""

from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

API_KEYS_CHANNEL = "ves_api_keys"

FUNCTION = f"""
CREATE FUNCTION notify_api_key_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('{API_KEYS_CHANNEL}', txid_current()::text);
  RETURN NULL;
END
$$
"""

TRIGGER = ("CREATE TRIGGER api_keys_notify_change AFTER UPDATE OR DELETE OR TRUNCATE ON api_keys "
           "FOR EACH STATEMENT EXECUTE FUNCTION notify_api_key_change()")


def upgrade() -> None:
    op.execute(FUNCTION)
    op.execute(TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS api_keys_notify_change ON api_keys")
    op.execute("DROP FUNCTION IF EXISTS notify_api_key_change()")
