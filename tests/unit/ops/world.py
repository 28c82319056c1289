"""The ops function's world for its tests: the Missions, Audit and Control tables exactly as template.yaml declares
them (moto, in process), missions and reports written by the agent's own MissionStore, audit records by the layer's
AuditLog, and callers' access tokens: real RS256 JWTs signed by a test key whose issuer serves its discovery document
and JWKS over a real HTTP server on 127.0.0.1. Requests reach `functions/ops/app.py`'s handler as API Gateway's
payload 2.0 events."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import boto3

from aegis.audit import AuditLog
from aegis.catalogue import ChangeBase
from aegis.missions_keys import latest_findings_key
from aegis.models import ChangeResult, Decision, Finding, Outcome
from aegis_agent.missions import MissionStatus, MissionStore
from aegis_agent.plan import make_plan
from aegis_agent.report import build_report
from aegis_agent.state import MissionRequest, PlanPolicy, Trigger, Verification, VerifiedState
from tests.support.agent_world import ACCOUNT, REGION, propose
from tests.support.lambda_app import load_app
from tests.support.loopback_server import LoopbackServer, QuietHandler
from tests.support.provider_double import RsaKey
from tests.support.stack import create_declared_table

AUDIENCE = "https://aegis.example.test/ops"
OPERATOR = "auth0|operator"
ALL_SCOPES = "aegis:read aegis:audit aegis:scan aegis:undo aegis:killswitch aegis:rearm"
POLICY = PlanPolicy(max_changes_per_mission=10, max_share_per_resource_type=1.0)
EXECUTION_PREFIX = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:aegis-mission:"


class Issuer:
    """An OpenID provider on 127.0.0.1 that publishes discovery and the JWKS of its signing key, and signs tokens."""

    def __init__(self) -> None:
        self.key = RsaKey.generate()
        issuer = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    body: dict[str, Any] = {
                        "issuer": issuer.issuer,
                        "jwks_uri": f"{issuer.server.url}/.well-known/jwks.json",
                        "token_endpoint": f"{issuer.server.url}/oauth/token",
                    }
                elif self.path == "/.well-known/jwks.json":
                    body = {"keys": [issuer.key.public_jwk()]}
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = LoopbackServer(Handler)
        self.issuer = f"{self.server.url}/"

    def token(self, scope: str | None = ALL_SCOPES, key: RsaKey | None = None, **overrides: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": OPERATOR,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 300,
            "scope": scope,
            "email": "operator@example.test",
        }
        claims.update(overrides)
        return (key or self.key).sign({k: v for k, v in claims.items() if v is not None})

    def close(self) -> None:
        self.server.close()


@dataclass
class LambdaContext:
    aws_request_id: str = "0a1b2c3d-4e5f-4061-8293-a4b5c6d7e8f9"
    function_name: str = "aegis-ops"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:aegis-ops"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


def http_event(
    method: str, path: str, *, token: str | None, query: dict[str, str] | None = None, body: Any = None
) -> dict[str, Any]:
    """An HTTP API payload 2.0 event for `method path`, as API Gateway sends it (the route key is the catch-all, so
    that the function's own routing is what the test exercises)."""
    headers = {"content-type": "application/json", "host": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "a1b2c3d4e5",
            "domainName": "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9"},
            "requestId": "req-1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Mar/2026:12:00:00 +0000",
            "timeEpoch": 1772366400000,
        },
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = query
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    return event


