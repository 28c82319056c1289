"""The ops API: the operators' HTTP API (an API Gateway HTTP API with a JWT authorizer in front), routed with
Powertools' APIGatewayHttpResolver. Every route verifies the caller's bearer token again (`aegis_jwt.callers`, the
kill switch's code) and checks its own scope in that token, whatever the gateway checked: defence in depth, and
the scopes acted on come from a token this function verified. The logic lives in `aegis_ops`; this file only routes.

    GET  /missions                      aegis:read   newest first, paged (limit, next)
    GET  /missions?org_scan=org-...     aegis:read   an organization scan: its item, every account, totals
    GET  /missions/{id}                 aegis:read   findings, changes with before/after, outcomes, timeline
    GET  /missions/{id}/report.html     aegis:read   the self-contained report page
    GET  /findings[?cis=v7]             aegis:read   the latest state of every CIS control
    GET  /approvals/pending             aegis:read   what each waiting approver's phone shows
    GET  /audit                         aegis:audit  mission= | change= | action=, since=, paged
    POST /scans                         aegis:scan   {dry_run, regions?, checks?, organization?} -> 202
                                                     {event_id, mission_id} (or org_scan_id for an organization scan)
    POST /changes/{id}/undo             aegis:undo   -> 202 {change_id, event_id, mission_id}, or 409 with a reason
    GET  /me                            any valid token: the caller's subject, scopes and safe claims

401 `{"message": "Unauthorized"}` and 403 `{"message": "Forbidden"}` as the gateway answers; 400 for bad input, 404
for an unknown mission, 409 for a refused request, each with a message naming the rule. The role reads only
(Missions, Audit, Control) and may put only the aegis.scan and aegis.undo events.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from aegis_jwt.callers import Caller, CallerVerifier
from aegis_jwt.errors import Forbidden, Unauthenticated
from aegis_ops import approvals, audit_trail, findings, me, missions, scans, undo, wiring
from aegis_ops.errors import BadRequest, DocumentInvalid, EventNotAccepted, NotFound, Refused
from aegis_ops.halt import refuse_while_halted
from aegis_ops.scopes import AUDIT, READ, SCAN, UNDO

logger = Logger()
# Patch only what this function talks through, AWS (botocore) and the identity provider (httpx): X-Ray's patch_all
# would import and patch every library it supports that is installed on each cold start.
tracer = Tracer(patch_modules=("botocore", "httpx"))
metrics = Metrics()
app = APIGatewayHttpResolver()

# The page is self-contained (inline style, no script, no request of its own).
REPORT_PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


@cache
def dependencies() -> wiring.OpsDependencies:
    return wiring.build_dependencies()


@cache
def caller_verifier() -> CallerVerifier:
    return wiring.build_caller_verifier()


def _authorized(scope: str) -> Caller:
    # First thing in every route: an anonymous caller learns nothing, not even about the route's parameters.
    return caller_verifier().authorize(app.current_event.headers, scope)


def _query(name: str) -> str | None:
    return app.current_event.get_query_string_value(name, None)


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body),
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


# --------------------------------------------------------------------------------------------------- routes


@app.get("/missions")
def list_missions() -> Response:
    _authorized(READ)
    org_scan = _query("org_scan")
    if org_scan is not None:
        return _json(
            200,
            missions.org_scan_missions(dependencies().missions, org_scan, limit=_query("limit"), cursor=_query("next")),
        )
    return _json(200, missions.list_missions(dependencies().missions, limit=_query("limit"), cursor=_query("next")))


@app.get("/missions/<mission_id>")
def get_mission(mission_id: str) -> Response:
    _authorized(READ)
    deps = dependencies()
    return _json(200, missions.mission_detail(deps.missions, deps.audit, mission_id))


@app.get("/missions/<mission_id>/report.html")
def get_mission_report(mission_id: str) -> Response:
    _authorized(READ)
    deps = dependencies()
    return Response(
        status_code=200,
        content_type="text/html; charset=utf-8",
        body=missions.mission_report_html(deps.missions, deps.audit, mission_id),
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": REPORT_PAGE_POLICY,
            "X-Content-Type-Options": "nosniff",
        },
    )


@app.get("/findings")
def get_findings() -> Response:
    _authorized(READ)
    deps = dependencies()
    version = findings.requested_cis_version(_query("cis"), deps.settings.cis_version)
    return _json(200, findings.latest_findings(deps.dynamodb, deps.settings.missions_table, version))


@app.get("/approvals/pending")
def get_pending_approvals() -> Response:
    _authorized(READ)
    deps = dependencies()
    window = deps.settings.approval_timeout_seconds
    return _json(200, approvals.pending_approvals(deps.audit, window, lambda: datetime.now(UTC)))


@app.get("/audit")
def get_audit() -> Response:
    _authorized(AUDIT)
    page = audit_trail.read_audit(
        dependencies().audit,
        mission=_query("mission"),
        change=_query("change"),
        action=_query("action"),
        since=_query("since"),
        limit=_query("limit"),
        cursor=_query("next"),
    )
    return _json(200, page)


@app.post("/scans")
def post_scan() -> Response:
    caller = _authorized(SCAN)
    request = scans.parse_scan_request(app.current_event.decoded_body)
    deps = dependencies()
    refuse_while_halted(deps.control)
    requested = scans.request_scan(deps.events, deps.settings.event_bus_name, request)
    logger.info("scan requested", extra={"requested_by": caller.sub, **requested})
    metrics.add_metric(name="ScansRequested", unit=MetricUnit.Count, value=1)
    return _json(202, requested)


@app.post("/changes/<change_id>/undo")
def post_undo(change_id: str) -> Response:
    caller = _authorized(UNDO)
    undo.require_change_id(change_id)
    deps = dependencies()
    refuse_while_halted(deps.control)
    requested = undo.request_undo(
        deps.audit,
        deps.events,
        change_id,
        caller.sub,
        account_id=deps.settings.account_id,
        undo_enabled=deps.settings.undo_enabled,
        bus_name=deps.settings.event_bus_name,
    )
    logger.info("undo requested", extra={"requested_by": caller.sub, **requested})
    metrics.add_metric(name="UndosRequested", unit=MetricUnit.Count, value=1)
    return _json(202, requested)


@app.get("/me")
def get_me() -> Response:
    caller = caller_verifier().authenticate(app.current_event.headers)
    return _json(200, me.describe_caller(caller))


# --------------------------------------------------------------------------------------------------- errors


@app.exception_handler(Unauthenticated)
def _unauthenticated(error: Unauthenticated) -> Response:
    metrics.add_metric(name="OpsCallsRefused", unit=MetricUnit.Count, value=1)
    logger.warning("ops call refused: unauthenticated", extra={"why": str(error)})
    return _json(401, {"message": "Unauthorized"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'})


@app.exception_handler(Forbidden)
def _forbidden(error: Forbidden) -> Response:
    metrics.add_metric(name="OpsCallsRefused", unit=MetricUnit.Count, value=1)
    logger.warning("ops call refused: missing scope", extra={"required_scope": error.required_scope})
    return _json(
        403,
        {"message": "Forbidden"},
        {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{error.required_scope}"'},
    )


@app.exception_handler(BadRequest)
def _bad_request(error: BadRequest) -> Response:
    return _json(400, {"message": str(error)})


@app.exception_handler(NotFound)
def _not_found(error: NotFound) -> Response:
    return _json(404, {"message": str(error)})


@app.exception_handler(Refused)
def _refused(error: Refused) -> Response:
    return _json(409, {"message": str(error), "reason": error.reason})


@app.exception_handler(DocumentInvalid)
def _document_invalid(error: DocumentInvalid) -> Response:
    logger.error("stored document invalid", extra={"why": str(error)})
    return _json(500, {"message": str(error)})


@app.exception_handler(EventNotAccepted)
def _event_not_accepted(error: EventNotAccepted) -> Response:
    logger.error("event not accepted", extra={"why": str(error)})
    return _json(502, {"message": str(error)})


# --------------------------------------------------------------------------------------------------- entry point


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
