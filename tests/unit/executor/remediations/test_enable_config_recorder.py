"""The Config remediation creates only what the region lacked and undoes only that; AWS Config's service-linked role
is created when missing, reused when present, and left in place by undo."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from aegis_executor.remediations import remediation_for
from aegis_executor.remediations.enable_config_recorder import _role_exists
from tests.support.changes import CASE_REGION as REGION
from tests.support.changes import CASES

pytestmark = pytest.mark.usefixtures("aws")


def _config_roles() -> list[str]:
    roles = boto3.client("iam", region_name=REGION).list_roles(PathPrefix="/aws-service-role/config.amazonaws.com/")
    return [r["RoleName"] for r in roles["Roles"]]


def test_the_service_linked_role_is_created_once_and_survives_undo() -> None:
    case = CASES["enable-config-recorder"]()
    fix = remediation_for(case.change)
    session = boto3.Session(region_name=REGION)
    assert _config_roles() == []

    fix.apply(session, case.change)
    fix.undo(session, case.change)
    fix.apply(session, case.change)  # the role exists now: IAM's refusal to create it again is no failure

    assert fix.verify(session, case.change).ok
    assert len(_config_roles()) == 1
    fix.undo(session, case.change)
    assert fix.verify_undone(session, case.change).ok
    assert len(_config_roles()) == 1


def test_a_channel_someone_created_since_the_scan_is_drift() -> None:
    case = CASES["enable-config-recorder"]()
    fix = remediation_for(case.change)
    config = boto3.client("config", region_name=REGION)
    config.put_configuration_recorder(
        ConfigurationRecorder={"name": "default", "roleARN": "arn:aws:iam::123456789012:role/other"}
    )
    config.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": "aegis-config-logs"})

    assert not fix.is_before(fix.read_current(boto3.Session(region_name=REGION), case.change), case.change)


def test_starting_an_existing_recorder_calls_nothing_but_start_and_undo_only_stops_it() -> None:
    case = CASES["enable-config-recorder/start-existing"]()
    fix = remediation_for(case.change)
    session = boto3.Session(region_name=REGION)
    calls: list[str] = []
    session.events.register("before-call", lambda model, **_: calls.append(model.name))

    fix.apply(session, case.change)
    assert [c for c in calls if not c.startswith("Describe")] == ["StartConfigurationRecorder"]
    calls.clear()
    fix.undo(session, case.change)
    assert [c for c in calls if not c.startswith("Describe")] == ["StopConfigurationRecorder"]
    assert _config_roles() == []


def _error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "CreateServiceLinkedRole")


def test_only_an_existing_role_is_taken_as_success() -> None:
    taken = "Service role name AWSServiceRoleForConfig has been taken in this account, please try a different suffix."
    assert _role_exists(_error("InvalidInput", taken))
    assert _role_exists(_error("EntityAlreadyExists", "Role with name AWSServiceRoleForconfig already exists."))
    assert not _role_exists(_error("InvalidInput", "Invalid service name"))
    assert not _role_exists(_error("AccessDenied", "not authorized to perform iam:CreateServiceLinkedRole"))
