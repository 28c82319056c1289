"""A change about a member account of the organization, through the executor's real handler (moto in-process with
several accounts, real CIBA approvals of the Auth0 emulator):

- it is applied as the member's own AegisRemediationRole, assumed with the approver's token: the change takes effect
  in the member account and nowhere else;
- a session STS answers for another account than the change's is refused (Executor.WrongAccount) before it is used:
  nothing is applied, the approval is spent;
- a deployment naming no member role refuses member changes before their approval is used, and an undo in a member
  account when it names no member undo role;
- an approval of a change for one account does not release the same change re-targeted to another.

moto resolves the account of a request from its access key: a role ARN of another account, assumed, gives
credentials acting in that account (as AWS does), so one in-process moto holds the whole organization.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from aegis.catalogue import ChangeBase, Undo
from aegis.catalogue.kinds.enable_bucket_public_access_block import EnableBucketPublicAccessBlock
from aegis.catalogue.kinds.enable_ebs_default_encryption import EbsDefaultEncryption, EnableEbsDefaultEncryption
from aegis.catalogue.states import PublicAccessBlock
from aegis.models import Risk
from aegis_executor.errors import ApprovalInvalid, UndoDisabled, WrongAccount
from tests.support.changes import ACCOUNT
from tests.support.changes import CASE_REGION as REGION
from tests.support.executor_world import ROLE_ARN, World, handoff_of

MEMBER = "210987654321"
OTHER_MEMBER = "333344445555"
MEMBER_ROLE_NAME = "AegisRemediationRole"
MEMBER_ROLE_ARN = f"arn:aws:iam::{MEMBER}:role/{MEMBER_ROLE_NAME}"


def session_in(account: str) -> boto3.Session:
    """A session acting in `account` (as the organization's access role would give the test's setup)."""
    credentials = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole", RoleSessionName="test-setup"
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    )


def ebs_encryption_on(session: boto3.Session) -> bool:
    return bool(session.client("ec2").get_ebs_encryption_by_default()["EbsEncryptionByDefault"])


def ebs_change(account: str) -> ChangeBase:
    return EnableEbsDefaultEncryption.propose(
        check_id="ec2-ebs-default-encryption",
        resource_arn=f"arn:aws:ec2:{REGION}:{account}:ebs-default-encryption",
        account_id=account,
        region=REGION,
        risk=Risk.LOW,
        before=EbsDefaultEncryption(enabled=False),
        after=EbsDefaultEncryption(enabled=True),
    )


def bucket_change(account: str) -> ChangeBase:
    return EnableBucketPublicAccessBlock.propose(
        check_id="s3-bucket-public",
        resource_arn="arn:aws:s3:::shared-name-bucket",
        account_id=account,
        region=REGION,
        risk=Risk.MEDIUM,
        before=PublicAccessBlock(),
        after=PublicAccessBlock.all_on(),
    )


@pytest.fixture
def member_world(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    """The world's executor as the template configures it (MEMBER_*_ROLE_NAME), with the member's role created in
    the member account as member/template.yaml does."""
    monkeypatch.setattr(world.app.executor(), "member_remediation_role_name", MEMBER_ROLE_NAME)
    monkeypatch.setattr(world.app.executor(), "member_undo_role_name", "AegisUndoRole")
    session_in(MEMBER).client("iam").create_role(RoleName=MEMBER_ROLE_NAME, AssumeRolePolicyDocument="{}")
    return world


def test_a_member_accounts_change_is_applied_as_its_own_role_in_that_account_only(member_world: World) -> None:
    world = member_world
    member, own = session_in(MEMBER), boto3.Session(region_name=REGION)
    assert (ebs_encryption_on(member), ebs_encryption_on(own)) == (False, False)
    change = ebs_change(MEMBER)

    result = world.invoke(world.payload(change, world.approve(change)))

    assert result["outcome"] == "applied", result["reason"]
    assert ebs_encryption_on(member) is True
    assert ebs_encryption_on(own) is False  # the security account was not touched
    (sts_call,) = world.sts_calls
    assert sts_call["RoleArn"] == MEMBER_ROLE_ARN
    assert sts_call["RoleSessionName"] == f"aegis-{change.change_id}"
    [session] = world.audit("executor.session")
    assert session["outcome"] == "obtained"
    assert session["details"]["assumed_role_arn"].startswith(f"arn:aws:sts::{MEMBER}:assumed-role/{MEMBER_ROLE_NAME}/")
    # Every record names the change's account: the validator allows its undo by the record of applying it there.
    assert {item["details"]["account_id"] for item in world.audit()} == {MEMBER}


def test_the_security_accounts_own_change_still_uses_its_remediation_role(member_world: World) -> None:
    world = member_world
    change = ebs_change(ACCOUNT)
    result = world.invoke(world.payload(change, world.approve(change)))
    assert result["outcome"] == "applied", result["reason"]
    assert [call["RoleArn"] for call in world.sts_calls] == [ROLE_ARN]
    assert ebs_encryption_on(boto3.Session(region_name=REGION)) is True
    assert ebs_encryption_on(session_in(MEMBER)) is False


def answer_sts_for(account: str, world: World) -> list[str]:
    """Make STS answer every AssumeRoleWithWebIdentity of the executor with a real session of `account`, whatever
    role was asked for (a role ARN resolving elsewhere, a trust admitting the token in another account). Returns the
    role ARNs that were asked for."""
    asked: list[str] = []
    issuer = boto3.client("sts", region_name=REGION)

    def answer(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        # The serialized request: STS's query protocol keeps the parameters in a dict body.
        asked.append(params["body"]["RoleArn"])
        parsed = issuer.assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/{MEMBER_ROLE_NAME}",
            RoleSessionName=params["body"]["RoleSessionName"],
        )
        world.issued_aws_secrets.update(
            parsed["Credentials"][k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")
        )
        return AWSResponse("https://sts.amazonaws.com/", 200, {}, None), parsed

    world.app.executor().sts.meta.events.register_first("before-call.sts.AssumeRoleWithWebIdentity", answer)
    return asked


@pytest.mark.parametrize("session_account", [ACCOUNT, OTHER_MEMBER])
def test_a_session_in_another_account_than_the_changes_is_refused_before_it_is_used(
    member_world: World, session_account: str
) -> None:
    world = member_world
    asked = answer_sts_for(session_account, world)
    change = ebs_change(MEMBER)
    approval = world.approve(change)

    with pytest.raises(WrongAccount, match="another account than the change's") as refused:
        world.invoke(world.payload(change, approval))

    assert type(refused.value).__name__ == "Executor.WrongAccount"
    assert asked == [MEMBER_ROLE_ARN]
    # Nothing read or changed with the session, in any account.
    assert world.remediation_calls == []
    assert not any(ebs_encryption_on(s) for s in (session_in(MEMBER), session_in(OTHER_MEMBER)))
    assert ebs_encryption_on(boto3.Session(region_name=REGION)) is False
    assert world.audit("executor.applying") == []
    [session] = world.audit("executor.session")
    assert (session["outcome"], session["details"]["error"]) == ("wrong_account", "Executor.WrongAccount")
    assert session["details"]["assumed_role_arn"].startswith(f"arn:aws:sts::{session_account}:")
    assert session["details"]["role_arn"] == MEMBER_ROLE_ARN
    # The approval was spent getting there: it cannot be used again.
    assert world.audit("executor.approval_verified") != []
    assert not world.handoff_exists(handoff_of(approval, change))


def test_a_deployment_naming_no_member_role_refuses_a_member_change_before_its_approval_is_used(
    world: World,
) -> None:
    change = ebs_change(MEMBER)
    approval = world.approve(change)

    with pytest.raises(WrongAccount, match="MEMBER_REMEDIATION_ROLE_NAME"):
        world.invoke(world.payload(change, approval))

    assert world.sts_calls == []
    assert world.audit("executor.approval_verified") == []
    assert [item["outcome"] for item in world.audit("executor.wrong_account")] == ["refused"]
    assert not world.handoff_exists(handoff_of(approval, change))
    assert [item["outcome"] for item in world.audit("executor.approval_discarded")] == ["discarded"]


def test_an_undo_in_a_member_account_is_refused_when_the_deployment_names_no_member_undo_role(
    member_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = member_world
    monkeypatch.setattr(world.app.executor(), "member_undo_role_name", "")
    undo = Undo.of(ebs_change(MEMBER))
    approval = world.approve(undo)

    with pytest.raises(UndoDisabled, match="MEMBER_UNDO_ROLE_NAME"):
        world.invoke(world.payload(undo, approval))

    assert world.sts_calls == []
    assert world.audit("executor.approval_verified") == []
    assert not any(world.handoff_exists(handoff_of([entry], undo)) for entry in approval)


def test_an_undo_in_a_member_account_assumes_the_members_undo_role(member_world: World) -> None:
    world = member_world
    change = ebs_change(MEMBER)
    assert world.invoke(world.payload(change, world.approve(change)))["outcome"] == "applied"
    undo = Undo.of(change)

    result = world.invoke(world.payload(undo, world.approve(undo)))

    assert result["outcome"] == "applied", result["reason"]
    assert [call["RoleArn"] for call in world.sts_calls] == [
        MEMBER_ROLE_ARN,
        f"arn:aws:iam::{MEMBER}:role/AegisUndoRole",
    ]
    assert ebs_encryption_on(session_in(MEMBER)) is False


def test_an_approval_re_targeted_across_accounts_is_refused_by_its_digest(member_world: World) -> None:
    """A bucket's ARN names no account: the same change of another account keeps its change id (the id is the
    resource and the states), but not its digest, which covers the account the approver was shown."""
    world = member_world
    approved = bucket_change(MEMBER)
    retargeted = bucket_change(OTHER_MEMBER)
    assert retargeted.change_id == approved.change_id
    assert retargeted.digest != approved.digest
    approval = world.approve(approved)

    with pytest.raises(ApprovalInvalid) as refused:
        world.invoke(world.payload(retargeted, approval))

    assert type(refused.value).__name__ == "Executor.ApprovalInvalid"
    assert world.sts_calls == []
    assert world.remediation_calls == []
    assert world.audit("executor.applying") == []
    # Refused, and spent: the approval of the member's change cannot be replayed for either account.
    assert not world.handoff_exists(handoff_of(approval, approved))
