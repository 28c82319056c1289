"""Raise the account password policy to length >= 14 and reuse prevention >= 24, keeping every stricter value
(CIS 1.7, 1.8). UpdateAccountPasswordPolicy replaces the whole policy, so `after` is the merged policy."""

from __future__ import annotations

from typing import Any, Literal

from aegis.catalogue.base import ChangeBase, WideningChange
from aegis.models import Frozen

MIN_LENGTH = 14
MIN_REUSE = 24

_AWS_NAMES = {
    "minimum_password_length": "MinimumPasswordLength",
    "require_symbols": "RequireSymbols",
    "require_numbers": "RequireNumbers",
    "require_uppercase_characters": "RequireUppercaseCharacters",
    "require_lowercase_characters": "RequireLowercaseCharacters",
    "allow_users_to_change_password": "AllowUsersToChangePassword",
    "max_password_age": "MaxPasswordAge",
    "password_reuse_prevention": "PasswordReusePrevention",
    "hard_expiry": "HardExpiry",
}


class PasswordPolicy(Frozen):
    exists: bool = True
    minimum_password_length: int | None = None
    require_symbols: bool = False
    require_numbers: bool = False
    require_uppercase_characters: bool = False
    require_lowercase_characters: bool = False
    allow_users_to_change_password: bool = False
    max_password_age: int | None = None
    password_reuse_prevention: int | None = None
    hard_expiry: bool = False

    @classmethod
    def from_aws(cls, policy: dict[str, Any] | None) -> PasswordPolicy:
        if policy is None:
            return cls(exists=False)
        return cls(**{ours: policy[theirs] for ours, theirs in _AWS_NAMES.items() if theirs in policy})

    def to_aws(self) -> dict[str, Any]:
        """The UpdateAccountPasswordPolicy arguments that produce exactly this policy."""
        return {theirs: getattr(self, ours) for ours, theirs in _AWS_NAMES.items() if getattr(self, ours) is not None}

    def strengthened(self) -> PasswordPolicy:
        return self.model_copy(
            update={
                "exists": True,
                "minimum_password_length": max(self.minimum_password_length or 0, MIN_LENGTH),
                "password_reuse_prevention": max(self.password_reuse_prevention or 0, MIN_REUSE),
            }
        )

    @property
    def weak(self) -> bool:
        return (self.minimum_password_length or 0) < MIN_LENGTH or (self.password_reuse_prevention or 0) < MIN_REUSE

    def describe(self) -> str:
        if not self.exists:
            return "no password policy"
        return f"length>={self.minimum_password_length or 'unset'}, reuse={self.password_reuse_prevention or 'unset'}"


class StrengthenPasswordPolicy(ChangeBase):
    kind: Literal["strengthen-password-policy"] = "strengthen-password-policy"
    before: PasswordPolicy
    after: PasswordPolicy

    TITLE = "Strengthen the account password policy"
    APPLY_ACTIONS = ("iam:UpdateAccountPasswordPolicy",)
    READ_ACTIONS = ("iam:GetAccountPasswordPolicy",)
    UNDO_ACTIONS = ("iam:DeleteAccountPasswordPolicy", "iam:UpdateAccountPasswordPolicy")
    UNSCOPED_ACTIONS = (*APPLY_ACTIONS, *READ_ACTIONS, "iam:DeleteAccountPasswordPolicy")
    REGION_SCOPE = "home"

    def assert_narrows(self) -> None:
        b, a = self.before, self.after
        if not a.exists or a.weak:
            raise WideningChange("after must be a policy meeting length 14 and reuse 24")
        for flag in (
            "require_symbols",
            "require_numbers",
            "require_uppercase_characters",
            "require_lowercase_characters",
            "hard_expiry",
            "allow_users_to_change_password",
        ):
            if getattr(b, flag) and not getattr(a, flag):
                raise WideningChange(f"after drops {flag}")
        if (a.minimum_password_length or 0) < (b.minimum_password_length or 0):
            raise WideningChange("after shortens the minimum length")
        if (a.password_reuse_prevention or 0) < (b.password_reuse_prevention or 0):
            raise WideningChange("after lowers reuse prevention")
        if b.max_password_age is not None and (a.max_password_age is None or a.max_password_age > b.max_password_age):
            raise WideningChange("after lengthens the maximum password age")

    def summary(self) -> str:
        return "Strengthen IAM password policy"
