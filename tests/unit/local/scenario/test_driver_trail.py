"""The mission driver reads the audit trail incrementally, on the chain's positions, and never loses a record: a
record linked late is shown once linked, one never linked is shown at the end, and a stack without a (working)
chainer gets the whole trail each poll. Against moto's Audit table (its ByChainPosition index) and the real chainer,
on a stand-in for the local stack whose "world" writes and links records between the driver's polls."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from aegis.audit import CHAIN_POSITION_INDEX, AuditLog
from aegis.audit_chain import POSITION
from aegis.missions_keys import mission_id_for_event
from aegis.models import canonical_json, sha256_hex
from aegis_auditchain.service import AuditChainer, InsertedRecord
from aegis_local.scenario.driver import DriveOptions, MissionDriver, TrailCursor
from tests.support.stack import create_declared_table

EVENT_ID = "0f8c2d4e-trail-cursor"
MISSION = mission_id_for_event(EVENT_ID)
NAMES = {"AuditTable": "aegis-audit", "MissionsTable": "aegis-missions"}
CHAINER = "aegis-AuditChainFunction"
AUDIT_STREAM = f"arn:aws:dynamodb:us-east-1:123456789012:table/{NAMES['AuditTable']}/stream/2026-12-05T00:00:00.000"


@dataclass
class Query:
    """One query the driver made on the Audit table, and how many items it got back."""

    index: str | None
    after: int | None  # the chain position the cursor asked after (None: the whole trail)
    items: int


class RecordingTable:
    """The Audit table, recording each query; `hide` keeps records (by seq) out of the index's answers for a while
    (an index read behind the chainer's write)."""

    def __init__(self, table: Any) -> None:
        self._table = table
        self.queries: list[Query] = []
        self.hide: set[str] = set()

    def query(self, **kwargs: Any) -> Any:
        page = self._table.query(**kwargs)
        if kwargs.get("IndexName") == CHAIN_POSITION_INDEX and self.hide:
            page = {**page, "Items": [item for item in page["Items"] if item["seq"] not in self.hide]}
        values = kwargs.get("ExpressionAttributeValues") or {}
        after = int(values[":p"]) if ":p" in values else None
        self.queries.append(Query(kwargs.get("IndexName"), after, len(page.get("Items", []))))
        return page

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)


@dataclass
class StreamProgress:
    errors: list[str] = field(default_factory=list)
    failed_batches: int = 0


@dataclass
class Mapping:
    name: str
    function_arn: str
    stream_arn: str


class Streams:
    def __init__(self, chained: bool) -> None:
        arn = f"arn:aws:lambda:us-east-1:123456789012:function:{CHAINER}"
        self.mappings = (Mapping("AuditChainFunctionAuditStream", arn, AUDIT_STREAM),) if chained else ()
        self.chainer = StreamProgress()

    def progress(self, name: str) -> StreamProgress:
        return self.chainer


class Lambdas:
    """`wait_idle(0)` is asked once per poll (the driver's end check): it plays the world's next step, and says idle
    once the script is played out."""

    def __init__(self, script: Iterator[Callable[[], None]]) -> None:
        self._script = script
        self.polls = 0

    def wait_idle(self, timeout: float | None = None) -> bool:
        if timeout:  # the driver's wait after its loop
            return True
        self.polls += 1
        step = next(self._script, None)
        if step is None:
            return True
        step()
        return False

    def records(self, name: str) -> list[Any]:
        return []


class Session:
    def __init__(self, aws: boto3.Session, audit: RecordingTable) -> None:
        self._aws = aws
        self._audit = audit

    def resource(self, service: str) -> Any:
        real = self._aws.resource(service)
        audit = self._audit

        class Resource:
            def Table(self, name: str) -> Any:
                return audit if name == NAMES["AuditTable"] else real.Table(name)

        return Resource()


class Stack:
    """What `MissionDriver` uses of a `LocalStack`, with the Audit table's stream consumed by `chainer` (or not)."""

    def __init__(self, aws: boto3.Session, audit: RecordingTable, *, chained: bool) -> None:
        self._aws = aws
        self._session = Session(aws, audit)
        self.streams = Streams(chained)
        self.lambdas = Lambdas(iter(()))
        self.drained = 0
        self.on_drain: Callable[[], None] = lambda: None

    def session(self) -> Session:
        return self._session

    def client(self, service: str) -> Any:
        return self._aws.client(service)

    def physical_id(self, logical_id: str) -> str:
        if logical_id == "AuditChainFunction":
            return CHAINER
        return NAMES[logical_id]

    def fire_scan(self, detail: dict[str, Any]) -> str:
        return EVENT_ID

    def drain_streams(self, timeout: float = 10.0) -> bool:
        self.drained += 1
        self.on_drain()
        return True


