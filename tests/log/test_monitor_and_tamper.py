"""Item 4-5 of the log issue over real gunicorn: the SDK verifies checkpoints and proofs; `ves-verify monitor`
follows a stream and `ves-verify verify` checks bundles against checkpoints; and both catch, and name, a changed
stored event, a changed stored subtree hash, and a forked history (two databases that diverge at an index, served
under the same log key)."""

from __future__ import annotations

import json
import os
import uuid

import pytest
import sqlalchemy as sa

from app.client import AgentSigner
from app.client import LogVerificationError
from app.client import SequencerClient
from app.client import VerifiedCheckpoint
from app.verify.cli import main
from app.ves.signing import public_key_from_seed
from app.ves.hashing import stream_id
from tests.log.conftest import entries_from_events
from tests.log.conftest import naive_root
from tests.support.pg import create_database
from tests.support.pg import drop_database
from tests.support.servers import LOG_KEY_HEX
from tests.support.servers import start_gunicorn

pytestmark = pytest.mark.slow

ADMIN_KEY = "log-monitor-admin-key-0123456789abcdef"
SERVER_ENV = {"BOOTSTRAP_ADMIN_API_KEY": ADMIN_KEY, "LOG_MAX_DELAY_SECONDS": "0", "LOG_PUBLIC": "1",
              "LOG_ORIGIN": "monitor.test/ves", "LOG_LEVEL": "warning"}
LOG_PUBLIC_KEY_HEX = public_key_from_seed(bytes.fromhex(LOG_KEY_HEX)).hex()


@pytest.fixture(scope="module")
def server(database_url):
    with start_gunicorn(database_url, env=SERVER_ENV, workers=2) as running:
        yield running


class Writer:
    """A tenant/store with a registered agent; `add(n)` ingests n signed events through the API."""

    def __init__(self, url: str, seed: bytes | None = None, tenant=None, agent=None, store=None):
        self.client = SequencerClient(url, ADMIN_KEY)
        self.signer = AgentSigner(seed or os.urandom(32), tenant or uuid.uuid4(), agent or uuid.uuid4(), 1)
        self.store = store or str(uuid.uuid4())
        self.client.register_signer(self.signer)
        self.count = 0

    @property
    def tenant(self) -> str:
        return str(self.signer.tenant_id)

    def add(self, n: int, tag: str = "") -> None:
        events = [self.signer.build_event(self.store, "order", f"o-{tag}{self.count + i}", "OrderPlaced",
                                          {"i": self.count + i, "tag": tag}, event_id=uuid.uuid5(
                                              uuid.NAMESPACE_URL, f"{self.store}/{tag}/{self.count + i}"),
                                          created_at="2026-12-01T00:00:00.000Z")
                  for i in range(n)]
        assert self.client.ingest(events, self.signer.agent_id).events_accepted == n
        self.count += n


