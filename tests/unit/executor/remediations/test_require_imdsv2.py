"""The IMDSv2 remediation sends HttpTokens and nothing else, to the approved instance only; an instance that is gone
is never "before"."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from aegis.catalogue.kinds.require_imdsv2 import InstanceMetadataOptions
from aegis_executor.remediations import remediation_for
from tests.support.changes import CASE_REGION as REGION
from tests.support.changes import CASES, run_instance

pytestmark = pytest.mark.usefixtures("aws")


def _sent(session: boto3.Session) -> list[dict[str, Any]]:
    """The parameters of every ModifyInstanceMetadataOptions call made through `session`."""
    sent: list[dict[str, Any]] = []
    session.events.register(
        "provide-client-params.ec2.ModifyInstanceMetadataOptions",
        lambda params, **_: sent.append(dict(params)),
    )
    return sent


def test_only_http_tokens_of_the_approved_instance_are_sent() -> None:
    other = run_instance(HttpTokens="optional")
    case = CASES["require-imdsv2"]()
    fix = remediation_for(case.change)
    session = boto3.Session(region_name=REGION)
    sent = _sent(session)
    instance = case.change.instance_id  # type: ignore[attr-defined]

    fix.apply(session, case.change)
    fix.undo(session, case.change)

    assert sent == [
        {"InstanceId": instance, "HttpTokens": "required"},
        {"InstanceId": instance, "HttpTokens": "optional"},
    ]
    ec2 = boto3.client("ec2", region_name=REGION)
    [untouched] = ec2.describe_instances(InstanceIds=[other])["Reservations"][0]["Instances"]
    assert untouched["MetadataOptions"]["HttpTokens"] == "optional"


def test_a_terminated_or_unknown_instance_is_gone() -> None:
    case = CASES["require-imdsv2"]()
    fix = remediation_for(case.change)
    session = boto3.Session(region_name=REGION)
    boto3.client("ec2", region_name=REGION).terminate_instances(InstanceIds=[case.change.instance_id])  # type: ignore[attr-defined]

    assert fix.read_current(session, case.change) == InstanceMetadataOptions(exists=False)
    assert not fix.is_before(fix.read_current(session, case.change), case.change)

    unknown = case.change.model_copy(
        update={"resource_arn": case.change.resource_arn.rsplit("/", 1)[0] + "/i-0123456789abcdef0"}
    )
    assert fix.read_current(session, unknown) == InstanceMetadataOptions(exists=False)


def test_a_hop_limit_changed_since_approval_is_drift() -> None:
    case = CASES["require-imdsv2"]()
    fix = remediation_for(case.change)
    session = boto3.Session(region_name=REGION)

    case.drift()

    current = fix.read_current(session, case.change)
    assert (current.http_tokens, current.hop_limit) == ("optional", 2)
    assert not fix.is_before(current, case.change)
