"""Replace the account password policy with the approved merged policy; undo restores (or deletes) the old one."""

from __future__ import annotations

from typing import Any

from boto3.session import Session
from botocore.exceptions import ClientError

from aegis.catalogue.kinds.strengthen_password_policy import PasswordPolicy, StrengthenPasswordPolicy
from aegis_executor.remediations.base import SettingRemediation, remediation


def update_arguments(policy: PasswordPolicy) -> dict[str, Any]:
    """UpdateAccountPasswordPolicy arguments for `policy`. A maximum age of 0 means "never expires", which AWS
    spells by leaving the argument out (its valid range starts at 1)."""
    arguments = policy.to_aws()
    if arguments.get("MaxPasswordAge") == 0:
        del arguments["MaxPasswordAge"]
    return arguments


def _meaning(policy: PasswordPolicy) -> PasswordPolicy:
    # AWS reports "never expires" as no MaxPasswordAge, moto as 0: one spelling for comparison.
    return policy.model_copy(update={"max_password_age": policy.max_password_age or None})


@remediation("strengthen-password-policy")
class StrengthenPasswordPolicyRemediation(SettingRemediation[StrengthenPasswordPolicy, PasswordPolicy]):
    def read_current(self, session: Session, change: StrengthenPasswordPolicy) -> PasswordPolicy:
        iam = self.client(session, "iam", change)
        try:
            return PasswordPolicy.from_aws(iam.get_account_password_policy()["PasswordPolicy"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchEntity":
                return PasswordPolicy.from_aws(None)
            raise

    def is_before(self, current: PasswordPolicy, change: StrengthenPasswordPolicy) -> bool:
        return _meaning(current) == _meaning(change.before)

    def is_after(self, current: PasswordPolicy, change: StrengthenPasswordPolicy) -> bool:
        return _meaning(current) == _meaning(change.after)

    def write(self, session: Session, change: StrengthenPasswordPolicy, state: PasswordPolicy) -> None:
        iam = self.client(session, "iam", change)
        if state.exists:
            iam.update_account_password_policy(**update_arguments(state))
        else:
            iam.delete_account_password_policy()
