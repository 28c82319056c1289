"""Validate one mission plan before any of its changes reaches an approver.

    request {execution_arn, plan} → envelope (else Validation.PlanMalformed) → the mission's account, when a change
    names another than the deployment's (its Missions item) → every rule (aegis_validator.rules)
    → any problem: audit `validator.refused`, raise Validation.PlanRefused
    → else plan the approval requests (aegis.approvals.requests.plan_requests), audit `validator.accepted` and
      answer `{mission_id, requests}`: the state machine carries each change inside its request from here on (with
      the analyst's note on it, when the plan has `analyst_notes`: aegis_validator.rules)

Whoever may start the state machine chooses its input; the agent is only the usual starter. So nothing in the plan
is taken on trust: each change is re-parsed into the catalogue, held to this deployment's own parameters, and an
undo to the audit trail. A change about another account than the deployment's own is in scope only when the
mission is that account's: the agent wrote the account on the mission's item before it started the execution, and
nobody else can write that table. The validator changes nothing but its own audit records and holds no secret.

A refusal is audited before it is raised (an audit failure is logged and does not turn the refusal into anything
else). Any other error (the audit or the Missions table unreachable, say) propagates: the state machine then fails
the mission without asking anyone to approve anything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from aegis.approvals.requests import ApprovalRequest, plan_requests, with_analyst_notes
from aegis.audit import AuditLog, change_trail
from aegis.catalogue import parse_change, plan_digest
from aegis_validator.errors import PlanMalformed, PlanRefused
from aegis_validator.rules import (
    MISSION_ID_PATTERN,
    Envelope,
    Problem,
    analyst_notes,
    execution_name,
    parse_envelope,
    plan_accounts,
    plan_problems,
)
from aegis_validator.settings import ValidatorSettings

logger = Logger(child=True)

AUDIT_ACTOR = "validator"
ACCEPTED, REFUSED = "validator.accepted", "validator.refused"
# Audit key of a request that names neither a mission nor an execution.
UNNAMED_REQUEST = "validator:unnamed-request"
MAX_PROBLEMS_IN_MESSAGE = 10


@dataclass
class PlanValidator:
    settings: ValidatorSettings
    audit_table: Any
    # The Missions table: the account of an organization scan's mission is on its item.
    missions_table: Any

    def validate(self, request: Any) -> dict[str, Any]:
        audit = AuditLog(self.audit_table, AUDIT_ACTOR)
        try:
            envelope = parse_envelope(request)
        except PlanMalformed as exc:
            arn = request.get("execution_arn") if isinstance(request, Mapping) else None
            self._record_safely(
                audit,
                _audit_key(request),
                "malformed",
                error=PlanMalformed.__name__,
                reason=str(exc),
                execution_arn=arn if execution_name(arn) else None,
            )
            logger.warning("plan malformed", extra={"reason": str(exc)})
            raise
        problems = plan_problems(
            envelope, self.settings, self.applied_records, self._mission_account_if_needed(envelope)
        )
        if problems:
            self._record_safely(
                audit,
                envelope.mission_id,
                "refused",
                error=PlanRefused.__name__,
                execution_arn=envelope.execution_arn,
                change_count=len(envelope.changes),
                problems=[problem.as_record() for problem in problems],
            )
            logger.warning(
                "plan refused",
                extra={"mission_id": envelope.mission_id, "rules": sorted({p.rule for p in problems})},
            )
            raise PlanRefused(refusal_message(envelope, problems))
        changes = [parse_change(dict(raw)) for raw in envelope.changes]
        # The rules refused every change the policy cannot plan (needs-second-approver), so planning cannot refuse.
        # The analyst's notes ride on the request items to the approval function, outside every change (so outside
        # every digest and root); the state machine hands the executor the change and its proof only.
        notes = analyst_notes(envelope)
        requests = with_analyst_notes(plan_requests(envelope.mission_id, changes, self.settings.approval_policy), notes)
        digest = plan_digest(changes)
        audit.append(
            envelope.mission_id,
            ACCEPTED,
            "accepted",
            execution_arn=envelope.execution_arn,
            account_id=changes[0].account_id if changes else self.settings.account_id,
            plan_digest=digest,
            changes=[{"change_id": c.change_id, "digest": c.digest, "kind": c.kind} for c in changes],
            requests=[_request_record(r) for r in requests],
            analyst_notes=len(notes),
        )
        logger.info(
            "plan accepted",
            extra={"mission_id": envelope.mission_id, "changes": len(changes), "requests": len(requests)},
        )
        return {
            "mission_id": envelope.mission_id,
            "verdict": "accepted",
            "changes": len(changes),
            "plan_digest": digest,
            "requests": [request.model_dump(mode="json") for request in requests],
        }

    def applied_records(self, change_id: str) -> Sequence[Mapping[str, Any]]:
        return change_trail(self.audit_table, change_id)

    def mission_account(self, mission_id: str) -> str | None:
        """The `account_id` on the mission's item; None when there is no item or no such attribute (the plan's
        changes may then be about the deployment's own account only). Read consistently: the agent writes the item
        just before it starts the execution this plan is the input of."""
        item = self.missions_table.get_item(
            Key={"mission_id": mission_id},
            ProjectionExpression="#account",
            ExpressionAttributeNames={"#account": "account_id"},
            ConsistentRead=True,
        ).get("Item")
        account = item.get("account_id") if isinstance(item, Mapping) else None
        return account if isinstance(account, str) else None

    def _mission_account_if_needed(self, envelope: Envelope) -> str | None:
        # Only a plan naming another account needs the item: an ordinary mission costs no read.
        if plan_accounts(envelope) <= {self.settings.account_id}:
            return None
        return self.mission_account(envelope.mission_id)

    @staticmethod
    def _record_safely(audit: AuditLog, mission_id: str, outcome: str, **details: Any) -> None:
        try:
            audit.append(mission_id, REFUSED, outcome, **details)
        except Exception as exc:  # the refusal must still be raised; the failure is reported here
            logger.error("audit write failed", extra={"action": REFUSED, "error": type(exc).__name__})


def _request_record(request: ApprovalRequest) -> dict[str, Any]:
    """What the audit trail keeps of a planned request: who approves which changes, under which root (the changes
    themselves are in the record's `changes`)."""
    return {
        "request_id": request.request_id,
        "kind": request.kind,
        "approvers": list(request.approvers),
        "root": request.root,
        "change_ids": [item.change["change_id"] for item in request.items],
    }


def refusal_message(envelope: Envelope, problems: Sequence[Problem]) -> str:
    shown = "; ".join(str(problem) for problem in problems[:MAX_PROBLEMS_IN_MESSAGE])
    more = len(problems) - MAX_PROBLEMS_IN_MESSAGE
    return f"plan of mission {envelope.mission_id} refused, no change was sent for approval: {shown}" + (
        f"; and {more} more" if more > 0 else ""
    )


def _audit_key(request: Any) -> str:
    """Where a malformed request is audited: its mission if it names one of the agent's form, else its execution."""
    if isinstance(request, Mapping):
        plan = request.get("plan")
        mission_id = plan.get("mission_id") if isinstance(plan, Mapping) else None
        if isinstance(mission_id, str) and re.fullmatch(MISSION_ID_PATTERN, mission_id):
            return mission_id
        name = execution_name(request.get("execution_arn"))
        if name is not None:
            return name
    return UNNAMED_REQUEST
