"""Links audit records into their mission's hash chain, in the order the Audit table's stream delivers them, and
anchors the head on the mission's item when its terminal record is linked (aegis.audit_chain).

The stream delivers each mission's records in commit order (one partition key, one shard), one batch at a time per
shard, so one chainer at a time extends a mission's chain: it reads the head (the highest linked position, through
the ByChainPosition index, strongly consistent) and writes the record's link with a condition that it has none yet.
A retried batch finds its records already linked and moves on. The digest is taken over the stream's new image,
what the writer wrote: a record edited before the chainer got to it no longer matches its own link.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecordEventName
from botocore.exceptions import ClientError

from aegis.audit import CHAIN_POSITION_INDEX, read_trail
from aegis.audit_chain import (
    GENESIS,
    HEAD_ATTRIBUTE,
    LINK,
    POSITION,
    PREVIOUS,
    TERMINAL_ACTIONS,
    ChainHead,
    next_link,
    plain,
    record_digest,
    verify_chain,
)
from aegis.models import canonical_json
from aegis_auditchain.errors import RecordMalformed

logger = Logger(child=True)


@dataclass(frozen=True)
class InsertedRecord:
    """An audit record as its writer put it: the stream's new image of an INSERT."""

    mission_id: str
    seq: str
    image: Mapping[str, Any]

    @property
    def terminal(self) -> bool:
        return self.image.get("action") in TERMINAL_ACTIONS


def inserted_records(event: DynamoDBStreamEvent) -> list[InsertedRecord]:
    """The audit records a stream batch inserted, in stream order. Modifications (the chainer's own links coming
    back) and removals are not records to link."""
    records = []
    for record in event.records:
        if record.event_name != DynamoDBRecordEventName.INSERT:
            continue
        image = record.dynamodb.new_image if record.dynamodb is not None else None
        if not image or not isinstance(image.get("mission_id"), str) or not isinstance(image.get("seq"), str):
            raise RecordMalformed("a stream insertion without the audit record's keys in its new image")
        records.append(InsertedRecord(mission_id=image["mission_id"], seq=image["seq"], image=image))
    return records


class TrailExport:
    """Writes a finished mission's trail, with its head and verdict, to the Object Lock bucket. The bucket's default
    retention (compliance mode) applies to every object written, so not even the account's administrators can
    rewrite or delete it before the retention ends."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self._bucket = bucket

    @staticmethod
    def key(mission_id: str, head: ChainHead) -> str:
        return f"audit/{mission_id}/{head.position:08d}-{head.link[:16]}.json"

    def write(self, mission_id: str, head: ChainHead, records: list[dict[str, Any]]) -> str:
        verdict = verify_chain(mission_id, records, head, settled=False)
        document = {
            "mission_id": mission_id,
            "head": head.as_item(),
            "verdict": verdict.summary(),
            "records": plain(records),
        }
        key = self.key(mission_id, head)
        self._s3.put_object(
            Bucket=self._bucket,
            Key=key,
            Body=canonical_json(document).encode(),
            ContentType="application/json",
            ChecksumAlgorithm="SHA256",
        )
        return key


class AuditChainer:
    def __init__(self, audit_table: Any, missions_table: Any, export: TrailExport | None = None) -> None:
        self._audit = audit_table
        self._missions = missions_table
        self._export = export

    def link_all(self, records: Iterable[InsertedRecord]) -> list[ChainHead]:
        """Link each record in order; the first failure raises, so the batch is retried from its start. Within the
        batch each mission's head is the record just linked: only the batch's first record of a mission reads it."""
        heads: dict[str, ChainHead] = {}
        linked = []
        for record in records:
            heads[record.mission_id] = self.link(record, heads.get(record.mission_id))
            linked.append(heads[record.mission_id])
        return linked

    def link(self, record: InsertedRecord, head: ChainHead | None = None) -> ChainHead:
        """Link `record` after `head`, the mission's head as the caller last saw it (read here when not given)."""
        head = head or self.head(record.mission_id)
        previous = head.link if head is not None else GENESIS
        linked = ChainHead(
            position=(head.position if head is not None else 0) + 1,
            link=next_link(previous, record_digest(record.image)),
            seq=record.seq,
        )
        try:
            self._audit.update_item(
                Key={"mission_id": record.mission_id, "seq": record.seq},
                UpdateExpression="SET #position = :position, #previous = :previous, #link = :link",
                ConditionExpression="attribute_not_exists(#link)",
                ExpressionAttributeNames={"#position": POSITION, "#previous": PREVIOUS, "#link": LINK},
                ExpressionAttributeValues={":position": linked.position, ":previous": previous, ":link": linked.link},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            linked = self._already_linked(record)
        if record.terminal:
            self._anchor(record.mission_id, linked)
        return linked

    def head(self, mission_id: str) -> ChainHead | None:
        """The mission's highest linked record, read strongly consistent from the ByChainPosition index."""
        page = self._audit.query(
            IndexName=CHAIN_POSITION_INDEX,
            KeyConditionExpression="mission_id = :m",
            ExpressionAttributeValues={":m": mission_id},
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = page.get("Items", [])
        if not items:
            return None
        return ChainHead(position=int(items[0][POSITION]), link=str(items[0][LINK]), seq=str(items[0]["seq"]))

    def _already_linked(self, record: InsertedRecord) -> ChainHead:
        item = self._audit.get_item(
            Key={"mission_id": record.mission_id, "seq": record.seq},
            ConsistentRead=True,
            ProjectionExpression="#position, #link",
            ExpressionAttributeNames={"#position": POSITION, "#link": LINK},
        )["Item"]
        logger.info("audit record already linked (a retried batch)", extra={"position": int(item[POSITION])})
        return ChainHead(position=int(item[POSITION]), link=str(item[LINK]), seq=record.seq)

    def _anchor(self, mission_id: str, head: ChainHead) -> None:
        """Store the head on the mission's item, unless a later head is already there (a retried batch)."""
        try:
            self._missions.update_item(
                Key={"mission_id": mission_id},
                UpdateExpression="SET #head = :head",
                ConditionExpression="attribute_exists(mission_id) AND "
                "(attribute_not_exists(#head) OR #head.#position < :position)",
                ExpressionAttributeNames={"#head": HEAD_ATTRIBUTE, "#position": "position"},
                ExpressionAttributeValues={":head": head.as_item(), ":position": head.position},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            logger.info("mission head not stored: no such mission, or a later head is stored")
            return
        if self._export is not None:
            key = self._export.write(mission_id, head, read_trail(self._audit, mission_id))
            logger.info("audit trail exported", extra={"key": key})