def monitor(url: str, state, writer: Writer, capsys, *extra: str) -> tuple[int, str, str]:
    code = main(["monitor", "--url", url, "--api-key", ADMIN_KEY, "--state", str(state), "--stream",
                 f"{writer.tenant}:{writer.store}", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def verify(url: str, writer: Writer, capsys, *extra: str) -> tuple[int, dict]:
    code = main(["verify", "--url", url, "--api-key", ADMIN_KEY, "--tenant", writer.tenant, "--store",
                 writer.store, "--json", *extra])
    return code, json.loads(capsys.readouterr().out)


def without_triggers(engine, statement: str, params: dict) -> None:
    """Change stored data as a database superuser would: triggers off for this transaction only."""
    with engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        conn.execute(sa.text(statement), params)


def test_the_sdk_verifies_checkpoints_inclusion_and_consistency_and_refuses_a_wrong_key(server, engine):
    writer = Writer(server.url)
    writer.add(6)
    client = writer.client
    first = client.log_checkpoint(writer.tenant, writer.store)
    assert first.tree_size == 6
    assert first.root_hash == naive_root(entries_from_events(engine, uuid.UUID(writer.tenant),
                                                             uuid.UUID(writer.store)))
    for event in client.events(writer.tenant, writer.store)["events"]:
        client.verify_event_in_log(event, first)
    writer.add(5)
    second = client.log_checkpoint(writer.tenant, writer.store)
    assert second.tree_size == 11
    assert client.log_consistency(writer.tenant, writer.store, first, second)["proof"]
    with pytest.raises(LogVerificationError) as refused:
        client.log_consistency(writer.tenant, writer.store, second, first)
    assert refused.value.check == "rollback"
    with pytest.raises(LogVerificationError) as wrong_key:
        client.log_checkpoint(writer.tenant, writer.store, client.log_verifier_key(writer.tenant, writer.store,
                                                                                   bytes(32)))
    assert wrong_key.value.check == "log_key"
    sid = stream_id(writer.tenant, writer.store).hex()
    public = SequencerClient(server.url).public_log_checkpoint(sid, first.verifier_key)
    assert (public.tree_size, public.root_hash) == (11, second.root_hash)


def test_monitor_records_then_verifies_growth_and_the_bundle_carries_the_checkpoint(server, tmp_path, capsys):
    writer = Writer(server.url)
    state = tmp_path / "monitor.json"
    writer.add(3)
    code, out, _ = monitor(server.url, state, writer, capsys)
    assert code == 0 and "first checkpoint recorded" in out and "size 3 " in out
    writer.add(4)
    code, out, _ = monitor(server.url, state, writer, capsys)
    assert code == 0 and "3 -> 7 consistent" in out
    code, out, _ = monitor(server.url, state, writer, capsys)
    assert code == 0 and "7 -> 7 consistent" in out
    held = json.loads(state.read_text())
    assert held["log_public_key"] == SequencerClient(server.url).sequencer_info()["log_public_key"]
    code, report = verify(server.url, writer, capsys, "--checkpoint", str(state))
    assert (code, report["ok"], report["discrepancies"]) == (0, True, [])
    bundle_path = tmp_path / "bundle.json"
    assert main(["export", "--url", server.url, "--api-key", ADMIN_KEY, "--tenant", writer.tenant, "--store",
                 writer.store, "-o", str(bundle_path)]) == 0
    capsys.readouterr()
    bundle = json.loads(bundle_path.read_text())
    assert bundle["log"]["checkpoint"].startswith("monitor.test/ves/") and sorted(bundle["log"]["inclusion"],
                                                                                 key=int) == [str(n) for n in
                                                                                              range(1, 8)]
    assert main(["verify", "--bundle", str(bundle_path), "--log-public-key", LOG_PUBLIC_KEY_HEX]) == 0
    assert main(["verify", "--bundle", str(bundle_path), "--log-public-key", "00" * 32]) == 1
    assert "log_checkpoint failed" in capsys.readouterr().out
    code = main(["monitor", "--url", server.url, "--state", str(state), "--stream",
                 stream_id(writer.tenant, writer.store).hex()])
    assert code == 0 and "7 -> 7 consistent" in capsys.readouterr().out, "public paths, same state"


def test_a_changed_stored_event_is_caught_by_the_verifier_and_then_the_monitor(server, engine, tmp_path, capsys):
    writer = Writer(server.url)
    writer.add(10)
    state = tmp_path / "monitor.json"
    assert monitor(server.url, state, writer, capsys)[0] == 0
    without_triggers(engine, "UPDATE events SET agent_signature = decode(repeat('ab', 64), 'hex') "
                             "WHERE tenant_id = :t AND store_id = :s AND sequence_number = 10",
                     {"t": uuid.UUID(writer.tenant), "s": uuid.UUID(writer.store)})
    code, report = verify(server.url, writer, capsys, "--checkpoint", str(state))
    checks = {(d["check"], d["sequence_number"]) for d in report["discrepancies"]}
    assert code == 1
    assert ("agent_signature", 10) in checks and ("log_inclusion", 10) in checks and ("log_root", None) in checks
    assert ("log_inclusion", 1) in checks, "every proof through the changed leaf fails, not only its own"
    writer.add(10)
    code, _, err = monitor(server.url, state, writer, capsys)
    assert code == 1
    assert "FORK" in err and "LOG_INTEGRITY" in err and "held checkpoint: monitor.test/ves/" in err
    assert "size 10 root" in err and "--- held checkpoint (signed note) ---" in err
    assert monitor(server.url, state, writer, capsys)[0] == 1, "the held checkpoint is kept: it keeps failing"


def test_a_changed_stored_subtree_hash_is_caught_by_the_verifier_and_then_the_monitor(server, engine, tmp_path,
                                                                                     capsys):
    writer = Writer(server.url)
    writer.add(20)
    state = tmp_path / "monitor.json"
    assert monitor(server.url, state, writer, capsys)[0] == 0
    without_triggers(engine, "UPDATE log_nodes SET hash = decode(repeat('cd', 32), 'hex') WHERE tenant_id = :t "
                             "AND store_id = :s AND level = 4 AND node_index = 0",
                     {"t": uuid.UUID(writer.tenant), "s": uuid.UUID(writer.store)})
    code, report = verify(server.url, writer, capsys, "--checkpoint", str(state))
    checks = [(d["check"], d["sequence_number"]) for d in report["discrepancies"]]
    assert code == 1
    assert checks == [("log_inclusion", n) for n in range(17, 21)], \
        "the events are intact (no log_root, no event check): the proofs through the changed subtree fail"
    writer.add(10)
    code, _, err = monitor(server.url, state, writer, capsys)
    assert code == 1 and "FORK" in err and "LOG_INTEGRITY" in err and "size 20 root" in err


@pytest.fixture
def forked(server, database_server_url, engine):
    """A second sequencer on its own database, same log key and origin: the same 8 events (same agent, same
    signed envelopes) in one stream of each, then different ones."""
    url = create_database(database_server_url)
    try:
        with start_gunicorn(url, env=SERVER_ENV, workers=1) as other:
            seed, tenant, agent, store = os.urandom(32), uuid.uuid4(), uuid.uuid4(), str(uuid.uuid4())
            honest = Writer(server.url, seed, tenant, agent, store)
            fork = Writer(other.url, seed, tenant, agent, store)
            honest.add(8)
            fork.add(8)
            yield server, other, honest, fork
    finally:
        drop_database(database_server_url, url)


def test_a_forked_history_is_caught_by_the_monitor_and_the_verifier(forked, tmp_path, capsys):
    server, other, honest, fork = forked
    state = tmp_path / "monitor.json"
    assert monitor(server.url, state, honest, capsys)[0] == 0
    code, out, _ = monitor(other.url, state, fork, capsys)
    assert code == 0 and "8 -> 8 consistent" in out, "identical until index 8: the same log"
    honest.add(4, tag="honest")
    fork.add(6, tag="forked")
    assert monitor(server.url, state, honest, capsys)[0] == 0
    code, _, err = monitor(other.url, state, fork, capsys)
    assert code == 1
    first_line = err.splitlines()[0]
    assert first_line.startswith("FORK monitor.test/ves/") and ": fork: " in first_line
    assert "size 12 root" in first_line and "size 14 root" in first_line, "names both checkpoints"
    assert "--- held checkpoint (signed note) ---" in err and "--- served checkpoint (signed note) ---" in err
    code, report = verify(other.url, fork, capsys, "--checkpoint", str(state))
    assert code == 1
    (root,) = [d for d in report["discrepancies"] if d["check"] == "log_root"]
    assert "pinned checkpoint" in root["message"] and "size 12" in root["message"]
    (record,) = json.loads(state.read_text())["streams"].values()
    honest_checkpoint = VerifiedCheckpoint.from_dict(record)
    forked_checkpoint = fork.client.log_checkpoint(fork.tenant, fork.store)
    with pytest.raises(LogVerificationError) as caught:
        fork.client.log_consistency(fork.tenant, fork.store, honest_checkpoint, forked_checkpoint)
    assert caught.value.check == "fork"
    honest.add(2, tag="honest")
    same_size = honest.client.log_checkpoint(honest.tenant, honest.store)
    fork_at_14 = fork.client.log_checkpoint(fork.tenant, fork.store)
    assert same_size.tree_size == fork_at_14.tree_size == 14
    with pytest.raises(LogVerificationError) as two_roots:
        fork.client.log_consistency(fork.tenant, fork.store, same_size, fork_at_14)
    assert two_roots.value.check == "fork" and "Two roots for one size" in two_roots.value.message


def test_monitor_refuses_another_log_key_and_a_bad_state_file(server, tmp_path, capsys):
    writer = Writer(server.url)
    writer.add(2)
    code, _, err = monitor(server.url, tmp_path / "pinned.json", writer, capsys, "--log-public-key", "00" * 32)
    assert code == 1 and ": log_key: " in err, "a key other than the pinned one is a finding, not an error"
    state = tmp_path / "state.json"
    assert monitor(server.url, state, writer, capsys)[0] == 0
    held = json.loads(state.read_text())
    held["log_public_key"] = "11" * 32
    state.write_text(json.dumps(held))
    code, _, err = monitor(server.url, state, writer, capsys)
    assert code == 1 and ": log_key: " in err, "the key recorded on first use is pinned from then on"
    state.write_text("not json")
    code, _, err = monitor(server.url, state, writer, capsys)
    assert code == 2 and "cannot read the state file" in err


def test_an_event_changed_where_no_proof_passes_is_found_by_the_monitors_event_audit(server, engine, tmp_path,
                                                                                    capsys):
    writer = Writer(server.url)
    writer.add(20)
    state = tmp_path / "monitor.json"
    assert monitor(server.url, state, writer, capsys)[0] == 0
    without_triggers(engine, "UPDATE events SET agent_signature = decode(repeat('ab', 64), 'hex') "
                             "WHERE tenant_id = :t AND store_id = :s AND sequence_number = 3",
                     {"t": uuid.UUID(writer.tenant), "s": uuid.UUID(writer.store)})
    writer.add(10)
    code, out, _ = monitor(server.url, state, writer, capsys)
    assert code == 0 and "20 -> 30 consistent" in out, \
        "the tree is intact and no proof from 20 to 30 reads event 3: checkpoints alone cannot see it"
    code, _, err = monitor(server.url, state, writer, capsys, "--audit-events", "30")
    assert code == 1
    finding = err.splitlines()[0]
    assert finding.startswith("FORK") and ": inclusion: The served event " in finding
    number = int(finding.split("The served event ")[1].split()[0])
    assert 1 <= number <= 8, "proofs inside the changed event's 8-event block (folded from event rows) fail"
