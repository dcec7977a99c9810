"""The served OpenAPI document is exact: schemathesis (every check) against a real gunicorn finds no mismatch and no
server error.

The server runs with anchoring configured on a throwaway ganache node, so the anchoring operations answer for real
instead of 503. `positive_data_acceptance` runs as `positive_data_acceptance_or_rule` (tests/schemathesis_hooks.py):
the same check, except for a 400 whose request demonstrably breaks a rule JSON Schema cannot state. Seeded and
bounded: MAX_EXAMPLES per operation and phase, one fixed seed, so a failure reproduces with the printed command.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import requests

from tests.support.ganache import start_ganache
from tests.support.pg import create_database
from tests.support.pg import drop_database
from tests.support.servers import ROOT
from tests.support.servers import start_gunicorn

SEED = 20261201
MAX_EXAMPLES = 100
ADMIN_KEY = "schemathesis-bootstrap-admin-key-0123456789"
CHECKS = "all"
EXCLUDED_CHECKS = "positive_data_acceptance"


@pytest.fixture(scope="module")
def anchored_server(database_server_url):
    node = start_ganache()
    url = create_database(database_server_url)
    try:
        deployer = node.accounts[0].private_key
        env = {"L2_RPC_URL": node.url, "L2_CHAIN_ID": str(node.chain_id), "SEQUENCER_PRIVATE_KEY": deployer,
               "BOOTSTRAP_ADMIN_API_KEY": ADMIN_KEY, "LONG_POLL_MAX_SECONDS": "0.2", "LOG_LEVEL": "warning",
               "VES_SEQUENCER_SIGNING_KEY": "11" * 32, "LOG_PUBLIC": "1"}
        env["SET_REGISTRY_ADDRESS"] = _deploy_registry(node, deployer)
        with start_gunicorn(url, env=env, workers=2) as server:
            yield server
    finally:
        node.stop()
        drop_database(database_server_url, url)


def _deploy_registry(node, key: str) -> str:
    from app.chain import connect
    from app.chain import deploy_registry

    return deploy_registry(connect(node.url), key, chain_id=node.chain_id)


@pytest.mark.slow
def test_schemathesis_finds_no_mismatch_and_no_server_error(anchored_server, tmp_path):
    document = requests.get(anchored_server.url + "/api/openapi.json", timeout=10)
    assert document.status_code == 200
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", anchored_server.url + "/api/openapi.json",
        "--checks", CHECKS, "--exclude-checks", EXCLUDED_CHECKS, "--seed", str(SEED),
        "--max-examples", str(MAX_EXAMPLES), "--workers", "1", "--no-color",
        "--header", f"Authorization: ApiKey {ADMIN_KEY}", "--request-timeout", "10",
        "--suppress-health-check", "all",
        "--report", "junit", "--report-dir", str(tmp_path),
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks", "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    print(output[-20000:])
    print("command:", " ".join(command))
    print(f"schemathesis: {elapsed:.1f} s, seed {SEED}, {MAX_EXAMPLES} examples per operation and phase")
    assert result.returncode == 0, output[-20000:]
    assert "positive_data_acceptance_or_rule" in output or "Test cases:" in output, output[-2000:]
