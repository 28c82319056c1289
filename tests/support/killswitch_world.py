"""A deployment for the kill switch to act on: moto in-process (tables, rules, the mission state machine from
`statemachine/mission.asl.json` executing for real, RemediationRole, the client secret) and the Auth0 emulator
over HTTP, with an API for the kill switch's own audience and operator clients holding various scopes.

Shared by the unit and integration tests of the kill switch.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any

import boto3
import httpx
from jose import jwt

from aegis_auth.handoff_table import EXECUTION_ATTRIBUTE, HANDOFF_KEY
from aegis_killswitch import wiring
from aegis_killswitch.report import KillSwitchReport, StepOutcome
from aegis_killswitch.service import KillSwitch, KillSwitchClients
from aegis_killswitch.settings import KillSwitchSettings
from aegis_local.auth0 import (
    CIBA_GRANT,
    CLIENT_CREDENTIALS_GRANT,
    DEFAULT_API_AUDIENCE,
    DEFAULT_CONNECTION,
    DEFAULT_M2M_CLIENT_ID,
    DEFAULT_OPS_API_AUDIENCE,
    REFRESH_TOKEN_GRANT,
    Auth0Emulator,
    ClientConfig,
    ConnectedAccountConfig,
    EmulatorConfig,
    ManualClock,
    UserConfig,
)
from aegis_local.auth0.keys import SigningKey
from tests.support.mission_machine import mission_definition, task_functions
from tests.support.provider_double import forge_hs256_with_public_key, forge_unsigned
from tests.support.stack import create_declared_tables

REGION = "us-east-1"
# The default tenant's kill switch API; the operator clients below hold various scopes on it.
OPS_API_AUDIENCE = DEFAULT_OPS_API_AUDIENCE
OPERATOR_CLIENT = "ks-operator"  # aegis:killswitch and aegis:rearm
TRIGGER_ONLY_CLIENT = "ks-trigger-only"  # aegis:killswitch
NO_SCOPE_CLIENT = "ks-no-scope"  # a grant on the kill switch API with no scope
OTHER_API_CLIENT = "ks-other-api"  # tokens for the remediation API, not for the kill switch
# An application through which approvers hold refresh tokens (the approval application is issued none): what the
# kill switch revokes at Auth0 is every refresh token of the approvers, whichever client holds it.
REFRESH_TOKEN_CLIENT = "ks-approver-app"
APPROVER_POOL = 200
SCHEDULE_RULE = "aegis-scheduled-scan"
SCAN_RULE = "aegis-scan-requested"
REMEDIATION_ROLE = "aegis-remediation"
UNDO_ROLE = "aegis-undo"
REMEDIATION_ROLES = (REMEDIATION_ROLE, UNDO_ROLE)
HANDOFF_TABLE = "aegis-handoff"
STATE_MACHINE = "aegis-mission"
ACCOUNT = "123456789012"  # moto's default account
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def approver(n: int) -> str:
    return f"auth0|ks-approver-{n}"


def emulator_config() -> EmulatorConfig:
    base = EmulatorConfig.default()
    approvers = tuple(
        UserConfig(
            sub=approver(n),
            email=f"ks-approver-{n}@aegis.local",
            connected_accounts=(ConnectedAccountConfig(connection=DEFAULT_CONNECTION, scopes=("sts:Assume",)),),
        )
        for n in range(APPROVER_POOL)
    )
    return EmulatorConfig(
        clients=(
            *base.clients,
            ClientConfig(client_id=REFRESH_TOKEN_CLIENT, grant_types=(CIBA_GRANT, REFRESH_TOKEN_GRANT)),
            ClientConfig(
                client_id=OPERATOR_CLIENT,
                grant_types=(CLIENT_CREDENTIALS_GRANT,),
                api_scopes={OPS_API_AUDIENCE: ("aegis:killswitch", "aegis:rearm")},
            ),
            ClientConfig(
                client_id=TRIGGER_ONLY_CLIENT,
                grant_types=(CLIENT_CREDENTIALS_GRANT,),
                api_scopes={OPS_API_AUDIENCE: ("aegis:killswitch",)},
            ),
            ClientConfig(
                client_id=NO_SCOPE_CLIENT, grant_types=(CLIENT_CREDENTIALS_GRANT,), api_scopes={OPS_API_AUDIENCE: ()}
            ),
            ClientConfig(
                client_id=OTHER_API_CLIENT,
                grant_types=(CLIENT_CREDENTIALS_GRANT,),
                api_scopes={DEFAULT_API_AUDIENCE: ("remediate:approved_change",)},
            ),
        ),
        resource_servers=base.resource_servers,
        users=(*base.users, *approvers),
        connections=base.connections,
        # One second between CIBA polls, so that tests need to move the manual clock only a little.
        ciba_interval_seconds=1,
    )


class ApproverPool:
    """Each test that changes users at Auth0 takes approvers nobody else has touched (the emulator is shared)."""

    def __init__(self) -> None:
        self._numbers = itertools.count()

    def take(self, count: int = 1) -> tuple[str, ...]:
        taken = tuple(approver(next(self._numbers)) for _ in range(count))
        if any(int(sub.rsplit("-", 1)[1]) >= APPROVER_POOL for sub in taken):
            raise RuntimeError("the approver pool is exhausted; raise APPROVER_POOL")
        return taken


class Phone:
    """Obtains real tokens from the emulator over HTTP: an approver's CIBA refresh token, operators' tokens."""

    def __init__(self, emulator: Auth0Emulator, clock: ManualClock) -> None:
        self.emulator = emulator
        self.clock = clock
        self.http = httpx.Client(base_url=emulator.issuer, timeout=5)

    def _form(self, client_id: str, **fields: str) -> dict[str, str]:
        return {"client_id": client_id, "client_secret": self.emulator.client_secret(client_id), **fields}

    def approver_refresh_token(self, sub: str) -> str:
        started = self.http.post(
            "bc-authorize",
            data=self._form(
                REFRESH_TOKEN_CLIENT,
                scope="openid offline_access",
                login_hint=json.dumps({"format": "iss_sub", "iss": self.emulator.issuer, "sub": sub}),
                binding_message="Kill switch test",
                audience=DEFAULT_API_AUDIENCE,
            ),
        )
        assert started.status_code == 200, started.text
        auth_req_id = started.json()["auth_req_id"]
        self.emulator.approve(auth_req_id)
        self.clock.advance(started.json()["interval"])
        tokens = self.http.post(
            "oauth/token", data=self._form(REFRESH_TOKEN_CLIENT, grant_type=CIBA_GRANT, auth_req_id=auth_req_id)
        )
        assert tokens.status_code == 200, tokens.text
        return tokens.json()["refresh_token"]

    def refresh_works(self, refresh_token: str) -> bool:
        response = self.http.post(
            "oauth/token",
            data=self._form(REFRESH_TOKEN_CLIENT, grant_type="refresh_token", refresh_token=refresh_token),
        )
        return response.status_code == 200

    def operator_token(self, client_id: str = OPERATOR_CLIENT, audience: str = OPS_API_AUDIENCE) -> str:
        response = self.http.post(
            "oauth/token", data=self._form(client_id, grant_type=CLIENT_CREDENTIALS_GRANT, audience=audience)
        )
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def operator_claims(self, **claims: Any) -> dict[str, Any]:
        """The claims of an operator's token on the kill switch API, both scopes, valid for ten minutes from now."""
        now = int(time.time())
        return {
            "iss": self.emulator.issuer,
            "sub": f"{OPERATOR_CLIENT}@clients",
            "aud": OPS_API_AUDIENCE,
            "iat": now,
            "exp": now + 600,
            "scope": "aegis:killswitch aegis:rearm",
        } | claims

    def signed_by_tenant(self, **claims: Any) -> str:
        """A token signed with the tenant's real key, for claims the token endpoint would never issue (expired)."""
        return self.emulator.tenant.keys.sign(self._issued_claims(**claims))

    def _issued_claims(self, **claims: Any) -> dict[str, Any]:
        issued = {"iat": int(time.time()) - 60, "gty": "client-credentials"}
        return self.operator_claims(**(issued | claims))

    def foreign_key_token(self, *, reuse_tenant_kid: bool) -> str:
        """Good claims signed by a key the tenant never published (under its own kid, or the tenant's)."""
        stranger = SigningKey.generate("attacker")
        if reuse_tenant_kid:
            stranger = SigningKey(stranger.private_key, self.emulator.signing_kid(), stranger.public_jwk)
        return stranger.sign(self.operator_claims())

    def alg_none_token(self) -> str:
        return forge_unsigned(self._issued_claims(), self.emulator.signing_kid())

    def hs256_confusion_token(self) -> str:
        """HS256 signed with the tenant's public key as the HMAC secret (the classic algorithm confusion)."""
        from cryptography.hazmat.primitives import serialization

        public_pem = self.emulator.tenant.keys.current.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return forge_hs256_with_public_key(self.operator_claims(), self.emulator.signing_kid(), public_pem)

    def close(self) -> None:
        self.http.close()


