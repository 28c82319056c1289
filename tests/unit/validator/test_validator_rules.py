"""Each rule of aegis_validator.rules, with a plan forged to break it, and a valid plan that breaks none.

Undo lookups are given as lists of audit items shaped as aegis.audit.AuditLog writes them (the ByChange index query
itself is exercised in test_validator_service and on the local stack)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from aegis.approvals.policy import NEEDS_SECOND_APPROVER, ApprovalPolicy
from aegis.catalogue import ChangeBase, Undo
from aegis.catalogue.forward import FORWARD_KINDS
from aegis.catalogue.kinds.create_multi_region_trail import CreateMultiRegionTrail, MultiRegionTrails, TrailSpec
from aegis.catalogue.kinds.create_vpc_flow_logs import CreateVpcFlowLogs, FlowLogDestination, VpcFlowLogs
from aegis.catalogue.kinds.detach_policy import DetachPolicy, PolicyAttachments
from aegis.catalogue.kinds.enable_bucket_public_access_block import EnableBucketPublicAccessBlock
from aegis.catalogue.kinds.revoke_security_group_rules import RevokeSecurityGroupRules
from aegis.models import Risk
from aegis_validator.errors import PlanMalformed
from aegis_validator.rules import (
    MAX_ENVELOPE_CHANGES,
    MISSION_ID_PATTERN,
    REGION_SCOPE,
    WITHHELD,
    Problem,
    parse_envelope,
    plan_problems,
)
from aegis_validator.settings import ValidatorSettings
from tests.support.changes import FLOW_LOG
from tests.support.validator_plans import (
    ACCOUNT,
    EXECUTION_ARN,
    MISSION_ID,
    OTHER_ACCOUNT,
    REGION,
    TRAIL_BUCKET,
    audit_change,
    rebuilt,
    request,
    settings,
    valid_changes,
    wire,
)

NO_RECORDS: Any = lambda change_id: []  # noqa: E731


def problems(
    changes: list[Any], deployment: ValidatorSettings | None = None, records: Any = NO_RECORDS
) -> list[Problem]:
    return plan_problems(parse_envelope(request(changes)), deployment or settings(), records)


def rules(changes: list[Any], deployment: ValidatorSettings | None = None, records: Any = NO_RECORDS) -> set[str]:
    return {problem.rule for problem in problems(changes, deployment, records)}


def change_of(kind: type[ChangeBase]) -> Any:
    return next(change for change in valid_changes() if isinstance(change, kind))


# --- the plan as a whole ----------------------------------------------------------------------------------------------


def test_a_valid_plan_of_every_kind_breaks_no_rule() -> None:
    changes = valid_changes()
    assert {change.kind for change in changes} == {kind.model_fields["kind"].default for kind in FORWARD_KINDS}
    assert problems(changes) == []


@pytest.mark.parametrize(
    ("check_id", "detail"),
    [
        ("s3-bucket-public", "enable-ebs-default-encryption does not fix s3-bucket-public"),
        ("no-such-check", "the change names no check of the catalogue"),
    ],
)
def test_a_change_labelled_with_a_check_it_does_not_fix_is_refused(check_id: str, detail: str) -> None:
    [ebs] = [change for change in valid_changes() if change.kind == "enable-ebs-default-encryption"]
    relabelled = rebuilt(ebs, check_id=check_id)
    assert [(p.rule, p.detail) for p in problems([relabelled])] == [("kind-not-for-check", detail)]


def test_more_changes_than_the_deployment_allows_refuse_the_whole_plan() -> None:
    changes = valid_changes()[:3]
    assert problems(changes, settings(max_changes_per_mission=3)) == []
    refused = problems(changes, settings(max_changes_per_mission=2))
    assert [(p.rule, p.index, p.detail) for p in refused] == [
        ("too-many-changes", None, "3 changes, at most 2 per mission")
    ]


def test_the_same_change_twice_is_refused() -> None:
    change = valid_changes()[0]
    [duplicate] = problems([change, change])
    assert (duplicate.rule, duplicate.index, duplicate.change_id) == ("duplicate-change", 1, change.change_id)


def test_a_change_with_fewer_eligible_approvers_than_it_needs_is_refused_never_downgraded() -> None:
    changes = valid_changes()
    high = rebuilt(changes[0], risk=Risk.HIGH)
    alone = settings(approval_policy=ApprovalPolicy(approver_subs=("auth0|approver-a",)))
    [refused] = problems([changes[1], high], alone)
    assert (refused.rule, refused.index, refused.change_id, refused.detail) == (
        NEEDS_SECOND_APPROVER,
        1,
        high.change_id,
        "needs 2 distinct approvers, 1 eligible",
    )
    assert problems([high]) == []  # two approvers: planned as a two-person request
    # A deployment whose policy never asks for two approvers plans it with one.
    assert problems([high], settings(approval_policy=ApprovalPolicy(("auth0|approver-a",), two_person_risk=None))) == []


@pytest.mark.parametrize(
    ("forged", "expected"),
    [
        ("not an object", "the request is not {execution_arn, plan}"),
        ({"execution_arn": EXECUTION_ARN}, "the request is not {execution_arn, plan}"),
        ({"execution_arn": "arn:aws:lambda:x", "plan": {}}, "execution_arn is not the ARN"),
        ({"execution_arn": EXECUTION_ARN, "plan": []}, "not exactly {mission_id, changes}"),
        (
            {"execution_arn": EXECUTION_ARN, "plan": {"mission_id": MISSION_ID, "changes": [], "settings": {}}},
            "not exactly {mission_id, changes}",
        ),
        ({"execution_arn": EXECUTION_ARN, "plan": {"mission_id": "m-1", "changes": []}}, "not a mission id"),
        (
            {"execution_arn": EXECUTION_ARN, "plan": {"mission_id": "m-" + "f" * 20, "changes": []}},
            "not named after its mission",
        ),
        ({"execution_arn": EXECUTION_ARN, "plan": {"mission_id": MISSION_ID, "changes": {}}}, "not a list"),
        (
            {"execution_arn": EXECUTION_ARN, "plan": {"mission_id": MISSION_ID, "changes": [{"kind": "x"}]}},
            r"changes\[0\] is not an object with a change_id",
        ),
        (
            {"execution_arn": EXECUTION_ARN, "plan": {"mission_id": MISSION_ID, "changes": ["chg-1"]}},
            r"changes\[0\] is not an object with a change_id",
        ),
        (
            {
                "execution_arn": EXECUTION_ARN,
                "plan": {"mission_id": MISSION_ID, "changes": [{"change_id": "c"}] * (MAX_ENVELOPE_CHANGES + 1)},
            },
            f"more than {MAX_ENVELOPE_CHANGES} changes",
        ),
    ],
)
def test_an_input_that_is_not_a_mission_of_the_agent_is_malformed(forged: Any, expected: str) -> None:
    with pytest.raises(PlanMalformed, match=expected):
        parse_envelope(forged)


def test_the_mission_id_form_is_the_agents() -> None:
    from aegis_agent.events import MISSION_ID_PATTERN as AGENTS

    assert MISSION_ID_PATTERN == AGENTS


# --- every change parses to the catalogue, with the id and digest of its content --------------------------------------


def test_a_change_of_no_catalogue_kind_is_refused() -> None:
    forged = wire(valid_changes()[0]) | {"kind": "run-arbitrary-api-call"}
    [problem] = problems([forged])
    assert (problem.rule, problem.index) == ("not-a-catalogue-change", 0)


def test_a_change_whose_content_no_longer_derives_its_id_is_refused() -> None:
    forged = wire(valid_changes()[0])
    forged["before"]["rules"][0]["from_port"] = 0  # widen what the approver is told is revoked, keep the id
    forged["before"]["rules"][0]["to_port"] = 65535
    [problem] = problems([forged])
    assert problem.rule == "not-a-catalogue-change"
    assert problem.change_id == forged["change_id"]


def test_an_extra_field_is_refused_and_its_name_is_not_echoed() -> None:
    key = "AKIA" + "ABCDEFGHIJKLMNOP"  # an access-key-shaped field name is attacker input
    forged = wire(valid_changes()[0]) | {key: "x"}
    [problem] = problems([forged])
    assert problem.rule == "not-a-catalogue-change"
    assert key not in str(problem)
    assert WITHHELD in problem.detail


def test_a_change_not_in_its_canonical_form_is_refused_because_its_digest_would_differ() -> None:
    change = valid_changes()[0]
    coerced = wire(change)
    coerced["before"]["rules"][0]["is_egress"] = 0  # parses (lax) to False, but is not what the digest covers
    assert rules([coerced]) == {"not-canonical"}
    dropped = wire(change)
    del dropped["before"]["rules"][0]["prefix_list_id"]  # a default the parser fills in
    assert rules([dropped]) == {"not-canonical"}


# --- approval texts are never cut -------------------------------------------------------------------------------------


def test_a_change_whose_approval_text_is_too_long_to_show_is_refused() -> None:
    detach = change_of(DetachPolicy)
    long_arn = f"arn:aws:iam::{ACCOUNT}:policy/{'team/' * 60}AdminEverything"
    forged = rebuilt(detach, resource_arn=long_arn)
    [problem] = problems([forged])
    assert (problem.rule, problem.detail) == ("approval-text-too-long", "resource")


# --- account and region -----------------------------------------------------------------------------------------------


def test_a_change_about_another_account_is_refused() -> None:
    kms = valid_changes()[6]
    other = rebuilt(kms, account_id=OTHER_ACCOUNT, resource_arn=kms.resource_arn.replace(ACCOUNT, OTHER_ACCOUNT))
    assert rules([other]) == {"account-out-of-scope"}


def test_a_resource_arn_in_another_account_is_refused_even_when_account_id_is_ours() -> None:
    group = change_of(RevokeSecurityGroupRules)
    forged = rebuilt(group, resource_arn=group.resource_arn.replace(ACCOUNT, OTHER_ACCOUNT))
    [problem] = problems([forged])
    assert (problem.rule, problem.detail) == (
        "account-out-of-scope",
        "the resource ARN is in another account than the change",
    )


@pytest.mark.parametrize("field", ["account_id", "region"])
@pytest.mark.parametrize("value", ["12345", "eu-west-1; ec2.attacker.example", "", "EU-WEST-1", "123456789012 "])
def test_free_text_accounts_and_regions_are_not_catalogue_changes(field: str, value: str) -> None:
    forged = wire(valid_changes()[0]) | {field: value}
    [problem] = problems([forged])
    assert problem.rule == "not-a-catalogue-change"
    assert problem.detail.endswith(field)


def test_a_regional_change_outside_scan_regions_is_refused() -> None:
    group = change_of(RevokeSecurityGroupRules)
    elsewhere = rebuilt(group, region="ap-south-1", resource_arn=group.resource_arn.replace(REGION, "ap-south-1"))
    [problem] = problems([elsewhere])
    assert (problem.rule, problem.detail) == ("region-out-of-scope", "not one of ScanRegions")
    assert problems([elsewhere], settings(scan_regions=("ap-south-1",))) == []


def test_an_account_wide_change_is_only_in_the_home_region() -> None:
    detach = change_of(DetachPolicy)
    assert detach.region == settings().home_region
    moved = rebuilt(detach, region=REGION)  # REGION is scanned, but IAM is addressed in the home region
    [problem] = problems([moved])
    assert problem.rule == "region-out-of-scope"


def test_a_buckets_change_is_in_the_buckets_own_region_whatever_regions_are_scanned() -> None:
    bucket = change_of(EnableBucketPublicAccessBlock)
    assert problems([rebuilt(bucket, region="sa-east-1")]) == []


def test_a_resource_arn_in_another_region_than_the_change_is_refused() -> None:
    group = change_of(RevokeSecurityGroupRules)
    forged = rebuilt(group, resource_arn=group.resource_arn.replace(REGION, "eu-central-1"))
    [problem] = problems([forged])
    assert (problem.rule, problem.detail) == (
        "resource-arn-mismatch",
        "the resource ARN is in another region than the change",
    )


def test_every_forward_kind_has_a_region_scope_and_the_home_region_is_the_checks() -> None:
    from aegis.partitions import home_region_of

    assert set(REGION_SCOPE) == {kind.model_fields["kind"].default for kind in FORWARD_KINDS}
    # aegis.collectors.Inventory.home_region: where the checks read account-wide settings and put their findings.
    assert settings().home_region == home_region_of(REGION) == "us-east-1"


# --- destinations -----------------------------------------------------------------------------------------------------


def _trail_to(bucket: str) -> CreateMultiRegionTrail:
    trail = change_of(CreateMultiRegionTrail)
    return rebuilt(trail, after=MultiRegionTrails(trails=(TrailSpec(name=trail.new_trail.name, s3_bucket=bucket),)))


def _flow_logs_to(destination: FlowLogDestination) -> CreateVpcFlowLogs:
    flow_logs = change_of(CreateVpcFlowLogs)
    return rebuilt(flow_logs, after=VpcFlowLogs(vpc_id=flow_logs.vpc_id, flow_logs=(destination,)))


def test_a_trail_delivering_elsewhere_than_trail_bucket_is_refused() -> None:
    assert problems([_trail_to(TRAIL_BUCKET)]) == []
    [problem] = problems([_trail_to("attacker-collects-logs")])
    assert (problem.rule, problem.detail) == ("destination-mismatch", "the trail does not deliver to TrailBucket")


def test_flow_logs_to_another_group_or_through_another_role_are_refused() -> None:
    other_group = FLOW_LOG.model_copy(update={"log_group_name": "/attacker/flow-logs"})
    other_role = FLOW_LOG.model_copy(update={"deliver_logs_role_arn": f"arn:aws:iam::{ACCOUNT}:role/attacker"})
    assert problems([_flow_logs_to(FLOW_LOG)]) == []
    assert [p.detail for p in problems([_flow_logs_to(other_group)])] == [
        "the flow logs do not deliver to FlowLogsLogGroup"
    ]
    assert [p.detail for p in problems([_flow_logs_to(other_role)])] == [
        "the flow logs are not delivered by FlowLogsRoleArn"
    ]


def test_a_destination_the_deployment_did_not_configure_is_refused() -> None:
    unconfigured = settings(trail_bucket="", flow_logs_log_group="", flow_logs_role_arn="")
    refused = problems([_trail_to(TRAIL_BUCKET), _flow_logs_to(FLOW_LOG)], unconfigured)
    assert [(p.rule, p.index) for p in refused] == [
        ("destination-not-configured", 0),
        ("destination-not-configured", 1),
    ]


# --- undo -------------------------------------------------------------------------------------------------------------


class Trail:
    """Audit items of the ByChange index as AuditLog writes them (the executor's details: change_id,
    execution_arn, digest, ...)."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def put_item(self, Item: dict[str, Any], ConditionExpression: str) -> None:
        self.items.append(Item)

    def write(self, actor: str, action: str, outcome: str, change: ChangeBase, account: str = ACCOUNT) -> None:
        audit_change(self, change, actor=actor, action=action, outcome=outcome, account=account)

    def applied(self, change: ChangeBase, **kwargs: Any) -> None:
        self.write("executor", "executor.applied", "applied", change, **kwargs)

    def records(self, change_id: str) -> Sequence[Mapping[str, Any]]:
        return [item for item in self.items if item.get("change_id") == change_id]


