"""Run a throwaway ganache node (contracts/node_modules/.bin/ganache) on 127.0.0.1 for end-to-end tests.

Accounts have fixed, known private keys (sha256 of a label), each funded with 1000 ETH, so tests
can sign transactions locally exactly as production does.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

from eth_account import Account

REPO_ROOT = Path(__file__).resolve().parents[2]
GANACHE_BIN = REPO_ROOT / "contracts" / "node_modules" / ".bin" / "ganache"
DEFAULT_CHAIN_ID = 84532001
ACCOUNT_BALANCE_WEI = 1000 * 10**18
STARTUP_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class GanacheAccount:
    address: str
    private_key: str


def test_account(index: int) -> GanacheAccount:
    """The index-th deterministic test account (same keys in every run)."""
    private_key = "0x" + hashlib.sha256(f"stateset-ganache-account-{index}".encode()).hexdigest()
    return GanacheAccount(address=Account.from_key(private_key).address, private_key=private_key)


test_account.__test__ = False


@dataclass
class GanacheNode:
    """A running ganache process. `stop()` kills its whole process group; idempotent."""

    url: str
    chain_id: int
    accounts: list[GanacheAccount]
    process: subprocess.Popen = field(repr=False)
    log_path: Path = field(repr=False)

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
            except ProcessLookupError:
                pass
        self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> GanacheNode:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rpc_chain_id(url: str) -> int | None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return int(json.load(response)["result"], 16)
    except (urllib.error.URLError, ConnectionError, TimeoutError, KeyError, ValueError):
        return None


def start_ganache(chain_id: int = DEFAULT_CHAIN_ID, port: int | None = None, account_count: int = 3) -> GanacheNode:
    """Start ganache on 127.0.0.1 and return once eth_chainId answers `chain_id`.

    Raises RuntimeError (with the node's log) if ganache is not installed, exits early or does
    not answer within STARTUP_TIMEOUT_SECONDS.
    """
    if not GANACHE_BIN.exists():
        raise RuntimeError(f"ganache is not installed at {GANACHE_BIN}: run `npm ci --prefix contracts`")
    port = port or _free_port()
    accounts = [test_account(index) for index in range(account_count)]
    command = [
        str(GANACHE_BIN),
        "--server.host=127.0.0.1",
        f"--server.port={port}",
        f"--chain.chainId={chain_id}",
        "--logging.quiet",
    ]
    command += [f"--wallet.accounts={account.private_key},{ACCOUNT_BALANCE_WEI}" for account in accounts]
    log_fd, log_name = tempfile.mkstemp(prefix="ganache-", suffix=".log")
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=log_fd, stderr=subprocess.STDOUT, start_new_session=True
    )
    os.close(log_fd)
    node = GanacheNode(
        url=f"http://127.0.0.1:{port}", chain_id=chain_id, accounts=accounts, process=process, log_path=Path(log_name)
    )
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if _rpc_chain_id(node.url) == chain_id:
            return node
        time.sleep(0.1)
    log = node.log_path.read_text(errors="replace")[-2000:]
    node.stop()
    raise RuntimeError(f"ganache did not come up on {node.url} (exit code: {process.returncode}); log:\n{log}")
