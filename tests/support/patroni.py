"""A real Patroni cluster for tests: one etcd member and N PostgreSQL 15 nodes under Patroni, on free loopback ports
in a temporary directory, configured with the shipped `deploy/patroni/patroni.yml` (used verbatim) plus a small
test overlay (timings, paths, memory) and the per-node environment variables the runbook documents.

Processes are started by us and ended by PID: Patroni and etcd are our children; each node's postmaster (which
Patroni detaches into its own session) is found from its `postmaster.pid`. As root, everything runs as the
`postgres` system user.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import psycopg2
import requests
import yaml

from tests.support.pgnode import PG_BIN_DIR
from tests.support.pgnode import SERVER_ENVIRONMENT
from tests.support.pgnode import as_server_user
from tests.support.pgnode import descendant_pids
from tests.support.pgnode import kill_at_once
from tests.support.pgnode import make_server_owned
from tests.support.pgnode import pid_alive
from tests.support.pgnode import postmaster_pid
from tests.support.pgnode import render_sequencer_conf
from tests.support.pgnode import server_owned_dir
from tests.support.pgnode import server_user
from tests.support.pgnode import wait_for_connection
from tests.support.pgnode import wait_gone
from tests.support.servers import ROOT
from tests.support.servers import free_port

PATRONI = os.environ.get("TEST_PATRONI", "/usr/bin/patroni")
ETCD = os.environ.get("TEST_ETCD", "/usr/bin/etcd")
SHIPPED_CONFIG = ROOT / "deploy" / "patroni" / "patroni.yml"
PASSWORDS = {"superuser": "test-superuser-pw", "replication": "test-replication-pw", "rewind": "test-rewind-pw"}


@dataclass(frozen=True)
class Timing:
    """Patroni's failover timing (bootstrap.dcs): seconds. Patroni needs loop_wait + 2 * retry_timeout <= ttl."""

    ttl: int
    loop_wait: int
    retry_timeout: int


TEST_TIMING = Timing(ttl=10, loop_wait=2, retry_timeout=4)
"""Fast but safe on a loaded two-core CI box: a leader must miss renewals for 8-10 s before it loses the key."""


def shipped_timing() -> Timing:
    dcs = yaml.safe_load(SHIPPED_CONFIG.read_text())["bootstrap"]["dcs"]
    return Timing(dcs["ttl"], dcs["loop_wait"], dcs["retry_timeout"])


