"""The kill switch Lambda: a direct invocation (authorised by IAM), or an HTTP call through its function URL or the ops
HTTP API's routes (authorised by an Auth0 access token with the operation's scope). The logic lives in
`aegis_killswitch`; this file only routes.

Direct event: `{"action": "trigger"|"rearm", "reason": str, "requested_by": str}`.
EventBridge: the mission state machine's "Step Functions Execution Status Change" for a terminal status purges the
handoffs that execution left behind; a purge that fails raises, so that Lambda retries the asynchronous event.
HTTP: `POST /kill` (scope `aegis:killswitch`, body `{"reason"}` optional) and `POST /rearm` (scope `aegis:rearm`,
body `{"reason"}` required). 401 for a missing or invalid token, 403 for a missing scope; nothing changes then. The
function URL and the HTTP API send the same payload format 2.0 event, which one resolver answers; behind the HTTP API
the gateway's JWT authorizer checked the token already, and the function checks it again (defence in depth: the
function URL has no gateway in front of it, and the scopes acted on come from the token the function verified).
The answer lists every step as `{step, ok, reason}`: 200 when all succeeded, 502 when any failed (the halt flag
stays engaged whatever else failed).
"""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from aegis_jwt.callers import CallerVerifier
from aegis_jwt.errors import Forbidden, Unauthenticated
from aegis_killswitch import http_calls, wiring
from aegis_killswitch.errors import HandoffPurgeFailed, InvalidKillSwitchRequest
from aegis_killswitch.report import KillSwitchReport
from aegis_killswitch.requests import DirectRequest, ExecutionEnded, KillBody, RearmBody, is_status_change, parse
from aegis_killswitch.scopes import KILL_SCOPE, REARM_SCOPE
from aegis_killswitch.service import KillSwitch

logger = Logger()
# Patch only what this function talks through, AWS (botocore) and the identity provider (httpx): X-Ray's patch_all
# would import and patch every library it supports that is installed (sqlite3, requests, database drivers) on each
# cold start.
tracer = Tracer(patch_modules=("botocore", "httpx"))
metrics = Metrics()
# The HTTP API's resolver also answers the function URL: both send payload format 2.0 on the `$default` stage.
resolver = APIGatewayHttpResolver()
# 1 while the halt flag is engaged, 0 once re-armed; emitted by every trigger and re-arm.
HALTED_METRIC = "Halted"


@cache
def kill_switch() -> KillSwitch:
    return wiring.build_kill_switch()


@cache
def caller_verifier() -> CallerVerifier:
    return wiring.build_caller_verifier()


def _operate(action: Literal["trigger", "rearm"], reason: str, requested_by: str) -> KillSwitchReport:
    switch = kill_switch()
    operate = switch.trigger if action == "trigger" else switch.rearm
    report = operate(reason=reason, requested_by=requested_by)
    metrics.add_metric(
        name="KillSwitchTriggered" if action == "trigger" else "KillSwitchRearmed", unit=MetricUnit.Count, value=1
    )
    metrics.add_metric(name="KillSwitchStepsFailed", unit=MetricUnit.Count, value=len(report.failed_steps))
    # A gauge, not a count: template.yaml's HaltEngagedAlarm stays in ALARM from a trigger until a re-arm clears it.
    metrics.add_metric(name=HALTED_METRIC, unit=MetricUnit.NoUnit, value=report.halt_engaged)
    return report


# --------------------------------------------------------------------------------------------------- HTTP


@resolver.post("/kill")
def http_kill() -> Response:
    # Authenticate before reading the body: an anonymous caller learns nothing, not even about the body's format.
    caller = caller_verifier().authorize(resolver.current_event.headers, KILL_SCOPE)
    body = http_calls.read_body(resolver.current_event.decoded_body, KillBody)
    return http_calls.report_response(_operate("trigger", body.reason, caller.sub))


@resolver.post("/rearm")
def http_rearm() -> Response:
    caller = caller_verifier().authorize(resolver.current_event.headers, REARM_SCOPE)
    body = http_calls.read_body(resolver.current_event.decoded_body, RearmBody)
    return http_calls.report_response(_operate("rearm", body.reason, caller.sub))


@resolver.exception_handler(Unauthenticated)
def _unauthenticated(error: Unauthenticated) -> Response:
    metrics.add_metric(name="KillSwitchCallsRefused", unit=MetricUnit.Count, value=1)
    logger.warning("kill switch call refused: unauthenticated", extra={"why": str(error)})
    return http_calls.unauthenticated_response()


@resolver.exception_handler(Forbidden)
def _forbidden(error: Forbidden) -> Response:
    metrics.add_metric(name="KillSwitchCallsRefused", unit=MetricUnit.Count, value=1)
    logger.warning("kill switch call refused: missing scope", extra={"required_scope": error.required_scope})
    return http_calls.forbidden_response(error)


@resolver.exception_handler(InvalidKillSwitchRequest)
def _invalid(error: InvalidKillSwitchRequest) -> Response:
    metrics.add_metric(name="KillSwitchCallsRefused", unit=MetricUnit.Count, value=1)
    return http_calls.invalid_request_response(error)


# --------------------------------------------------------------------------------------------------- entry point


def direct(event: Any) -> dict[str, Any]:
    request = parse(DirectRequest, event)
    return _operate(request.action, request.reason, request.requested_by).as_response()


def execution_ended(event: Any) -> dict[str, Any]:
    switch = kill_switch()
    ended = ExecutionEnded.parse(event, switch.settings.state_machine_arn)
    outcome = switch.purge_ended_execution(ended.detail.executionArn, ended.detail.status)
    found = outcome.details.get("found")
    metrics.add_metric(name="HandoffsPurged", unit=MetricUnit.Count, value=found if isinstance(found, int) else 0)
    if not outcome.ok:
        raise HandoffPurgeFailed(outcome.reason)
    return {"ok": True, **outcome.details}


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if http_calls.is_http_event(event):
        return resolver.resolve(event, context)
    if is_status_change(event):
        return execution_ended(event)
    return direct(event)