@pytest.fixture
def trail() -> Trail:
    return Trail()


def test_an_undo_of_a_change_the_executor_applied_here_is_accepted(trail: Trail) -> None:
    original = valid_changes()[0]
    trail.applied(original)
    assert problems([Undo.of(original)], records=trail.records) == []


def test_an_undo_of_a_change_never_applied_is_refused(trail: Trail) -> None:
    original = valid_changes()[0]
    trail.write("executor", "executor.started", "started", original)
    trail.write("executor", "executor.drift", "drift", original)
    [problem] = problems([Undo.of(original)], records=trail.records)
    assert problem.rule == "undo-not-applied"


def test_an_undo_naming_an_applied_change_with_another_digest_is_refused(trail: Trail) -> None:
    original = valid_changes()[0]
    trail.applied(original)
    # Same change id (id = kind, resource, before, after), another digest (risk): not what was approved and applied.
    riskier = rebuilt(original, risk="high")
    assert riskier.change_id == original.change_id
    assert riskier.digest != original.digest
    assert rules([Undo.of(riskier)], records=trail.records) == {"undo-not-applied"}


def test_an_applied_record_from_another_account_or_another_writer_does_not_count(trail: Trail) -> None:
    original = valid_changes()[0]
    trail.applied(original, account=OTHER_ACCOUNT)
    trail.write("agent", "executor.applied", "applied", original)
    trail.write("executor", "executor.applied", "failed", original)
    assert rules([Undo.of(original)], records=trail.records) == {"undo-not-applied"}