def unverified_claims(token: str) -> dict[str, Any]:
    return jwt.get_unverified_claims(token)


# A function URL's host: its 32-character URL id, then the region's lambda-url domain.
FUNCTION_URL_DOMAIN = f"abcdefghijklmnopqrstuvwxyz012345.lambda-url.{REGION}.on.aws"
# What the kill switch's handler answers an HTTP event: status, JSON body, headers.
HandlerAnswer = tuple[int, Any, dict[str, str]]


def function_url_event(
    path: str, token: str | None = None, body: str | None = None, method: str = "POST"
) -> dict[str, Any]:
    """A request through the kill switch's function URL, as Lambda delivers it: payload format 2.0 with `routeKey`
    "$default" and no authorizer (the function authenticates the caller itself)."""
    url_id = FUNCTION_URL_DOMAIN.split(".", maxsplit=1)[0]
    headers = {"content-type": "application/json", "host": FUNCTION_URL_DOMAIN}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": url_id,
            "domainName": FUNCTION_URL_DOMAIN,
            "domainPrefix": url_id,
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "curl/8.5.0",
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": "01/Jan/2030:00:00:00 +0000",
            "timeEpoch": 1893456000000,
        },
        "body": body,
        "isBase64Encoded": False,
    }


def handler_answer(app: Any, event: dict[str, Any]) -> HandlerAnswer:
    """Invoke the kill switch's handler (`app`, its loaded Lambda module) with an HTTP event."""
    response = app.handler(event, Context())
    return response["statusCode"], json.loads(response["body"] or "null"), response.get("headers", {})


