"""The session policy the executor hands to STS allows this change's actions on this change's resource, and nothing
else. moto does not enforce session policies, so the document itself is evaluated here with the subset of IAM's
policy logic it uses (Allow statements, action lists, resource ARNs with wildcards, the three condition keys)."""

from __future__ import annotations

import fnmatch
import json
import re
from typing import Any

import pytest

from aegis.catalogue import KINDS, ChangeBase, Undo, declared_actions
from aegis_executor.credentials import (
    SESSION_DURATION_SECONDS,
    phase_of,
    role_session_name,
    session_policy,
)
from tests.support.changes import ACCOUNT, REGION, one_of_each_kind

FORWARD = one_of_each_kind()
ALL_CHANGES = FORWARD + [Undo.of(change) for change in FORWARD]
OTHER_REGION = "ap-southeast-2"


def _ids(changes: list[ChangeBase]) -> list[str]:
    return [f"{c.kind}:{c.original.kind}" if c.kind == "undo" else c.kind for c in changes]  # type: ignore[attr-defined]


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _condition_holds(condition: dict[str, dict[str, str]], context: dict[str, str]) -> bool:
    for operator, pairs in condition.items():
        for key, expected in pairs.items():
            actual = context.get(key)
            if operator in {"StringEquals", "ArnEquals"}:
                if actual is None or actual not in _as_list(expected):
                    return False
            else:
                raise AssertionError(f"the evaluator does not know the condition operator {operator}")
    return True


def allows(policy: dict[str, Any], action: str, resource: str, context: dict[str, str] | None = None) -> bool:
    """Whether an identity-less session policy allows `action` on `resource` (no Deny statements are used)."""
    context = {"aws:RequestedRegion": REGION, **(context or {})}
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        if not any(fnmatch.fnmatchcase(action, pattern) for pattern in _as_list(statement["Action"])):
            continue
        if not any(fnmatch.fnmatchcase(resource, pattern) for pattern in _as_list(statement["Resource"])):
            continue
        if _condition_holds(statement.get("Condition", {}), context):
            return True
    return False


def _target(change: ChangeBase) -> ChangeBase:
    return change.original if change.kind == "undo" else change  # type: ignore[attr-defined,no-any-return]


def _own_actions(change: ChangeBase) -> set[str]:
    target = _target(change)
    mutating = target.APPLY_ACTIONS if phase_of(change) == "apply" else target.UNDO_ACTIONS
    return set(mutating) | set(target.READ_ACTIONS)


def _action_resources(change: ChangeBase, action: str) -> list[tuple[str, dict[str, str]]]:
    """Where a legitimate call of `action` for this change lands, with the request context IAM would see."""
    target = _target(change)
    if action in target.UNSCOPED_ACTIONS:
        return [("*", {})]
    if target.kind == "detach-policy":
        if action == "iam:ListEntitiesForPolicy":
            return [(target.resource_arn, {})]
        entity_kinds = {"Role": "role", "User": "user", "Group": "group"}
        entity = next(v for k, v in entity_kinds.items() if action.endswith(f"{k}Policy"))
        names = sorted(name for kind, name in target.detached if kind == entity)  # type: ignore[attr-defined]
        return [(f"arn:aws:iam::{ACCOUNT}:{entity}/{name}", {"iam:PolicyARN": target.resource_arn}) for name in names]
    if target.kind == "create-vpc-flow-logs":
        role = target.after.flow_logs[0].deliver_logs_role_arn  # type: ignore[attr-defined]
        flow_log = f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc-flow-log/fl-0123456789abcdef0"
        return {
            "ec2:CreateFlowLogs": [(target.resource_arn, {}), (flow_log, {})],
            "iam:PassRole": [(role, {"iam:PassedToService": "vpc-flow-logs.amazonaws.com"})],
            "ec2:DeleteFlowLogs": [(flow_log, {})],
        }[action]
    if target.kind == "enable-config-recorder":
        # The recorder's ARN ends in an id AWS assigns; the change's resource names the region's recorders.
        recorder = f"arn:aws:config:{REGION}:{ACCOUNT}:configuration-recorder/default/abcdefghijklmnop"
        service_linked = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig"
        return {
            "iam:PassRole": [(service_linked, {"iam:PassedToService": "config.amazonaws.com"})],
            "iam:CreateServiceLinkedRole": [(service_linked, {"iam:AWSServiceName": "config.amazonaws.com"})],
        }.get(action, [(recorder, {})])
    return [(target.resource_arn, {})]


