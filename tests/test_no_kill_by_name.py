"""Scripts and tests end only processes they started, by PID: nothing in the repository kills or stops by name.

`bin/install-test-tools` once ran `pkill -x prometheus` (killing a user's own Prometheus) and stopped the nginx,
prometheus and pgbouncer services whether or not it had installed them. It now keeps the packages' daemons from
starting at all (policy-rc.d), so there is nothing to stop.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KILL_BY_NAME = re.compile(r"\b(pkill|killall|pgrep\s+-f\s.*\|\s*xargs\s+kill)\b")


def tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    files = []
    for name in names:
        path = ROOT / name
        if path.suffix in (".json", ".lock", ".sol") or not path.is_file() or path == Path(__file__):
            continue
        try:
            files.append((name, path.read_text(encoding="utf-8")))
        except UnicodeDecodeError:
            continue
    return files


def test_nothing_in_the_repository_kills_processes_by_name():
    hits = [f"{name}:{number}: {line.strip()}" for name, text in tracked_text_files()
            for number, line in enumerate(text.splitlines(), 1) if KILL_BY_NAME.search(line)]
    assert not hits, "\n".join(hits)


def test_install_test_tools_stops_no_service_it_did_not_start():
    script = (ROOT / "bin" / "install-test-tools").read_text()
    assert not re.search(r"systemctl\s+(stop|kill)|service\s+\S+\s+stop|pg_ctlcluster\s+\S+\s+\S+\s+stop", script)
    assert "policy-rc.d" in script and "exit 101" in script
