"""The transparency-log part of an audit bundle (LOG.md): the bundle's signed checkpoint (and optionally one the
auditor pinned, e.g. from `ves-verify monitor`'s state) checked against the events themselves.

- the checkpoint's signature, under the verifier key derived from the log key (pinned, else the bundle's
  `sequencer.log_public_key`) and the stream: `log_checkpoint`;
- the tree hash recomputed from the events' VES leaf hashes 1..size equals the signed root: `log_root` (a changed,
  missing or reordered event, or a history other than the one signed);
- every inclusion proof in the bundle proves that event's own leaf hash under the signed root: `log_entry` (the log
  holds another entry for that event), `log_inclusion` (the sequencer's stored tree is not the signed one);
- a pinned checkpoint of the same size with another root: `log_fork`.
Pure: the bundle is a dict.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

from app.client.log import LogVerificationError
from app.client.log import VerifiedCheckpoint
from app.client.log import check_inclusion
from app.client.log import expected_verifier_key
from app.client.log import open_log_checkpoint
from app.verify.report import Discrepancy
from app.verify.report import VerificationReport
from app.ves import VesError
from app.ves import parse_hex
from app.ves import tlog


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def verify_log(bundle: Mapping, tenant_id, store_id, leaves: Mapping[int, bytes], range_from: int,
               report: VerificationReport, pinned_checkpoint: VerifiedCheckpoint | None = None,
               log_public_key: bytes | None = None) -> None:
    """Append the log's discrepancies (and notes) to `report`. `leaves`: sequence number → VES leaf hash of every
    well-formed event of the bundle."""
    log = bundle.get("log")
    checkpoints: list[tuple[str, VerifiedCheckpoint]] = []
    if pinned_checkpoint is not None:
        checkpoints.append(("pinned checkpoint", pinned_checkpoint))
    if log is None:
        pass  # a bundle from before the logs claims nothing about them
    elif isinstance(log, Mapping) and log.get("unavailable") == "LOG_INTEGRITY":
        report.discrepancies.append(Discrepancy(
            "log_integrity", "The sequencer refuses to sign or prove this stream's log: its stored log contradicts "
                             f"the events or a checkpoint it signed ({log.get('message')})"))
    elif not isinstance(log, Mapping) or "checkpoint" not in log:
        reason = log.get("unavailable") if isinstance(log, Mapping) else None
        report.notes.append("the bundle carries no transparency-log checkpoint"
                            + (f" (the sequencer answered {reason})" if reason else ""))
    else:
        bundled = _open_bundled(bundle, log, tenant_id, store_id, log_public_key, pinned_checkpoint, report)
        if bundled is not None:
            checkpoints.append(("bundle checkpoint", bundled))
            _check_proofs(log, bundled, leaves, report)
    if len(checkpoints) == 2:
        (_, pinned), (_, bundled) = checkpoints
        if pinned.tree_size == bundled.tree_size and pinned.root_hash != bundled.root_hash:
            report.discrepancies.append(Discrepancy(
                "log_fork", f"Two signed checkpoints of one size with different roots: {pinned.describe()} and "
                            f"{bundled.describe()}", None, None, _b64(pinned.root_hash), _b64(bundled.root_hash)))
    for name, checkpoint in checkpoints:
        _check_root(name, checkpoint, leaves, range_from, report)


def _open_bundled(bundle, log, tenant_id, store_id, log_public_key, pinned, report) -> VerifiedCheckpoint | None:
    sequencer = bundle.get("sequencer") or {}
    try:
        key = log_public_key if log_public_key is not None else parse_hex(
            sequencer.get("log_public_key"), 32, "sequencer.log_public_key")
        origin = pinned.origin.rsplit("/", 1)[0] if pinned is not None else sequencer.get("log_origin")
        expected = expected_verifier_key(str(origin), key, tenant_id, store_id)
        return open_log_checkpoint(str(log["checkpoint"]).encode("utf-8"), str(log.get("verifier_key")), expected)
    except (VesError, TypeError) as error:
        report.discrepancies.append(Discrepancy("log_checkpoint", f"The bundle's log key is malformed ({error})"))
    except LogVerificationError as error:
        report.discrepancies.append(Discrepancy("log_checkpoint", error.message))
    return None


def _check_root(name: str, checkpoint: VerifiedCheckpoint, leaves, range_from: int, report) -> None:
    size = checkpoint.tree_size
    if range_from != 1 or any(number not in leaves for number in range(1, size + 1)):
        report.notes.append(f"{name} ({checkpoint.describe()}): the bundle does not hold events 1..{size}, so its "
                            "root was not recomputed; inclusion proofs were checked instead")
        return
    recomputed = tlog.tree_hash(leaves[number] for number in range(1, size + 1))
    if recomputed != checkpoint.root_hash:
        report.discrepancies.append(Discrepancy(
            "log_root", f"The events 1..{size} do not hash to the root of the {name} ({checkpoint.describe()}): "
                        "an event changed, or this is another history than the one signed",
            None, None, _b64(checkpoint.root_hash), _b64(recomputed)))


def _check_proofs(log: Mapping, checkpoint: VerifiedCheckpoint, leaves, report) -> None:
    proofs = log.get("inclusion") or {}
    if not isinstance(proofs, Mapping):
        report.discrepancies.append(Discrepancy("log_inclusion", "The bundle's inclusion proofs are malformed"))
        return
    for key in sorted(proofs, key=lambda k: int(k) if str(k).isdigit() else -1):
        try:
            number = int(key)
        except (TypeError, ValueError):
            report.discrepancies.append(Discrepancy("log_inclusion", f"Malformed inclusion proof key {key!r}"))
            continue
        body = proofs[key]
        if isinstance(body, Mapping) and body.get("error"):
            report.discrepancies.append(Discrepancy(
                "log_inclusion", f"The sequencer refuses to prove this event in its log ({body.get('error')}: "
                                 f"{body.get('message')})", number))
            continue
        try:
            check_inclusion(body if isinstance(body, Mapping) else {}, number, checkpoint, leaves.get(number))
        except LogVerificationError as error:
            check = "log_entry" if error.check == "entry" else "log_inclusion"
            report.discrepancies.append(Discrepancy(check, error.message, number))
