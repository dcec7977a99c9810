"""A fresh clone run as a newcomer runs it, with nothing configured (no DATABASE_URL, HOST, receipt key or
XDG_RUNTIME_DIR): `gunicorn -c config/gunicorn.conf.py wsgi:app`, which is what `./bin/run` execs, then Ctrl-C.

Checks: loopback only, nothing on stderr but our own lines, receipts signed from the first event with a key kept
under ./var/ and reused on restart, Ctrl-C stops the embedded PostgreSQL it started (by PID), CLI calls start and
stop their own, and the spec-copy tests pass in a CI clone with no ../shared next to it.
"""

from __future__ import annotations

import json
import shutil
import stat
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import requests

from app.client import AgentSigner
from app.client import SequencerClient
from tests.support.fresh_clone import fresh_clone
from tests.support.fresh_clone import is_gone
from tests.support.fresh_clone import newcomer_env
from tests.support.fresh_clone import postgres_processes_on
from tests.support.fresh_clone import postmaster_pid
from tests.support.fresh_clone import run_in_clone
from tests.support.fresh_clone import start_clone_server
from tests.support.servers import ROOT
from tests.support.servers import free_port
from tests.test_spec_copies import COPIES
from tests.test_spec_copies import shared_part

pytestmark = pytest.mark.slow

BANNER = "StateSet Sequencer listening on http://"
TENANT = str(uuid.uuid4())
STORE = str(uuid.uuid4())


def foreign_lines(text: str) -> list[str]:
    """Lines that are neither our JSON log lines nor our start-up banner (e.g. a library's warning)."""
    foreign = []
    for line in text.splitlines():
        if not line.strip() or line.startswith(BANNER):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            foreign.append(line)
            continue
        if not isinstance(record, dict) or record.get("level") in ("WARNING", "ERROR", "CRITICAL"):
            foreign.append(line)
    return foreign


def warning_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "warning" in line.lower()]


@dataclass
class Run:
    """What one start of the server in the clone looked like, up to and after Ctrl-C."""

    port: int
    stdout: str
    stderr: str
    listening: list[str]
    sequencer: dict
    postmaster: int | None
    postgres_while_running: list[int]
    exit_status: int
    postgres_after: list[int]
    postmaster_environment: dict
    cli: object = None


def start_and_interrupt(clone: Path, log_dir: Path, during=None) -> Run:
    port = free_port()
    server = start_clone_server(clone, newcomer_env(PORT=str(port), WEB_CONCURRENCY="1"), log_dir)
    try:
        postmaster = postmaster_pid(clone)
        postgres = postgres_processes_on(clone)
        postmaster_environment = psutil.Process(postmaster).environ()
        master = psutil.Process(server.process.pid)
        listening = sorted({f"{c.laddr.ip}:{c.laddr.port}" for c in master.net_connections("tcp")
                            if c.status == psutil.CONN_LISTEN})
        sequencer = requests.get(server.url + "/api/v1/ves/sequencer", timeout=10).json()
        cli = during(server) if during else None
        server.settle()
    except BaseException:
        server.kill()
        raise
    status = server.interrupt()
    return Run(port, server.stdout(), server.stderr(), listening, sequencer, postmaster, postgres, status,
               postgres_processes_on(clone), postmaster_environment, cli)


def cli(clone: Path, *args: str):
    return run_in_clone(clone, newcomer_env(), "-m", "app.cli", *args)


def ingest_one(url: str, api_key: str, label: str) -> dict:
    signer = AgentSigner(bytes(range(32)), TENANT, "26f1b94f-9b48-4d80-ae3c-5af305fc1062", key_id=1)
    client = SequencerClient(url, api_key)
    client.register_signer(signer)
    event = signer.build_event(STORE, "note", label, "NoteAdded", {"label": label})
    receipt = client.ingest([event], agent_id=signer.agent_id).receipts[0]
    assert client.verify_receipt(receipt, event)
    return receipt


