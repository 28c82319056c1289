"""The agent's two entries, behind the thin Lambda handlers in `app.py`.

start_mission: parse the EventBridge event -> halt check -> create the mission once per event id -> run the graph
to its interrupt (or to the end when there is nothing to approve) -> start the state machine execution named after
the mission -> record the mission.

An `aegis.scan` event with `organization: true` starts the organization scan instead (the org-scan state machine,
execution named `org-<20 hex>` after the event: a redelivered event starts nothing new). Each account of it comes back
here as an account scan (`{org_scan_id, account_id, regions, checks, dry_run}` from the Map): a mission per account
and organization scan, reading the account as its AegisScanRole (aegis_agent.accounts); an account whose role cannot be
assumed ends `unreachable` (the AWS error code audited, returned normally), and its plan is held to what the
organization scan's cap still allows (aegis_agent.orgcap).

An `aegis.undo` event enters start_mission too: the undo is resolved from the audit trail first (aegis_agent.undo),
and the mission plans `[Undo.of(original)]` or ends `failed` with the refusal's name audited (`undo.refused`),
returning normally: a refusal is an answer, not an error to retry.

resume_mission: parse `{mission_id, results}` -> halt check -> load the thread from DynamoDB -> check the opaque
per-change results against the plan and store them as the mission's `results` document -> resume with a reference to
it (bound to the pending interrupt's id) -> re-scan, report, audit -> record the mission.

Failures mark the mission failed with a named error and are audited by name; an exception's text is never written
or logged (it may carry anything), and a refusal by the checkpoint serializer is audited as `Agent.SecretRefused`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from langchain_core.runnables import RunnableConfig
from langgraph.types import Command

from aegis.audit import AuditLog, change_trail
from aegis.control import Halted, ensure_not_halted
from aegis.missions_keys import mission_id_for_event, org_scan_id_for_event
from aegis.secrets_guard import SecretShapedValue
from aegis_agent.accounts import AccountScanners
from aegis_agent.analyst import Analyst
from aegis_agent.checkpointer import DynamoDBCheckpointSaver
from aegis_agent.errors import (
    AccountUnreachable,
    AgentError,
    CheckpointRefused,
    DocumentInvalid,
    GraphFailed,
    MalformedEvent,
    MalformedResume,
    MissionNotResumable,
    OrgScanNotConfigured,
    UndoRefused,
)
from aegis_agent.events import (
    AccountScanRequest,
    CustomScanEvent,
    ScheduledScanEvent,
    UndoRequestEvent,
    parse_resume_event,
    parse_scan_event,
)
from aegis_agent.graph import (
    RESULTS_DOCUMENT,
    AgentDeps,
    build_graph,
    load_analysis,
    load_plan,
    parse_results,
    results_answer,
)
from aegis_agent.missions import MissionStatus, MissionStore, mission_summary
from aegis_agent.orgcap import OrgCap
from aegis_agent.report import analyst_notes
from aegis_agent.scanner import Scanner
from aegis_agent.serializer import SecretRefusingSerializer
from aegis_agent.settings import AgentSettings
from aegis_agent.state import ApprovalResults, MissionRequest, Trigger
from aegis_agent.undo import resolve_undo

logger = Logger(child=True)

AUDIT_ACTOR = "agent"


def utcnow() -> datetime:
    return datetime.now(UTC)


def _undo_fields(event: Any) -> dict[str, str]:
    """What an undo request names, for the mission item and its audit records; nothing for a scan."""
    if not isinstance(event, UndoRequestEvent):
        return {}
    return {"undo_of": event.detail.change_id, "requested_by": event.detail.requested_by}


def _account_fields(request: MissionRequest) -> dict[str, str]:
    """The account (and organization scan) a mission reads, for its audit records."""
    fields = {"account_id": request.account_id} if request.account_id else {}
    return fields | ({"org_scan": request.org_scan} if request.org_scan else {})


def execution_arn_for(state_machine_arn: str, name: str) -> str:
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{name}"


class AgentService:
    def __init__(
        self,
        *,
        settings: AgentSettings,
        checkpoints_table: Any,
        missions_table: Any,
        audit_table: Any,
        control_table: Any,
        stepfunctions: Any,
        scanner: Scanner,
        clock: Callable[[], datetime] = utcnow,
        accounts: AccountScanners | None = None,
        analyst: Analyst | None = None,
        pinned_checks: frozenset[str] = frozenset(),
    ) -> None:
        self.settings = settings
        self.missions = MissionStore(missions_table)
        self.audit = AuditLog(audit_table, actor=AUDIT_ACTOR)
        self._audit_table = audit_table
        self._control = control_table
        self._sfn = stepfunctions
        self._scanner = scanner
        self._clock = clock
        # Which account a mission scans and with which credentials; None (built in code without one): every mission
        # scans with `scanner`, and mission items name no account.
        self._accounts = accounts
        self.serde = SecretRefusingSerializer()
        self.saver = DynamoDBCheckpointSaver(
            checkpoints_table, serde=self.serde, ttl_seconds=settings.checkpoint_ttl_days * 86_400
        )
        self.graph = build_graph(
            AgentDeps(
                scanner=scanner,
                audit=self.audit,
                missions=self.missions,
                clock=clock,
                approval=settings.approval,
                scanner_for=accounts.for_request if accounts is not None else None,
                org_cap=OrgCap(missions_table),
                analyst=analyst,
                pinned_checks=pinned_checks,
            ),
            self.saver,
        )

    # --- scan entry ------------------------------------------------------------------------------------------------
    def start_mission(self, event: Any, request_id: str = "") -> dict[str, Any]:
        parsed = parse_scan_event(event)
        if isinstance(parsed, CustomScanEvent) and parsed.detail.organization:
            return self._start_org_scan(parsed)
        refusal: UndoRefused | None = None
        if isinstance(parsed, UndoRequestEvent):
            request, refusal = self._undo_request(parsed)
        elif isinstance(parsed, AccountScanRequest):
            request = self._account_request(parsed)
        else:
            request = self._request(parsed)
        mission_id = request.mission_id
        try:
            ensure_not_halted(self._control)
        except Halted:
            self.audit.append(mission_id, "mission.refused", "halted", trigger=request.trigger.value)
            logger.warning("kill switch engaged: no mission created", extra={"mission_id": mission_id})
            return {"mission_id": mission_id, "status": MissionStatus.HALTED.value, "created": False}
        item, created = self.missions.create(request, self._clock())
        if not created:
            return self._on_duplicate(item, request_id)
        self.audit.append(
            mission_id,
            "mission.created",
            "ok",
            trigger=request.trigger.value,
            regions=list(request.regions),
            check_ids=list(request.check_ids or ()),
            dry_run=request.policy.dry_run,
            **_undo_fields(parsed),
            **_account_fields(request),
        )
        if refusal is not None:
            return self._refuse_undo(mission_id, _undo_fields(parsed), refusal)
        try:
            if self._accounts is not None:
                # A member account's role is assumed before the graph runs: an unreachable account is an answer.
                self._accounts.for_request(request)
        except AccountUnreachable as exc:
            return self._unreachable(request, exc)
        config = self._config(mission_id, request_id)
        self.serde.refusals.clear()
        try:
            self.graph.invoke({"request": request}, config, durability="sync")
        except UndoRefused as exc:
            # The plan node's refusal (the resource moved on, or cannot be read): an answer, not a failure to retry.
            return self._refuse_undo(mission_id, _undo_fields(parsed), exc)
        except Exception as exc:
            raise self._fail(mission_id, exc) from None
        finally:
            self._release(mission_id)
        return self._settle(mission_id, config, from_statuses=(MissionStatus.SCANNING,))

    # --- organization scans ----------------------------------------------------------------------------------------
    def _start_org_scan(self, event: CustomScanEvent) -> dict[str, Any]:
        """Start the org-scan execution named after the event (once per event: a redelivery is `duplicate`)."""
        org_scan_id = org_scan_id_for_event(event.id)
        detail = event.detail
        try:
            ensure_not_halted(self._control)
        except Halted:
            self.audit.append(org_scan_id, "org_scan.refused", "halted")
            logger.warning("kill switch engaged: no organization scan started", extra={"org_scan_id": org_scan_id})
            return {"org_scan_id": org_scan_id, "status": MissionStatus.HALTED.value, "created": False}
        state_machine_arn = self.settings.org_scan_state_machine_arn
        if not state_machine_arn:
            raise OrgScanNotConfigured("ORG_SCAN_STATE_MACHINE_ARN is not set: no organization scan can start")
        checks = self._known_checks(detail.checks)
        regions = list(dict.fromkeys(detail.regions)) if detail.regions else None
        payload = {
            "org_scan_id": org_scan_id,
            "regions": regions,
            "checks": list(checks) if checks else None,
            "dry_run": detail.dry_run,
            # The clock's time, not the event's: a redelivery's input differs, so Step Functions answers
            # ExecutionAlreadyExists instead of treating it as the same (idempotent) start.
            "requested_at": self._clock().isoformat(),
        }
        try:
            self._sfn.start_execution(
                stateMachineArn=state_machine_arn, name=org_scan_id, input=json.dumps(payload, separators=(",", ":"))
            )
        except self._sfn.exceptions.ExecutionAlreadyExists:
            self.audit.append(org_scan_id, "org_scan.duplicate_event", "ignored")
            return {"org_scan_id": org_scan_id, "status": "duplicate", "created": False}
        self.audit.append(
            org_scan_id,
            "org_scan.started",
            "started",
            regions=regions,
            check_ids=list(checks) if checks else None,
            dry_run=detail.dry_run,
        )
        return {"org_scan_id": org_scan_id, "status": "started", "created": True}

    def _account_request(self, payload: AccountScanRequest) -> MissionRequest:
        """One account of an organization scan: a mission per (organization scan, account), so a redelivered item
        finds the same mission."""
        checks = self._known_checks(payload.checks)
        return MissionRequest(
            mission_id=mission_id_for_event(f"{payload.org_scan_id}/{payload.account_id}"),
            trigger=Trigger.ORGANIZATION,
            regions=tuple(dict.fromkeys(payload.regions)) if payload.regions else self.settings.scan_regions,
            check_ids=checks,
            policy=self.settings.policy(payload.dry_run),
            requested_at=self._clock().isoformat(),
            account_id=payload.account_id,
            org_scan=payload.org_scan_id,
        )

    def _known_checks(self, checks: list[str] | None) -> tuple[str, ...] | None:
        if not checks:
            return None
        check_ids = tuple(dict.fromkeys(checks))
        unknown = set(check_ids) - self._scanner.known_check_ids()
        if unknown:
            raise MalformedEvent(f"{len(unknown)} unknown check id(s) in checks")
        return check_ids

    def _unreachable(self, request: MissionRequest, exc: AccountUnreachable) -> dict[str, Any]:
        """End the account's mission `unreachable`: nothing was scanned. Only the AWS error code is kept."""
        mission_id = request.mission_id
        self.missions.update(
            mission_id, MissionStatus.UNREACHABLE, self._clock(), expected=(MissionStatus.SCANNING,), error=exc.code
        )
        self.audit.append(mission_id, "mission.unreachable", exc.code, error=exc.code, **_account_fields(request))
        logger.warning("account unreachable", extra={"mission_id": mission_id, "error": exc.code})
        return {
            "mission_id": mission_id,
            "status": MissionStatus.UNREACHABLE.value,
            "account_id": request.account_id,
            "created": True,
        }

    def _own_account(self) -> str | None:
        return self._accounts.sessions.own_account_id() if self._accounts is not None else None

    def _release(self, mission_id: str) -> None:
        if self._accounts is not None:
            self._accounts.release(mission_id)

    def _undo_request(self, event: UndoRequestEvent) -> tuple[MissionRequest, UndoRefused | None]:
        """The undo mission's request, and the refusal when the audit trail does not allow the undo. Read-only, so a
        redelivered event resolves again before it finds its mission."""
        detail = event.detail
        regions = self.settings.scan_regions
        check_ids: tuple[str, ...] | None = None
        target = None
        refusal = None
        try:
            target = resolve_undo(
                change_id=detail.change_id,
                requested_by=detail.requested_by,
                undo_enabled=self.settings.undo_enabled,
                state_machine_arn=self.settings.state_machine_arn,
                change_trail=lambda change_id: change_trail(self._audit_table, change_id),
                missions=self.missions,
            )
        except UndoRefused as exc:
            refusal = exc
        else:
            # The original's check over every scanned region and its own (a bucket's region may be unscanned): the
            # plan node looks there for the resource, and the report then covers that check as a scan would.
            regions = tuple(dict.fromkeys((*regions, target.original.region)))
            check_ids = (target.original.check_id,)
        request = MissionRequest(
            mission_id=mission_id_for_event(event.id),
            trigger=Trigger.UNDO,
            regions=regions,
            check_ids=check_ids,
            policy=self.settings.policy(),
            requested_at=self._clock().isoformat(),
            undo=target,
            account_id=self._own_account(),
        )
        return request, refusal

    def _refuse_undo(self, mission_id: str, asked: dict[str, str], refusal: UndoRefused) -> dict[str, Any]:
        """End the undo mission `failed`, with the refusal's name on its item and in the audit trail."""
        self.missions.update(
            mission_id,
            MissionStatus.FAILED,
            self._clock(),
            error=refusal.error_name,
            undo_refused=refusal.reason,
            undo_of=asked["undo_of"],
            requested_by=asked["requested_by"],
        )
        self.audit.append(
            mission_id,
            "undo.refused",
            refusal.reason,
            change_id=asked["undo_of"],
            requested_by=asked["requested_by"],
            detail=refusal.detail,
        )
        self.audit.append(
            mission_id, "mission.failed", refusal.error_name, error=refusal.error_name, reason=refusal.reason
        )
        logger.warning("undo refused", extra={"mission_id": mission_id, "reason": refusal.reason})
        return {
            "mission_id": mission_id,
            "status": MissionStatus.FAILED.value,
            "created": True,
            "reason": refusal.reason,
        }

    def _request(self, event: ScheduledScanEvent | CustomScanEvent) -> MissionRequest:
        regions = self.settings.scan_regions
        check_ids: tuple[str, ...] | None = None
        dry_run: bool | None = None
        trigger = Trigger.SCHEDULED
        if isinstance(event, CustomScanEvent):
            trigger = Trigger.CUSTOM
            if event.detail.regions:
                regions = tuple(dict.fromkeys(event.detail.regions))
            if event.detail.checks:
                check_ids = tuple(dict.fromkeys(event.detail.checks))
                unknown = set(check_ids) - self._scanner.known_check_ids()
                if unknown:
                    raise MalformedEvent(f"{len(unknown)} unknown check id(s) in detail.checks")
            dry_run = event.detail.dry_run
        return MissionRequest(
            mission_id=mission_id_for_event(event.id),
            trigger=trigger,
            regions=regions,
            check_ids=check_ids,
            policy=self.settings.policy(dry_run),
            requested_at=self._clock().isoformat(),
            account_id=self._own_account(),
        )

    def _on_duplicate(self, item: dict[str, Any], request_id: str) -> dict[str, Any]:
        mission_id = str(item["mission_id"])
        self.audit.append(mission_id, "mission.duplicate_event", "ignored", status=str(item["status"]))
        if item["status"] == MissionStatus.SCANNING.value:
            config = self._config(mission_id, request_id)
            if self.graph.get_state(config).interrupts:
                # An earlier delivery reached the interrupt but stopped before starting the execution: finish that.
                return self._settle(
                    mission_id, config, from_statuses=(MissionStatus.SCANNING, MissionStatus.AWAITING_APPROVAL)
                )
        return {"mission_id": mission_id, "status": str(item["status"]), "created": False}

    # --- resume entry ----------------------------------------------------------------------------------------------
    def resume_mission(self, event: Any) -> dict[str, Any]:
        parsed = parse_resume_event(event)
        mission_id = parsed.mission_id
        item = self.missions.get(mission_id)
        if item["status"] == MissionStatus.COMPLETED.value:
            return {"mission_id": mission_id, "status": MissionStatus.COMPLETED.value, "resumed": False}
        if item["status"] != MissionStatus.AWAITING_APPROVAL.value:
            raise MissionNotResumable(f"mission {mission_id} is {item['status']}")
        results = [result.model_dump(mode="json") for result in parsed.results]
        try:
            ensure_not_halted(self._control)
        except Halted:
            self.missions.update(
                mission_id, MissionStatus.HALTED, self._clock(), expected=(MissionStatus.AWAITING_APPROVAL,)
            )
            self.audit.append(
                mission_id,
                "mission.halted",
                "halted",
                results=[{k: r[k] for k in ("change_id", "decision", "outcome", "reason")} for r in results],
            )
            return {"mission_id": mission_id, "status": MissionStatus.HALTED.value, "resumed": False}
        config = self._config(mission_id)
        snapshot = self.graph.get_state(config)
        if len(snapshot.interrupts) != 1:
            raise MissionNotResumable(f"mission {mission_id} has no pending approval request")
        interrupt_id = snapshot.interrupts[0].id
        try:
            checked = parse_results({"results": results}, load_plan(snapshot.values, self.missions).changes)
        except (MalformedResume, DocumentInvalid) as exc:
            raise self._fail(mission_id, exc) from None
        self.serde.refusals.clear()
        try:
            # Stored once, checked for secrets like every document; the graph is answered with where they are.
            stored = ApprovalResults(results=tuple(checked))
            document = self.missions.write_document(mission_id, RESULTS_DOCUMENT, stored)
            # Keyed by the interrupt id, so this answer can only ever answer this request.
            self.graph.invoke(Command(resume={interrupt_id: results_answer(document)}), config, durability="sync")
        except Exception as exc:
            raise self._fail(mission_id, exc) from None
        finally:
            self._release(mission_id)
        return self._settle(mission_id, config, from_statuses=(MissionStatus.AWAITING_APPROVAL,))

    # --- shared ----------------------------------------------------------------------------------------------------
    def _config(self, mission_id: str, request_id: str = "") -> RunnableConfig:
        configurable: dict[str, Any] = {"thread_id": mission_id}
        if request_id:
            # Correlates the run with the Lambda invocation; the saver never copies config into checkpoints.
            configurable["lambda_request_id"] = request_id
        return {"configurable": configurable}

    def _settle(
        self, mission_id: str, config: RunnableConfig, from_statuses: tuple[MissionStatus, ...]
    ) -> dict[str, Any]:
        snapshot = self.graph.get_state(config)
        values = snapshot.values
        summary = mission_summary(values["scan"], values["plan"])
        if not snapshot.interrupts:
            report = values["report"]
            now = self._clock()
            self.missions.update(
                mission_id,
                MissionStatus.COMPLETED,
                now,
                expected=from_statuses,
                report_pages=report.pages,
                report_digest=report.digest,
                completed_at=now.isoformat(),
                # What became of the plan, on the item: an organization's summary reads items, never reports.
                outcomes={"applied": report.totals.applied, "verified_fixed": report.totals.verified_fixed},
                **summary,
            )
            self.audit.append(mission_id, "mission.completed", report.plan_status.value, **summary["counts"])
            return {
                "mission_id": mission_id,
                "status": MissionStatus.COMPLETED.value,
                "plan_status": report.plan_status.value,
                "findings": report.totals.findings,
                "changes": report.totals.changes,
            }
        try:
            ensure_not_halted(self._control)
        except Halted:
            self.missions.update(mission_id, MissionStatus.HALTED, self._clock(), expected=from_statuses, **summary)
            self.audit.append(mission_id, "mission.halted", "halted", before="start_execution")
            return {"mission_id": mission_id, "status": MissionStatus.HALTED.value}
        plan = values["plan"]
        try:
            changes = load_plan(values, self.missions).changes
        except DocumentInvalid as exc:
            raise self._fail(mission_id, exc) from None
        try:
            notes = analyst_notes(load_analysis(values, self.missions), changes)
        except DocumentInvalid as exc:
            raise self._fail(mission_id, exc) from None
        execution_arn = self._start_execution(
            mission_id,
            changes,
            {change_id: {"priority": note.priority, "rationale": note.rationale} for change_id, note in notes.items()},
        )
        self.missions.update(
            mission_id,
            MissionStatus.AWAITING_APPROVAL,
            self._clock(),
            expected=from_statuses,
            execution_arn=execution_arn,
            **summary,
        )
        self.audit.append(
            mission_id,
            "approval.requested",
            "started",
            execution_arn=execution_arn,
            plan_digest=plan.plan_digest,
            changes=[{"change_id": c.change_id, "digest": c.digest, "resource_arn": c.resource_arn} for c in changes],
        )
        return {
            "mission_id": mission_id,
            "status": MissionStatus.AWAITING_APPROVAL.value,
            "execution_arn": execution_arn,
            "findings": values["scan"].finding_count,
            "changes": len(changes),
        }

    def _start_execution(
        self, mission_id: str, changes: Any, analyst_notes: Mapping[str, Mapping[str, Any]] | None = None
    ) -> str:
        """Start the mission's execution. `analyst_notes` (change id -> `{"priority": 1-4, "rationale": str}`) is
        the analyst's advisory word per change for the approver's phone; the validator screens it, and it is left
        out when empty (no analyst ran, or it decided nothing)."""
        plan: dict[str, Any] = {
            "mission_id": mission_id,
            "changes": [change.model_dump(mode="json") for change in changes],
        }
        if analyst_notes:
            plan["analyst_notes"] = {change_id: dict(note) for change_id, note in analyst_notes.items()}
        payload = json.dumps(plan, separators=(",", ":"))
        try:
            response = self._sfn.start_execution(
                stateMachineArn=self.settings.state_machine_arn, name=mission_id, input=payload
            )
        except self._sfn.exceptions.ExecutionAlreadyExists:
            return execution_arn_for(self.settings.state_machine_arn, mission_id)
        return str(response["executionArn"])

    def _fail(self, mission_id: str, exc: Exception) -> AgentError:
        """Mark the mission failed and audit why, by name; return the named error for the handler to raise."""
        refusal = exc if isinstance(exc, CheckpointRefused) else next(reversed(self.serde.refusals), None)
        if refusal is None and isinstance(exc, SecretShapedValue):
            # The report or audit writer refused a value (they check too): the same named refusal.
            refusal = CheckpointRefused(f"{exc.kind}-shaped string", exc.where)
        named: AgentError
        if refusal is not None:
            named = refusal
        elif isinstance(exc, AgentError):
            named = exc
        else:
            named = GraphFailed(f"{type(exc).__name__} in the mission graph")
        details: dict[str, Any] = {"error": named.error_name, "error_type": type(exc).__name__}
        if refusal is not None:
            details |= {"refused": refusal.kind, "where": refusal.where}
        self.missions.update(mission_id, MissionStatus.FAILED, self._clock(), error=named.error_name)
        self.audit.append(mission_id, "mission.failed", named.error_name, **details)
        logger.error("mission failed", extra={"mission_id": mission_id, **details})
        return named
