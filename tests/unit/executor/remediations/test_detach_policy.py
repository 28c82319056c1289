"""The detach remediation detaches the policy from the approved entities only; undo attaches it to them again."""

from __future__ import annotations

import json

import boto3
import pytest

from aegis_executor.remediations import remediation_for
from tests.support.changes import ASSUME_EC2, CASES
from tests.support.changes import CASE_REGION as REGION

pytestmark = pytest.mark.usefixtures("aws")


def test_undo_of_a_change_that_was_never_applied_is_drift() -> None:
    case = CASES["detach-policy"]()
    fix = remediation_for(case.change)
    current = fix.read_current(boto3.Session(region_name=REGION), case.change)
    assert not fix.is_after(current, case.change)


def test_an_entity_attached_since_the_scan_keeps_the_policy() -> None:
    case = CASES["detach-policy"]()
    iam = boto3.client("iam", region_name=REGION)
    iam.create_role(RoleName="newcomer", AssumeRolePolicyDocument=json.dumps(ASSUME_EC2))
    iam.attach_role_policy(RoleName="newcomer", PolicyArn=case.change.resource_arn)
    fix = remediation_for(case.change)
    session = boto3.Session(region_name=REGION)

    assert fix.is_before(fix.read_current(session, case.change), case.change)
    fix.apply(session, case.change)

    assert fix.verify(session, case.change).ok
    assert case.facts() == {("role", "newcomer")}
