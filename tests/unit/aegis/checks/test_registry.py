"""The registry of checks: every module it finds is a complete check. Each check's own CIS numbers and remediation
kind are asserted in its test file, `test_<check id>.py`."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from aegis.catalogue import KINDS
from aegis.checks import CHECKS, CheckMetadata, PlanConfig, UnknownCheck, get_check
from aegis.models import Severity


@pytest.mark.parametrize("check_id", sorted(CHECKS))
def test_each_module_is_complete(check_id):
    module = CHECKS[check_id]
    meta = module.METADATA
    assert meta.check_id == check_id
    assert module.__name__.rsplit(".", 1)[-1] == check_id.replace("-", "_")
    assert meta.title
    assert meta.rationale
    assert meta.resource_type.startswith("AWS::")
    assert meta.remediation_kind is None or meta.remediation_kind in KINDS
    assert meta.services
    assert meta.scope in ("region", "account")
    assert callable(module.evaluate)
    assert callable(module.propose)


def test_metadata_refuses_an_unknown_remediation_kind():
    with pytest.raises(ValidationError, match="unknown remediation kind"):
        CheckMetadata(
            check_id="made-up-check",
            title="t",
            cis_v3="1.1",
            cis_v5="1.1",
            cis_v7="2.1",
            severity=Severity.LOW,
            rationale="r",
            remediation_kind="open-everything",
            resource_type="AWS::EC2::SecurityGroup",
            services=("ec2",),
            scope="region",
        )


@pytest.mark.parametrize(
    ("default", "alternatives", "message"),
    [
        ("detach-policy", ("open-everything",), "unknown remediation kind 'open-everything'"),
        (None, ("detach-policy",), "alternative kinds without a default"),
    ],
)
def test_metadata_refuses_alternatives_it_cannot_plan(default, alternatives, message):
    with pytest.raises(ValidationError, match=message):
        CheckMetadata(
            check_id="made-up-check",
            title="t",
            cis_v3="1.16",
            cis_v5="1.15",
            cis_v7="2.14",
            severity=Severity.HIGH,
            rationale="r",
            remediation_kind=default,
            alternative_kinds=alternatives,
            resource_type="AWS::IAM::ManagedPolicy",
            services=("iam",),
            scope="account",
        )


def test_unknown_check_id_is_a_named_error():
    with pytest.raises(UnknownCheck, match="no-such-check"):
        get_check("no-such-check")


def test_plan_config_from_the_agent_environment():
    config = PlanConfig.from_env(
        {"TRAIL_BUCKET": "org-trails", "FLOW_LOGS_LOG_GROUP": "", "FLOW_LOGS_ROLE_ARN": "arn:aws:iam::1:role/x"}
    )
    assert (config.trail_bucket, config.flow_logs_log_group, config.flow_logs_role_arn) == (
        "org-trails",
        None,
        "arn:aws:iam::1:role/x",
    )
    assert config.flow_logs_traffic_type == "REJECT"
    with pytest.raises(ValidationError):
        PlanConfig.from_env({"FLOW_LOGS_TRAFFIC_TYPE": "SOME"})


def test_evidence_identifiers_name_known_shapes_and_only_names_the_change_is_built_from():
    declared = {
        check_id: m.METADATA.evidence_identifiers for check_id, m in CHECKS.items() if m.METADATA.evidence_identifiers
    }
    # Resource names a change is built from; anything else in evidence is screened as text.
    assert declared == {
        "iam-admin-policy-attached": {
            "attachments.roles[]": "iam-role-name",
            "attachments.users[]": "iam-user-name",
            "attachments.groups[]": "iam-group-name",
        },
        "iam-inline-policy-admin": {
            "role": "iam-role-name",
            "user": "iam-user-name",
            "group": "iam-group-name",
            "policies[].name": "iam-group-name",
        },
        "cloudtrail-no-multi-region-trail": {
            "multi_region_trails_not_logging[].name": "cloudtrail-trail-name",
            "multi_region_trails_not_logging[].s3_bucket": "s3-bucket-name",
        },
    }
    fields = CHECKS["iam-admin-policy-attached"].METADATA.model_dump() | {"evidence_identifiers": {"users[]": "nope"}}
    with pytest.raises(ValidationError, match="names no known shape"):
        CheckMetadata(**fields)


# Checks whose fix needs a destination the deployment may not have set: without it they are notify-only.
NEEDS_A_DESTINATION = ("cloudtrail-no-multi-region-trail", "ec2-vpc-flow-logs-off", "config-recorder-off")


@pytest.mark.parametrize("check_id", sorted(CHECKS))
def test_a_check_that_can_be_notify_only_says_what_a_human_should_do(check_id: str) -> None:
    meta = CHECKS[check_id].METADATA
    if meta.remediation_kind is None or check_id in NEEDS_A_DESTINATION:
        assert len(meta.manual_fix) > 40, f"{check_id}: no manual_fix for when nothing is proposed"