@dataclass
class OpsWorld:
    session: boto3.Session
    issuer: Issuer
    app: Any
    missions: Any
    audit: Any
    control: Any
    put_events: list[dict[str, Any]] = field(default_factory=list)
    clock: datetime = field(default_factory=lambda: datetime(2026, 3, 1, 12, 0, tzinfo=UTC))

    @property
    def store(self) -> MissionStore:
        return MissionStore(self.missions)

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = "operator",
        query: dict[str, str] | None = None,
        body: Any = None,
    ) -> Answer:
        bearer = self.issuer.token() if token == "operator" else token
        answer = self.app.handler(http_event(method, path, token=bearer, query=query, body=body), LambdaContext())
        headers = {k.lower(): v for k, v in (answer.get("headers") or {}).items()}
        return Answer(int(answer["statusCode"]), headers, str(answer.get("body") or ""))

    # --- what the agent and the other functions leave in the tables --------------------------------------------
    def mission(self, event_id: str, *, minutes: int = 0, check_ids: tuple[str, ...] | None = None) -> str:
        """A mission item as the agent creates it, `minutes` after the world's clock."""
        request = self.request(event_id, minutes=minutes, check_ids=check_ids)
        self.store.create(request, self.clock + timedelta(minutes=minutes))
        return request.mission_id

    def request(self, event_id: str, *, minutes: int = 0, check_ids: tuple[str, ...] | None = None) -> MissionRequest:
        from aegis.missions_keys import mission_id_for_event

        return MissionRequest(
            mission_id=mission_id_for_event(event_id),
            trigger=Trigger.CUSTOM,
            regions=(REGION,),
            check_ids=check_ids,
            policy=POLICY,
            requested_at=(self.clock + timedelta(minutes=minutes)).isoformat(),
        )

    def completed_mission(
        self,
        event_id: str,
        findings: list[Finding],
        *,
        minutes: int = 0,
        applied: bool = True,
        fixed: bool = True,
    ) -> tuple[str, list[ChangeBase]]:
        """A mission that ran to its end: its item, its report (every change approved and applied, or denied), the
        approval and executor audit records, and the latest-findings items of its checks."""
        request = self.request(event_id, minutes=minutes)
        now = self.clock + timedelta(minutes=minutes)
        self.store.create(request, now)
        plan = make_plan(findings, POLICY, propose)
        results = [
            ChangeResult(
                change_id=change.change_id,
                decision=Decision.APPROVED if applied else Decision.DENIED,
                outcome=Outcome.APPLIED if applied else Outcome.SKIPPED,
            )
            for change in plan.changes
        ]
        verification = [
            Verification(
                change_id=change.change_id,
                check_id=change.check_id,
                resource_arn=change.resource_arn,
                state=VerifiedState.FIXED if (applied and fixed) else VerifiedState.STILL_FAILING,
            )
            for change in plan.changes
        ]
        report = build_report(
            request=request,
            account_id=ACCOUNT,
            findings=findings,
            plan=plan,
            scan_errors=[],
            withheld=[],
            results=results,
            verification=verification,
            finished_at=(now + timedelta(minutes=5)).isoformat(),
            status="completed",
        )
        pages, digest = self.store.write_report(report)
        self.store.update(request.mission_id, MissionStatus.COMPLETED, now, report_pages=pages, report_digest=digest)
        for change in plan.changes:
            self.approval_requested(request.mission_id, change)
            self.approval_decided(request.mission_id, change, "approved" if applied else "denied")
            if applied:
                self.applied(request.mission_id, change)
        self.store.record_latest_findings(request, sorted({f.check_id for f in findings}), report.finished_at)
        return request.mission_id, list(plan.changes)

    def approval_requested(self, mission_id: str, change: ChangeBase, *, expires_in: int = 300) -> None:
        expires_at = (datetime.now(UTC) + timedelta(seconds=expires_in)).isoformat().replace("+00:00", "Z")
        AuditLog(self.audit, "approval").append(
            mission_id,
            "approval.requested",
            "requested",
            change_id=change.change_id,
            change_digest=change.digest,
            approver_sub="auth0|approver",
            execution_arn=EXECUTION_PREFIX + mission_id,
            expires_at=expires_at,
            binding_message=change.binding_message(),
            before_text=change.describe_before(),
            after_text=change.describe_after(),
        )

    def approval_decided(self, mission_id: str, change: ChangeBase, decision: str) -> None:
        AuditLog(self.audit, "approval").append(
            mission_id,
            "approval.decided",
            decision,
            change_id=change.change_id,
            change_digest=change.digest,
            approver_sub="auth0|approver",
            execution_arn=EXECUTION_PREFIX + mission_id,
        )

    def applied(self, mission_id: str, change: ChangeBase, *, account: str = ACCOUNT) -> None:
        """The executor's record of applying `change` (the one an undo must name)."""
        AuditLog(self.audit, "executor").append(
            mission_id,
            "executor.applied",
            "applied",
            change_id=change.change_id,
            execution_arn=f"arn:aws:states:{REGION}:{account}:execution:aegis-mission:{mission_id}",
            digest=change.digest,
            approver_sub="auth0|approver",
        )

    def latest_findings_item(self, check_id: str) -> dict[str, Any] | None:
        return self.missions.get_item(Key={"mission_id": latest_findings_key(check_id)}).get("Item")


def build_world(session: boto3.Session, issuer: Issuer) -> OpsWorld:
    """The tables, then the handler module loaded as a cold container would (its environment already set)."""
    dynamodb = session.resource("dynamodb")
    tables = {
        logical: create_declared_table(dynamodb, logical, name)
        for logical, name in (("MissionsTable", "Missions"), ("AuditTable", "Audit"), ("ControlTable", "Control"))
    }
    app = load_app("ops")
    return OpsWorld(
        session=session,
        issuer=issuer,
        app=app,
        missions=tables["MissionsTable"],
        audit=tables["AuditTable"],
        control=tables["ControlTable"],
    )
