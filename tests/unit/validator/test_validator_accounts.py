"""Which accounts a plan's changes may be about: the deployment's own, or its mission's (the `account_id` the agent
wrote on the mission's item for an organization scan's account), one account per plan; and an undo of a member
account's change is allowed by the executor's record of applying it in that account.

The rules are pure (aegis_validator.rules: the mission's account is passed in); the Missions table lookup is the
service's, against the table as template.yaml declares it (moto)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from aegis.audit import AuditLog, read_trail
from aegis.catalogue import ChangeBase, Undo
from aegis.catalogue.kinds.enable_bucket_public_access_block import EnableBucketPublicAccessBlock
from aegis.catalogue.kinds.enable_kms_key_rotation import EnableKmsKeyRotation
from aegis.catalogue.kinds.revoke_security_group_rules import RevokeSecurityGroupRules
from aegis_validator.errors import PlanRefused
from aegis_validator.rules import Problem, parse_envelope, plan_problems
from aegis_validator.service import PlanValidator
from tests.support.validator_plans import (
    ACCOUNT,
    MISSION_ID,
    OTHER_ACCOUNT,
    rebuilt,
    request,
    settings,
    valid_changes,
)

MEMBER = OTHER_ACCOUNT
THIRD = "333344445555"
NO_RECORDS: Any = lambda change_id: []  # noqa: E731


def in_account(change: ChangeBase, account: str) -> ChangeBase:
    """`change` about `account`: its account_id, and its resource ARN's account where the ARN names one."""
    return rebuilt(change, account_id=account, resource_arn=change.resource_arn.replace(f":{ACCOUNT}:", f":{account}:"))


def change_of(kind: type[ChangeBase]) -> Any:
    return next(change for change in valid_changes() if isinstance(change, kind))


def member_changes(account: str = MEMBER) -> list[ChangeBase]:
    """Changes of kinds whose states name no account (so only account_id and the ARN move), one of them a bucket,
    whose ARN names no account at all."""
    return [
        in_account(change_of(kind), account)
        for kind in (RevokeSecurityGroupRules, EnableKmsKeyRotation, EnableBucketPublicAccessBlock)
    ]


def problems(changes: list[ChangeBase], mission_account: str | None = None, records: Any = NO_RECORDS) -> list[Problem]:
    return plan_problems(parse_envelope(request(changes)), settings(), records, mission_account)


def described(found: list[Problem]) -> list[tuple[str, int | None, str]]:
    return [(p.rule, p.index, p.detail) for p in found]


# --- the rules ----------------------------------------------------------------------------------------------------


def test_a_member_accounts_changes_are_in_scope_of_that_accounts_mission() -> None:
    assert problems(member_changes(), mission_account=MEMBER) == []


def test_the_deployments_own_changes_are_in_scope_whatever_the_mission_names() -> None:
    own = member_changes(ACCOUNT)
    assert problems(own) == []
    assert problems(own, mission_account=MEMBER) == []


@pytest.mark.parametrize("mission_account", [None, THIRD, "", "not-an-account", "2109876543210"])
def test_a_member_change_is_out_of_scope_unless_its_mission_is_that_accounts(mission_account: str | None) -> None:
    changes = member_changes()
    assert described(problems(changes, mission_account)) == [
        ("account-out-of-scope", index, "the change is about another account than the deployment's or mission's")
        for index in range(len(changes))
    ]


def test_a_plan_spanning_several_accounts_is_refused_as_a_whole_even_when_each_is_in_scope() -> None:
    own, member = change_of(EnableKmsKeyRotation), in_account(change_of(RevokeSecurityGroupRules), MEMBER)
    assert described(problems([own, member], mission_account=MEMBER)) == [
        ("account-out-of-scope", None, "a plan spans several accounts")
    ]


def test_a_resource_arn_is_held_to_its_changes_own_account() -> None:
    group = change_of(RevokeSecurityGroupRules)
    # A member's change about a resource of the security account: the member's session could not reach it, and the
    # approver was shown the member account.
    member_about_ours = rebuilt(group, account_id=MEMBER)
    # A change of the security account naming a member's resource, in that member's mission.
    ours_about_member = rebuilt(group, resource_arn=group.resource_arn.replace(ACCOUNT, MEMBER))
    for forged in (member_about_ours, ours_about_member):
        assert described(problems([forged], mission_account=MEMBER)) == [
            ("account-out-of-scope", 0, "the resource ARN is in another account than the change")
        ]


def test_re_targeting_a_members_change_to_another_member_is_refused_in_the_first_members_mission() -> None:
    [group, *_] = member_changes()
    retargeted = in_account(group, THIRD)
    assert retargeted.digest != group.digest
    assert {p.rule for p in problems([retargeted], mission_account=MEMBER)} == {"account-out-of-scope"}


# --- undo of a member account's change ----------------------------------------------------------------------------