@pytest.fixture(scope="module")
def clone():
    with fresh_clone() as path:
        yield path


@pytest.fixture(scope="module")
def first_run(clone, tmp_path_factory):
    def during(server):
        created = cli(clone, "create-api-key", "--tenant", TENANT, "--permissions", "read_write", "--json")
        assert created.returncode == 0, created.stderr
        api_key = json.loads(created.stdout)["api_key"]
        alive_after_cli = not is_gone(postmaster_pid(clone))
        receipt = ingest_one(server.url, api_key, "first run")
        return {"created": created, "api_key": api_key, "alive_after_cli": alive_after_cli, "receipt": receipt}

    return start_and_interrupt(clone, tmp_path_factory.mktemp("first-run"), during)


@pytest.fixture(scope="module")
def second_run(clone, first_run, tmp_path_factory):
    api_key = first_run.cli["api_key"]

    def during(server):
        receipt = ingest_one(server.url, api_key, "second run")
        verified = run_in_clone(clone, newcomer_env(), "-m", "app.verify.cli", "verify", "--url", server.url,
                                "--api-key", api_key, "--tenant", TENANT, "--store", STORE)
        return {"receipt": receipt, "verified": verified}

    return start_and_interrupt(clone, tmp_path_factory.mktemp("second-run"), during)


