"""The audit trail's hash chain: each mission's records linked in the order the Audit table committed them.

Writers only put records (`aegis.audit.AuditLog`); none reads the one before it, because approvals and executions of
one mission write concurrently. A single chaining step, the AuditChain function reading the table's stream, links
each new record after the mission's current head:

    link(n) = SHA-256(link(n-1) ":" digest(record n)),   link(0) = GENESIS

and stores `chain_position`, `chain_prev` and `chain_link` on the record (its role may update those attributes and
no other). `digest` covers every attribute of the record but the chain's own, so editing any field breaks the link.
When a mission's terminal record (`mission.completed`, `mission.failed`, `mission.halted`) is linked, the chainer
stores the head (position, link, seq) on the mission's item, beside its final report: records removed from the
tail afterwards are then missing against the head.

`verify_chain` recomputes everything from the records and the stored head and names the first record that was
changed, removed, inserted or moved.

Positions are also the trail's gap-free cursor: a reader that remembers the last position it saw and asks the
`ByChainPosition` index for the ones after it never misses a record, whatever order concurrent writers' timestamps
(the `seq` sort key) landed in. `aegis.audit.read_chained_after` is that reader.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from aegis.audit import read_trail
from aegis.models import canonical_json, sha256_hex

GENESIS = "0" * 64
POSITION = "chain_position"
PREVIOUS = "chain_prev"
LINK = "chain_link"
CHAIN_ATTRIBUTES = frozenset({POSITION, PREVIOUS, LINK})
# The mission item's attribute that holds the head once the mission's terminal record is linked.
HEAD_ATTRIBUTE = "audit_head"
TERMINAL_ACTIONS = frozenset({"mission.completed", "mission.failed", "mission.halted"})


def record_digest(record: Mapping[str, Any]) -> str:
    """SHA-256 over the record's content: every attribute but the chain's own, in canonical JSON."""
    return sha256_hex(canonical_json(plain({k: v for k, v in record.items() if k not in CHAIN_ATTRIBUTES})))


def next_link(previous_link: str, digest: str) -> str:
    return hashlib.sha256(f"{previous_link}:{digest}".encode()).hexdigest()


def stored_checksum_matches(record: Mapping[str, Any]) -> bool:
    """The writer's own checksum (aegis.audit) over the record without its checksum and chain attributes."""
    content = {k: v for k, v in record.items() if k not in CHAIN_ATTRIBUTES and k != "checksum"}
    return record.get("checksum") == sha256_hex(canonical_json(plain(content)))


@dataclass(frozen=True)
class ChainHead:
    position: int
    link: str
    seq: str

    def as_item(self) -> dict[str, Any]:
        return {"position": self.position, "link": self.link, "seq": self.seq}

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> ChainHead:
        return cls(position=int(item["position"]), link=str(item["link"]), seq=str(item["seq"]))

    @classmethod
    def of_mission(cls, mission: Mapping[str, Any] | None) -> ChainHead | None:
        """The head stored on a mission's item, if any."""
        head = (mission or {}).get(HEAD_ATTRIBUTE)
        return cls.from_item(head) if isinstance(head, Mapping) else None


class Tampering(StrEnum):
    CHANGED = "changed"
    REMOVED = "removed"
    INSERTED = "inserted"
    REORDERED = "reordered"
    TRUNCATED = "truncated"


@dataclass(frozen=True)
class ChainProblem:
    kind: Tampering
    seq: str  # the record the problem is found at (for a removal: the record after the gap, or the head's)
    position: int
    detail: str

    def describe(self) -> str:
        return f"{self.kind.value} at position {self.position} ({self.seq}): {self.detail}"


@dataclass(frozen=True)
class ChainVerdict:
    mission_id: str
    records: int
    linked: int
    head: ChainHead | None
    problem: ChainProblem | None
    # Records linked after the stored head (the trail went on after the terminal record, e.g. a late clean-up).
    after_head: int = 0
    # Records not linked yet (the chainer runs behind the writers by its stream's delay).
    unlinked: int = 0

    @property
    def intact(self) -> bool:
        return self.problem is None

    def as_document(self) -> dict[str, Any]:
        """The verdict as JSON, for `aegis-local audit verify --json` and any API that reports it."""
        problem = self.problem
        return {
            "mission_id": self.mission_id,
            "intact": self.intact,
            "records": self.records,
            "linked": self.linked,
            "unlinked": self.unlinked,
            "after_head": self.after_head,
            "head": self.head.as_item() if self.head is not None else None,
            "problem": None if problem is None else {**asdict(problem), "kind": problem.kind.value},
        }

    def summary(self) -> str:
        if self.problem is not None:
            return f"audit chain of {self.mission_id}: BROKEN: {self.problem.describe()}"
        anchored = (
            f"up to the stored head at position {self.head.position}"
            if self.head is not None
            else "no head stored yet (the mission has not ended)"
        )
        extra = []
        if self.after_head:
            extra.append(f"{self.after_head} linked after the head")
        if self.unlinked:
            extra.append(f"{self.unlinked} not linked yet")
        tail = f" ({', '.join(extra)})" if extra else ""
        return f"audit chain of {self.mission_id}: intact, {self.linked} records linked, {anchored}{tail}"


