"""require-imdsv2: only ever turns HttpTokens from optional to required on one instance, nothing else."""

from __future__ import annotations

import pytest

from aegis.catalogue.kinds.require_imdsv2 import InstanceMetadataOptions, RequireImdsv2
from tests.support.changes import ACCOUNT, COMMON, REGION, require_imdsv2_change

INSTANCE_ARN = f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0abc1234"
OPTIONAL = InstanceMetadataOptions(http_tokens="optional")
REQUIRED = InstanceMetadataOptions(http_tokens="required")


def _propose(before: InstanceMetadataOptions, after: InstanceMetadataOptions, arn: str = INSTANCE_ARN) -> RequireImdsv2:
    return RequireImdsv2.propose(
        check_id="ec2-instance-imdsv2-not-required", resource_arn=arn, before=before, after=after, **COMMON
    )


def test_making_tokens_optional_is_refused() -> None:
    with pytest.raises(ValueError, match="from optional to required"):
        _propose(REQUIRED, OPTIONAL)


def test_changing_any_other_option_is_refused() -> None:
    with pytest.raises(ValueError, match="HttpTokens only"):
        _propose(OPTIONAL, REQUIRED.model_copy(update={"hop_limit": 2}))
    with pytest.raises(ValueError, match="HttpTokens only"):
        _propose(OPTIONAL, REQUIRED.model_copy(update={"http_endpoint": "disabled"}))


def test_a_gone_instance_is_refused() -> None:
    with pytest.raises(ValueError, match="existing instance"):
        _propose(InstanceMetadataOptions(exists=False), REQUIRED)


@pytest.mark.parametrize(
    "arn",
    [
        f"arn:aws:ec2:{REGION}:{ACCOUNT}:volume/vol-0abc1234",
        f"arn:aws:ec2:us-east-2:{ACCOUNT}:instance/i-0abc1234",
        f"arn:aws:ec2:{REGION}:210987654321:instance/i-0abc1234",
        f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/*",
    ],
)
def test_a_resource_that_is_not_an_instance_of_the_change_is_refused(arn: str) -> None:
    with pytest.raises(ValueError, match="instance ARN"):
        _propose(OPTIONAL, REQUIRED, arn)


def test_the_approver_sees_what_imdsv1_clients_lose() -> None:
    change = require_imdsv2_change()
    assert isinstance(change, RequireImdsv2)
    assert change.instance_id == "i-0abc1234"
    assert change.summary() == "Require IMDSv2 on i-0abc1234"
    texts = change.approval_properties()
    assert texts["before"] == "metadata service on: IMDSv1 and IMDSv2 answer (HttpTokens optional), hop limit 1"
    assert texts["after"] == (
        "metadata service on: only IMDSv2 answers (HttpTokens required), hop limit 1; IMDSv1 calls (no token) get 401"
    )
    assert len(change.binding_message()) <= 64


def test_the_session_policy_is_pinned_to_the_instance() -> None:
    change = require_imdsv2_change()
    for phase in ("apply", "undo"):
        scoped, unscoped = change.session_policy_statements(phase)
        assert (scoped["Action"], scoped["Resource"]) == (["ec2:ModifyInstanceMetadataOptions"], [INSTANCE_ARN])
        assert unscoped["Action"] == ["ec2:DescribeInstances"]
        assert unscoped["Condition"] == {"StringEquals": {"aws:RequestedRegion": REGION}}


def test_metadata_options_read_from_aws_fill_in_what_an_answer_leaves_out() -> None:
    listed = {"State": "applied", "HttpTokens": "optional", "HttpPutResponseHopLimit": 2, "HttpEndpoint": "enabled"}
    assert InstanceMetadataOptions.from_aws(listed) == InstanceMetadataOptions(hop_limit=2)
    assert InstanceMetadataOptions.from_aws({"State": "applied", "HttpTokens": "required"}) == REQUIRED
    assert InstanceMetadataOptions.from_aws(None).imdsv1_allowed
    assert not InstanceMetadataOptions(http_endpoint="disabled").imdsv1_allowed
    assert not REQUIRED.imdsv1_allowed