@dataclass
class Context:
    """The attributes of the Lambda context object that Powertools reads."""

    function_name: str = "aegis-killswitch"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:aegis-killswitch"
    aws_request_id: str = ""

    def __post_init__(self) -> None:
        self.aws_request_id = self.aws_request_id or str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


# --------------------------------------------------------------------------------------------------- AWS


@dataclass
class AwsWorld:
    control: Any
    audit: Any
    events: Any
    sfn: Any
    iam: Any
    secret_arn: str
    handoffs: Any
    # The mission state machine costs ~0.5 s to create (moto parses the ASL): only tests with missions create it.
    _missions_created: bool = False

    @property
    def state_machine_arn(self) -> str:
        return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{STATE_MACHINE}"

    def create_mission_state_machine(self) -> None:
        """The real definition from `statemachine/`, its Lambda tasks pointing at functions that only return."""
        if self._missions_created:
            return
        role = self.iam.create_role(RoleName="aegis-test-states", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))
        definition = mission_definition(task_functions(role["Role"]["Arn"], REGION, prefix="aegis-"))
        created = self.sfn.create_state_machine(name=STATE_MACHINE, definition=definition, roleArn=role["Role"]["Arn"])
        assert created["stateMachineArn"] == self.state_machine_arn
        self._missions_created = True

    def put_handoff(
        self, execution_arn: str, handoff_id: str | None = None, *, change_id: str = "chg-test", digest: str = "0" * 64
    ) -> str:
        """An item shaped like a sealed approval (aegis_auth.handoff), its ciphertext made up: the kill switch
        never opens one."""
        handoff_id = handoff_id or uuid.uuid4().hex
        self.handoffs.put_item(
            Item={
                HANDOFF_KEY: handoff_id,
                "kind": "approval",
                "format": "kms-envelope-aes256gcm/v1",
                "ciphertext": b"\x00" * 64,
                "encrypted_key": b"\x01" * 32,
                EXECUTION_ATTRIBUTE: execution_arn,
                "change_id": change_id,
                "change_digest": digest,
                "approver_sub": "auth0|approver",
                "expires_at": int(time.time()) + 600,
            }
        )
        return handoff_id

    def put_batch_handoffs(self, execution_arn: str, count: int) -> set[str]:
        """What one approval of a batch of `count` changes leaves: a handoff per change, each bound to its own change
        (its id and digest), all of the same execution."""
        return {
            self.put_handoff(
                execution_arn,
                change_id=f"chg-batch-{n:03d}",
                digest=hashlib.sha256(f"{execution_arn}:{n}".encode()).hexdigest(),
            )
            for n in range(count)
        }

    def handoff_ids(self) -> set[str]:
        return {str(item[HANDOFF_KEY]) for item in self.handoffs.scan()["Items"]}

    def execution_arn(self, name: str) -> str:
        return self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"

    def rule_states(self) -> dict[str, str]:
        return {name: self.events.describe_rule(Name=name)["State"] for name in (SCHEDULE_RULE, SCAN_RULE)}

    def start_mission(self, mission_id: str, changes: int = 1) -> str:
        """A mission whose changes are all waiting for approval (the approval Lambda here only returns)."""
        self.create_mission_state_machine()
        payload = {
            "mission_id": mission_id,
            "changes": [{"change_id": f"chg-{mission_id}-{n}", "kind": "test"} for n in range(changes)],
        }
        arn = self.sfn.start_execution(
            stateMachineArn=self.state_machine_arn, name=mission_id, input=json.dumps(payload)
        )["executionArn"]
        wait_until(lambda: len(self.scheduled_tokens(arn)) == changes, what=f"{mission_id} waiting for approval")
        return arn

    def scheduled_tokens(self, execution_arn: str) -> list[str]:
        events = self.sfn.get_execution_history(executionArn=execution_arn)["events"]
        return [
            json.loads(e["taskScheduledEventDetails"]["parameters"])["Payload"]["task_token"]
            for e in events
            if e["type"] == "TaskScheduled" and e["taskScheduledEventDetails"]["resource"].endswith("waitForTaskToken")
        ]

    def status(self, execution_arn: str) -> str:
        return self.sfn.describe_execution(executionArn=execution_arn)["status"]

    def deny_policy(self, role: str = REMEDIATION_ROLE) -> dict[str, Any] | None:
        """The role's AegisDenyOlderSessions policy (None when not attached)."""
        return self.role_policy("AegisDenyOlderSessions", role)

    def halted_policy(self, role: str = REMEDIATION_ROLE) -> dict[str, Any] | None:
        """The role's AegisHalted policy (None when not attached)."""
        return self.role_policy("AegisHalted", role)

    def role_policy(self, name: str, role: str = REMEDIATION_ROLE) -> dict[str, Any] | None:
        try:
            document = self.iam.get_role_policy(RoleName=role, PolicyName=name)
        except self.iam.exceptions.NoSuchEntityException:
            return None
        policy = document["PolicyDocument"]
        return json.loads(policy) if isinstance(policy, str) else policy