def test_an_undo_of_a_change_already_undone_is_refused_until_it_is_applied_again(trail: Trail) -> None:
    original = valid_changes()[0]
    undo = Undo.of(original)
    trail.applied(original)
    trail.applied(undo)
    assert rules([undo], records=trail.records) == {"undo-already-undone"}
    # Any undo of this original has the same id, whatever else differs: it was undone all the same.
    assert rules([rebuilt(undo, risk="low")], records=trail.records) == {"undo-already-undone"}
    trail.applied(original)
    assert problems([undo], records=trail.records) == []


def test_an_undo_is_held_to_the_account_and_region_rules_too(trail: Trail) -> None:
    original = change_of(RevokeSecurityGroupRules)
    elsewhere = rebuilt(original, region="ap-south-1", resource_arn=original.resource_arn.replace(REGION, "ap-south-1"))
    trail.applied(elsewhere)
    assert rules([Undo.of(elsewhere)], records=trail.records) == {"region-out-of-scope"}


def test_problem_records_name_rules_and_positions_never_values() -> None:
    bad_id = wire(valid_changes()[0]) | {"change_id": "chg-" + "<script>" * 5}
    refused = problems([bad_id])
    record = refused[0].as_record()
    assert record["change_id"] is None  # not of the catalogue's form: not repeated
    assert "<script>" not in json.dumps(record) + str(refused[0])
    assert re.fullmatch(r"changes\[0\]: not-a-catalogue-change \(at .+\)", str(refused[0]))


