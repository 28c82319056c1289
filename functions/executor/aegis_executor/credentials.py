"""The one-change credential: an STS session of RemediationRole for the approver's provider token, narrowed by an
inline session policy to the actions of this change on this resource, for the minimum duration.

A change about a member account of the organization is applied as that account's own role (AegisRemediationRole of
member/template.yaml, trusting the same provider). STS's answer must name a session in the change's account before
any session is built from it (`SessionInWrongAccount`): a role ARN resolved to another account (a misconfigured
name, a trust that admits the token elsewhere) never gets to read or change anything.

The executor's own role has no STS permission: AssumeRoleWithWebIdentity is authorised by the web identity token
itself, so the call goes through an unsigned client. The credentials only ever live inside the boto3 Session handed
to the remediation; they are never returned, logged or stored.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.model import OperationModel
from pydantic import SecretStr

from aegis.aws_sessions import fresh_session
from aegis.catalogue import ChangeBase, forward_target
from aegis.catalogue.base import Phase
from aegis_executor.iam_actions import iam_action_of

# The minimum STS allows: the session outlives the change by as little as possible.
SESSION_DURATION_SECONDS = 900
ROLE_SESSION_PREFIX = "aegis-"

# AWS error codes that mean "slow down" (botocore's list, without the quota errors some services share the spelling
# of, such as IAM's LimitExceeded).
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "EC2ThrottledException",
    }
)
STS_CLIENT_CONFIG = Config(
    signature_version=UNSIGNED, retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=10
)


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def is_throttling(exc: BaseException) -> bool:
    return error_code(exc) in THROTTLING_CODES


def unsigned_sts_client(region_name: str | None = None) -> Any:
    """An STS client that signs nothing (and so needs no credentials of the executor)."""
    return boto3.client("sts", region_name=region_name, config=STS_CLIENT_CONFIG)


def role_session_name(change: ChangeBase) -> str:
    """Names the change in CloudTrail: `aegis-chg-<20 hex>` (30 characters of [\\w+=,.@-])."""
    return f"{ROLE_SESSION_PREFIX}{change.change_id}"


def phase_of(change: ChangeBase) -> Phase:
    return "undo" if change.kind == "undo" else "apply"


def session_policy(change: ChangeBase) -> str:
    """The inline session policy: only this change's actions (for its phase) on this change's resource."""
    document = {"Version": "2012-10-17", "Statement": change.session_policy_statements(phase_of(change))}
    return json.dumps(document, separators=(",", ":"))


class SessionInWrongAccount(RuntimeError):
    """STS answered with a session of another account than the change's; no session was built from it."""

    def __init__(self, assumed_role_arn: str, expected_account: str) -> None:
        super().__init__(f"STS gave a session in account {account_of_arn(assumed_role_arn) or '(none)'}")
        self.assumed_role_arn = assumed_role_arn
        self.expected_account = expected_account


def account_of_arn(arn: str) -> str:
    """The account field of an ARN (`arn:partition:service:region:account:...`); "" when it has none."""
    parts = arn.split(":", 5)
    return parts[4] if len(parts) == 6 and parts[0] == "arn" else ""


def partition_of_arn(arn: str) -> str:
    parts = arn.split(":", 5)
    return parts[1] if len(parts) == 6 and parts[0] == "arn" else ""


@dataclass(frozen=True)
class SessionFacts:
    """What may be recorded about a remediation session (no credential)."""

    role_session_name: str
    assumed_role_arn: str
    expiration: str


def assume_remediation_role(
    sts: Any, *, role_arn: str, change: ChangeBase, web_identity_token: SecretStr
) -> tuple[boto3.Session, SessionFacts]:
    """AssumeRoleWithWebIdentity on `role_arn` for `change`; a boto3 Session holding the credentials, and facts.
    SessionInWrongAccount, with no session built, unless the assumed role user is in the change's account."""
    answer = sts.assume_role_with_web_identity(
        RoleArn=role_arn,
        RoleSessionName=role_session_name(change),
        WebIdentityToken=web_identity_token.get_secret_value(),
        DurationSeconds=SESSION_DURATION_SECONDS,
        Policy=session_policy(change),
    )
    assumed_role_arn = str(answer.get("AssumedRoleUser", {}).get("Arn", ""))
    if account_of_arn(assumed_role_arn) != change.account_id:
        del answer
        raise SessionInWrongAccount(assumed_role_arn, change.account_id)
    credentials = answer["Credentials"]
    session = fresh_session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=change.region,
    )
    expiration = credentials.get("Expiration")
    facts = SessionFacts(
        role_session_name=role_session_name(change),
        assumed_role_arn=assumed_role_arn,
        expiration=expiration.isoformat() if isinstance(expiration, datetime) else str(expiration or ""),
    )
    del answer, credentials
    return session, facts


class HaltedBeforeMutation(RuntimeError):
    """The kill switch was engaged when a mutating call was about to be made; the call was not sent."""

    def __init__(self, action: str, mutations_sent: int) -> None:
        super().__init__(f"kill switch engaged before {action}; {mutations_sent} mutating calls had been sent")
        self.action = action
        self.mutations_sent = mutations_sent


class UndeclaredOperation(RuntimeError):
    """A remediation tried an AWS operation its kind does not declare for this phase; the call was not sent."""


class MutationGuard:
    """Hooks on the remediation session: lets declared reads through, refuses undeclared operations, and checks the
    halt flag right before every attempt of a mutating call (so the kill switch stops a change between calls, and
    between botocore's retries of one call).

    The halt check is a `before-send` hook, which botocore emits for every attempt; `before-call` runs once per API
    call, so a retry sent after the trigger would slip past it. It is registered first among the `before-send`
    handlers: one of them may answer the request itself (moto in-process does), and everything registered after it
    would run only once the call had been made.
    """

    def __init__(self, change: ChangeBase, is_halted: Callable[[], bool]) -> None:
        target = forward_target(change)
        phase = phase_of(change)
        self._reads = frozenset(target.READ_ACTIONS)
        self._mutations = frozenset(target.APPLY_ACTIONS if phase == "apply" else target.UNDO_ACTIONS)
        self._is_halted = is_halted
        # (service id, operation) -> the IAM action of a mutation, or None for a read; filled by before-call, read by
        # before-send, whose event name is all it knows of the operation.
        self._checked: dict[tuple[str, str], str | None] = {}
        # One entry per attempt sent: a retried call appears once for each time it went out.
        self.mutations_sent: list[str] = []

    def install(self, session: boto3.Session) -> None:
        session.events.register("before-call", self._before_call)
        session.events.register_first("before-send", self._before_send)

    def _before_call(self, model: OperationModel, **_: Any) -> None:
        action = iam_action_of(model)
        key = (model.service_model.service_id.hyphenize(), model.name)
        if action in self._reads:
            self._checked[key] = None
            return
        if action not in self._mutations:
            raise UndeclaredOperation(f"{action} is not declared for this change")
        self._checked[key] = action

    def _before_send(self, event_name: str, **_: Any) -> None:
        # "before-send.<service id>.<operation>"
        parts = event_name.split(".", 2)
        operation = parts[2] if len(parts) == 3 else ""
        key = (parts[1] if len(parts) > 1 else "", operation)
        if key not in self._checked:
            # Every request of this session went through before-call first; one that did not is refused unsent.
            raise UndeclaredOperation(f"{operation or event_name} was about to be sent without being checked")
        action = self._checked[key]
        if action is None:
            return
        if self._is_halted():
            raise HaltedBeforeMutation(action, len(self.mutations_sent))
        self.mutations_sent.append(action)
