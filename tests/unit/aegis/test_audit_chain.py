"""The audit trail's hash chain detects each way an administrator could rewrite history after the fact: an edited
field, a deleted record, an inserted record, a reordered pair, and a tail truncated after the head was stored. Each
test builds a real chain (AuditLog writes, the chainer links in commit order, against the template's tables in moto),
tampers with the table directly, and expects `verify_mission` to name the first record concerned."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from aegis.audit import AuditLog, read_chained_after, read_trail
from aegis.audit_chain import (
    GENESIS,
    HEAD_ATTRIBUTE,
    LINK,
    POSITION,
    ChainHead,
    Tampering,
    next_link,
    record_digest,
    stored_head,
    verify_chain,
    verify_mission,
)
from aegis.models import canonical_json, sha256_hex
from aegis_auditchain.service import AuditChainer, InsertedRecord
from tests.support.stack import create_declared_tables

MISSION = "m-20261203-chain"


def resealed(record: dict[str, Any]) -> dict[str, Any]:
    """The record with its writer's checksum recomputed, as a forger who read aegis.audit would."""
    content = {k: v for k, v in record.items() if k not in {"checksum", POSITION, "chain_prev", LINK}}
    return {**record, "checksum": sha256_hex(canonical_json(content))}


class Trail:
    def __init__(self, audit: Any, missions: Any) -> None:
        self.audit = audit
        self.missions = missions
        self.chainer = AuditChainer(audit, missions)
        self.written: list[dict[str, Any]] = []

    def write(self, action: str, outcome: str = "ok", *, link: bool = True, **details: Any) -> dict[str, Any]:
        item = AuditLog(self.audit, actor="agent").append(MISSION, action, outcome, **details)
        self.written.append(item)
        if link:
            self.chainer.link(InsertedRecord(MISSION, item["seq"], item))
        return item

    def record(self, index: int) -> dict[str, Any]:
        key = {"mission_id": MISSION, "seq": self.written[index]["seq"]}
        return dict(self.audit.get_item(Key=key, ConsistentRead=True)["Item"])

    def verify(self, *, settled: bool = True) -> Any:
        return verify_mission(self.audit, self.missions, MISSION, settled=settled)


@pytest.fixture
def trail(aws: boto3.Session) -> Trail:
    tables = create_declared_tables(aws.resource("dynamodb"), {"audit": "AuditTable", "missions": "MissionsTable"})
    tables["missions"].put_item(Item={"mission_id": MISSION, "status": "completed"})
    built = Trail(tables["audit"], tables["missions"])
    built.write("mission.created", regions=["us-east-1"])
    built.write("approval.requested", "started", changes=3)
    built.write("approval.granted", approver_sub="auth0|oncall")
    built.write("executor.applied", "applied", change_id="sg-open-ssh:sg-0123456789abcdef0")
    built.write("executor.applied", "applied", change_id="s3-bpa-off:bucket-a")
    built.write("mission.completed", "completed", findings=5, changes=2)
    return built


def test_an_untouched_trail_verifies_and_its_head_is_stored_with_the_mission(trail: Trail) -> None:
    verdict = trail.verify()
    assert verdict.intact, verdict.summary()
    assert (verdict.records, verdict.linked, verdict.unlinked, verdict.after_head) == (6, 6, 0, 0)
    head = stored_head(trail.missions, MISSION)
    assert head == ChainHead(position=6, link=trail.record(5)[LINK], seq=trail.written[5]["seq"])
    # The links are the documented formula, from GENESIS.
    link = GENESIS
    for index in range(6):
        record = trail.record(index)
        link = next_link(link, record_digest(record))
        assert record[LINK] == link
        assert int(record[POSITION]) == index + 1


def test_an_edited_field_is_named(trail: Trail) -> None:
    edited = trail.written[2]["seq"]
    trail.audit.update_item(
        Key={"mission_id": MISSION, "seq": edited},
        UpdateExpression="SET outcome = :o",
        ExpressionAttributeValues={":o": "denied"},
    )
    verdict = trail.verify()
    assert verdict.problem is not None
    assert (verdict.problem.kind, verdict.problem.seq, verdict.problem.position) == (Tampering.CHANGED, edited, 3)


def test_an_edit_that_also_recomputes_the_writers_checksum_is_still_named(trail: Trail) -> None:
    """The checksum is unkeyed: whoever edits can recompute it. The chain link cannot be, without rewriting every
    link after it, and then the stored head differs."""
    record = resealed({**trail.record(3), "outcome": "failed"})
    trail.audit.put_item(Item=record)
    verdict = trail.verify()
    assert verdict.problem is not None
    assert (verdict.problem.kind, verdict.problem.seq) == (Tampering.CHANGED, record["seq"])


def test_a_deleted_record_is_named_by_the_record_after_the_gap(trail: Trail) -> None:
    trail.audit.delete_item(Key={"mission_id": MISSION, "seq": trail.written[1]["seq"]})
    verdict = trail.verify()
    assert verdict.problem is not None
    assert (verdict.problem.kind, verdict.problem.seq, verdict.problem.position) == (
        Tampering.REMOVED,
        trail.written[2]["seq"],
        3,
    )
    assert "2..2" in verdict.problem.detail


def test_a_record_inserted_behind_the_chainers_back_is_named(trail: Trail) -> None:
    forged = trail.write("approval.granted", approver_sub="auth0|intruder", link=False)
    verdict = trail.verify()
    assert verdict.problem is not None
    assert (verdict.problem.kind, verdict.problem.seq) == (Tampering.INSERTED, forged["seq"])
    # While the chainer may still be behind (a stream delay), an unlinked record is not yet a verdict.
    assert trail.verify(settled=False).intact


