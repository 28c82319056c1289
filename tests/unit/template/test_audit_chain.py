"""The audit chain in the template: the Audit table feeds the chainer in order, the chainer's role can touch the
chain's attributes and nothing else of a record, and the optional export bucket cannot be rewritten by anyone."""

from __future__ import annotations

import json

import pytest

from aegis.audit import CHAIN_POSITION_INDEX
from aegis.audit_chain import CHAIN_ATTRIBUTES, HEAD_ATTRIBUTE, POSITION
from tests.support.iam_policy import Request, allows
from tests.support.stack import Stack, build_stack

AUDIT_KEYS = ["mission_id", "seq"]


def _documents(stack: Stack, role: str) -> list[dict[str, object]]:
    return [document for _, document in stack.policy_documents(role)]


def test_the_audit_table_streams_new_records_and_indexes_the_chain(stack: Stack) -> None:
    audit = stack.properties("AuditTable")
    assert audit["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    [index] = [i for i in audit["LocalSecondaryIndexes"] if i["IndexName"] == CHAIN_POSITION_INDEX]
    assert index["KeySchema"] == [
        {"AttributeName": "mission_id", "KeyType": "HASH"},
        {"AttributeName": POSITION, "KeyType": "RANGE"},
    ]
    assert {"AttributeName": POSITION, "AttributeType": "N"} in audit["AttributeDefinitions"]


def test_the_chainer_reads_the_stream_one_batch_at_a_time_and_never_skips_a_record(stack: Stack) -> None:
    [event] = stack.properties("AuditChainFunction")["Events"].values()
    assert event["Type"] == "DynamoDB"
    properties = event["Properties"]
    assert properties["Stream"] == stack.resolver.attributes[("AuditTable", "StreamArn")]
    assert properties["ParallelizationFactor"] == 1
    assert properties["MaximumRetryAttempts"] == -1
    assert properties["StartingPosition"] == "TRIM_HORIZON"
    [pattern] = [json.loads(f["Pattern"]) for f in properties["FilterCriteria"]["Filters"]]
    assert pattern == {"eventName": ["INSERT"]}
    assert "BisectBatchOnFunctionError" not in properties  # a bisected batch would link records out of order


@pytest.mark.parametrize("chain_attribute", sorted(CHAIN_ATTRIBUTES))
def test_the_chainer_may_set_a_chain_attribute(stack: Stack, chain_attribute: str) -> None:
    request = Request(
        "dynamodb:UpdateItem",
        stack.arn("AuditTable"),
        context={"dynamodb:Attributes": [*AUDIT_KEYS, chain_attribute], "dynamodb:ReturnValues": "NONE"},
    )
    assert allows(_documents(stack, "AuditChainRole"), request)


@pytest.mark.parametrize("content", ["details", "outcome", "action", "actor", "checksum", "at", "change_id"])
def test_the_chainer_cannot_touch_a_records_content(stack: Stack, content: str) -> None:
    documents = _documents(stack, "AuditChainRole")
    for attributes in ([*AUDIT_KEYS, content], [*AUDIT_KEYS, "chain_link", content]):
        request = Request("dynamodb:UpdateItem", stack.arn("AuditTable"), context={"dynamodb:Attributes": attributes})
        assert not allows(documents, request), attributes
    # Nor read the old values back through an update, nor delete or put a record.
    returning = Request(
        "dynamodb:UpdateItem",
        stack.arn("AuditTable"),
        context={"dynamodb:Attributes": [*AUDIT_KEYS, "chain_link"], "dynamodb:ReturnValues": "ALL_OLD"},
    )
    assert not allows(documents, returning)
    for action in ("dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:BatchWriteItem"):
        assert not allows(documents, Request(action, stack.arn("AuditTable")))


def test_the_chainer_may_store_a_head_on_a_mission_and_nothing_else_of_it(stack: Stack) -> None:
    documents = _documents(stack, "AuditChainRole")
    missions = stack.arn("MissionsTable")
    head = Request("dynamodb:UpdateItem", missions, context={"dynamodb:Attributes": ["mission_id", HEAD_ATTRIBUTE]})
    assert allows(documents, head)
    for other in ("status", "report_pages", "report_digest", "execution_arn"):
        request = Request("dynamodb:UpdateItem", missions, context={"dynamodb:Attributes": ["mission_id", other]})
        assert not allows(documents, request), other


def test_no_role_but_the_chainers_may_update_an_audit_record(stack: Stack) -> None:
    updaters = {
        (g.role, g.action, json.dumps(g.condition, sort_keys=True))
        for role, resource in stack.template["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role"
        for g in stack.grants(role)
        if g.resource == "AuditTable" and g.action in {"dynamodb:UpdateItem", "dynamodb:*"}
    }
    assert {role for role, _, _ in updaters} == {"AuditChainRole"}
    [(_, _, condition)] = updaters
    assert json.loads(condition)["ForAllValues:StringEquals"]["dynamodb:Attributes"] == [
        *AUDIT_KEYS,
        *sorted(CHAIN_ATTRIBUTES, key=["chain_position", "chain_prev", "chain_link"].index),
    ]


def test_export_is_off_by_default() -> None:
    stack = build_stack()
    assert not stack.resolver.condition("AuditExportEnabled")
    assert stack.function_environment("AuditChainFunction")["AUDIT_EXPORT_BUCKET"] == ""
    assert not [g for g in stack.grants("AuditChainRole") if g.service == "s3"]


def test_export_writes_to_a_compliance_locked_bucket_that_the_chainer_can_only_add_to() -> None:
    stack = build_stack(AuditExportRetentionDays="400")
    assert stack.resolver.condition("AuditExportEnabled")
    bucket = stack.properties("AuditExportBucket")
    assert bucket["ObjectLockEnabled"] is True
    lock = bucket["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    assert lock["Rule"]["DefaultRetention"]["Mode"] == "COMPLIANCE"
    assert int(lock["Rule"]["DefaultRetention"]["Days"]) == 400
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert stack.resource("AuditExportBucket")["DeletionPolicy"] == "Retain"
    assert stack.function_environment("AuditChainFunction")["AUDIT_EXPORT_BUCKET"] == stack.ref("AuditExportBucket")
    s3_grants = {(g.action, g.resource) for g in stack.grants("AuditChainRole") if g.service == "s3"}
    assert s3_grants == {("s3:PutObject", "AuditExportBucket/audit/*")}
    documents = _documents(stack, "AuditChainRole")
    objects = f"{stack.resolver.attributes[('AuditExportBucket', 'Arn')]}/audit/m-1/00000006-abc.json"
    for action in (
        "s3:DeleteObject",
        "s3:DeleteObjectVersion",
        "s3:PutObjectRetention",
        "s3:BypassGovernanceRetention",
    ):
        assert not allows(documents, Request(action, objects)), action