@dataclass
class PatroniNode:
    name: str
    directory: Path
    pg_port: int
    api_port: int
    process: subprocess.Popen | None = None

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def config_dir(self) -> Path:
        return self.directory / "config"

    @property
    def log_path(self) -> Path:
        return self.directory / "patroni.log"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.pg_port}"

    def superuser_dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres:{PASSWORDS['superuser']}@127.0.0.1:{self.pg_port}/{database}"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def postmaster_pid(self) -> int | None:
        return postmaster_pid(self.data_dir)

    def patroni_alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class PatroniCluster:
    """etcd + `size` Patroni nodes. Use as a context manager: `start()` on entry (waits for a leader and a
    synchronous standby), `stop()` on exit (by PID, then the temporary directory is removed)."""

    size: int = 2
    timing: Timing = TEST_TIMING
    root: Path = field(default_factory=lambda: server_owned_dir("seqpatroni-"))
    nodes: list[PatroniNode] = field(default_factory=list)
    etcd_process: subprocess.Popen | None = None
    etcd_client_port: int = 0

    def __post_init__(self):
        self.archive_dir = make_server_owned(self.root / "wal-archive", 0o700)
        self.scope = f"seqtest-{uuid.uuid4().hex[:8]}"
        if not self.nodes:
            self.nodes = [PatroniNode(f"pg{i + 1}", make_server_owned(self.root / f"pg{i + 1}", 0o700),
                                      free_port(), free_port()) for i in range(self.size)]

    def __enter__(self) -> "PatroniCluster":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # --- start -------------------------------------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> None:
        self._start_etcd()
        for node in self.nodes:
            self._write_config(node)
        for node in self.nodes:
            self.start_node(node)
        self.wait_for_leader_and_sync_standby(timeout=timeout)

    def _start_etcd(self) -> None:
        self.etcd_client_port, peer_port = free_port(), free_port()
        data_dir = make_server_owned(self.root / "etcd", 0o700)
        client, peer = f"http://127.0.0.1:{self.etcd_client_port}", f"http://127.0.0.1:{peer_port}"
        argv = [ETCD, "--name", "etcd1", "--data-dir", str(data_dir / "member-data"),
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", f"etcd1={peer}", "--initial-cluster-state", "new",
                "--initial-cluster-token", self.scope, "--logger", "zap", "--log-level", "warn"]
        self.etcd_process = _spawn(argv, self.root / "etcd.log", SERVER_ENVIRONMENT)
        deadline = time.monotonic() + 30
        while True:
            if self.etcd_process.poll() is not None:
                raise RuntimeError(f"etcd exited:\n{_tail(self.root / 'etcd.log')}")
            with contextlib.suppress(requests.RequestException, ValueError):
                if requests.get(f"{client}/health", timeout=1).json().get("health") == "true":
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"etcd not healthy in 30 s:\n{_tail(self.root / 'etcd.log')}")
            time.sleep(0.1)

    def _write_config(self, node: PatroniNode) -> None:
        """The shipped patroni.yml verbatim, then `zz-test.yml`, which Patroni merges over it (files of a config
        directory are read in name order). The overlay changes only what a loopback test must: timings, paths,
        memory, and the archive location."""
        config_dir = make_server_owned(node.config_dir)
        shutil.copy(SHIPPED_CONFIG, config_dir / "patroni.yml")
        render_sequencer_conf(config_dir, self.archive_dir)
        socket_dir = make_server_owned(node.directory / "socket")
        overlay = {
            "scope": self.scope,
            "log": {"level": "INFO"},
            "bootstrap": {"dcs": {"ttl": self.timing.ttl, "loop_wait": self.timing.loop_wait,
                                  "retry_timeout": self.timing.retry_timeout,
                                  "postgresql": {"parameters": {"max_connections": 100, "wal_keep_size": "256MB"}}}},
            "postgresql": {
                "data_dir": str(node.data_dir),
                "bin_dir": str(PG_BIN_DIR),
                "pgpass": str(node.directory / "pgpass"),
                "custom_conf": str(config_dir / "sequencer.conf"),
                "parameters": {"unix_socket_directories": str(socket_dir), "shared_buffers": "64MB",
                               "effective_cache_size": "256MB", "work_mem": "4MB", "maintenance_work_mem": "64MB",
                               "max_wal_size": "256MB", "min_wal_size": "80MB", "log_connections": "off",
                               "log_disconnections": "off"},
            },
            "watchdog": {"mode": "off"},
        }
        (config_dir / "zz-test.yml").write_text(yaml.safe_dump(overlay))
        user = server_user()
        for path in config_dir.iterdir():
            os.chown(path, user.pw_uid, user.pw_gid)

    def node_environment(self, node: PatroniNode) -> dict[str, str]:
        """The per-node variables of deploy/patroni/node.env.example."""
        return {
            **SERVER_ENVIRONMENT,
            "HOME": str(node.directory),
            "PATRONI_NAME": node.name,
            "PATRONI_RESTAPI_LISTEN": f"127.0.0.1:{node.api_port}",
            "PATRONI_RESTAPI_CONNECT_ADDRESS": f"127.0.0.1:{node.api_port}",
            "PATRONI_POSTGRESQL_LISTEN": node.host_port,
            "PATRONI_POSTGRESQL_CONNECT_ADDRESS": node.host_port,
            "PATRONI_ETCD3_HOSTS": f"127.0.0.1:{self.etcd_client_port}",
            "PATRONI_SUPERUSER_PASSWORD": PASSWORDS["superuser"],
            "PATRONI_REPLICATION_PASSWORD": PASSWORDS["replication"],
            "PATRONI_REWIND_PASSWORD": PASSWORDS["rewind"],
        }

    def start_node(self, node: PatroniNode) -> None:
        """Start (or restart, after `kill_node`) the node's Patroni; it starts and manages PostgreSQL itself."""
        assert not node.patroni_alive(), f"{node.name}'s Patroni is already running"
        node.process = _spawn([PATRONI, str(node.config_dir)], node.log_path, self.node_environment(node))

    # --- observe -----------------------------------------------------------------------------------------

    def members(self) -> list[dict]:
        """`GET /cluster` from the first node that answers: name, role (leader / sync_standby / replica), state."""
        for node in self.nodes:
            if not node.patroni_alive():
                continue
            with contextlib.suppress(requests.RequestException, ValueError):
                return requests.get(f"{node.api_url}/cluster", timeout=1).json()["members"]
        return []

    def node(self, name: str) -> PatroniNode:
        return next(node for node in self.nodes if node.name == name)

    def role_of(self, role: str, members: list[dict] | None = None) -> PatroniNode | None:
        for member in members if members is not None else self.members():
            if member["role"] == role and member.get("state") in ("running", "streaming"):
                return self.node(member["name"])
        return None

    def wait_for_leader_and_sync_standby(self, timeout: float = 90.0,
                                         leader: PatroniNode | None = None) -> tuple[PatroniNode, PatroniNode]:
        """Poll until a leader runs, accepts writes, and has a standby that PostgreSQL itself reports as
        `sync` in pg_stat_replication. Returns (leader, sync standby)."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            self._check_processes()
            members = self.members()
            found_leader, standby = self.role_of("leader", members), self.role_of("sync_standby", members)
            last = members
            if found_leader and standby and (leader is None or found_leader is leader):
                with contextlib.suppress(psycopg2.Error):
                    if self.sync_state(found_leader).get(standby.name) == "sync" and self.is_writable(found_leader):
                        return found_leader, standby
            time.sleep(0.2)
        raise RuntimeError(f"no leader with a synchronous standby within {timeout}s; members: {last}\n"
                           + self.diagnostics())

    def wait_for_leader(self, timeout: float = 60.0, not_node: PatroniNode | None = None) -> PatroniNode:
        """Poll until a node other than `not_node` is the leader and accepts writes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader = self.role_of("leader")
            if leader is not None and leader is not not_node:
                with contextlib.suppress(psycopg2.Error):
                    if self.is_writable(leader):
                        return leader
            time.sleep(0.1)
        raise RuntimeError(f"no new leader within {timeout}s; members: {self.members()}\n" + self.diagnostics())

    def sync_state(self, leader: PatroniNode) -> dict[str, str]:
        """application_name -> sync_state of the leader's walsenders."""
        with contextlib.closing(psycopg2.connect(leader.superuser_dsn(), connect_timeout=2)) as conn:
            with conn.cursor() as cursor:
                cursor.execute("SELECT application_name, sync_state FROM pg_stat_replication")
                return dict(cursor.fetchall())

    @staticmethod
    def is_writable(node: PatroniNode) -> bool:
        with contextlib.closing(psycopg2.connect(node.superuser_dsn(), connect_timeout=2)) as conn:
            with conn.cursor() as cursor:
                cursor.execute("SELECT NOT pg_is_in_recovery()")
                return bool(cursor.fetchone()[0])

    def libpq_url(self, user: str, password: str, database: str) -> str:
        """The documented DATABASE_URL: every node, libpq picks the one that accepts writes."""
        hosts = ",".join(node.host_port for node in self.nodes)
        return f"postgresql://{user}:{password}@{hosts}/{database}?target_session_attrs=read-write"

    def _check_processes(self) -> None:
        if self.etcd_process is not None and self.etcd_process.poll() is not None:
            raise RuntimeError(f"etcd exited:\n{_tail(self.root / 'etcd.log')}")
        for node in self.nodes:
            if node.process is not None and node.process.poll() is not None and node.process.returncode != -9:
                raise RuntimeError(f"{node.name}'s Patroni exited {node.process.returncode}:\n"
                                   f"{node.log_text()[-4000:]}")

    def diagnostics(self) -> str:
        parts = []
        for node in self.nodes:
            parts.append(f"--- {node.name} patroni.log (tail)\n{node.log_text()[-3000:]}")
            for log in sorted((node.data_dir / "log").glob("*"))[-1:] if (node.data_dir / "log").exists() else []:
                parts.append(f"--- {node.name} {log.name} (tail)\n{_tail(log, 2000)}")
        return "\n".join(parts)

    # --- faults and teardown -----------------------------------------------------------------------------

    def kill_node(self, node: PatroniNode) -> float:
        """The whole node dies at once: SIGKILL its Patroni, its postmaster and every process under either.
        Killing only the postmaster would make Patroni restart it in place (no failover). Returns the monotonic
        time by which every SIGKILL was sent (the roots are stopped first; backends run on for the few
        milliseconds it takes to find them)."""
        postmaster = node.postmaster_pid()
        assert node.patroni_alive() and postmaster is not None, f"{node.name} is not running"
        victims = kill_at_once([node.process.pid, postmaster])
        killed_at = time.monotonic()
        node.process.wait(timeout=10)
        wait_gone(victims)
        return killed_at

    def create_database(self, user: str, password: str, database: str) -> None:
        """What an operator does once after bootstrap (docs/DEPLOYMENT.md): the sequencer's role and database, on
        the leader."""
        leader = self.wait_for_leader()
        conn = psycopg2.connect(leader.superuser_dsn(), connect_timeout=5)
        conn.autocommit = True
        with contextlib.closing(conn), conn.cursor() as cursor:
            cursor.execute(f"CREATE ROLE {user} LOGIN PASSWORD %s", (password,))
            cursor.execute(f"CREATE DATABASE {database} OWNER {user}")
        # Synchronous commit means the standby has the WAL, not that it has replayed it. Until it has, a login to
        # the new database on the standby fails, and libpq does not go on to the next host after a refused login.
        for node in self.nodes:
            if node.patroni_alive():
                wait_for_connection(f"postgresql://{user}:{password}@{node.host_port}/{database}", timeout=30)

    def stop(self) -> None:
        """End every process we started, by PID: each Patroni first (SIGKILL, so it cannot restart anything),
        then each postmaster with an immediate shutdown (SIGQUIT: it still removes its shared memory; SIGKILL
        after 20 s), then etcd; remove the directory."""
        for node in self.nodes:
            if node.patroni_alive():
                kill_at_once([node.process.pid])
            if node.process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    node.process.wait(timeout=10)
        running = [(node.postmaster_pid(), node) for node in self.nodes]
        running = [(pid, descendant_pids(pid)) for pid, node in running if pid is not None]
        for pid, _ in running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGQUIT)
        for pid, children in running:
            try:
                wait_gone([pid], 20)
            except RuntimeError:
                kill_at_once([pid, *children])
            with contextlib.suppress(RuntimeError):
                wait_gone([p for p in children if pid_alive(p)], 10)
        if self.etcd_process is not None and self.etcd_process.poll() is None:
            self.etcd_process.terminate()
            try:
                self.etcd_process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.etcd_process.kill()
                self.etcd_process.wait(timeout=5)
        shutil.rmtree(self.root, ignore_errors=True)


def _spawn(argv: list[str], log_path: Path, env: dict[str, str]) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        user = server_user()
        os.chown(log_path, user.pw_uid, user.pw_gid)
        return subprocess.Popen(as_server_user(argv), env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, cwd=str(log_path.parent))


def _tail(path: Path, size: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return ""


def describe(members: list[dict]) -> str:
    return json.dumps([{k: m.get(k) for k in ("name", "role", "state", "timeline", "lag")} for m in members])