def verify_chain(
    mission_id: str, records: Iterable[Mapping[str, Any]], head: ChainHead | None, *, settled: bool = True
) -> ChainVerdict:
    """Recompute a mission's chain from its records (any order) and the head stored on its mission item.

    `settled`: the chainer has caught up, so a record without a link was inserted behind the chainer's back rather
    than waiting for it. Checks, in the chain's order, the first failure wins:
    - each record's own checksum, and its link recomputed from its content and the link before it (changed);
    - positions 1..n without a gap (removed), without a repeat (inserted) and in the order of the links (reordered);
    - the head: its position exists with its link and seq (truncated, or changed when the link differs).
    """
    all_records = list(records)
    linked = sorted((r for r in all_records if POSITION in r), key=_position_and_seq)
    unlinked = [r for r in all_records if POSITION not in r]

    def verdict(problem: ChainProblem | None, after_head: int = 0) -> ChainVerdict:
        return ChainVerdict(
            mission_id=mission_id,
            records=len(all_records),
            linked=len(linked),
            head=head,
            problem=problem,
            after_head=after_head,
            unlinked=len(unlinked),
        )

    problem = _walk(linked)
    if problem is not None:
        return verdict(problem)
    if head is not None:
        problem = _check_head(linked, head)
        if problem is not None:
            return verdict(problem)
    if settled and unlinked:
        first = min(unlinked, key=lambda r: str(r.get("seq", "")))
        return verdict(ChainProblem(Tampering.INSERTED, str(first.get("seq")), 0, "a record the chainer never linked"))
    after = [r for r in linked if head is not None and int(r[POSITION]) > head.position]
    backdated = [r for r in after if head is not None and str(r.get("seq")) < head.seq]
    if backdated:
        first = backdated[0]
        return verdict(
            ChainProblem(
                Tampering.INSERTED,
                str(first.get("seq")),
                int(first[POSITION]),
                "linked after the head but dated before it",
            )
        )
    return verdict(None, after_head=len(after))


def stored_head(missions_table: Any, mission_id: str) -> ChainHead | None:
    item = missions_table.get_item(Key={"mission_id": mission_id}, ConsistentRead=True).get("Item")
    return ChainHead.of_mission(item)


def verify_mission(audit_table: Any, missions_table: Any, mission_id: str, *, settled: bool = True) -> ChainVerdict:
    """Read a mission's trail and stored head, and verify them (what `aegis-local audit verify` runs)."""
    return verify_chain(
        mission_id, read_trail(audit_table, mission_id), stored_head(missions_table, mission_id), settled=settled
    )


def _walk(linked: Sequence[Mapping[str, Any]]) -> ChainProblem | None:
    previous = GENESIS
    expected_position = 1
    for index, record in enumerate(linked):
        seq = str(record.get("seq"))
        position = int(record[POSITION])
        if position < expected_position:
            return ChainProblem(Tampering.INSERTED, seq, position, f"a second record at position {position}")
        if position > expected_position:
            return ChainProblem(
                Tampering.REMOVED,
                seq,
                position,
                f"positions {expected_position}..{position - 1} are missing before this record",
            )
        if str(record.get(PREVIOUS)) != previous:
            if _links_elsewhere(linked, index, str(record.get(PREVIOUS))):
                return ChainProblem(Tampering.REORDERED, seq, position, "its predecessor sits elsewhere in the chain")
            return ChainProblem(Tampering.INSERTED, seq, position, "it does not follow the record before it")
        if not stored_checksum_matches(record) or next_link(previous, record_digest(record)) != record.get(LINK):
            return ChainProblem(Tampering.CHANGED, seq, position, "its content no longer matches its link")
        previous = str(record[LINK])
        expected_position += 1
    return None


def _links_elsewhere(linked: Sequence[Mapping[str, Any]], index: int, wanted: str) -> bool:
    return any(str(other.get(LINK)) == wanted for i, other in enumerate(linked) if i != index)


def _check_head(linked: Sequence[Mapping[str, Any]], head: ChainHead) -> ChainProblem | None:
    if head.position > len(linked):
        last = linked[-1] if linked else None
        return ChainProblem(
            Tampering.TRUNCATED,
            head.seq,
            head.position,
            f"the stored head is at position {head.position} but the chain ends at {len(linked)}"
            + (f" ({last.get('seq')})" if last is not None else ""),
        )
    at_head = linked[head.position - 1]
    if str(at_head.get(LINK)) != head.link or str(at_head.get("seq")) != head.seq:
        return ChainProblem(
            Tampering.CHANGED, str(at_head.get("seq")), head.position, "the chain differs from the stored head"
        )
    return None


def _position_and_seq(record: Mapping[str, Any]) -> tuple[int, str]:
    return int(record[POSITION]), str(record.get("seq"))


def plain(value: Any) -> Any:
    """DynamoDB's Decimal as the int or float it was written as, containers recursively: what JSON can hold."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [plain(v) for v in value]
    return value
