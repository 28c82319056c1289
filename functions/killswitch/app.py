"""The kill switch Lambda: a direct invocation (authorised by IAM) or the function URL (authorised by an Auth0
access token with the operation's scope). The logic lives in `aegis_killswitch`; this file only routes.

Direct event: `{"action": "trigger"|"rearm", "reason": str, "requested_by": str}`.
EventBridge: the mission state machine's "Step Functions Execution Status Change" for a terminal status purges the
handoffs that execution left behind; a purge that fails raises, so that Lambda retries the asynchronous event.
HTTP: `POST /kill` (scope `aegis:killswitch`, body `{"reason"}` optional) and `POST /rearm` (scope `aegis:rearm`,
body `{"reason"}` required). 401 for a missing or invalid token, 403 for a missing scope; nothing changes then.
The answer lists every step as `{step, ok, reason}`: 200 when all succeeded, 502 when any failed (the halt flag
stays engaged whatever else failed).
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import LambdaFunctionUrlResolver, Response, content_types
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from aegis_killswitch.caller_auth import KILL_SCOPE, REARM_SCOPE, CallerVerifier, Forbidden, Unauthenticated
from aegis_killswitch.report import KillSwitchReport
from aegis_killswitch.requests import (
    DirectRequest,
    ExecutionEnded,
    InvalidKillSwitchRequest,
    KillBody,
    RearmBody,
    is_status_change,
)
from aegis_killswitch.service import KillSwitch
from aegis_killswitch.settings import KillSwitchSettings
from aegis_killswitch.wiring import build_caller_verifier, build_kill_switch

logger = Logger()
# Patch only what this function talks through, AWS (botocore) and the identity provider (httpx): X-Ray's patch_all
# would import and patch every library it supports that is installed (sqlite3, requests, database drivers) on each
# cold start.
tracer = Tracer(patch_modules=("botocore", "httpx"))
metrics = Metrics()
resolver = LambdaFunctionUrlResolver()

HTTP_OK = 200
HTTP_PARTIAL_FAILURE = 502


@cache
def settings() -> KillSwitchSettings:
    return KillSwitchSettings.from_env()


@cache
def kill_switch() -> KillSwitch:
    return build_kill_switch(settings())


@cache
def caller_verifier() -> CallerVerifier:
    return build_caller_verifier(settings())


def reset() -> None:
    """Forget the cached settings and clients (the local stack calls this when it changes endpoints)."""
    for cached in (settings, kill_switch, caller_verifier):
        cached.cache_clear()


# --------------------------------------------------------------------------------------------------- outcomes


def _publish(report: KillSwitchReport) -> None:
    metrics.add_metric(
        name="KillSwitchTriggered" if report.operation == "trigger" else "KillSwitchRearmed",
        unit=MetricUnit.Count,
        value=1,
    )
    metrics.add_metric(name="KillSwitchStepsFailed", unit=MetricUnit.Count, value=len(report.failed_steps))
    summary = {
        "operation": report.operation,
        "operation_id": report.operation_id,
        "requested_by": report.requested_by,
        "halted": report.halted,
        "steps": [{"step": s.step, "ok": s.ok, "reason": s.reason} for s in report.steps],
    }
    if report.ok:
        logger.info(f"kill switch {report.operation} completed", extra=summary)
    else:
        logger.error(
            f"kill switch {report.operation} PARTIALLY FAILED: {', '.join(report.failed_steps)}",
            extra=summary,
        )


def _run(action: str, reason: str, requested_by: str) -> KillSwitchReport:
    switch = kill_switch()
    if action == "trigger":
        report = switch.trigger(reason=reason, requested_by=requested_by)
    else:
        report = switch.rearm(reason=reason, requested_by=requested_by)
    _publish(report)
    return report


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body),
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def _report_response(report: KillSwitchReport) -> Response:
    return _json(HTTP_OK if report.ok else HTTP_PARTIAL_FAILURE, report.as_response())


# --------------------------------------------------------------------------------------------------- HTTP


def _body(model: type[KillBody] | type[RearmBody]) -> KillBody | RearmBody:
    raw = resolver.current_event.decoded_body
    try:
        document = json.loads(raw) if raw and raw.strip() else {}
    except ValueError:
        raise InvalidKillSwitchRequest("the body is not JSON") from None
    if not isinstance(document, dict):
        raise InvalidKillSwitchRequest("the body must be a JSON object")
    try:
        return model.model_validate(document)
    except ValidationError as error:
        raise InvalidKillSwitchRequest.from_validation(error) from None


@resolver.post("/kill")
def http_kill() -> Response:
    # Authenticate before reading the body: an anonymous caller learns nothing, not even about the body's format.
    caller = caller_verifier().authorize(resolver.current_event.headers, KILL_SCOPE)
    body = _body(KillBody)
    return _report_response(_run("trigger", body.reason, caller.sub))


@resolver.post("/rearm")
def http_rearm() -> Response:
    caller = caller_verifier().authorize(resolver.current_event.headers, REARM_SCOPE)
    body = _body(RearmBody)
    return _report_response(_run("rearm", body.reason, caller.sub))


@resolver.exception_handler(Unauthenticated)
def _unauthenticated(error: Unauthenticated) -> Response:
    metrics.add_metric(name="KillSwitchCallsRefused", unit=MetricUnit.Count, value=1)
    logger.warning("kill switch call refused: unauthenticated", extra={"why": str(error)})
    return _json(
        401,
        {"error": "invalid_token", "error_description": "a valid bearer token for the kill switch is required"},
        {"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


@resolver.exception_handler(Forbidden)
def _forbidden(error: Forbidden) -> Response:
    metrics.add_metric(name="KillSwitchCallsRefused", unit=MetricUnit.Count, value=1)
    logger.warning("kill switch call refused: missing scope", extra={"required_scope": error.required_scope})
    return _json(
        403,
        {"error": "insufficient_scope", "error_description": f"the token lacks the scope {error.required_scope}"},
        {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{error.required_scope}"'},
    )


@resolver.exception_handler(InvalidKillSwitchRequest)
def _invalid(error: InvalidKillSwitchRequest) -> Response:
    metrics.add_metric(name="KillSwitchCallsRefused", unit=MetricUnit.Count, value=1)
    return _json(400, {"error": "invalid_request", "error_description": str(error)})


# --------------------------------------------------------------------------------------------------- entry point


def _is_function_url_event(event: Any) -> bool:
    return isinstance(event, dict) and isinstance(event.get("requestContext"), dict) and "rawPath" in event


def direct(event: Any) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise InvalidKillSwitchRequest("the event must be a JSON object")
    try:
        request = DirectRequest.model_validate(event)
    except ValidationError as error:
        raise InvalidKillSwitchRequest.from_validation(error) from None
    return _run(request.action, request.reason, request.requested_by).as_response()


class HandoffPurgeFailed(RuntimeError):
    """The handoffs of an ended execution could not all be deleted; raised so that Lambda retries the event."""


def execution_ended(event: Any) -> dict[str, Any]:
    ended = ExecutionEnded.parse(event, settings().state_machine_arn)
    outcome = kill_switch().purge_ended_execution(ended.detail.executionArn, ended.detail.status)
    found = outcome.details.get("found")
    metrics.add_metric(name="HandoffsPurged", unit=MetricUnit.Count, value=found if isinstance(found, int) else 0)
    if not outcome.ok:
        raise HandoffPurgeFailed(outcome.reason)
    return {"ok": True, **outcome.details}


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if _is_function_url_event(event):
        return resolver.resolve(event, context)
    if is_status_change(event):
        return execution_ended(event)
    return direct(event)