def test_a_record_inserted_with_a_forged_position_is_named(trail: Trail) -> None:
    copy = trail.record(2)
    forged = resealed({**copy, "seq": copy["seq"][:-1] + "f", "outcome": "granted-twice"})
    trail.audit.put_item(Item=forged)
    verdict = trail.verify()
    assert verdict.problem is not None
    # Whichever of the two records at position 3 the walk meets first, the forged one is named.
    assert verdict.problem.kind in {Tampering.INSERTED, Tampering.CHANGED}
    assert (verdict.problem.seq, verdict.problem.position) == (forged["seq"], 3)


def test_a_reordered_pair_is_named(trail: Trail) -> None:
    second, third = trail.record(1), trail.record(2)
    for record, position in ((second, third[POSITION]), (third, second[POSITION])):
        trail.audit.update_item(
            Key={"mission_id": MISSION, "seq": record["seq"]},
            UpdateExpression="SET chain_position = :p",
            ExpressionAttributeValues={":p": position},
        )
    verdict = trail.verify()
    assert verdict.problem is not None
    assert (verdict.problem.kind, verdict.problem.seq, verdict.problem.position) == (
        Tampering.REORDERED,
        third["seq"],
        2,
    )


def test_a_tail_truncated_after_the_head_was_stored_is_named(trail: Trail) -> None:
    for index in (4, 5):
        trail.audit.delete_item(Key={"mission_id": MISSION, "seq": trail.written[index]["seq"]})
    verdict = trail.verify()
    assert verdict.problem is not None
    assert (verdict.problem.kind, verdict.problem.seq, verdict.problem.position) == (
        Tampering.TRUNCATED,
        trail.written[5]["seq"],
        6,
    )
    assert "ends at 4" in verdict.problem.detail


def _rewrite_second_record_and_relink(trail: Trail, *, reseal: bool) -> None:
    """Edit the second record, then relink every record from GENESIS, as someone with write access would."""
    records = sorted(read_trail(trail.audit, MISSION), key=lambda r: int(r[POSITION]))
    records[1]["outcome"] = "rewritten"
    link = GENESIS
    for stored in records:
        record = resealed(stored) if reseal else stored
        record["chain_prev"] = link
        link = next_link(link, record_digest(record))
        record[LINK] = link
        trail.audit.put_item(Item=record)


def test_a_rewritten_and_relinked_record_fails_its_own_checksum(trail: Trail) -> None:
    _rewrite_second_record_and_relink(trail, reseal=False)
    verdict = trail.verify()
    assert verdict.problem is not None
    assert (verdict.problem.kind, verdict.problem.position) == (Tampering.CHANGED, 2)


def test_a_rewritten_chain_with_recomputed_checksums_fails_on_the_stored_head(trail: Trail) -> None:
    """An editor who reseals and relinks every record after an edit still cannot match the head stored with the
    mission."""
    _rewrite_second_record_and_relink(trail, reseal=True)
    verdict = verify_chain(MISSION, read_trail(trail.audit, MISSION), stored_head(trail.missions, MISSION))
    assert verdict.problem is not None
    assert (verdict.problem.kind, verdict.problem.position) == (Tampering.CHANGED, 6)
    assert "stored head" in verdict.problem.detail


def test_records_after_the_head_are_counted_and_a_backdated_one_is_named(trail: Trail) -> None:
    trail.write("killswitch.purged", "purged")
    verdict = trail.verify()
    assert verdict.intact, verdict.summary()
    assert verdict.after_head == 1
    copy = {k: v for k, v in trail.record(0).items() if k not in {POSITION, "chain_prev", LINK}}
    # The same instant as the first record, sorted before it: the random suffix at its lowest (replacing only the last
    # digit by "0" was the same key whenever that digit already was "0", which overwrote the record instead).
    when, _, _ = trail.written[0]["seq"].partition("#")
    backdated = resealed({**copy, "seq": f"{when}#{'0' * 12}"})
    trail.audit.put_item(Item=backdated)
    trail.chainer.link(InsertedRecord(MISSION, backdated["seq"], backdated))
    verdict = trail.verify()
    assert verdict.problem is not None
    assert (verdict.problem.kind, verdict.problem.seq) == (Tampering.INSERTED, backdated["seq"])


def test_the_head_is_stored_only_when_the_mission_ends(aws: boto3.Session) -> None:
    tables = create_declared_tables(aws.resource("dynamodb"), {"audit": "AuditTable", "missions": "MissionsTable"})
    tables["missions"].put_item(Item={"mission_id": MISSION, "status": "awaiting_approval"})
    partial = Trail(tables["audit"], tables["missions"])
    partial.write("mission.created")
    partial.write("approval.requested", "started")
    assert HEAD_ATTRIBUTE not in tables["missions"].get_item(Key={"mission_id": MISSION})["Item"]
    verdict = partial.verify()
    assert verdict.intact
    assert "no head stored yet" in verdict.summary()


def test_positions_are_a_cursor_that_misses_nothing(trail: Trail) -> None:
    seen = read_chained_after(trail.audit, MISSION, 0)
    assert [int(r[POSITION]) for r in seen] == [1, 2, 3, 4, 5, 6]
    assert [int(r[POSITION]) for r in read_chained_after(trail.audit, MISSION, 4)] == [5, 6]
    trail.write("killswitch.purged", "purged")
    assert [r["action"] for r in read_chained_after(trail.audit, MISSION, 6)] == ["killswitch.purged"]
