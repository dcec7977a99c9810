"""`python tests/log/kill_while_signing.py DATABASE_URL TENANT STORE`: sign the stream's checkpoint, but stop right
after the checkpoint row is inserted and before the commit, print `INSERTED` and wait to be killed (SIGKILL from
the test), as a worker that dies mid-signature. The signing code runs unchanged; only the pause is injected."""

import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import sqlalchemy as sa  # noqa: E402

from app.db import stream_logs as store  # noqa: E402
from app.services import stream_logs as service  # noqa: E402
from tests.log.conftest import LOG_ORIGIN  # noqa: E402
from tests.log.conftest import LOG_SEED  # noqa: E402

_insert = store.insert_checkpoint


def _insert_then_hang(*args, **kwargs):
    row = _insert(*args, **kwargs)
    print("INSERTED", row.tree_size, flush=True)
    time.sleep(120)
    return row


if __name__ == "__main__":
    url, tenant, store_id = sys.argv[1:4]
    store.insert_checkpoint = _insert_then_hang
    engine = sa.create_engine(url)
    service.sign_checkpoint(engine, uuid.UUID(tenant), uuid.UUID(store_id), service.LogKey(LOG_ORIGIN, LOG_SEED))
    print("COMMITTED", flush=True)