@pytest.mark.parametrize("change", ALL_CHANGES, ids=_ids(ALL_CHANGES))
def test_the_policy_allows_every_action_the_change_needs_where_it_needs_it(change: ChangeBase) -> None:
    policy = json.loads(session_policy(change))
    assert policy["Version"] == "2012-10-17"
    checked = 0
    for action in _own_actions(change):
        for resource, context in _action_resources(change, action):
            assert allows(policy, action, resource, context), (action, resource)
            checked += 1
    # Every action has a place, except detaching from an entity type the change does not touch.
    assert checked >= len(_own_actions(change)) - (2 if _target(change).kind == "detach-policy" else 0)


@pytest.mark.parametrize("change", ALL_CHANGES, ids=_ids(ALL_CHANGES))
def test_the_policy_allows_no_other_action_of_any_kind_or_phase(change: ChangeBase) -> None:
    policy = json.loads(session_policy(change))
    own = _own_actions(change)
    every_action = declared_actions() | {"iam:PassRole", "s3:PutBucketPolicy", "ec2:AuthorizeSecurityGroupIngress"}
    for action in sorted(every_action - own):
        for resource in ("*", change.resource_arn, f"arn:aws:iam::{ACCOUNT}:role/anything"):
            assert not allows(policy, action, resource, {"iam:PassedToService": "vpc-flow-logs.amazonaws.com"}), (
                action,
                resource,
            )
    for statement in policy["Statement"]:
        for action in _as_list(statement["Action"]):
            assert not set(action) & {"*", "?"}, action


@pytest.mark.parametrize("change", ALL_CHANGES, ids=_ids(ALL_CHANGES))
def test_the_policy_does_not_reach_another_resource_or_region(change: ChangeBase) -> None:
    policy = json.loads(session_policy(change))
    target = _target(change)
    elsewhere = {
        "revoke-security-group-rules": f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/sg-0ffffffffffffffff",
        "enable-bucket-public-access-block": "arn:aws:s3:::someone-elses-bucket",
        "detach-policy": f"arn:aws:iam::{ACCOUNT}:role/bystander",
        "enable-kms-key-rotation": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/ffffffff-ffff-ffff-ffff-ffffffffffff",
        "create-vpc-flow-logs": f"arn:aws:ec2:{REGION}:{ACCOUNT}:vpc/vpc-0fffffffffffffff0",
        "create-multi-region-trail": f"arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/another-trail",
        "enable-config-recorder": f"arn:aws:config:{REGION}:{ACCOUNT}:configuration-recorder/someone-elses/abcdefgh",
    }.get(target.kind)
    for action in _own_actions(change):
        for resource, context in _action_resources(change, action):
            # The same call in another region (unscoped actions are pinned to the change's region).
            other_region = {**context, "aws:RequestedRegion": OTHER_REGION}
            if resource == "*" or REGION in resource:
                assert not allows(policy, action, resource.replace(REGION, OTHER_REGION), other_region), action
            if elsewhere and resource != "*":
                if target.kind == "detach-policy" and action == "iam:ListEntitiesForPolicy":
                    continue
                assert not allows(policy, action, elsewhere, context), (action, elsewhere)
    if target.kind == "detach-policy":
        other_policy = f"arn:aws:iam::{ACCOUNT}:policy/Innocent"
        for action in _own_actions(change) - {"iam:ListEntitiesForPolicy"}:
            for resource, _ in _action_resources(change, action):
                assert not allows(policy, action, resource, {"iam:PolicyARN": other_policy}), action
        assert not allows(policy, "iam:ListEntitiesForPolicy", other_policy)
    if target.kind == "create-vpc-flow-logs" and phase_of(change) == "apply":
        role = f"arn:aws:iam::{ACCOUNT}:role/flow-logs-delivery"
        assert not allows(policy, "iam:PassRole", role, {"iam:PassedToService": "ec2.amazonaws.com"})
        assert not allows(policy, "iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/admin", {})


@pytest.mark.parametrize("change", ALL_CHANGES, ids=_ids(ALL_CHANGES))
def test_the_policy_fits_sts_and_the_session_names_the_change(change: ChangeBase) -> None:
    # STS limits an inline session policy to 2,048 characters of plain text.
    assert len(session_policy(change)) <= 2048
    name = role_session_name(change)
    assert re.fullmatch(r"[\w+=,.@-]{2,64}", name)
    assert change.change_id in name
    assert phase_of(change) == ("undo" if change.kind == "undo" else "apply")


def test_every_kind_is_covered_and_the_session_is_as_short_as_sts_allows() -> None:
    assert {c.kind for c in FORWARD} | {"undo"} == set(KINDS)
    assert SESSION_DURATION_SECONDS == 900
