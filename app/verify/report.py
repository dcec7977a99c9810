"""What the offline verifier found: `Discrepancy` records in check order, and the `VerificationReport` over them."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Discrepancy:
    """One failed check, naming the record (`sequence_number` for an event, `batch_id` for a commitment), the
    check, and the expected versus found values (hex for hashes and signatures)."""

    check: str
    message: str
    sequence_number: int | None = None
    batch_id: str | None = None
    expected: object = None
    found: object = None

    @property
    def record(self) -> str:
        if self.sequence_number is not None and self.batch_id is not None:
            return f"commitment {self.batch_id} (sequence {self.sequence_number})"
        if self.sequence_number is not None:
            return f"event sequence {self.sequence_number}"
        if self.batch_id is not None:
            return f"commitment {self.batch_id}"
        return "bundle"

    def describe(self) -> str:
        """One line: record, check, message, then expected/found when known."""
        text = f"{self.record}: {self.check} failed: {self.message}"
        if self.expected is not None or self.found is not None:
            text += f" (expected: {self.expected}, found: {self.found})"
        return text

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class VerificationReport:
    """The result of `verify_bundle`. `ok` iff no discrepancy; `first` is the earliest one in check order
    (events in sequence order, then commitments in range order). `unchecked` names checks that could not run at all
    (receipt signatures of a sequencer that signs none): with any, the bundle is not fully verified (`complete`)."""

    events_checked: int = 0
    commitments_checked: int = 0
    discrepancies: list[Discrepancy] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    unchecked: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.discrepancies

    @property
    def complete(self) -> bool:
        return not self.unchecked

    @property
    def first(self) -> Discrepancy | None:
        return self.discrepancies[0] if self.discrepancies else None

    def summary(self) -> str:
        """The verdict line: `verified …` only when nothing failed and every check ran."""
        if self.ok and self.complete:
            return f"verified {self.events_checked} events in {self.commitments_checked} commitments"
        if self.ok:
            return (f"NOT FULLY VERIFIED: no discrepancy in {self.events_checked} events and "
                    f"{self.commitments_checked} commitments, but NOT checked: {'; '.join(self.unchecked)}")
        more = len(self.discrepancies) - 1
        suffix = f" (+{more} further discrepancies)" if more else ""
        return f"FAILED: {self.first.describe()}{suffix}"

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "complete": self.complete,
            "events_checked": self.events_checked,
            "commitments_checked": self.commitments_checked,
            "discrepancies": [d.to_dict() for d in self.discrepancies],
            "unchecked": list(self.unchecked),
            "notes": list(self.notes),
        }
