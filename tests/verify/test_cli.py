"""`ves-verify` as a process: exit codes and the one-line verdict, over bundle files and single proofs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.verify.cli import main
from tests.verify.conftest import build_bundle

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "tests" / "vectors" / "ves_v1_public.json").read_text(encoding="utf-8"))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.verify.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def test_verify_a_bundle_file_and_a_tampered_copy(tmp_path):
    good = build_bundle()
    bad = build_bundle()
    bad["events"][3]["payload"]["total"] += 1
    (tmp_path / "good.json").write_text(json.dumps(good))
    (tmp_path / "bad.json").write_text(json.dumps(bad))

    ok = run_cli("verify", "--bundle", str(tmp_path / "good.json"))
    assert (ok.returncode, ok.stdout.strip()) == (0, "verified 7 events in 2 commitments")

    failed = run_cli("verify", "--bundle", str(tmp_path / "bad.json"))
    assert failed.returncode == 1
    assert failed.stdout.startswith("FAILED: event sequence 4: payload_plain_hash failed:")


def test_json_report_and_pinned_key(tmp_path, capsys):
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(build_bundle()))
    assert main(["verify", "--bundle", str(path), "--json", "--sequencer-public-key", "0x" + "00" * 32]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert report["discrepancies"][0]["check"] == "sequencer_public_key"


def test_unreadable_input_and_missing_source_exit_2(tmp_path, capsys):
    (tmp_path / "broken.json").write_text("{not json")
    assert main(["verify", "--bundle", str(tmp_path / "broken.json")]) == 2
    assert main(["verify", "--bundle", str(tmp_path / "absent.json")]) == 2
    assert main(["verify"]) == 2
    assert "ves-verify: error" in capsys.readouterr().err


def test_verify_proof_with_a_vector_proof():
    batch = next(b for b in VECTORS["merkle_batches"] if b.get("proofs") and len(b["proofs"][0]["proof_path"]) > 1)
    proof = batch["proofs"][0]
    args = ["verify-proof", "--leaf-hash", proof["leaf_hash"], "--merkle-root", batch["merkle_root"],
            "--leaf-index", str(proof["leaf_index"]), "--proof-path", ",".join(proof["proof_path"]),
            "--leaf-count", str(batch["leaf_count"])]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("proof valid")

    shifted = list(args)
    shifted[shifted.index("--leaf-index") + 1] = str(proof["leaf_index"] + 2 ** len(proof["proof_path"]))
    assert main(shifted) == 1


@pytest.mark.parametrize(
    "args",
    [
        ["--leaf-hash", "0x12", "--merkle-root", "0x" + "00" * 32, "--leaf-index", "0"],
        ["--leaf-hash", "0x" + "00" * 32, "--merkle-root", "0x" + "00" * 32, "--leaf-index", "0",
         "--proof-path", "0xabc"],
    ],
    ids=["short_leaf", "short_sibling"],
)
def test_verify_proof_rejects_malformed_hex_with_exit_2(args):
    assert main(["verify-proof", *args]) == 2


def test_a_single_leaf_is_its_own_root():
    leaf = "0x" + "ab" * 32
    assert main(["verify-proof", "--leaf-hash", leaf, "--merkle-root", leaf, "--leaf-index", "0",
                 "--leaf-count", "1"]) == 0
    assert main(["verify-proof", "--leaf-hash", leaf, "--merkle-root", leaf, "--leaf-index", "1"]) == 1


def unsigned_receipts(bundle: dict) -> dict:
    """The bundle as a sequencer without a receipt key serves it: `signature_alg: "none"`, empty signatures."""
    bundle["sequencer"] = {"sequencer_id": "test-sequencer", "public_key": None, "signature_alg": "none"}
    for event in bundle["events"]:
        event["sequencer_receipt"].update(signature_alg="none", sequencer_signature="")
    return bundle


def test_unsigned_receipts_are_never_reported_as_verified(tmp_path):
    path = tmp_path / "unsigned.json"
    path.write_text(json.dumps(unsigned_receipts(build_bundle())))

    plain = run_cli("verify", "--bundle", str(path))
    assert plain.returncode == 3, plain.stdout + plain.stderr
    verdict = plain.stdout.splitlines()[0]
    assert verdict.startswith("NOT FULLY VERIFIED: no discrepancy in 7 events and 2 commitments")
    assert "NOT checked: receipt signatures" in verdict and "signature_alg 'none'" in verdict
    assert not any(line.startswith("verified") for line in plain.stdout.splitlines())

    as_json = run_cli("verify", "--bundle", str(path), "--json")
    assert as_json.returncode == 3
    report = json.loads(as_json.stdout)
    assert (report["ok"], report["complete"]) == (True, False)
    assert report["unchecked"] and report["unchecked"][0].startswith("receipt signatures")


def test_a_discrepancy_in_an_unsigned_bundle_still_fails(tmp_path):
    bundle = unsigned_receipts(build_bundle())
    bundle["events"][1]["payload"]["total"] += 1
    path = tmp_path / "bad-unsigned.json"
    path.write_text(json.dumps(bundle))
    result = run_cli("verify", "--bundle", str(path))
    assert result.returncode == 1
    assert result.stdout.startswith("FAILED: event sequence 2: payload_plain_hash failed:")


def test_signed_bundle_is_complete_and_prints_only_the_verdict(tmp_path):
    path = tmp_path / "signed.json"
    path.write_text(json.dumps(build_bundle()))
    report = json.loads(run_cli("verify", "--bundle", str(path), "--json").stdout)
    assert (report["ok"], report["complete"], report["unchecked"]) == (True, True, [])


def test_plain_output_lists_the_notes(tmp_path):
    bundle = build_bundle()
    bundle["range"] = {"from": 4, "to": 7}
    bundle["events"] = bundle["events"][3:]
    path = tmp_path / "partial.json"
    path.write_text(json.dumps(bundle))
    result = run_cli("verify", "--bundle", str(path))
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[0] == "verified 4 events in 2 commitments"
    assert any(line.startswith("note: commitment ") and "outside the bundle's range" in line
               for line in result.stdout.splitlines())
