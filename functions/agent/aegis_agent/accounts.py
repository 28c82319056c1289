"""Which credentials scan which account.

The agent's own account is scanned with the function's own (read-only) role, as always. Any other account - one
account of an organization scan - is scanned as that account's `AegisScanRole` (member/template.yaml: read-only,
exactly the checks' declared reads), assumed with the agent's own STS client, the deployment's external id, a
session name naming the mission and the shortest duration STS allows (900 s: one scan; the re-scan assumes again).

The assumed credentials exist only inside the boto3 Session handed to the scanner: they are never returned, stored,
logged or put in the graph's state, and an AssumeRole failure keeps only the AWS error code (`AccountUnreachable`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from aegis.aws_sessions import fresh_session
from aegis_agent.errors import AccountUnreachable
from aegis_agent.scanner import Scanner
from aegis_agent.state import MissionRequest

SCAN_SESSION_SECONDS = 900
# STS: RoleSessionName is at most 64 characters of [\w+=,.@-]; `aegis-scan-m-<20 hex>` is 33.
SESSION_NAME_PREFIX = "aegis-scan-"
# When the request names no error code (a connection that failed before AWS answered).
NO_ANSWER = "NoAnswer"
_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

SessionFactory = Callable[[], Any]
# Builds a scanner reading through the given session factory (the layer's AwsScanner in a deployment).
ScannerFactory = Callable[[SessionFactory], Scanner]


class AccountSessions:
    """The agent's identity (cached: one GetCallerIdentity per container) and sessions in other accounts."""

    def __init__(self, sts: Any, *, role_name: str, external_id: str | None) -> None:
        self._sts = sts
        self._role_name = role_name
        self._external_id = external_id
        self._identity: tuple[str, str] | None = None

    def _own(self) -> tuple[str, str]:
        if self._identity is None:
            arn = str(self._sts.get_caller_identity()["Arn"])
            # arn:<partition>:sts::<account>:assumed-role/...: the partition every member role ARN is built in.
            parts = arn.split(":")
            self._identity = (parts[4], parts[1])
        return self._identity

    def own_account_id(self) -> str:
        return self._own()[0]

    def is_own(self, account_id: str | None) -> bool:
        return account_id is None or account_id == self.own_account_id()

    def role_arn(self, account_id: str) -> str:
        return f"arn:{self._own()[1]}:iam::{account_id}:role/{self._role_name}"

    def assume(self, account_id: str, mission_id: str, region: str | None = None) -> boto3.Session:
        """A session acting as `account_id`'s scan role; AccountUnreachable with the AWS error code otherwise."""
        if self._external_id is None:
            # Without the external id every member's trust policy refuses: say so by name, without a call.
            raise AccountUnreachable(account_id, "MemberExternalIdNotConfigured")
        try:
            answer = self._sts.assume_role(
                RoleArn=self.role_arn(account_id),
                RoleSessionName=(SESSION_NAME_PREFIX + mission_id)[:64],
                ExternalId=self._external_id,
                DurationSeconds=SCAN_SESSION_SECONDS,
            )
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            raise AccountUnreachable(account_id, code if _ERROR_CODE.fullmatch(code) else NO_ANSWER) from None
        except BotoCoreError:
            raise AccountUnreachable(account_id, NO_ANSWER) from None
        credentials = answer["Credentials"]
        return fresh_session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=region or self._sts.meta.region_name,
        )


class AccountScanners:
    """The scanner for a mission's account: the agent's own for its own account, else one reading through a fresh
    assumed session of the member's scan role. Members' scanners are kept per mission only while the invocation
    that made them runs (`release`), so credentials do not outlive the scan that needed them."""

    def __init__(self, own: Scanner, sessions: AccountSessions, member_scanner: ScannerFactory | None = None) -> None:
        self.own = own
        self.sessions = sessions
        # A scanner given in code (tests, a benchmark) and no factory: it scans every account itself, but the member
        # role is still assumed, so an unreachable account is unreachable all the same.
        self._member_scanner = member_scanner
        self._members: dict[str, Scanner] = {}

    def for_request(self, request: MissionRequest) -> Scanner:
        if self.sessions.is_own(request.account_id):
            return self.own
        assert request.account_id is not None  # is_own(None) is True
        scanner = self._members.get(request.mission_id)
        if scanner is None:
            session = self.sessions.assume(request.account_id, request.mission_id)
            scanner = self._member_scanner(lambda: session) if self._member_scanner else self.own
            self._members[request.mission_id] = scanner
        return scanner

    def release(self, mission_id: str) -> None:
        self._members.pop(mission_id, None)