def step_of(report: KillSwitchReport, name: str) -> StepOutcome:
    """The one outcome of the step `name` in a trigger's or a re-arm's report."""
    (step,) = [step for step in report.steps if step.step == name]
    return step


def wait_until(condition: Any, *, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def create_aws_world(client_secret: str) -> AwsWorld:
    """In the test's moto account, with Step Functions executing (tests.support.killswitch_fixtures)."""
    # As template.yaml declares them, the handoffs' keys-only index on the execution included.
    tables = create_declared_tables(
        boto3.resource("dynamodb", region_name=REGION),
        {"aegis-audit": "AuditTable", "aegis-control": "ControlTable", HANDOFF_TABLE: "HandoffTable"},
    )
    events = boto3.client("events", region_name=REGION)
    events.put_rule(Name=SCHEDULE_RULE, ScheduleExpression="rate(1 day)", State="ENABLED")
    events.put_rule(
        Name=SCAN_RULE,
        EventPattern=json.dumps({"source": ["aegis.scan"], "detail-type": ["Aegis Scan Requested"]}),
        State="ENABLED",
    )
    iam = boto3.client("iam", region_name=REGION)
    for role in REMEDIATION_ROLES:
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))
    secret_arn = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="aegis/killswitch-client-secret", SecretString=client_secret
    )["ARN"]
    return AwsWorld(
        control=tables["aegis-control"],
        audit=tables["aegis-audit"],
        events=events,
        sfn=boto3.client("stepfunctions", region_name=REGION),
        iam=iam,
        secret_arn=secret_arn,
        handoffs=tables[HANDOFF_TABLE],
    )


