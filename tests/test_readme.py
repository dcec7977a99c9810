"""The README's quick-start and first-steps snippets work as written, on a fresh clone with nothing configured
(`./bin/run`'s gunicorn on the embedded database), and the SDK snippet is executed exactly as the README prints it."""

import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.support.fresh_clone import fresh_clone
from tests.support.fresh_clone import newcomer_env
from tests.support.fresh_clone import run_in_clone
from tests.support.fresh_clone import start_clone_server
from tests.support.servers import ROOT
from tests.support.servers import free_port

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


@pytest.fixture(scope="module")
def newcomer(tmp_path_factory):
    """A fresh clone's server with nothing set, and the README's shell block run in the clone (API key exported)."""
    with fresh_clone() as clone:
        venv_bin = str(Path(sys.executable).parent)
        env = newcomer_env(PORT=str(free_port()), WEB_CONCURRENCY="1")
        server = start_clone_server(clone, env, tmp_path_factory.mktemp("readme"))
        try:
            shell_env = newcomer_env(PATH=f"{venv_bin}:{env['PATH']}", PYTHONPATH=str(clone))
            shell = subprocess.run(["bash", "-euo", "pipefail", "-c",
                                    _block("bash", "create-api-key") + '\nprintf %s "$SEQUENCER_API_KEY"'],
                                   cwd=clone, env=shell_env, capture_output=True, text=True, timeout=120)
            yield clone, server, shell, shell_env
        finally:
            server.interrupt()


@pytest.mark.slow
def test_first_steps_shell_block_exports_an_api_key(newcomer):
    _, _, shell, _ = newcomer
    assert shell.returncode == 0, shell.stderr
    assert re.fullmatch(r"\S{16,}", shell.stdout), shell.stdout
    assert "warning" not in shell.stderr.lower(), shell.stderr


@pytest.mark.slow
def test_sdk_snippet_runs_exactly_as_printed_and_its_key_works_with_register_agent_key(newcomer):
    clone, server, shell, shell_env = newcomer
    snippet = _block("python", "SequencerClient")
    (clone / "first_event.py").write_text(snippet)
    env = {**shell_env, "SEQUENCER_API_KEY": shell.stdout, "SEQUENCER_URL": server.url}
    result = subprocess.run([sys.executable, "first_event.py"], cwd=clone, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    agent_line, sequenced_line = result.stdout.splitlines()
    match = re.fullmatch(r"agent (\S+) public key (0x[0-9a-f]{64})", agent_line)
    assert match, agent_line
    assert re.fullmatch(r"sequenced as 1 in store \S+", sequenced_line), sequenced_line

    agent_id, public_key = match.groups()
    assert str(uuid.UUID(agent_id)) == agent_id
    again = run_in_clone(clone, shell_env, "-m", "app.cli", "register-agent-key", "--tenant",
                         "11111111-1111-4111-8111-111111111111", "--agent", agent_id, "--key-id", "1",
                         "--public-key", public_key)
    assert again.returncode == 0, again.stdout + again.stderr
    other = run_in_clone(clone, shell_env, "-m", "app.cli", "register-agent-key", "--tenant",
                         "11111111-1111-4111-8111-111111111111", "--agent", agent_id, "--key-id", "1",
                         "--public-key", "0x" + "ab" * 32)
    assert other.returncode != 0, "another key for the same (agent, key id) must be refused"


def test_readme_mentions_every_step_the_snippet_relies_on():
    snippet = _block("python", "SequencerClient")
    for name in ("seed32", "tenant_id", "store_id", "agent_id", "api_key"):
        assert re.search(rf"^{name} = ", snippet, flags=re.M), f"the snippet uses {name} without defining it"
    assert "register-agent-key" in README and "public_key_hex" in snippet
