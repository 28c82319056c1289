"""The inline-policy remediation: rewrites or deletes only the approved policies of the approved entity, only while
each holds the approved document, and undo puts back exactly the approved document or nothing."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from aegis.catalogue.kinds.remove_inline_policy_admin_statements import (
    AdminStatement,
    InlineAdminPolicies,
    RemoveInlinePolicyAdminStatements,
)
from aegis.models import Risk
from aegis_executor.remediations import RemediationFailed, remediation_for
from tests.support.changes import ACCOUNT, ALLOW_ALL, CASES, READ_LOGS, in_moto, inline_admin_policy
from tests.support.changes import CASE_REGION as REGION

pytestmark = pytest.mark.usefixtures("aws")


def _session() -> boto3.Session:
    return boto3.Session(region_name=REGION)


def _iam() -> Any:
    return boto3.client("iam", region_name=REGION)


def _change(arn: str, *policies: Any) -> RemoveInlinePolicyAdminStatements:
    return in_moto(
        RemoveInlinePolicyAdminStatements,
        check_id="iam-inline-policy-admin",
        resource_arn=arn,
        risk=Risk.HIGH,
        before=InlineAdminPolicies(policies=policies),
        after=InlineAdminPolicies(),
    )


def test_undo_of_a_change_that_was_never_applied_is_drift() -> None:
    case = CASES["remove-inline-policy-admin-statements"]()
    fix = remediation_for(case.change)
    assert not fix.is_after(fix.read_current(_session(), case.change), case.change)


def test_a_policy_added_since_the_scan_is_left_alone() -> None:
    case = CASES["remove-inline-policy-admin-statements"]()
    newcomer = {"Version": "2012-10-17", "Statement": [ALLOW_ALL]}
    _iam().put_role_policy(RoleName="inline-admin", PolicyName="newcomer", PolicyDocument=json.dumps(newcomer))
    fix = remediation_for(case.change)

    assert fix.is_before(fix.read_current(_session(), case.change), case.change)
    fix.apply(_session(), case.change)

    assert fix.verify(_session(), case.change).ok
    assert case.facts()["newcomer"] == newcomer


@pytest.mark.parametrize("entity", ["user", "group"])
def test_users_and_groups_are_cleaned_and_restored(entity: str) -> None:
    iam = _iam()
    name_key = f"{entity.capitalize()}Name"
    arn = getattr(iam, f"create_{entity}")(**{name_key: "holder"})[entity.capitalize()]["Arn"]
    mixed = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*:*", "Resource": "*"}, READ_LOGS]}
    getattr(iam, f"put_{entity}_policy")(**{name_key: "holder"}, PolicyName="mixed", PolicyDocument=json.dumps(mixed))
    change = _change(arn, inline_admin_policy("mixed", mixed, 0))
    fix = remediation_for(change)

    def document() -> Any:
        return getattr(iam, f"get_{entity}_policy")(**{name_key: "holder"}, PolicyName="mixed")["PolicyDocument"]

    fix.apply(_session(), change)
    assert fix.verify(_session(), change).ok
    assert document()["Statement"] == [READ_LOGS]
    fix.undo(_session(), change)
    assert fix.verify_undone(_session(), change).ok
    assert document() == mixed


def test_a_change_whose_statements_are_not_the_documents_writes_nothing() -> None:
    iam = _iam()
    arn = iam.create_user(UserName="bob")["User"]["Arn"]
    document = {"Version": "2012-10-17", "Statement": [ALLOW_ALL, READ_LOGS]}
    iam.put_user_policy(UserName="bob", PolicyName="p", PolicyDocument=json.dumps(document))
    forged = inline_admin_policy("p", document, 0).model_copy(
        update={"admin_statements": (AdminStatement(index=1, statement=ALLOW_ALL),)}
    )
    change = _change(arn, forged)
    fix = remediation_for(change)

    with pytest.raises(RemediationFailed, match="approved statements"):
        fix.apply(_session(), change)
    assert iam.get_user_policy(UserName="bob", PolicyName="p")["PolicyDocument"] == document


def test_undo_puts_back_nothing_over_a_document_edited_since_the_apply() -> None:
    case = CASES["remove-inline-policy-admin-statements"]()
    fix = remediation_for(case.change)
    fix.apply(_session(), case.change)
    edited = {"Version": "2012-10-17", "Statement": [READ_LOGS]}
    _iam().put_role_policy(RoleName="inline-admin", PolicyName="mixed", PolicyDocument=json.dumps(edited))

    assert not fix.is_after(fix.read_current(_session(), case.change), case.change)
    with pytest.raises(RemediationFailed, match="approved document"):
        fix.undo(_session(), case.change)
    assert case.facts()["mixed"] == edited


def test_a_deleted_policy_or_entity_is_not_the_approved_state() -> None:
    case = CASES["remove-inline-policy-admin-statements"]()
    _iam().delete_role_policy(RoleName="inline-admin", PolicyName="only-admin")
    fix = remediation_for(case.change)
    assert not fix.is_before(fix.read_current(_session(), case.change), case.change)

    gone = _change(f"arn:aws:iam::{ACCOUNT}:role/nobody", *case.change.before.policies)
    assert not fix.is_before(fix.read_current(_session(), gone), gone)
