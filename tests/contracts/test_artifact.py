"""The committed contracts/SetRegistry.json is exactly what the pinned solc builds from the source."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess

import pytest

from app.chain.registry import ARTIFACT_PATH
from app.chain.registry import load_artifact

CONTRACTS_DIR = ARTIFACT_PATH.parent
SOURCE_PATH = CONTRACTS_DIR / "SetRegistry.sol"
INSTALL_HINT = "run `npm ci --prefix contracts` (needs node and the npm registry) and retry"


@pytest.fixture(scope="module")
def fresh_artifact() -> dict:
    """Compile the source now with contracts/build.js and the solc in contracts/node_modules."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"node is not on PATH; install Node.js, then {INSTALL_HINT}")
    if not (CONTRACTS_DIR / "node_modules" / "solc").is_dir():
        pytest.fail(f"solc is not installed in contracts/node_modules: {INSTALL_HINT}")
    build = subprocess.run(
        [node, str(CONTRACTS_DIR / "build.js"), "--stdout"], capture_output=True, text=True, timeout=120
    )
    if build.returncode != 0:
        pytest.fail(f"contracts/build.js failed ({INSTALL_HINT} if solc is missing):\n{build.stderr}")
    return json.loads(build.stdout)


def test_committed_bytecode_equals_fresh_compile(fresh_artifact):
    committed = load_artifact()
    assert committed["bytecode"] == fresh_artifact["bytecode"], "stale artifact: run node contracts/build.js"
    assert committed["deployedBytecode"] == fresh_artifact["deployedBytecode"]


def test_committed_abi_equals_fresh_compile(fresh_artifact):
    assert load_artifact()["abi"] == fresh_artifact["abi"]


def test_compiler_is_the_pinned_one(fresh_artifact):
    committed = load_artifact()
    pinned = json.loads((CONTRACTS_DIR / "package.json").read_text())["devDependencies"]["solc"]
    assert committed["compiler"] == fresh_artifact["compiler"]
    assert committed["compiler"]["version"].startswith(f"{pinned}+commit.")
    assert f"pragma solidity {pinned};" in SOURCE_PATH.read_text()


def test_source_hash_matches_the_source_file():
    assert load_artifact()["source_sha256"] == hashlib.sha256(SOURCE_PATH.read_bytes()).hexdigest()


def test_artifact_has_the_anchoring_interface():
    functions = {entry["name"]: entry for entry in load_artifact()["abi"] if entry["type"] == "function"}
    commit_inputs = [(p["name"], p["type"]) for p in functions["commitBatch"]["inputs"]]
    assert commit_inputs == [
        ("streamId", "bytes32"),
        ("sequenceStart", "uint64"),
        ("sequenceEnd", "uint64"),
        ("eventCount", "uint32"),
        ("merkleRoot", "bytes32"),
        ("prevStateRoot", "bytes32"),
        ("newStateRoot", "bytes32"),
        ("batchId", "bytes16"),
    ]
    assert [p["type"] for p in functions["getHead"]["outputs"]] == ["uint64", "bytes32"]
    assert functions["getBatch"]["outputs"][-1] == {"internalType": "bool", "name": "exists", "type": "bool"}
    assert {"setSubmitter", "transferOwnership", "isSubmitter", "owner"} <= functions.keys()
