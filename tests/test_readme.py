"""The README's quick-start snippets work as written (against a real gunicorn)."""

import os
import re
import subprocess
import sys
import uuid

import pytest

from tests.controls import BOOTSTRAP_KEY
from tests.support.servers import ROOT
from tests.support.servers import start_gunicorn

README = (ROOT / "README.md").read_text()


def _block(language: str, containing: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)
    return next(b for b in blocks if containing in b)


def test_quick_start_has_exactly_the_two_commands_and_ci_runs_the_test_one():
    quick = _block("bash", "./bin/run")
    commands = [line.split("#")[0].strip() for line in quick.splitlines() if line.strip()]
    assert commands == ["./bin/run", "./bin/test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert [line for line in ci.splitlines() if line and not line.startswith("#")][-1] == "exec ./bin/test"


@pytest.mark.slow
def test_sdk_snippet_runs_against_a_real_server(database_url):
    snippet = _block("python", "SequencerClient")
    with start_gunicorn(database_url, env={"BOOTSTRAP_ADMIN_API_KEY": BOOTSTRAP_KEY,
                                           "VES_SEQUENCER_SIGNING_KEY": "22" * 32}, workers=1) as server:
        tenant_id = str(uuid.uuid4())
        created = subprocess.run(
            [sys.executable, "-m", "app.cli", "create-api-key", "--tenant", tenant_id, "--permissions", "read_write",
             "--json"], cwd=ROOT, env={**os.environ, "DATABASE_URL": database_url}, capture_output=True, text=True,
            timeout=60)
        assert created.returncode == 0, created.stderr
        import json

        namespace = {"seed32": os.urandom(32), "tenant_id": tenant_id, "agent_id": str(uuid.uuid4()),
                     "store_id": str(uuid.uuid4()), "api_key": json.loads(created.stdout)["api_key"]}
        exec(snippet.replace("http://127.0.0.1:8080", server.url), namespace)
        assert namespace["result"].receipts[0]["sequenceNumber"] == 1
