"""Checkpoints under real gunicorn: writers and checkpoint readers racing on one stream across two workers, one
worker SIGKILLed mid-load. Every checkpoint any client was served is one the database holds, the stored ones only
grow, each is consistent with the one before (proven from storage and recomputed from the events), and no two of
one size differ."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid

import pytest

from app.client import AgentSigner
from app.client import LogVerificationError
from app.client import SequencerAPIError
from app.client import SequencerClient
from app.services.stream_logs import LogKey
from tests.log.test_checkpoints import _assert_signed_history_is_one_growing_log
from tests.log.test_checkpoints import _checkpoints
from tests.support.servers import LOG_KEY_HEX
from tests.support.servers import start_gunicorn

pytestmark = pytest.mark.slow

ADMIN_KEY = "log-kill-admin-key-0123456789abcdef"
ORIGIN = "kill.test/ves"


class _Stream:
    def __init__(self, tenant_id, store_id):
        self.tenant_id, self.store_id = tenant_id, store_id


def test_a_worker_sigkilled_under_concurrent_writers_and_readers_never_yields_a_bad_checkpoint(database_url,
                                                                                               engine):
    env = {"BOOTSTRAP_ADMIN_API_KEY": ADMIN_KEY, "LOG_MAX_DELAY_SECONDS": "0", "LOG_ORIGIN": ORIGIN,
           "LOG_LEVEL": "warning"}
    with start_gunicorn(database_url, env=env, workers=2) as server:
        setup = SequencerClient(server.url, ADMIN_KEY)
        signer = AgentSigner(os.urandom(32), uuid.uuid4(), uuid.uuid4(), 1)
        store = str(uuid.uuid4())
        setup.register_signer(signer)
        stop = threading.Event()
        served: list[tuple[int, bytes, bytes]] = []
        written = []
        failures = []
        broken: list[str] = []

        def writer(slot: int) -> None:
            client = SequencerClient(server.url, ADMIN_KEY, retries=0)
            n = 0
            while not stop.is_set():
                events = [signer.build_event(store, "order", f"w{slot}-{n}-{i}", "OrderPlaced", {"n": n})
                          for i in range(5)]
                n += 1
                try:
                    written.append(client.ingest(events, signer.agent_id, retries=0).events_accepted)
                except SequencerAPIError as error:  # a request to the killed worker may fail
                    failures.append(repr(error))

        def reader() -> None:
            client = SequencerClient(server.url, ADMIN_KEY, retries=0)
            last = None
            while not stop.is_set():
                try:
                    checkpoint = client.log_checkpoint(signer.tenant_id, store)
                    if last is not None:
                        client.log_consistency(signer.tenant_id, store, last, checkpoint)
                except LogVerificationError as error:
                    broken.append(error.message)
                    return
                except SequencerAPIError as error:  # a request to the killed worker may fail
                    failures.append(repr(error))
                    continue
                served.append((checkpoint.tree_size, checkpoint.root_hash, checkpoint.note))
                last = checkpoint

        threads = [threading.Thread(target=writer, args=(slot,)) for slot in range(2)]
        threads += [threading.Thread(target=reader) for _ in range(3)]
        for thread in threads:
            thread.start()
        time.sleep(3)
        victim = server.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        time.sleep(4)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads)
        assert victim not in server.worker_pids()
        final = setup.log_checkpoint(signer.tenant_id, store)
    stream = _Stream(signer.tenant_id, uuid.UUID(store))
    rows = _checkpoints(engine, stream)
    print(f"events acknowledged {sum(written)}, checkpoints served {len(served)}, stored {len(rows)}, "
          f"failed requests {len(failures)}")
    assert broken == [], "a reader was served a checkpoint that does not verify or does not extend the last"
    assert sum(written) > 50 and len(served) > 20, (sum(written), len(served), failures[:3])
    stored = {row.tree_size: row.note.encode() for row in rows}
    for size, _, note in served:
        assert size == 0 or stored.get(size) == note, "every checkpoint served was persisted first"
    assert len({(size, root) for size, root, _ in served}) == len({size for size, _, _ in served})
    head = final.tree_size
    assert head == max(stored) and head >= sum(written), "every acknowledged event is covered"
    _assert_signed_history_is_one_growing_log(engine, LogKey(ORIGIN, bytes.fromhex(LOG_KEY_HEX)), stream)
