"""A correction to moto 5.2.5's STS `AssumeRole` for cross-account calls: the role must exist and trust the caller.

moto answers `AssumeRole` with credentials for any role ARN, whether or not the role exists and whatever its trust
policy says. On AWS a call into another account is refused with `AccessDenied` when the role does not exist there,
when no `Allow` statement of its trust policy names the caller's account as principal, or when the statement's
`sts:ExternalId` condition does not match the call's ExternalId. An organization scan depends on exactly those
answers (an account without the member roles is `unreachable`; a wrong external id is refused), so the local stack
has moto give them.

What the fix evaluates, for `AssumeRole` only (not `AssumeRoleWithWebIdentity`, whose own trust moto does not check
either and whose callers do not cross accounts here) and only when the role's account is not the caller's:

- the role exists in its account's IAM (moto's backend of that account);
- some `Allow` statement whose action covers `sts:AssumeRole` names as `Principal.AWS` "*", the caller's account id,
  its root or any ARN in the caller's account. Locally every function of the security account calls with the same
  fake credentials, so moto cannot tell one of its roles from another: a principal that names a role of the calling
  account is taken to be the caller (documented limitation: AWS would also compare the role);
- that statement's conditions on `sts:ExternalId` (`StringEquals`, `StringLike`) hold for the call's ExternalId
  (a missing ExternalId holds none). Conditions on other keys (aws:PrincipalOrgID, aws:PrincipalArn...) are taken to
  hold: the local organization contains every account the stack creates, and the principal is checked above.

`MotoStsFix.install()` / `uninstall()` patch and restore moto's STS response class in this process (the local stack
runs moto's server in-process), like `aegis_local.aws.moto_fixes.StepFunctionsFixes`.
"""

from __future__ import annotations

import fnmatch
import json
import re
import threading
import warnings
from collections.abc import Mapping
from typing import Any

from moto.sts.exceptions import STSClientError

__all__ = ["AssumeRoleRefused", "MotoStsFix", "trust_refusal"]

_ROLE_ARN = re.compile(r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>[0-9]{12}):role/(?:.*/)?(?P<name>[^/]+)$")
_ACCOUNT_OF_ARN = re.compile(r"^arn:aws[a-z-]*:(?:iam|sts)::(?P<account>[0-9]{12}):")
_EXTERNAL_ID_KEY = "sts:externalid"


class AssumeRoleRefused(STSClientError):
    """AWS's answer to an AssumeRole its role's trust refuses, or into a role that does not exist."""

    code = "AccessDenied"


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _action_covers_assume_role(actions: Any) -> bool:
    return any(fnmatch.fnmatchcase("sts:assumerole", str(action).lower()) for action in _as_list(actions))


def _principal_names_account(principal: Any, caller_account: str) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        return False
    for name in _as_list(principal.get("AWS")):
        text = str(name)
        if text in ("*", caller_account):
            return True
        match = _ACCOUNT_OF_ARN.match(text)
        if match and match.group("account") == caller_account:
            return True
    return False


def _external_id_holds(conditions: Any, external_id: str | None) -> bool:
    if not isinstance(conditions, Mapping):
        return True
    for operator, tests in conditions.items():
        if not isinstance(tests, Mapping):
            continue
        for key, expected in tests.items():
            if str(key).lower() != _EXTERNAL_ID_KEY:
                continue
            wanted = [str(value) for value in _as_list(expected)]
            if external_id is None:
                return False
            name = str(operator).removeprefix("ForAnyValue:").removeprefix("ForAllValues:")
            if name == "StringEquals" and external_id not in wanted:
                return False
            if name == "StringLike" and not any(fnmatch.fnmatchcase(external_id, value) for value in wanted):
                return False
            if name == "StringNotEquals" and external_id in wanted:
                return False
    return True


def trust_refusal(trust_policy: str | Mapping[str, Any], caller_account: str, external_id: str | None) -> str | None:
    """Why this trust policy refuses `caller_account`'s AssumeRole with `external_id` (None when it allows it)."""
    document = json.loads(trust_policy) if isinstance(trust_policy, str) else trust_policy
    statements = _as_list(document.get("Statement"))
    trusting = [
        statement
        for statement in statements
        if isinstance(statement, Mapping)
        and statement.get("Effect") == "Allow"
        and _action_covers_assume_role(statement.get("Action"))
        and _principal_names_account(statement.get("Principal"), caller_account)
    ]
    if not trusting:
        return f"the trust policy does not allow account {caller_account} to assume the role"
    if not any(_external_id_holds(statement.get("Condition"), external_id) for statement in trusting):
        return "the trust policy's sts:ExternalId condition does not hold"
    denying = [
        statement
        for statement in statements
        if isinstance(statement, Mapping)
        and statement.get("Effect") == "Deny"
        and _action_covers_assume_role(statement.get("Action"))
        and _principal_names_account(statement.get("Principal"), caller_account)
        and not statement.get("Condition")
    ]
    if denying:
        return "the trust policy denies the caller"
    return None


class MotoStsFix:
    _lock = threading.Lock()
    _original: Any = None

    @classmethod
    def install(cls) -> None:
        from moto.sts.responses import TokenResponse

        with cls._lock:
            if cls._original is not None:
                return
            original = TokenResponse.assume_role
            cls._original = original

            def assume_role(response: Any) -> Any:
                _check_cross_account(response)
                return original(response)

            TokenResponse.assume_role = assume_role  # type: ignore[method-assign,assignment]
            # STS's model has no AccessDenied shape (AWS answers it generically); moto warns on each refusal.
            warnings.filterwarnings("ignore", message=r"Exception\(AssumeRoleRefused\)", category=UserWarning)

    @classmethod
    def uninstall(cls) -> None:
        from moto.sts.responses import TokenResponse

        with cls._lock:
            if cls._original is not None:
                TokenResponse.assume_role = cls._original  # type: ignore[method-assign]
                cls._original = None

    @classmethod
    def installed(cls) -> bool:
        return cls._original is not None


def _check_cross_account(response: Any) -> None:
    """Raise moto's AccessDenied when AWS would refuse this AssumeRole (see the module docstring)."""
    from moto.iam.models import iam_backends

    role_arn = str(response._get_param("RoleArn") or "")
    external_id = response._get_param("ExternalId")
    caller_account = str(response.current_account)
    match = _ROLE_ARN.match(role_arn)
    if match is None:
        raise AssumeRoleRefused(f"User is not authorized to perform: sts:AssumeRole on resource: {role_arn}")
    account = match.group("account")
    if account == caller_account:
        return
    denied = f"User is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
    backend = iam_backends[account][match.group("partition")]
    role = next((r for r in list(backend.roles.values()) if r.name == match.group("name")), None)
    if role is None:
        raise AssumeRoleRefused(denied)
    if trust_refusal(role.assume_role_policy_document, caller_account, external_id) is not None:
        raise AssumeRoleRefused(denied)