def environment(world: AwsWorld, emulator: Auth0Emulator, approvers: tuple[str, ...]) -> dict[str, str]:
    """The kill switch's environment as the template sets it (docs/CONTRACTS.md)."""
    return {
        "POWERTOOLS_SERVICE_NAME": "aegis-killswitch",
        "POWERTOOLS_METRICS_NAMESPACE": "AegisCloud",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "CONTROL_TABLE": world.control.name,
        "AUDIT_TABLE": world.audit.name,
        "STATE_MACHINE_ARN": world.state_machine_arn,
        "SCHEDULE_RULE_NAME": SCHEDULE_RULE,
        "SCAN_RULE_NAME": SCAN_RULE,
        "AUTH0_ISSUER": emulator.issuer,
        "AUTH0_CLIENT_ID": DEFAULT_M2M_CLIENT_ID,
        "AUTH0_CLIENT_SECRET_ARN": world.secret_arn,
        "AUTH0_AUDIENCE": DEFAULT_API_AUDIENCE,
        "CLIENT_AUTH_METHOD": "client_secret_post",
        "APPROVER_SUBS": ",".join(approvers),
        "TOKEN_VAULT_CONNECTION": DEFAULT_CONNECTION,
        "REMEDIATION_ROLE_NAME": REMEDIATION_ROLE,
        "UNDO_ROLE_NAME": UNDO_ROLE,
        "OPS_API_AUDIENCE": OPS_API_AUDIENCE,
        "HANDOFF_TABLE": HANDOFF_TABLE,
    }


def kill_switch_for(world: AwsWorld, settings: KillSwitchSettings) -> KillSwitch:
    """A KillSwitch on the moto clients of `world`, reaching the emulator through the function's own Management
    client."""
    clients = KillSwitchClients(
        control_table=world.control,
        audit_table=world.audit,
        events=world.events,
        stepfunctions=world.sfn,
        iam=world.iam,
        auth0_management=partial(wiring.auth0_management, settings),
        handoff_table=world.handoffs,
    )
    return KillSwitch(settings, clients)
