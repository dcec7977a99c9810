"""Build and run tests/interop/tlogverify, the Go verifier of our checkpoints and proofs (LOG.md interop).

Built offline in GOPATH mode against Debian's golang-go and golang-golang-x-mod-dev (`/usr/share/gocode`): no
module proxy, no network, a private GOCACHE. Reusable from any test: `build_tlogverify(dir)` once per session,
then `run_tlogverify(binary, cases)` with the JSON cases main.go documents.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from tests.support.servers import ROOT

SOURCE = ROOT / "tests" / "interop" / "tlogverify" / "main.go"
DEBIAN_GOPATH = Path("/usr/share/gocode")
X_MOD = DEBIAN_GOPATH / "src" / "golang.org" / "x" / "mod" / "sumdb"


class GoToolchainMissing(RuntimeError):
    """`go` or golang.org/x/mod is not installed (bin/install-test-tools installs golang-go and
    golang-golang-x-mod-dev)."""


def build_tlogverify(work_dir: Path) -> Path:
    """Compile main.go into `work_dir/tlogverify` and return its path. Raises GoToolchainMissing or
    CalledProcessError (with Go's output) when it cannot."""
    go = shutil.which("go") or ("/usr/bin/go" if Path("/usr/bin/go").exists() else None)
    if go is None or not (X_MOD / "note" / "note.go").is_file() or not (X_MOD / "tlog" / "tlog.go").is_file():
        raise GoToolchainMissing("the interop test needs Debian's golang-go and golang-golang-x-mod-dev "
                                 "(run bin/install-test-tools)")
    work_dir.mkdir(parents=True, exist_ok=True)
    binary = work_dir / "tlogverify"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work_dir), "GO111MODULE": "off",
        "GOPATH": f"{DEBIAN_GOPATH}:{work_dir / 'gopath'}", "GOCACHE": str(work_dir / "gocache"),
        "GOPROXY": "off", "GOFLAGS": "", "CGO_ENABLED": "0", "GOTOOLCHAIN": "local",
    }
    subprocess.run([go, "build", "-o", str(binary), str(SOURCE)], cwd=work_dir, env=env, check=True,
                   capture_output=True, text=True, timeout=300)
    return binary


def run_tlogverify(binary: Path, cases: list[dict]) -> list[dict]:
    """Feed `cases` (JSON objects, one per line) to the Go verifier; return its results in the same order."""
    stdin = "".join(json.dumps(case) + "\n" for case in cases)
    completed = subprocess.run([str(binary)], input=stdin, capture_output=True, text=True, timeout=300, check=True)
    results = [json.loads(line) for line in completed.stdout.splitlines()]
    assert len(results) == len(cases), completed.stderr
    return results