class Progress:
    def __init__(self) -> None:
        self.steps: list[tuple[str, str]] = []

    def step(self, label: str, text: str) -> None:
        self.steps.append((label, text))

    def lines(self, lines: Any) -> None:
        pass

    def shown(self) -> list[str]:
        """The changes whose executor.result the driver showed, in the order shown."""
        return [text.split("]")[0].lstrip("[") for text in self.said("applied")]

    def said(self, label: str) -> list[str]:
        return [text for said, text in self.steps if said == label]


class World:
    """Writes the mission's records (executor results of changes c-01, c-02...) and links them as the chainer does."""

    def __init__(self, tables: dict[str, Any]) -> None:
        self._log = AuditLog(tables["audit"], actor="executor")
        self._table = tables["audit"]
        self._chainer = AuditChainer(tables["audit"], tables["missions"])
        self._numbers = itertools.count(1)
        self.unlinked: list[dict[str, Any]] = []

    def write(self, *, link: bool = True) -> dict[str, Any]:
        number = next(self._numbers)
        item = self._log.append(MISSION, "executor.result", "applied", change_id=f"c-{number:02d}", result={})
        self.unlinked.append(item)
        if link:
            self.link()
        return item

    def write_dated(self, moment: datetime, change_id: str) -> dict[str, Any]:
        """A record whose writer took its `seq` at `moment` (a slow writer commits it after later-dated ones)."""
        item: dict[str, Any] = {
            "mission_id": MISSION,
            "seq": f"{moment.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{sha256_hex(change_id)[:12]}",
            "at": moment.isoformat(),
            "actor": "executor",
            "action": "executor.result",
            "outcome": "applied",
            "details": canonical_json({"change_id": change_id, "result": {}}),
        }
        item["checksum"] = sha256_hex(canonical_json(item))
        self._table.put_item(Item=item)
        self.unlinked.append(item)
        return item

    def link(self) -> None:
        """The chainer's next batch: every record written and not linked yet, in commit order."""
        self._chainer.link_all(InsertedRecord(MISSION, item["seq"], item) for item in self.unlinked)
        self.unlinked = []


@pytest.fixture
def world(aws: boto3.Session) -> tuple[World, dict[str, Any]]:
    dynamodb = aws.resource("dynamodb")
    tables = {
        "audit": create_declared_table(dynamodb, "AuditTable", NAMES["AuditTable"]),
        "missions": create_declared_table(dynamodb, "MissionsTable", NAMES["MissionsTable"]),
    }
    tables["missions"].put_item(Item={"mission_id": MISSION, "status": "completed"})
    return World(tables), tables


@dataclass
class Drive:
    stack: Stack
    audit: RecordingTable
    progress: Progress = field(default_factory=Progress)

    def run(self, steps: list[Callable[[], None]]) -> tuple[Any, MissionDriver]:
        self.stack.lambdas = Lambdas(iter(steps))
        options = DriveOptions(poll_seconds=0.0, timeout_seconds=60.0)
        driver = MissionDriver(self.stack, self.progress, options, None, "auth0|a")
        return driver.run({"regions": ["us-east-1"]}), driver


def _drive(aws: boto3.Session, tables: dict[str, Any], *, chained: bool = True) -> Drive:
    audit = RecordingTable(tables["audit"])
    return Drive(Stack(aws, audit, chained=chained), audit)


def test_each_poll_reads_only_the_records_linked_since_the_last(aws: boto3.Session, world: Any) -> None:
    """A driver that re-read the whole trail every poll would read 1 + 2 + ... + 30 items; the cursor reads each
    record once in the loop, and the whole trail once at the end."""
    writer, tables = world
    drive = _drive(aws, tables)
    run, driver = drive.run([writer.write for _ in range(30)])

    assert run.ended, run.problems
    assert drive.progress.shown() == [f"c-{n:02d}" for n in range(1, 31)]
    loop, end = drive.audit.queries[:-1], drive.audit.queries[-1]
    assert all(q.index == CHAIN_POSITION_INDEX for q in loop)
    # Each poll asks after the last position it saw, and gets what was linked since: one record, or none.
    assert [q.after for q in loop] == sorted(q.after for q in loop)
    assert all(q.items <= 1 for q in loop)
    assert sum(q.items for q in loop) == 30
    assert loop[-1].after == 30
    assert (end.index, end.items) == (None, 30)  # the end's catch-up: nothing left unshown
    assert driver.stats.trail_items == 60
    assert driver.stats.whole_trail_reads == 1
    assert driver.stats.caught_up == 0
    assert driver.stats.polls == drive.stack.lambdas.polls == 31
    assert drive.stack.drained == 1
    assert not drive.progress.said("audit")


