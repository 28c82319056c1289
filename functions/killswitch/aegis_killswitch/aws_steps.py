"""The AWS side of the kill switch: scan rules, running missions with their waiting approvals, and the two deny
policies on the remediation roles, RemediationRole and UndoRole (AegisHalted while halted, AegisDenyOlderSessions
for good).

Each function does its whole job even when part of it fails, and says what failed in the returned outcome.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from aegis_killswitch.report import StepOutcome, describe_error, error_code, failed_step

DENY_POLICY_NAME = "AegisDenyOlderSessions"
HALTED_POLICY_NAME = "AegisHalted"
# The error a waiting approval task fails with; the state machine records it as a "halted" decision.
APPROVAL_HALTED = "Approval.Halted"
EXECUTION_HALTED = "Aegis.Halted"
# SendTaskFailure answers these for a token whose task already ended: nothing is left to fail.
_CLOSED_TOKEN_ERRORS = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})
_WAIT_FOR_TOKEN_SUFFIX = ".waitForTaskToken"
# Step Functions caps `cause` at 32 768 characters; a reason is far shorter, this only guards the API call.
_MAX_CAUSE_CHARS = 32768
ISO_SECONDS = "%Y-%m-%dT%H:%M:%SZ"
# In the details of a remediation-role step that failed: each failed role's first AWS error code (a member account's
# outcome names the code, never the message).
ERROR_CODES = "error_codes"


# ----------------------------------------------------------------------------------------------- scan rules


def set_rules_enabled(events: Any, rule_names: tuple[str, ...], *, enabled: bool) -> StepOutcome:
    step = "enable_rules" if enabled else "disable_rules"
    done: list[str] = []
    failures: dict[str, str] = {}
    for name in rule_names:
        try:
            if enabled:
                events.enable_rule(Name=name)
            else:
                events.disable_rule(Name=name)
            done.append(name)
        except Exception as error:
            failures[name] = describe_error(error)
    verb = "enabled" if enabled else "disabled"
    details: dict[str, Any] = {verb: done}
    if failures:
        return failed_step(step, f"{verb} {len(done)} of {len(rule_names)} rules; failed: ", failures, details)
    return StepOutcome(step=step, ok=True, reason=f"{verb} {', '.join(done)}", details=details)


# ----------------------------------------------------------------------------------------------- missions


def running_executions(sfn: Any, state_machine_arn: str) -> Iterator[dict[str, Any]]:
    paginator = sfn.get_paginator("list_executions")
    for page in paginator.paginate(stateMachineArn=state_machine_arn, statusFilter="RUNNING"):
        yield from page.get("executions", [])


def waiting_task_tokens(sfn: Any, execution_arn: str) -> list[str]:
    """The task tokens of the callback tasks this execution has scheduled, oldest first.

    Step Functions records each scheduled task's resolved parameters in the execution history, and the approval
    task passes its token in `Payload.task_token` (docs/CONTRACTS.md). Reading them here means the kill switch
    needs no copy of the tokens elsewhere (and no access to the Handoff table). Tokens of tasks that have already
    ended are included: failing them again is answered with a "closed" error, which costs one call and no harm.
    """
    tokens: list[str] = []
    paginator = sfn.get_paginator("get_execution_history")
    for page in paginator.paginate(executionArn=execution_arn, includeExecutionData=True):
        for event in page.get("events", []):
            if event.get("type") != "TaskScheduled":
                continue
            details = event.get("taskScheduledEventDetails") or {}
            if not str(details.get("resource", "")).endswith(_WAIT_FOR_TOKEN_SUFFIX):
                continue
            token = _task_token(details.get("parameters"))
            if token and token not in tokens:
                tokens.append(token)
    return tokens


def _task_token(parameters: Any) -> str | None:
    try:
        payload = json.loads(parameters).get("Payload")
    except (TypeError, ValueError, AttributeError):
        return None
    token = payload.get("task_token") if isinstance(payload, dict) else None
    return token if isinstance(token, str) and token else None


def _fail_token(sfn: Any, token: str, cause: str) -> bool:
    """Fail one waiting task; False if its task had already ended."""
    try:
        sfn.send_task_failure(taskToken=token, error=APPROVAL_HALTED, cause=cause[:_MAX_CAUSE_CHARS])
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in _CLOSED_TOKEN_ERRORS:
            return False
        raise
    return True


def halt_missions(
    sfn: Any,
    state_machine_arn: str,
    *,
    cause: str,
    on_mission_halted: Callable[[str, dict[str, Any]], None] | None = None,
) -> StepOutcome:
    """Fail every waiting approval of every running mission with `Approval.Halted`, then stop the execution.

    Failing the tokens first lets each mission record its changes as "halted" (and is what ends a waiting
    execution where StopExecution alone does not); StopExecution then ends whatever is still running.
    `on_mission_halted(mission_id, details)` is told about each execution handled (for the mission's audit trail).
    """
    handled: list[str] = []
    tokens_failed = 0
    tokens_closed = 0
    failures: dict[str, str] = {}
    try:
        executions = list(running_executions(sfn, state_machine_arn))
    except Exception as error:
        return StepOutcome(
            step="stop_executions",
            ok=False,
            reason=f"could not list running executions: {describe_error(error)}",
            details={"state_machine_arn": state_machine_arn},
        )
    for execution in executions:
        arn = execution["executionArn"]
        mission_failures: list[str] = []
        failed_here = closed_here = 0
        try:
            for token in waiting_task_tokens(sfn, arn):
                try:
                    if _fail_token(sfn, token, cause):
                        failed_here += 1
                    else:
                        closed_here += 1
                except Exception as error:
                    mission_failures.append(f"SendTaskFailure: {describe_error(error)}")
        except Exception as error:
            mission_failures.append(f"GetExecutionHistory: {describe_error(error)}")
        try:
            sfn.stop_execution(executionArn=arn, error=EXECUTION_HALTED, cause=cause[:_MAX_CAUSE_CHARS])
        except Exception as error:
            if _still_running(sfn, arn):
                mission_failures.append(f"StopExecution: {describe_error(error)}")
        tokens_failed += failed_here
        tokens_closed += closed_here
        if mission_failures:
            failures[arn] = "; ".join(mission_failures)
        else:
            handled.append(arn)
        if on_mission_halted is not None:
            on_mission_halted(
                execution.get("name", arn.rsplit(":", 1)[-1]),
                {
                    "execution_arn": arn,
                    "approvals_failed": failed_here,
                    "approvals_already_closed": closed_here,
                    "ok": not mission_failures,
                    **({"failure": "; ".join(mission_failures)} if mission_failures else {}),
                },
            )
    details: dict[str, Any] = {
        "running_executions": len(executions),
        "stopped": handled,
        "approvals_failed": tokens_failed,
        "approvals_already_closed": tokens_closed,
    }
    if failures:
        summary = f"halted {len(handled)} of {len(executions)} running executions; "
        return failed_step("stop_executions", summary, failures, details)
    return StepOutcome(
        step="stop_executions",
        ok=True,
        reason=f"stopped {len(handled)} running executions, failed {tokens_failed} waiting approvals",
        details=details,
    )


def stop_org_scans(sfn: Any, state_machine_arn: str, *, cause: str) -> StepOutcome:
    """Stop every running organization scan, so that its Distributed Map asks for no further account scan (and so
    starts no further mission). Its account missions already started are stopped by `halt_missions`, which runs
    next; an org scan waits for no approval, so it has no task token to fail.

    An empty `state_machine_arn` (a deployment without organization scans) is nothing to stop.
    """
    step = "stop_org_scans"
    if not state_machine_arn:
        return StepOutcome(step=step, ok=True, reason="no organization scan state machine is configured")
    details: dict[str, Any] = {"state_machine_arn": state_machine_arn}
    try:
        executions = list(running_executions(sfn, state_machine_arn))
    except Exception as error:
        return StepOutcome(
            step=step,
            ok=False,
            reason=f"could not list running organization scans: {describe_error(error)}",
            details=details,
        )
    stopped: list[str] = []
    failures: dict[str, str] = {}
    for execution in executions:
        arn = execution["executionArn"]
        try:
            sfn.stop_execution(executionArn=arn, error=EXECUTION_HALTED, cause=cause[:_MAX_CAUSE_CHARS])
            stopped.append(arn)
        except Exception as error:
            # One that ended on its own meanwhile is as good as stopped.
            if _still_running(sfn, arn):
                failures[arn] = f"StopExecution: {describe_error(error)}"
            else:
                stopped.append(arn)
    details.update(running_executions=len(executions), stopped=stopped)
    if failures:
        return failed_step(
            step, f"stopped {len(stopped)} of {len(executions)} running organization scans; ", failures, details
        )
    return StepOutcome(step=step, ok=True, reason=f"stopped {len(stopped)} running organization scans", details=details)


def _still_running(sfn: Any, execution_arn: str) -> bool:
    try:
        return sfn.describe_execution(executionArn=execution_arn).get("status") == "RUNNING"
    except Exception:
        return True


# ----------------------------------------------------------------------------------------------- remediation roles


def session_cutoff(now: datetime) -> str:
    """`now` rounded UP to the whole second, as `aws:TokenIssueTime` is compared in whole seconds.

    Truncating would leave a window: a session issued at 12:00:00.7, before a trigger at 12:00:00.9, is not
    "less than" 12:00:00 and would survive a re-arm. Rounded up, the cutoff is 12:00:01 and that session is denied.
    """
    whole = now.replace(microsecond=0)
    if whole < now:
        whole += timedelta(seconds=1)
    return whole.strftime(ISO_SECONDS)


def deny_remediation_sessions(iam: Any, role_names: tuple[str, ...], now: datetime) -> StepOutcome:
    """Make the remediation roles (RemediationRole, and UndoRole when configured) unusable: attach `AegisHalted`
    (every session denied everything, for as long as the halt lasts) and `AegisDenyOlderSessions` (every session
    issued before now denied everything, for good).

    The deny-older policy alone is not enough while halted: a provider token Token Vault handed out before the
    trigger can still be exchanged for a fresh session, issued after the cutoff. The deny-older policy is what
    stays after a re-arm (which moves its cutoff to the re-arm), so that no session of before comes back to life.
    `AegisHalted` goes on every role first (it alone stops a session at once), and every attachment is attempted
    whatever happens to the others.
    """
    step = "deny_remediation_sessions"
    details: dict[str, Any] = {"role_names": list(role_names)}
    failures: list[str] = []
    codes: dict[str, str] = {}
    halted: list[str] = []
    for role_name in role_names:
        try:
            iam.put_role_policy(
                RoleName=role_name, PolicyName=HALTED_POLICY_NAME, PolicyDocument=json.dumps(halted_policy_document())
            )
            halted.append(role_name)
        except Exception as error:
            failures.append(f"could not attach {HALTED_POLICY_NAME} to {role_name}: {describe_error(error)}")
            codes.setdefault(role_name, error_code(error))
    details["halted_policy_name"] = HALTED_POLICY_NAME
    details["halted_roles"] = halted
    cutoff, denied, deny_failures = _deny_sessions_issued_before(iam, role_names, now)
    failures += deny_failures.messages
    codes = deny_failures.codes | codes
    details.update(policy_name=DENY_POLICY_NAME, sessions_issued_before=cutoff, denied_roles=denied)
    if failures:
        details[ERROR_CODES] = codes
        return StepOutcome(step=step, ok=False, reason="; ".join(failures), details=details)
    names = " and ".join(role_names)
    return StepOutcome(
        step=step,
        ok=True,
        reason=(
            f"{names} deny every session until re-armed ({HALTED_POLICY_NAME}) and every session issued "
            f"before {cutoff} for good ({DENY_POLICY_NAME})"
        ),
        details=details,
    )


@dataclass
class _Failures:
    """What went wrong, for the operator (`messages`) and as the first AWS error code of each role (`codes`)."""

    messages: list[str] = field(default_factory=list)
    codes: dict[str, str] = field(default_factory=dict)

    def add(self, role_name: str, message: str, error: BaseException | None = None) -> None:
        self.messages.append(message)
        if error is not None:
            self.codes.setdefault(role_name, error_code(error))


def _deny_sessions_issued_before(
    iam: Any, role_names: tuple[str, ...], now: datetime
) -> tuple[str, list[str], _Failures]:
    """Attach `AegisDenyOlderSessions` with the cutoff `now` (rounded up) to every role; the cutoff only ever moves
    forward. The cutoff written, the roles it was attached to, and the failures."""
    cutoff = session_cutoff(now)
    for role_name in role_names:
        try:
            previous = _current_cutoff(iam, role_name)
        except Exception:
            # Unreadable: write ours. Moving a cutoff back is impossible only if we can read it first, and a
            # missing deny would be worse than a shorter one.
            previous = None
        if previous is not None and previous > cutoff:
            # Of two concurrent operations, the later instant wins whatever the write order.
            cutoff = previous
    denied: list[str] = []
    failures = _Failures()
    document = json.dumps(deny_policy_document(cutoff))
    for role_name in role_names:
        try:
            iam.put_role_policy(RoleName=role_name, PolicyName=DENY_POLICY_NAME, PolicyDocument=document)
            denied.append(role_name)
        except Exception as error:
            failures.add(
                role_name, f"could not attach {DENY_POLICY_NAME} to {role_name}: {describe_error(error)}", error
            )
    return cutoff, denied, failures


def lift_halted_policy(iam: Any, role_names: tuple[str, ...], now: datetime) -> StepOutcome:
    """Re-arm the remediation roles: first move `AegisDenyOlderSessions` to `now`, then delete `AegisHalted`.

    A session issued while halted (a provider token Token Vault handed out before the trigger, exchanged during the
    halt) is denied by `AegisHalted` alone; with the cutoff left at the trigger it would come back to life for the
    rest of its 15 minutes once `AegisHalted` goes. Moving the cutoff to the re-arm first kills it for good. A role
    whose cutoff could not be moved keeps `AegisHalted`."""
    step = "lift_halted_policy"
    details: dict[str, Any] = {"role_names": list(role_names), "policy_name": HALTED_POLICY_NAME}
    cutoff, denied, failures = _deny_sessions_issued_before(iam, role_names, now)
    details.update(sessions_issued_before=cutoff)
    lifted: list[str] = []
    absent: list[str] = []
    for role_name in role_names:
        if role_name not in denied:
            failures.add(
                role_name, f"{role_name} keeps {HALTED_POLICY_NAME}: its sessions of the halt could not be denied"
            )
            continue
        try:
            iam.delete_role_policy(RoleName=role_name, PolicyName=HALTED_POLICY_NAME)
            lifted.append(role_name)
        except Exception as error:
            if isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") == "NoSuchEntity":
                absent.append(role_name)
                continue
            failures.add(
                role_name,
                f"could not remove {HALTED_POLICY_NAME} from {role_name}, which still denies every session: "
                + describe_error(error),
                error,
            )
    details.update(lifted=lifted, absent=absent)
    if failures.messages:
        details[ERROR_CODES] = failures.codes
        return StepOutcome(step=step, ok=False, reason="; ".join(failures.messages), details=details)
    parts = []
    if lifted:
        parts.append(
            f"removed {HALTED_POLICY_NAME} from {' and '.join(lifted)}; sessions issued before {cutoff} (the re-arm) "
            "stay denied"
        )
    if absent:
        parts.append(f"{' and '.join(absent)} carried no {HALTED_POLICY_NAME}")
    return StepOutcome(step=step, ok=True, reason="; ".join(parts), details=details)


def halted_policy_document() -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "AegisKillSwitchHalted", "Effect": "Deny", "Action": "*", "Resource": "*"}],
    }


def deny_policy_document(cutoff: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AegisKillSwitchDenyOlderSessions",
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {"DateLessThan": {"aws:TokenIssueTime": cutoff}},
            }
        ],
    }


def _current_cutoff(iam: Any, role_name: str) -> str | None:
    try:
        response = iam.get_role_policy(RoleName=role_name, PolicyName=DENY_POLICY_NAME)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NoSuchEntity":
            return None
        raise
    document = response["PolicyDocument"]
    if isinstance(document, str):
        document = json.loads(document)
    for statement in document.get("Statement", []):
        value = statement.get("Condition", {}).get("DateLessThan", {}).get("aws:TokenIssueTime")
        if isinstance(value, str):
            return value
    return None
