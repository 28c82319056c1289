"""The agent's two entries, behind the thin Lambda handlers in `app.py`.

start_mission: parse the EventBridge event -> halt check -> create the mission once per event id -> run the graph
to its interrupt (or to the end when there is nothing to approve) -> start the state machine execution named after
the mission -> record the mission.

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
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from langchain_core.runnables import RunnableConfig
from langgraph.types import Command

from aegis.audit import AuditLog, change_trail
from aegis.control import Halted, ensure_not_halted
from aegis.missions_keys import mission_id_for_event
from aegis.secrets_guard import SecretShapedValue
from aegis_agent.checkpointer import DynamoDBCheckpointSaver
from aegis_agent.errors import (
    AgentError,
    CheckpointRefused,
    DocumentInvalid,
    GraphFailed,
    MalformedEvent,
    MalformedResume,
    MissionNotResumable,
    UndoRefused,
)
from aegis_agent.events import (
    CustomScanEvent,
    ScheduledScanEvent,
    UndoRequestEvent,
    parse_resume_event,
    parse_scan_event,
)
from aegis_agent.graph import RESULTS_DOCUMENT, AgentDeps, build_graph, load_plan, parse_results, results_answer
from aegis_agent.missions import MissionStatus, MissionStore, mission_summary
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
    ) -> None:
        self.settings = settings
        self.missions = MissionStore(missions_table)
        self.audit = AuditLog(audit_table, actor=AUDIT_ACTOR)
        self._audit_table = audit_table
        self._control = control_table
        self._sfn = stepfunctions
        self._scanner = scanner
        self._clock = clock
        self.serde = SecretRefusingSerializer()
        self.saver = DynamoDBCheckpointSaver(
            checkpoints_table, serde=self.serde, ttl_seconds=settings.checkpoint_ttl_days * 86_400
        )
        self.graph = build_graph(
            AgentDeps(
                scanner=scanner, audit=self.audit, missions=self.missions, clock=clock, approval=settings.approval
            ),
            self.saver,
        )

    # --- scan entry ------------------------------------------------------------------------------------------------
    def start_mission(self, event: Any, request_id: str = "") -> dict[str, Any]:
        parsed = parse_scan_event(event)
        refusal: UndoRefused | None = None
        if isinstance(parsed, UndoRequestEvent):
            request, refusal = self._undo_request(parsed)
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
        )
        if refusal is not None:
            return self._refuse_undo(mission_id, _undo_fields(parsed), refusal)
        config = self._config(mission_id, request_id)
        self.serde.refusals.clear()
        try:
            self.graph.invoke({"request": request}, config, durability="sync")
        except UndoRefused as exc:
            # The plan node's refusal (the resource moved on, or cannot be read): an answer, not a failure to retry.
            return self._refuse_undo(mission_id, _undo_fields(parsed), exc)
        except Exception as exc:
            raise self._fail(mission_id, exc) from None
        return self._settle(mission_id, config, from_statuses=(MissionStatus.SCANNING,))

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
        execution_arn = self._start_execution(mission_id, changes)
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

    def _start_execution(self, mission_id: str, changes: Any) -> str:
        payload = json.dumps(
            {"mission_id": mission_id, "changes": [change.model_dump(mode="json") for change in changes]},
            separators=(",", ":"),
        )
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
