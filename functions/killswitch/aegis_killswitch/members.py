"""The organization's member accounts: a trigger halts the remediation roles of every member, a re-arm lifts the halt
there too. A member is reached through its AegisKillSwitchRole (member/template.yaml), which may only put, read and
delete role policies on that member's AegisRemediationRole and AegisUndoRole; the documents and the functions are
the ones of this account's own roles (`aws_steps.deny_remediation_sessions`, `aws_steps.lift_halted_policy`), with
an IAM client acting in the member.

Every member is halted, scanned or not: an approver's token could be exchanged for any member's remediation role.
The members are handled in parallel, each independently: one that cannot be reached (its role missing, a trust that
refuses, AWS not answering) is listed with the AWS error code, never the message, and the others are halted all the
same. The step as a whole is bounded (`MEMBER_BUDGET_SECONDS`): a member still unanswered by then is listed as
`Timeout`, so a hanging member cannot hold back the stops that follow (missions, approvals, Auth0).

The assumed credentials live only in the IAM client made for that one member; the outcome, the audit trail and the
logs name accounts and error codes, never a credential.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from itertools import islice
from typing import Any

import boto3
from botocore.config import Config

from aegis_killswitch import aws_steps
from aegis_killswitch.errors import MemberWorkRefused
from aegis_killswitch.report import StepOutcome, error_code
from aegis_killswitch.settings import KillSwitchSettings

# At most this many members are worked on at the same time.
MEMBER_WORKERS = 16
# Every call to or for a member (AssumeRole, the IAM calls in it) gives up after a few seconds and retries once: a
# member's calls are at most 7 (AssumeRole, then AegisHalted, the deny-older cutoff read and write on two roles).
MEMBER_CALL_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2, "mode": "standard"})
# The most the member step takes, however many members and whatever they do. The kill switch Lambda has 60 s for the
# whole trigger, Auth0 included; a member not done by then is listed as unreachable (`Timeout`), and another trigger
# (which is idempotent) finishes it.
MEMBER_BUDGET_SECONDS = 20.0
TIMED_OUT = "Timeout"
# What a re-arm lists a member with when the halt flag reads engaged again just before that member's roles would
# change (a trigger came while the re-arm was going through the members): that member stays halted.
HALT_ENGAGED = "HaltEngaged"
# The shortest session STS issues: a member's work takes seconds.
SESSION_SECONDS = 900
HALT_SESSION_NAME = "aegis-halt"
REARM_SESSION_NAME = "aegis-rearm"
ACTIVE = "ACTIVE"
LISTED_IN_REASON = 20


@dataclass(frozen=True)
class MemberResult:
    account_id: str
    ok: bool
    # The AWS error code the member failed with (or `Timeout`); empty when ok.
    code: str = ""


def member_accounts(organizations: Any, own_account_id: str) -> list[str]:
    """The organization's active accounts, this one left out, in id order."""
    accounts: set[str] = set()
    for page in organizations.get_paginator("list_accounts").paginate():
        for account in page.get("Accounts", []):
            # `State` replaces the deprecated `Status`; either says ACTIVE for an account that can be halted (one
            # suspended or closing cannot be signed in to, nor its roles assumed).
            if (account.get("State") or account.get("Status")) == ACTIVE and account.get("Id") != own_account_id:
                accounts.add(str(account["Id"]))
    return sorted(accounts)


class MemberConnector:
    """IAM clients acting in members, through their AegisKillSwitchRole (ExternalId pinned)."""

    def __init__(self, settings: KillSwitchSettings, sts: Any, session_name: str) -> None:
        self._settings = settings
        self._sts = sts
        self._session_name = session_name
        # Clients are thread-safe, a session making them is not: one session, one client made at a time.
        self._session = boto3.Session()
        self._lock = threading.Lock()

    def iam(self, account_id: str) -> Any:
        credentials = self._sts.assume_role(
            RoleArn=self._settings.member_killswitch_role_arn(account_id),
            RoleSessionName=self._session_name,
            ExternalId=self._settings.member_external_id,
            DurationSeconds=SESSION_SECONDS,
        )["Credentials"]
        with self._lock:
            return self._session.client(
                "iam",
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
                config=MEMBER_CALL_CONFIG,
            )


