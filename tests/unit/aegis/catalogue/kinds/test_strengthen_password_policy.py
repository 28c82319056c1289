"""strengthen-password-policy: raises length and reuse prevention, never loosens anything else."""

from __future__ import annotations

import pytest

from aegis.catalogue.kinds.strengthen_password_policy import PasswordPolicy, StrengthenPasswordPolicy
from tests.support.changes import ACCOUNT, COMMON


def test_a_password_policy_that_drops_a_requirement_is_refused() -> None:
    before = PasswordPolicy(minimum_password_length=20, require_symbols=True, password_reuse_prevention=24)
    with pytest.raises(ValueError, match="require_symbols"):
        StrengthenPasswordPolicy.propose(
            check_id="iam-password-policy-weak",
            resource_arn=f"arn:aws:iam::{ACCOUNT}:account-password-policy",
            before=before,
            after=before.model_copy(update={"require_symbols": False}),
            **COMMON,
        )


def test_strengthening_keeps_stricter_values() -> None:
    before = PasswordPolicy(minimum_password_length=32, password_reuse_prevention=5, max_password_age=30)
    after = before.strengthened()
    assert (after.minimum_password_length, after.password_reuse_prevention, after.max_password_age) == (32, 24, 30)
    assert after.to_aws()["MinimumPasswordLength"] == 32


def test_a_policy_read_from_aws_round_trips() -> None:
    aws = {"MinimumPasswordLength": 8, "RequireSymbols": True, "PasswordReusePrevention": 5, "ExpirePasswords": False}
    policy = PasswordPolicy.from_aws(aws)
    assert (policy.minimum_password_length, policy.require_symbols, policy.weak) == (8, True, True)
    assert policy.to_aws() == {
        "MinimumPasswordLength": 8,
        "RequireSymbols": True,
        "RequireNumbers": False,
        "RequireUppercaseCharacters": False,
        "RequireLowercaseCharacters": False,
        "AllowUsersToChangePassword": False,
        "PasswordReusePrevention": 5,
        "HardExpiry": False,
    }
    assert PasswordPolicy.from_aws(None).describe() == "no password policy"