def test_bin_run_execs_exactly_this_gunicorn_command():
    lines = [line for line in (ROOT / "bin" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[-1] == 'exec gunicorn -c config/gunicorn.conf.py wsgi:app "$@"'


def test_a_clean_start_listens_on_loopback_only(first_run):
    assert first_run.listening == [f"127.0.0.1:{first_run.port}"]
    assert f"{BANNER}127.0.0.1:{first_run.port} " in first_run.stderr


def test_a_clean_start_prints_only_our_own_lines(first_run):
    assert not foreign_lines(first_run.stderr), first_run.stderr
    assert not foreign_lines(first_run.stdout), first_run.stdout
    assert not warning_lines(first_run.stderr + first_run.stdout)


def test_cli_calls_print_only_our_own_lines(first_run):
    created = first_run.cli["created"]
    assert not warning_lines(created.stderr), created.stderr
    assert not foreign_lines(created.stderr), created.stderr


def test_receipts_are_signed_from_the_first_event_with_a_key_kept_under_var(clone, first_run):
    assert first_run.sequencer["signature_alg"] == "ed25519"
    assert first_run.cli["receipt"]["signatureAlg"] == "ed25519"
    key_file = clone / "var" / "receipt-signing-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(bytes.fromhex(key_file.read_text().strip())) == 32


def test_the_embedded_postgres_does_not_inherit_the_receipt_key(first_run):
    assert first_run.postmaster_environment, "the postmaster's environment was read"
    assert not {"VES_SEQUENCER_SIGNING_KEY", "DATABASE_URL", "PORT"} & set(first_run.postmaster_environment)


def test_ctrl_c_stops_gunicorn_and_the_postgres_it_started(first_run):
    assert first_run.exit_status == 0, first_run.stderr
    assert first_run.postmaster is not None and first_run.postmaster in first_run.postgres_while_running
    assert len(first_run.postgres_while_running) > 1, "postmaster and its children were running"
    assert all(is_gone(pid) for pid in first_run.postgres_while_running)
    assert first_run.postgres_after == []


def test_a_cli_call_while_the_server_runs_leaves_its_postgres_alone(first_run):
    assert first_run.cli["alive_after_cli"]
    assert first_run.cli["receipt"]["sequenceNumber"] == 1


def test_a_restart_reuses_the_receipt_key_and_the_whole_history_verifies(first_run, second_run):
    assert second_run.sequencer == first_run.sequencer
    assert second_run.cli["receipt"]["sequenceNumber"] == 2
    verified = second_run.cli["verified"]
    assert (verified.returncode, verified.stdout.strip()) == (0, "verified 2 events in 0 commitments"), \
        verified.stdout + verified.stderr
    assert not warning_lines(verified.stderr)
    assert second_run.postmaster != first_run.postmaster, "the second start ran a PostgreSQL of its own"
    assert second_run.exit_status == 0 and second_run.postgres_after == []
    assert all(is_gone(pid) for pid in second_run.postgres_while_running)


def test_a_cli_call_on_its_own_starts_and_stops_its_postgres(clone, second_run):
    assert postgres_processes_on(clone) == []
    listed = cli(clone, "list-api-keys", "--tenant", TENANT, "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 1, "the CLI reached the embedded database"
    assert not warning_lines(listed.stderr) and not foreign_lines(listed.stderr), listed.stderr
    assert postgres_processes_on(clone) == []


def test_a_postgres_left_by_a_killed_run_is_stopped_by_stop_db(clone, second_run, tmp_path):
    server = start_clone_server(clone, newcomer_env(PORT=str(free_port()), WEB_CONCURRENCY="1"), tmp_path)
    postmaster = postmaster_pid(clone)
    server.kill()
    assert postmaster is not None and not is_gone(postmaster), "kill -9 leaves the database running"
    stopped = run_in_clone(clone, newcomer_env(), "-m", "app.embedded", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert f"(pid {postmaster})" in stopped.stdout and not stopped.stderr
    assert is_gone(postmaster) and postgres_processes_on(clone) == []
    again = run_in_clone(clone, newcomer_env(), "-m", "app.embedded", "stop")
    assert again.returncode == 0 and "is not running" in again.stdout
    assert (ROOT / "bin" / "stop-db").read_text().rstrip().endswith("exec .venv/bin/python -m app.embedded stop")


def inner_spec_copy_tests(clone: Path):
    """The tests that compare copies with ../shared, run from the clone the way CI runs them (`CI=true`)."""
    return run_in_clone(clone, newcomer_env(CI="true"), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "tests/test_spec_copies.py", "tests/ves/test_vectors.py")


def test_spec_copy_tests_pass_in_a_ci_clone_without_shared_and_compare_when_it_exists():
    with fresh_clone() as other:
        shared = other.parent / "shared"
        assert not shared.exists()
        alone = inner_spec_copy_tests(other)
        assert alone.returncode == 0, alone.stdout + alone.stderr
        assert "skipped" not in alone.stdout and " passed" in alone.stdout

        for copy, name in COPIES.items():
            (shared / name).parent.mkdir(parents=True, exist_ok=True)
            (shared / name).write_bytes(shared_part(other / copy))
        identical = inner_spec_copy_tests(other)
        assert identical.returncode == 0, identical.stdout + identical.stderr

        (shared / "VES.md").write_bytes((shared / "VES.md").read_bytes() + b"\nA rule added upstream.\n")
        drifted = inner_spec_copy_tests(other)
        assert drifted.returncode == 1 and "docs/spec/VES.md drifted from" in drifted.stdout, drifted.stdout

        shutil.rmtree(shared)
        vectors = other / "tests" / "vectors" / "ves_v1_public.json"
        vectors.write_bytes(vectors.read_bytes().replace(b'"format_version": 1', b'"format_version":  1', 1))
        edited = inner_spec_copy_tests(other)
        assert edited.returncode == 1, edited.stdout
        assert "tests/vectors/ves_v1_public.json is not the copy SHA256SUMS records" in edited.stdout


def test_this_process_is_the_one_python(clone):
    """The clone runs on this checkout's interpreter; its `app` is the clone's own."""
    probe = run_in_clone(clone, newcomer_env(), "-c", "import app, sys; print(app.__file__); print(sys.prefix)")
    app_file, prefix = probe.stdout.split()
    assert Path(app_file) == clone / "app" / "__init__.py"
    assert prefix == sys.prefix