def for_each_member(
    accounts: list[str], work: Callable[[str], MemberResult], *, budget_seconds: float
) -> list[MemberResult]:
    """`work` for every account, up to `MEMBER_WORKERS` at a time, within `budget_seconds` in all; in account order.

    A member not done within the budget is a `Timeout`: its work is not awaited (one still running finishes in the
    background, within its calls' timeouts), and one not yet started never starts."""
    if not accounts:
        return []
    pool = ThreadPoolExecutor(max_workers=min(MEMBER_WORKERS, len(accounts)), thread_name_prefix="aegis-member")
    try:
        futures: dict[Future[MemberResult], str] = {pool.submit(work, account): account for account in accounts}
        done, _ = wait(futures, timeout=budget_seconds)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    results = {account: MemberResult(account, ok=False, code=TIMED_OUT) for account in accounts}
    for future in done:
        result = future.result()
        results[result.account_id] = result
    return [results[account] for account in accounts]


def _guarded(account_id: str, attempt: Callable[[], StepOutcome]) -> MemberResult:
    try:
        outcome = attempt()
    except MemberWorkRefused as refused:
        return MemberResult(account_id, ok=False, code=refused.code)
    except Exception as error:
        return MemberResult(account_id, ok=False, code=error_code(error))
    if outcome.ok:
        return MemberResult(account_id, ok=True)
    codes = outcome.details.get(aws_steps.ERROR_CODES)
    first = next(iter(codes.values()), None) if isinstance(codes, dict) else None
    return MemberResult(account_id, ok=False, code=str(first or "Failed"))


@dataclass(frozen=True)
class MemberOperation:
    """What a trigger (or a re-arm) does in the members."""

    step: str
    # What a member that succeeded became, in the outcome's details: `halted` or `rearmed`.
    done: str
    session_name: str
    # What is done in one member, with an IAM client acting in it.
    act: Callable[[Any], StepOutcome]
    # Checked in each member just before its roles change: a code to refuse the change with, or None to go ahead.
    precondition: Callable[[], str | None] = lambda: None


def run_in_members(
    settings: KillSwitchSettings,
    organizations: Any,
    sts: Any,
    operation: MemberOperation,
    *,
    budget_seconds: float | None = None,
) -> StepOutcome:
    """`operation` in every active member of the organization (none without one): the step's outcome lists the
    members done and those not, each with its AWS error code; any member not done fails the step."""
    budget_seconds = MEMBER_BUDGET_SECONDS if budget_seconds is None else budget_seconds
    step = operation.step
    if not settings.organization_enabled:
        return StepOutcome(
            step=step,
            ok=True,
            reason="no organization is configured (ORGANIZATION_ID is empty): this account is the only one",
            details={"organization_id": ""},
        )
    details: dict[str, Any] = {"organization_id": settings.organization_id}
    try:
        accounts = member_accounts(organizations, settings.own_account_id)
    except Exception as error:
        # Without the list no member is known to be done: the step fails and says why, in AWS's own code.
        code = error_code(error)
        return StepOutcome(
            step=step,
            ok=False,
            reason=f"could not list the organization's accounts (ListAccounts): {code}; no member account was reached",
            details={**details, "error": code},
        )
    connector = MemberConnector(settings, sts, operation.session_name)
    deadline = time.monotonic() + budget_seconds

    def work(account_id: str) -> MemberResult:
        if time.monotonic() > deadline:
            return MemberResult(account_id, ok=False, code=TIMED_OUT)
        return _guarded(account_id, lambda: _act(account_id))

    def _act(account_id: str) -> StepOutcome:
        iam = connector.iam(account_id)
        # Checked after AssumeRole, the call most likely to wait, and right before the member's roles change.
        refused = operation.precondition()
        if refused:
            raise MemberWorkRefused(refused)
        return operation.act(iam)

    results = for_each_member(accounts, work, budget_seconds=budget_seconds)
    done = [result.account_id for result in results if result.ok]
    unreachable = {result.account_id: result.code for result in results if not result.ok}
    details.update({"accounts": len(accounts), "role_names": list(settings.member_role_names), operation.done: done})
    details["unreachable"] = unreachable
    if unreachable:
        # The reason stays readable for the operator; the details list every member.
        listed = ", ".join(f"{account} ({code})" for account, code in islice(unreachable.items(), LISTED_IN_REASON))
        more = f" and {len(unreachable) - LISTED_IN_REASON} more" if len(unreachable) > LISTED_IN_REASON else ""
        return StepOutcome(
            step=step,
            ok=False,
            reason=(
                f"{operation.done} {len(done)} of {len(accounts)} member accounts; not {operation.done}: {listed}{more}"
            ),
            details=details,
        )
    return StepOutcome(
        step=step,
        ok=True,
        reason=f"{operation.done} {len(done)} member accounts ({' and '.join(settings.member_role_names)})",
        details=details,
    )
