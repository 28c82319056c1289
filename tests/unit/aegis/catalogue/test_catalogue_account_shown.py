"""The approver sees which account a change is about: one deployment approves changes in every account of an
organization, and an ARN does not always say (an S3 bucket's names none). The binding message and the approval
properties name the change's account_id; the digest, which already covers it, is what it always was."""

from __future__ import annotations

import re

import pytest

from aegis.catalogue import ChangeBase, Undo, parse_change
from aegis.catalogue.base import BINDING_MESSAGE_MAX
from aegis.catalogue.kinds.enable_bucket_public_access_block import EnableBucketPublicAccessBlock
from aegis.catalogue.kinds.enable_kms_key_rotation import EnableKmsKeyRotation, KeyRotation
from aegis.catalogue.states import PublicAccessBlock
from aegis.models import Risk, canonical_json, sha256_hex
from tests.support.changes import ACCOUNT, REGION, one_of_each_kind

MEMBER = "210987654321"
AUTH0_BINDING_MESSAGE = re.compile(r"[A-Za-z0-9 +\-_.,:#]+")


def bucket_change(account_id: str, bucket: str = "public-bucket") -> EnableBucketPublicAccessBlock:
    return EnableBucketPublicAccessBlock.propose(
        check_id="s3-bucket-public",
        resource_arn=f"arn:aws:s3:::{bucket}",
        before=PublicAccessBlock(),
        after=PublicAccessBlock.all_on(),
        account_id=account_id,
        region=REGION,
        risk=Risk.MEDIUM,
    )


def every_change() -> list[ChangeBase]:
    forward = one_of_each_kind()
    return forward + [Undo.of(change) for change in forward]


@pytest.mark.parametrize("change", every_change(), ids=lambda c: f"{c.kind}-{c.change_id}")
def test_every_binding_message_names_the_account_and_the_digest_whole_within_auth0s_rules(change: ChangeBase) -> None:
    message = change.binding_message()
    assert len(message) <= BINDING_MESSAGE_MAX
    assert AUTH0_BINDING_MESSAGE.fullmatch(message)
    assert change.account_id in message
    assert message.endswith(f" #{change.digest[:6]}")


@pytest.mark.parametrize("change", every_change(), ids=lambda c: f"{c.kind}-{c.change_id}")
def test_every_change_shows_its_account_as_an_approval_property(change: ChangeBase) -> None:
    assert change.approval_properties()["account"] == change.account_id


def test_a_bucket_change_whose_arn_names_no_account_shows_the_member_account_it_is_about() -> None:
    change = bucket_change(MEMBER)
    assert ":" + MEMBER not in change.resource_arn  # nothing else on the screen would say
    assert change.approval_properties()["account"] == MEMBER
    assert change.binding_message() == f"Block public access s3 public-bucket acct {MEMBER} #{change.digest[:6]}"
    # The same bucket name in the security account is another approval, shown as such.
    own = bucket_change(ACCOUNT)
    assert own.approval_properties()["account"] == ACCOUNT
    assert ACCOUNT in own.binding_message()
    assert MEMBER not in own.binding_message()
    assert own.digest != change.digest


def test_the_long_form_names_the_account_in_words_when_the_whole_summary_fits() -> None:
    change = bucket_change(MEMBER, bucket="logs")
    assert change.binding_message() == f"Block public access s3 logs, account {MEMBER} #{change.digest[:6]}"


def test_a_summary_too_long_for_both_forms_is_cut_never_the_account_or_the_digest() -> None:
    key_id = "1234abcd-12ab-34cd-56ef-1234567890ab"
    change = EnableKmsKeyRotation.propose(
        check_id="kms-key-rotation-off",
        resource_arn=f"arn:aws:kms:{REGION}:{MEMBER}:key/{key_id}",
        before=KeyRotation(rotation_enabled=False),
        after=KeyRotation(rotation_enabled=True),
        account_id=MEMBER,
        region=REGION,
        risk=Risk.LOW,
    )
    message = change.binding_message()
    assert len(message) == BINDING_MESSAGE_MAX
    assert message == f"Enable rotation kms key 1234abcd-12ab- acct {MEMBER} #{change.digest[:6]}"


def test_an_account_wide_change_whose_summary_names_its_account_does_not_name_it_twice() -> None:
    (change,) = [c for c in one_of_each_kind() if c.kind == "enable-account-public-access-block"]
    assert change.binding_message() == f"Block S3 public access account {ACCOUNT} #{change.digest[:6]}"
    assert change.binding_message().count(ACCOUNT) == 1


def test_a_summary_naming_another_account_still_gets_the_changes_own() -> None:
    # A bucket may be named after any account id: the change's own is still named, and labelled.
    change = bucket_change(MEMBER, bucket=f"copy-of-{ACCOUNT}")
    assert f"acct {MEMBER}" in change.binding_message() or f"account {MEMBER}" in change.binding_message()


@pytest.mark.parametrize("change", one_of_each_kind(), ids=lambda c: c.kind)
def test_the_digest_is_still_that_of_the_changes_canonical_json(change: ChangeBase) -> None:
    """Showing the account changed what the approver sees, never what a change's digest is: approvals granted
    before it still name the same digests."""
    assert change.digest == sha256_hex(canonical_json(change.model_dump(mode="json")))
    assert parse_change(change.model_dump(mode="json")).digest == change.digest
    assert "account_id" in change.model_dump(mode="json")


def test_re_targeting_a_change_to_another_account_changes_its_digest() -> None:
    assert bucket_change(ACCOUNT).digest != bucket_change(MEMBER).digest
