"""Lambda handlers of the agent: `scan_handler` (EventBridge schedule, `aegis.scan` or `aegis.undo` event) and
`resume_handler` (the state machine's last state); the scan handler also takes an organization scan's account item
from the org-scan state machine. Thin: parsing, the graph and all writes live in `aegis_agent`.

Events are never logged (they are data from outside), and errors reach X-Ray and the logs by name only.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from aegis_agent.service import AgentService
from aegis_agent.wiring import build_service

logger = Logger()
# Patch only what this function talks through, AWS (botocore): X-Ray's patch_all would import and patch every
# library it supports that is installed (sqlite3, requests, database drivers) on each cold start.
tracer = Tracer(patch_modules=("botocore",))
metrics = Metrics()


@cache
def service() -> AgentService:
    """One service (boto3 resources, saver, compiled graph) per Lambda container, built on first use."""
    return build_service()


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics
def scan_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcome = service().start_mission(event, request_id=context.aws_request_id)
    metrics.add_metric(
        name="MissionsStarted" if outcome.get("created", True) else "DuplicateEvents", unit=MetricUnit.Count, value=1
    )
    metrics.add_metric(name="ChangesProposed", unit=MetricUnit.Count, value=int(outcome.get("changes", 0)))
    # An organization scan's start names the organization scan, every other outcome its mission.
    subject: dict[str, Any] = {k: outcome[k] for k in ("mission_id", "org_scan_id") if k in outcome}
    logger.info("scan handled", extra={**subject, "status": outcome["status"]})
    return outcome


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics
def resume_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcome = service().resume_mission(event)
    metrics.add_metric(name="MissionsResumed", unit=MetricUnit.Count, value=1)
    logger.info("resume handled", extra={"mission_id": outcome["mission_id"], "status": outcome["status"]})
    return outcome