def test_several_problems_are_all_named() -> None:
    change = change_of(RevokeSecurityGroupRules)
    other = rebuilt(
        change,
        account_id=OTHER_ACCOUNT,
        region="ap-south-1",
        resource_arn=change.resource_arn.replace(REGION, "ap-south-1").replace(ACCOUNT, OTHER_ACCOUNT),
    )
    assert rules([other, other], settings(max_changes_per_mission=1)) == {
        "too-many-changes",
        "duplicate-change",
        "account-out-of-scope",
        "region-out-of-scope",
    }


def test_detach_policy_in_the_home_region_is_what_the_planner_builds() -> None:
    # The planner's own account-wide kinds land in the home region (aegis.checks), so its plans pass.
    detach = DetachPolicy.propose(
        check_id="iam-admin-policy-attached",
        resource_arn=f"arn:aws:iam::{ACCOUNT}:policy/AdminEverything",
        account_id=ACCOUNT,
        region=settings().home_region,
        risk="high",
        before=PolicyAttachments(roles=("ci",)),
        after=PolicyAttachments(),
    )
    assert problems([detach]) == []


def test_an_undo_is_refused_where_the_deployment_disables_undo(trail: Trail) -> None:
    original = valid_changes()[0]
    trail.applied(original)
    [problem] = problems([Undo.of(original)], deployment=settings(undo_enabled=False), records=trail.records)
    assert problem.rule == "undo-disabled"
    assert problems([original], deployment=settings(undo_enabled=False)) == []