def test_a_record_committed_late_with_an_earlier_seq_is_not_passed_over(aws: boto3.Session, world: Any) -> None:
    """A `seq` cursor would skip c-early: its writer took its timestamp before c-late's, and committed after."""
    writer, tables = world
    now = datetime.now(UTC)

    def late_first() -> None:
        writer.write_dated(now, "c-late")
        writer.link()

    def early_second() -> None:
        writer.write_dated(now - timedelta(seconds=5), "c-early")
        writer.link()

    drive = _drive(aws, tables)
    _, driver = drive.run([late_first, lambda: None, early_second, lambda: None])

    assert drive.progress.shown() == ["c-late", "c-early"]
    assert driver.stats.caught_up == 0  # both shown by the loop, in chain order, not left to the end


def test_a_record_linked_late_is_shown_by_the_poll_after_its_link_and_only_once(aws: boto3.Session, world: Any) -> None:
    writer, tables = world
    drive = _drive(aws, tables)
    after_poll: list[list[str]] = []

    def look() -> None:
        after_poll.append(drive.progress.shown())

    def write_unlinked() -> None:
        look()
        writer.write(link=False)  # the chainer is behind

    def link() -> None:
        look()
        writer.link()

    _, driver = drive.run([write_unlinked, look, look, link, look, look])

    assert after_poll == [[], [], [], [], ["c-01"], ["c-01"]]
    assert drive.progress.shown() == ["c-01"]
    assert driver.stats.caught_up == 0


def test_a_record_the_chain_never_linked_is_shown_at_the_end(aws: boto3.Session, world: Any) -> None:
    writer, tables = world
    drive = _drive(aws, tables)
    _, driver = drive.run([writer.write, lambda: writer.write(link=False), lambda: None])

    assert drive.progress.shown() == ["c-01", "c-02"]
    assert driver.stats.caught_up == 1
    assert drive.progress.said("audit") == [
        "1 audit record not linked into the mission's chain by its end: shown from the whole trail"
    ]
    assert drive.audit.queries[-1].index is None


def test_records_linked_while_the_end_waits_for_the_chainer_come_from_the_chain(aws: boto3.Session, world: Any) -> None:
    writer, tables = world
    drive = _drive(aws, tables)
    drive.stack.on_drain = writer.link  # the chainer's last batch, waited for at the end
    _, driver = drive.run([writer.write, lambda: writer.write(link=False)])

    assert drive.progress.shown() == ["c-01", "c-02"]
    assert drive.stack.drained == 1
    assert driver.stats.caught_up == 0
    assert not drive.progress.said("audit")


def test_the_cursor_stops_at_a_gap_until_the_index_shows_the_missing_position(aws: boto3.Session, world: Any) -> None:
    writer, tables = world
    audit = RecordingTable(tables["audit"])
    first, second, third = writer.write(), writer.write(), writer.write()
    cursor = TrailCursor(audit, MISSION)
    audit.hide = {second["seq"]}  # the index answers position 3 before it shows position 2

    assert [r["seq"] for r in cursor.linked()] == [first["seq"], third["seq"]]
    assert cursor.position == 1
    audit.hide = set()
    assert [r["seq"] for r in cursor.linked()] == [second["seq"]]  # third is not handed out twice
    assert cursor.position == 3
    assert cursor.linked() == []
    assert [q.after for q in audit.queries] == [0, 1, 3]


def test_without_a_chainer_each_poll_reads_the_whole_trail(aws: boto3.Session, world: Any) -> None:
    writer, tables = world
    drive = _drive(aws, tables, chained=False)
    _, driver = drive.run([lambda: writer.write(link=False) for _ in range(3)])

    assert drive.progress.shown() == ["c-01", "c-02", "c-03"]
    assert all(q.index is None for q in drive.audit.queries)
    assert driver.stats.whole_trail_reads == len(drive.audit.queries) == 5  # 4 polls and the end
    assert drive.stack.drained == 0
    assert not drive.progress.said("audit")


def test_a_failing_chainer_turns_the_driver_to_the_whole_trail(aws: boto3.Session, world: Any) -> None:
    writer, tables = world
    drive = _drive(aws, tables)

    def chainer_fails() -> None:
        writer.write(link=False)
        drive.stack.streams.chainer.errors.append("batch of 1 failed (Unhandled)")

    _, driver = drive.run([writer.write, chainer_fails, lambda: writer.write(link=False), lambda: None])

    assert drive.progress.shown() == ["c-01", "c-02", "c-03"]
    indexes = [q.index for q in drive.audit.queries]
    assert indexes[:2] == [CHAIN_POSITION_INDEX, CHAIN_POSITION_INDEX]
    assert set(indexes[2:]) == {None}  # from the poll after the failure on, and at the end
    assert driver.stats.caught_up == 0  # each was shown by a poll
    assert drive.stack.drained == 0
    assert int(next(r for r in tables["audit"].scan()["Items"] if POSITION in r)[POSITION]) == 1
