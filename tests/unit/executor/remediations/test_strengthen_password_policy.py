"""The password-policy remediation writes the whole merged policy; "never expires" has two spellings."""

from __future__ import annotations

import boto3
import pytest

from aegis.catalogue.kinds.strengthen_password_policy import PasswordPolicy
from aegis_executor.remediations import remediation_for
from aegis_executor.remediations.strengthen_password_policy import update_arguments
from tests.support.changes import CASE_REGION as REGION
from tests.support.changes import CASES


def test_a_maximum_age_of_zero_is_left_out_of_the_update() -> None:
    arguments = update_arguments(PasswordPolicy(minimum_password_length=14, max_password_age=0))
    assert "MaxPasswordAge" not in arguments
    assert arguments["MinimumPasswordLength"] == 14
    assert update_arguments(PasswordPolicy(max_password_age=90))["MaxPasswordAge"] == 90


@pytest.mark.usefixtures("aws")
def test_never_expiring_read_as_zero_is_the_approved_policy_without_an_age() -> None:
    case = CASES["strengthen-password-policy/none-before"]()
    fix = remediation_for(case.change)
    approved_after = case.change.after
    assert approved_after.max_password_age is None  # type: ignore[attr-defined]

    assert fix.is_after(approved_after.model_copy(update={"max_password_age": 0}), case.change)
    fix.apply(boto3.Session(region_name=REGION), case.change)
    assert fix.verify(boto3.Session(region_name=REGION), case.change).ok