class Trail:
    """Audit items as AuditLog writes the executor's: details change_id, execution_arn, digest and (since the
    executor applies in member accounts) the change's account_id."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def put_item(self, Item: dict[str, Any], ConditionExpression: str) -> None:
        self.items.append(Item)

    def applied(self, change: ChangeBase, *, execution_account: str = ACCOUNT, **account: str) -> None:
        mission_id = "m-" + "a" * 20
        AuditLog(self, "executor").append(
            mission_id,
            "executor.applied",
            "applied",
            change_id=change.change_id,
            execution_arn=f"arn:aws:states:us-east-1:{execution_account}:execution:aegis-mission:{mission_id}",
            digest=change.digest,
            approver_sub="auth0|approver-1",
            **account,
        )

    def records(self, change_id: str) -> list[dict[str, Any]]:
        return [item for item in self.items if item.get("change_id") == change_id]


def test_an_undo_of_a_change_applied_in_a_member_account_is_accepted_in_that_accounts_mission() -> None:
    trail = Trail()
    [original, *_] = member_changes()
    trail.applied(original, account_id=MEMBER)
    assert problems([Undo.of(original)], MEMBER, trail.records) == []
    # Undone since: refused as for the own account.
    trail.applied(Undo.of(original), account_id=MEMBER)
    assert [p.rule for p in problems([Undo.of(original)], MEMBER, trail.records)] == ["undo-already-undone"]


@pytest.mark.parametrize(
    ("execution_account", "recorded"),
    [
        (ACCOUNT, {}),  # a record of before member accounts: it applied in its execution's account only
        (ACCOUNT, {"account_id": THIRD}),  # applied in another account
        (MEMBER, {"account_id": MEMBER}),  # not an execution of this deployment's state machine
    ],
)
def test_an_undo_of_a_member_change_needs_this_deployments_record_of_applying_it_there(
    execution_account: str, recorded: dict[str, str]
) -> None:
    trail = Trail()
    [original, *_] = member_changes()
    trail.applied(original, execution_account=execution_account, **recorded)
    assert [p.rule for p in problems([Undo.of(original)], MEMBER, trail.records)] == ["undo-not-applied"]


def test_an_own_account_undo_is_allowed_by_records_with_and_without_the_account() -> None:
    original = change_of(EnableKmsKeyRotation)
    for recorded in ({}, {"account_id": ACCOUNT}):
        trail = Trail()
        trail.applied(original, **recorded)
        assert problems([Undo.of(original)], None, trail.records) == []


# --- the mission's account, from the Missions table ----------------------------------------------------------------


@pytest.fixture
def validator(audit_table: Any, missions_table: Any) -> PlanValidator:
    return PlanValidator(
        settings=settings(missions_table="Missions"), audit_table=audit_table, missions_table=missions_table
    )


def verdicts(audit_table: Any) -> list[dict[str, Any]]:
    items = sorted(read_trail(audit_table, MISSION_ID), key=lambda item: item["seq"])
    return [{**item, "details": json.loads(item["details"])} for item in items]


def test_a_member_plan_is_accepted_when_the_mission_item_names_that_account(
    validator: PlanValidator, missions_table: Any, audit_table: Any
) -> None:
    missions_table.put_item(Item={"mission_id": MISSION_ID, "account_id": MEMBER, "org_scan": "org-" + "1" * 20})
    changes = member_changes()
    assert validator.validate(request(changes))["verdict"] == "accepted"
    [accepted] = verdicts(audit_table)
    assert (accepted["action"], accepted["details"]["account_id"]) == ("validator.accepted", MEMBER)


@pytest.mark.parametrize(
    "item",
    [
        None,  # no item: the mission is not one the agent recorded
        {"mission_id": MISSION_ID, "status": "planning"},  # no account on it
        {"mission_id": MISSION_ID, "account_id": ACCOUNT},  # the own account's mission
        {"mission_id": MISSION_ID, "account_id": THIRD},  # another member's mission
        {"mission_id": "m-" + "f" * 20, "account_id": MEMBER},  # another mission's item
    ],
)
def test_a_member_plan_is_refused_unless_its_own_mission_item_names_that_account(
    validator: PlanValidator, missions_table: Any, audit_table: Any, item: dict[str, str] | None
) -> None:
    if item is not None:
        missions_table.put_item(Item=item)
    with pytest.raises(PlanRefused, match="account-out-of-scope"):
        validator.validate(request(member_changes()))
    [refused] = verdicts(audit_table)
    assert {p["rule"] for p in refused["details"]["problems"]} == {"account-out-of-scope"}


class Unreadable:
    """A Missions table whose every read fails as AWS would refuse it."""

    def __init__(self) -> None:
        self.reads = 0

    def get_item(self, **_: Any) -> dict[str, Any]:
        self.reads += 1
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetItem")


def test_an_own_account_plan_reads_no_mission_item(audit_table: Any) -> None:
    missions = Unreadable()
    validator = PlanValidator(settings=settings(), audit_table=audit_table, missions_table=missions)
    assert validator.validate(request(valid_changes()))["verdict"] == "accepted"
    assert missions.reads == 0


def test_a_mission_item_that_cannot_be_read_fails_the_validation_it_does_not_widen_it(audit_table: Any) -> None:
    missions = Unreadable()
    validator = PlanValidator(settings=settings(), audit_table=audit_table, missions_table=missions)
    with pytest.raises(ClientError, match="AccessDeniedException"):
        validator.validate(request(member_changes()))
    assert missions.reads == 1


def test_the_mission_item_is_read_by_its_key_consistently_and_only_for_its_account(
    validator: PlanValidator, aws: boto3.Session, missions_table: Any
) -> None:
    missions_table.put_item(Item={"mission_id": MISSION_ID, "account_id": MEMBER, "report": "x" * 1000})
    calls: list[dict[str, Any]] = []
    original = missions_table.get_item

    def recorded(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return original(**kwargs)

    validator.missions_table = type("Table", (), {"get_item": staticmethod(recorded)})()
    assert validator.mission_account(MISSION_ID) == MEMBER
    [call] = calls
    assert call["Key"] == {"mission_id": MISSION_ID}
    assert call["ConsistentRead"] is True
    assert call["ExpressionAttributeNames"] == {"#account": "account_id"}


def test_an_account_attribute_that_is_not_a_string_is_no_account(validator: PlanValidator, missions_table: Any) -> None:
    missions_table.put_item(Item={"mission_id": MISSION_ID, "account_id": 210987654321})
    assert validator.mission_account(MISSION_ID) is None
    assert validator.mission_account("m-" + "0" * 20) is None
