"""Our checkpoints, signatures, tree hashes and proofs, checked by Go's golang.org/x/mod/sumdb/{note,tlog}.

Every artefact our core produces must be accepted by the implementation we did not write, every mutated one
refused, and on every case (valid or not) our verifier and Go's must agree. Go's tlog defines no consistency check
from the empty tree and no RFC 6962 empty-tree hash, so those two LOG.md cases are not sent.
"""

from __future__ import annotations

import base64
import hashlib
import random
import uuid

from app.ves import checkpoint as cp
from app.ves import note
from app.ves import tlog
from app.ves.hashing import stream_id
from tests.support.golang import run_tlogverify

MAX_SIZE = 40
ENTRIES = [hashlib.sha256(b"VES leaf %d" % i).digest() for i in range(70)]
LEAVES = [tlog.hash_leaf(entry) for entry in ENTRIES]
READ = tlog.memory_node_reader(LEAVES)
ROOTS = [tlog.root_hash(size, READ) for size in range(len(ENTRIES) + 1)]
LOG_SEED = hashlib.sha256(b"interop log key").digest()


def _flip(value: bytes, bit: int) -> bytes:
    mutated = bytearray(value)
    mutated[bit // 8] ^= 1 << (bit % 8)
    return bytes(mutated)


def _inclusion_case(index, size, proof, root, entry, case_id):
    return {"id": case_id, "kind": "inclusion", "index": index, "tree_size": size, "entry": entry.hex(),
            "leaf_hash": tlog.hash_leaf(entry).hex(), "proof": [node.hex() for node in proof], "root": root.hex()}


def _consistency_case(first, second, proof, first_root, second_root, case_id):
    return {"id": case_id, "kind": "consistency", "first": first, "second": second,
            "proof": [node.hex() for node in proof], "first_root": first_root.hex(),
            "second_root": second_root.hex()}


def test_go_computes_the_same_tree_hash_for_every_size(tlogverify):
    cases = [{"id": size, "kind": "tree", "entries": [e.hex() for e in ENTRIES[:size]],
              "root": tlog.tree_hash(ENTRIES[:size]).hex()} for size in range(1, len(ENTRIES) + 1)]
    results = run_tlogverify(tlogverify, cases)
    assert [r for r in results if not r["ok"]] == []


def test_go_accepts_every_inclusion_proof_and_refuses_every_mutation(tlogverify):
    rng = random.Random(13)
    cases, expected = [], []
    for size in range(1, MAX_SIZE + 1):
        for index in range(size):
            proof = tlog.inclusion_proof(index, size, READ)
            cases.append(_inclusion_case(index, size, proof, ROOTS[size], ENTRIES[index], f"ok {index}/{size}"))
            expected.append(True)
            bit = rng.randrange(256)
            mutations = [
                ("root", _inclusion_case(index, size, proof, _flip(ROOTS[size], bit), ENTRIES[index], None)),
                ("entry", _inclusion_case(index, size, proof, ROOTS[size], _flip(ENTRIES[index], bit), None)),
                ("truncated", _inclusion_case(index, size, proof[:-1], ROOTS[size], ENTRIES[index], None)),
                ("extended", _inclusion_case(index, size, proof + [ROOTS[size]], ROOTS[size], ENTRIES[index], None)),
                ("next index", _inclusion_case(index + 1, size, proof, ROOTS[size], ENTRIES[index], None)),
                ("bigger tree", _inclusion_case(index, size + 1, proof, ROOTS[size + 1], ENTRIES[index], None)),
            ]
            if proof:
                position = rng.randrange(len(proof))
                mutated = list(proof)
                mutated[position] = _flip(mutated[position], bit)
                mutations.append(("node", _inclusion_case(index, size, mutated, ROOTS[size], ENTRIES[index], None)))
            for name, case in mutations:
                if name == "truncated" and not proof:
                    continue
                case["id"] = f"{name} {index}/{size}"
                cases.append(case)
                expected.append(False)
    results = run_tlogverify(tlogverify, cases)
    wrong = [(case["id"], result) for case, result, want in zip(cases, results, expected) if result["ok"] is not want]
    assert wrong == []
    ours = [tlog.verify_inclusion(c["index"], c["tree_size"], bytes.fromhex(c["leaf_hash"]),
                                  [bytes.fromhex(n) for n in c["proof"]], bytes.fromhex(c["root"])) for c in cases]
    assert ours == expected


def test_go_accepts_every_consistency_proof_and_refuses_every_mutation(tlogverify):
    rng = random.Random(14)
    cases, expected = [], []
    for second in range(1, MAX_SIZE + 1):
        for first in range(1, second + 1):
            proof = tlog.consistency_proof(first, second, READ)
            cases.append(_consistency_case(first, second, proof, ROOTS[first], ROOTS[second], f"ok {first}/{second}"))
            expected.append(True)
            bit = rng.randrange(256)
            mutations = [
                ("first root", _consistency_case(first, second, proof, _flip(ROOTS[first], bit), ROOTS[second], None)),
                ("second root", _consistency_case(first, second, proof, ROOTS[first], _flip(ROOTS[second], bit), None)),
                ("extended", _consistency_case(first, second, proof + [ROOTS[0]], ROOTS[first], ROOTS[second], None)),
                ("bigger second", _consistency_case(first, second + 1, proof, ROOTS[first], ROOTS[second + 1], None)),
            ]
            if first > 1:
                mutations.append(("smaller first", _consistency_case(first - 1, second, proof, ROOTS[first - 1],
                                                                     ROOTS[second], None)))
            if proof:
                position = rng.randrange(len(proof))
                mutated = list(proof)
                mutated[position] = _flip(mutated[position], bit)
                mutations.append(("node", _consistency_case(first, second, mutated, ROOTS[first], ROOTS[second],
                                                            None)))
                mutations.append(("truncated", _consistency_case(first, second, proof[:-1], ROOTS[first],
                                                                 ROOTS[second], None)))
            for name, case in mutations:
                case["id"] = f"{name} {first}/{second}"
                cases.append(case)
                expected.append(False)
    results = run_tlogverify(tlogverify, cases)
    wrong = [(case["id"], result) for case, result, want in zip(cases, results, expected) if result["ok"] is not want]
    assert wrong == []
    ours = [tlog.verify_consistency(c["first"], c["second"], [bytes.fromhex(n) for n in c["proof"]],
                                    bytes.fromhex(c["first_root"]), bytes.fromhex(c["second_root"])) for c in cases]
    assert ours == expected


def test_go_and_we_agree_on_random_claims_with_the_original_roots(tlogverify):
    """Differential: random index/size changes against the *original* root, whatever the outcome."""
    rng = random.Random(15)
    cases = []
    for case_id in range(600):
        size = rng.randrange(1, MAX_SIZE + 1)
        index = rng.randrange(size)
        proof = tlog.inclusion_proof(index, size, READ)
        claimed_index = index ^ (1 << rng.randrange(7)) if rng.random() < 0.5 else index
        claimed_size = size ^ (1 << rng.randrange(7)) if claimed_index == index else size
        cases.append(_inclusion_case(claimed_index, claimed_size, proof, ROOTS[size], ENTRIES[index], case_id))
    results = run_tlogverify(tlogverify, cases)
    ours = [tlog.verify_inclusion(c["index"], c["tree_size"], bytes.fromhex(c["leaf_hash"]),
                                  [bytes.fromhex(n) for n in c["proof"]], bytes.fromhex(c["root"])) for c in cases]
    assert [r["ok"] for r in results] == ours
    assert any(ours) and not all(ours)


def _origin(store: uuid.UUID | None = None) -> str:
    tenant = uuid.UUID("0f6a1c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b")
    return cp.stream_origin("sequencer.example.com/ves", stream_id(tenant, store or uuid.UUID(int=7)))


def test_go_verifies_our_signed_checkpoints_with_our_verifier_key(tlogverify):
    origin = _origin()
    signer = cp.stream_signer(origin, LOG_SEED)
    vkey = cp.stream_verifier(origin, signer.public_key).verifier_key
    cases = []
    for size in (0, 1, 2, 7, 64, 70):
        root = tlog.EMPTY_ROOT if size == 0 else ROOTS[size]
        cases.append({"id": size, "kind": "checkpoint", "vkey": vkey,
                      "note": cp.sign_checkpoint(cp.Checkpoint(origin, size, root), signer).decode()})
    witness = note.NoteSigner("witness.example/w", bytes(32))
    text = cp.Checkpoint(origin, 70, ROOTS[70]).text()
    cosigned = cp.sign_checkpoint(cp.Checkpoint(origin, 70, ROOTS[70]), signer, [witness.sign(text.encode())])
    cases.append({"id": "with a witness cosignature", "kind": "checkpoint", "vkey": vkey, "note": cosigned.decode()})
    results = run_tlogverify(tlogverify, cases)
    assert [r for r in results if not r["ok"]] == []
    for case, result in zip(cases[:6], results):
        assert result["origin"] == origin and result["tree_size"] == case["id"]
        assert result["root"] == (tlog.EMPTY_ROOT if case["id"] == 0 else ROOTS[case["id"]]).hex()


def test_go_refuses_altered_or_foreign_checkpoints(tlogverify):
    origin = _origin()
    signer = cp.stream_signer(origin, LOG_SEED)
    vkey = cp.stream_verifier(origin, signer.public_key).verifier_key
    message = cp.sign_checkpoint(cp.Checkpoint(origin, 7, ROOTS[7]), signer).decode()
    other_origin = _origin(uuid.UUID(int=8))
    other_signer = cp.stream_signer(other_origin, LOG_SEED)
    signature_start = message.index("\u2014 ") + len(f"\u2014 {origin} ")
    flipped = message[:signature_start + 10] + ("A" if message[signature_start + 10] != "A" else "B") \
        + message[signature_start + 11:]
    altered = {
        "size changed": message.replace("\n7\n", "\n8\n", 1),
        "root changed": message.replace(message.split("\n")[2], base64.b64encode(ROOTS[8]).decode()),
        "signature byte changed": flipped,
        "another stream's checkpoint": cp.sign_checkpoint(cp.Checkpoint(other_origin, 7, ROOTS[7]),
                                                          other_signer).decode(),
        "origin line is not the key name": note.sign_note(cp.Checkpoint(other_origin, 7, ROOTS[7]).text(),
                                                          [signer]).decode(),
        "no empty line before the signature": message.replace("\n\n", "\n", 1),
        "another log key": cp.sign_checkpoint(cp.Checkpoint(origin, 7, ROOTS[7]),
                                              cp.stream_signer(origin, bytes(32))).decode(),
    }
    cases = [{"id": name, "kind": "checkpoint", "vkey": vkey, "note": text} for name, text in altered.items()]
    results = run_tlogverify(tlogverify, cases)
    assert [(case["id"], result["ok"]) for case, result in zip(cases, results)] == [(name, False) for name in altered]
