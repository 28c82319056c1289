"""`LocalStack`: the project's own `sam local`, without containers.

One context manager starts everything on 127.0.0.1:

1. the Auth0 emulator (a real HTTP server; its base URL is the issuer);
2. moto's `ThreadedMotoServer` on a free port, configured through `POST /moto-api/config` *before* any resource
   exists: Step Functions executes state machines, Lambda uses the no-Docker backend;
3. every resource of `template.yaml`, created through the moto server's AWS APIs by `aegis_local.aws.resources`
   (parameters: the template's defaults, overridden by the local values — issuer, the client ids of the approval
   application and of the kill switch's M2M client, the audiences of the remediation and kill switch APIs, the ARNs
   of the secrets that hold those clients' secrets — and then by the caller's own);
4. the routing of every Lambda invocation to the in-process handler of the template's function of that name
   (`aegis_local.aws.lambdas`), EventBridge's delivery to Lambda targets (`aegis_local.aws.eventbridge`), the
   DynamoDB stream deliveries of the functions' `DynamoDB` events (`aegis_local.aws.streams`), and the corrections
   to moto's Step Functions interpreter the mission needs (`aegis_local.aws.moto_fixes`);
5. the template's function URLs (`aegis_local.aws.function_urls`) and HTTP APIs (`aegis_local.aws.http_api`: routes,
   JWT authorizer and CORS of each `AWS::Serverless::HttpApi`), each on its own 127.0.0.1 port;
6. the Bedrock runtime emulator (`aegis_local.bedrock`: Converse, which moto does not implement), always (it is cheap):
   the functions reach it through `AWS_ENDPOINT_URL_BEDROCK_RUNTIME`, every other service stays on moto.

The process gets `AWS_ENDPOINT_URL` (the moto server), fake credentials, the region and `MOTO_PORT` while the
stack runs, so that boto3 clients anywhere in the process — the handlers', the tests', the CLI's — talk to moto.
Everything is restored by `stop()`. moto keeps its state per process, so one stack runs per process at a time.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import threading
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import boto3

from aegis_local.aws.eventbridge import EventBridgeDelivery
from aegis_local.aws.function_urls import FunctionUrlGateway
from aegis_local.aws.http_api import HttpApi, HttpApiGateway
from aegis_local.aws.lambdas import FaultHooks, FunctionEnvironment, FunctionSpec, LambdaRouter, MotoLambdaBridge
from aegis_local.aws.moto_dispatch import MotoDispatchFix
from aegis_local.aws.moto_fixes import (
    DynamoDBAtomicItemsFix,
    S3BucketPolicyFix,
    S3ControlEndpointFix,
    StepFunctionsFixes,
)
from aegis_local.aws.moto_sts import MotoStsFix
from aegis_local.aws.organization import LocalOrganization, OrganizationSpec
from aegis_local.aws.resources import CreatedStack, StackIdentity, create_stack, resolve_parameters
from aegis_local.aws.streams import StreamDelivery
from aegis_local.aws.template import load_template
from aegis_local.bedrock import BedrockEmulator

__all__ = [
    "DEFAULT_REGION",
    "DEFAULT_STACK_NAME",
    "LOCAL_ACCOUNT_ID",
    "LocalStack",
    "StackEndpoints",
    "StackNotRunning",
    "default_template_path",
]

logger = logging.getLogger(__name__)

DEFAULT_STACK_NAME = "aegis-local"
DEFAULT_REGION = "us-east-1"
# moto's default account: every ARN the local stack prints carries it.
LOCAL_ACCOUNT_ID = "123456789012"
FAKE_ACCESS_KEY_ID = "testing"
FAKE_SECRET_ACCESS_KEY = "testing"
MOTO_CONFIG: dict[str, Any] = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
# The emulator has no TLS; these parameters' https:// pattern also accepts http://127.0.0.1:<port>/.
LOOPBACK_HTTP_PARAMETERS = frozenset({"Auth0Issuer"})
# The local console's origin (aegis_local.console.server): loopback http on a port of its own.
LOOPBACK_ORIGIN = re.compile(r"http://127\.0\.0\.1:[0-9]{1,5}")
REVIEW_URL_VARIABLE = "APPROVAL_REVIEW_URL_BASE"
# The scan request the template's custom rule expects (docs/ARCHITECTURE.md, "The flow": source aegis.scan).
SCAN_EVENT_SOURCE = "aegis.scan"
# botocore's endpoint variable of the bedrock-runtime client (AWS_ENDPOINT_URL_<SERVICE>, `-` as `_`).
BEDROCK_ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"


class StackNotRunning(RuntimeError):
    """The local stack was used before `start()` or after `stop()`."""


def _while_running[T](part: T | None) -> T:
    """A part of the stack that exists only while it runs."""
    if part is None:
        raise StackNotRunning("start the local stack first")
    return part


def default_template_path() -> Path:
    """`template.yaml` of the checkout this package is installed from (local/aegis_local/aws/ -> project root)."""
    return Path(__file__).resolve().parents[3] / "template.yaml"


@dataclass(frozen=True)
class StackEndpoints:
    """Where everything listens."""

    moto_url: str
    region: str
    account_id: str
    issuer: str | None = None
    guardian_url: str | None = None
    bedrock_url: str | None = None

    def as_dict(self) -> dict[str, str]:
        found = {
            "moto": self.moto_url,
            "region": self.region,
            "account": self.account_id,
            "issuer": self.issuer,
            "guardian": self.guardian_url,
            "bedrock": self.bedrock_url,
        }
        return {key: value for key, value in found.items() if value is not None}


class LocalStack:
    """The whole application on loopback. Use as a context manager, or `start()` / `stop()`."""

    _running_lock = threading.Lock()
    _running: LocalStack | None = None

    def __init__(
        self,
        *,
        template_path: str | Path | None = None,
        stack_name: str = DEFAULT_STACK_NAME,
        region: str = DEFAULT_REGION,
        parameters: Mapping[str, str] | None = None,
        auth0: bool = True,
        emulator_config: Any = None,
        moto_port: int = 0,
        secrets: Mapping[str, str] | None = None,
        console_origins: Sequence[str] = (),
        review_url_base: str | None = None,
        organization: OrganizationSpec | None = None,
    ) -> None:
        """`parameters` override the local values of template parameters. `auth0=False` starts no emulator
        (then the Auth0 parameters must come from `parameters`, and `secrets` maps the template's secret-ARN
        parameters, e.g. `ApprovalAuth0ClientSecretArn`, to the external provider's client secrets: the stack stores
        each in its Secrets Manager and passes that secret's ARN, as an operator does before `sam deploy`).
        `emulator_config` is an `aegis_local.auth0.EmulatorConfig` (default: `EmulatorConfig.default()`).
        `console_origins` are the browser origins the HTTP APIs' CORS must allow (the template's `ConsoleOrigins`
        parameter), e.g. the local console's `http://127.0.0.1:<port>`. `review_url_base` is where approvers review
        a batch (the functions' APPROVAL_REVIEW_URL_BASE); by default the local console's URL when ConsoleOrigins
        names exactly one loopback origin, else none. `organization` puts the security account at the head of a
        local AWS Organization (`aegis_local.aws.organization`): its member accounts, their member/template.yaml
        roles, and the stack's OrganizationId parameter."""
        if secrets and auth0:
            raise ValueError("secrets are for an external provider (auth0=False); the emulator's are its own")
        self.template_path = Path(template_path) if template_path is not None else default_template_path()
        self.identity = StackIdentity(stack_name=stack_name, region=region, account_id=LOCAL_ACCOUNT_ID)
        self._parameter_overrides = dict(parameters or {})
        self._with_auth0 = auth0
        self._emulator_config = emulator_config
        self._moto_port = moto_port
        self._external_secrets = dict(secrets or {})
        self._console_origins = [origin.rstrip("/") for origin in console_origins]
        self._review_url = review_url_base
        self._server: Any = None
        self._emulator: Any = None
        self._bedrock: BedrockEmulator | None = None
        self._router: LambdaRouter | None = None
        self._created: CreatedStack | None = None
        self._endpoints: StackEndpoints | None = None
        self._saved_environment: dict[str, str | None] = {}
        self._session: boto3.Session | None = None
        self._started_in: float | None = None
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._function_urls: FunctionUrlGateway | None = None
        self._http_apis: HttpApiGateway | None = None
        self._streams: StreamDelivery | None = None
        self._organization_spec = organization
        self._organization: LocalOrganization | None = None

    # -- lifecycle ------------------------------------------------------------------------------------

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> Self:
        with LocalStack._running_lock:
            if LocalStack._running is not None:
                raise RuntimeError("a LocalStack is already running in this process (moto's state is per process)")
            LocalStack._running = self
        began = time.monotonic()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self._started_in = time.monotonic() - began
        return self

    def _start(self) -> None:
        from moto.server import ThreadedMotoServer

        warm_up = threading.Thread(target=_warm_up_moto, name="aegis-local-warm-up", daemon=True)
        warm_up.start()
        template = load_template(self.template_path)
        bedrock_url = self._start_bedrock()
        issuer: str | None = None
        if self._with_auth0:
            from aegis_local.auth0 import Auth0Emulator, EmulatorConfig

            config = self._emulator_config if self._emulator_config is not None else EmulatorConfig.default()
            self._emulator = Auth0Emulator(config)
            issuer = self._emulator.start()

        # The server logs every request through werkzeug; the stack's own output says what matters.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self._moto_port, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        moto_url = f"http://{host}:{port}"
        self._apply_process_environment(moto_url, port)
        S3ControlEndpointFix.install(moto_url)
        self._configure_moto(moto_url)
        self._endpoints = StackEndpoints(
            moto_url=moto_url,
            region=self.identity.region,
            account_id=self.identity.account_id,
            issuer=issuer,
            guardian_url=f"{issuer}__guardian/" if issuer else None,
            bedrock_url=bedrock_url,
        )
        self._session = boto3.Session(
            aws_access_key_id=FAKE_ACCESS_KEY_ID,
            aws_secret_access_key=FAKE_SECRET_ACCESS_KEY,
            region_name=self.identity.region,
        )
        self._install_function_runtime()
        # Cross-account AssumeRole answers as on AWS (the role must exist and trust the caller): from the start, so
        # that nothing of the stack ever holds credentials moto alone would have issued.
        MotoStsFix.install()

        local_values = self._local_parameter_values(template) if self._emulator is not None else {}
        for parameter, secret in self._external_secrets.items():
            if parameter not in self._parameter_overrides:
                local_values[parameter] = self._create_client_secret(
                    secret,
                    description=f"{parameter}: a client secret of the external provider",
                    name=f"external/{parameter}",
                )
        declared = template.get("Parameters") or {}
        if self._console_origins:
            if "ConsoleOrigins" not in declared:
                raise ValueError("console_origins given, but the template declares no ConsoleOrigins parameter")
            local_values["ConsoleOrigins"] = ",".join(self._console_origins)
        local_values.update(self._create_organization(declared))
        values = {name: value for name, value in local_values.items() if name in declared}
        values.update(self._parameter_overrides)
        parameters = resolve_parameters(template, values, loopback_http=LOOPBACK_HTTP_PARAMETERS)
        template = with_review_url_base(template, self._review_url_base(values))
        self._function_urls = FunctionUrlGateway(lambda: self._router, self.identity.account_id, self.identity.region)
        self._http_apis = HttpApiGateway(lambda: self._router, self.identity.account_id)
        self._created = create_stack(
            template,
            self.template_path.parent,
            parameters,
            self.identity,
            self.client,
            serve_function_url=self._function_urls.serve,
            serve_http_api=self._http_apis.serve,
        )
        if self._organization is not None:
            self._organization.deploy_members(self._created.parameters, security_roles=self._role_arns())
        self._router = LambdaRouter(self._created.functions, runtime_environment=self._runtime_environment())
        self._share_common_function_environment(self._created.functions)
        MotoLambdaBridge.install(self._router)
        EventBridgeDelivery.install(self._router)
        StepFunctionsFixes.install()
        S3BucketPolicyFix.install()
        _clear_layer_caches()
        self._streams = StreamDelivery(self._created.stream_mappings, self._router, self.client)
        self._streams.start()

    @staticmethod
    def _install_function_runtime() -> None:
        """Per-thread function environments, and (before any function makes a client) the inert hooks of injected
        faults on every client (aegis_local.aws.lambdas.faults); both undone by `stop`."""
        FunctionEnvironment.install()
        FaultHooks.install()

    def stop(self) -> None:
        """Stop everything this stack started and restore the process environment. Safe to call twice."""
        if self._streams is not None:
            self._streams.stop()
            self._streams = None
        router = self._router
        if router is not None:
            MotoLambdaBridge.uninstall(router)
            EventBridgeDelivery.uninstall(router)
            StepFunctionsFixes.uninstall()
            S3BucketPolicyFix.uninstall()
            router.wait_idle(timeout=2.0)
            router.close()
        if self._function_urls is not None:
            self._function_urls.close()
            self._function_urls = None
        if self._http_apis is not None:
            self._http_apis.close()
            self._http_apis = None
        if self._server is not None:
            if self._endpoints is not None:
                _post_json(f"{self._endpoints.moto_url}/moto-api/reset", None, allow_failure=True)
            self._server.stop()
        if self._emulator is not None:
            self._emulator.stop()
        if self._bedrock is not None:
            self._bedrock.stop()
            self._bedrock = None
        if self._session is not None:
            FunctionEnvironment.uninstall()
            FaultHooks.uninstall()
        S3ControlEndpointFix.uninstall()
        MotoDispatchFix.uninstall()
        DynamoDBAtomicItemsFix.uninstall()
        MotoStsFix.uninstall()
        self._restore_process_environment()
        _clear_layer_caches()
        self._server = self._emulator = self._router = self._created = self._endpoints = self._session = None
        self._organization = None
        self._clients = {}
        with LocalStack._running_lock:
            if LocalStack._running is self:
                LocalStack._running = None

    # -- what the stack offers ------------------------------------------------------------------------

    @property
    def endpoints(self) -> StackEndpoints:
        return _while_running(self._endpoints)

    @property
    def resources(self) -> CreatedStack:
        return _while_running(self._created)

    @property
    def lambdas(self) -> LambdaRouter:
        return _while_running(self._router)

    @property
    def streams(self) -> StreamDelivery:
        return _while_running(self._streams)

    def drain_streams(self, timeout: float = 10.0) -> bool:
        """Wait until the stream consumers (the audit chain, notifications) have handled every record written so
        far; True if they did within `timeout` seconds."""
        return self.streams.drain(timeout)

    @property
    def emulator(self) -> Any:
        """The running `Auth0Emulator` (None when started with `auth0=False`)."""
        self.endpoints  # noqa: B018 - raises when not running
        return self._emulator

    @property
    def bedrock(self) -> BedrockEmulator:
        """The running Bedrock runtime emulator (`.url`, `.calls()`, `.reset()`, `.failing_delay_seconds`)."""
        return _while_running(self._bedrock)

    @property
    def outputs(self) -> dict[str, Any]:
        return dict(self.resources.outputs)

    @property
    def organization(self) -> LocalOrganization:
        """The local organization the stack heads (raises LookupError when started without one)."""
        self.endpoints  # noqa: B018 - raises when not running
        if self._organization is None:
            raise LookupError("this stack was started without an organization (LocalStack(organization=...))")
        return self._organization

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self.resources.parameters)

    @property
    def startup_seconds(self) -> float | None:
        return self._started_in

    def session(self) -> boto3.Session:
        """A boto3 Session with the stack's fake credentials and region (clients still need `endpoint_url`, or
        rely on AWS_ENDPOINT_URL, which is set while the stack runs)."""
        return _while_running(self._session)

    def client(self, service: str) -> Any:
        """A boto3 client of the moto server (cached per service; boto3 clients are thread-safe)."""
        with self._clients_lock:
            client = self._clients.get(service)
            if client is None:
                client = self.session().client(service, endpoint_url=self.endpoints.moto_url)
                self._clients[service] = client
        return client

    def physical_id(self, logical_id: str) -> Any:
        """What `!Ref <logical_id>` resolves to on this stack (table name, function name, state machine ARN...)."""
        return self.resources.ref(logical_id)

    def function(self, logical_id: str) -> FunctionSpec:
        return self.lambdas.spec(logical_id)

    def state_machine_arn(self, logical_id: str | None = None) -> str:
        """The ARN of the template's state machine `logical_id`; without one, the mission state machine (the
        organization scan's is asked for by name)."""
        machines = [
            r
            for r in self.resources.resources.values()
            if r.resource_type in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine")
        ]
        if logical_id is None and len(machines) > 1:
            logical_id = "MissionStateMachine"
        if logical_id is not None:
            machines = [r for r in machines if r.logical_id == logical_id]
        if len(machines) != 1:
            raise LookupError(f"expected one state machine, found {[r.logical_id for r in machines]}")
        return str(machines[0].attributes["Arn"])

    def preload_handlers(self) -> dict[str, str]:
        """Import every function's handler now, in its own environment (a cold start ahead of the first invoke).

        Returns the functions whose handler cannot load, with the error their first invocation would report.
        """
        problems: dict[str, str] = {}
        for spec in self.lambdas.specs:
            error = self.lambdas.preload(spec.logical_id)
            if error is not None:
                problems[spec.logical_id] = error
        return problems

    def function_urls(self) -> dict[str, str]:
        """Logical id of each function with a URL -> its local URL (served on 127.0.0.1 by the stack)."""
        served = _while_running(self._function_urls).urls
        return {
            spec.logical_id: served[spec.function_name] for spec in self.lambdas.specs if spec.function_name in served
        }

    def http_api_url(self, logical_id: str = "OpsApi") -> str:
        """The local URL of the template's HttpApi `logical_id`, without a trailing slash (like its `ApiEndpoint`):
        append a route's path, e.g. `stack.http_api_url() + "/missions"`."""
        served = self.http_api_urls()
        if logical_id not in served:
            raise LookupError(f"{logical_id} is not an HttpApi of this stack (it has {sorted(served)})")
        return served[logical_id]

    def http_api_urls(self) -> dict[str, str]:
        """Logical id of each HttpApi -> its local URL (without a trailing slash)."""
        return {logical_id: url.rstrip("/") for logical_id, url in _while_running(self._http_apis).urls.items()}

    def http_apis(self) -> dict[str, HttpApi]:
        """Logical id of each HttpApi -> its definition as served (authorizers, CORS, routes from the events)."""
        return _while_running(self._http_apis).apis

    def issued_aws_credentials(self) -> list[str]:
        """Every temporary AWS credential moto's STS issued in this stack (access key id, secret access key and
        session token of each session, e.g. the executor's RemediationRole sessions), for the leak audit."""
        self.endpoints  # noqa: B018 - raises when not running
        from moto.sts.models import sts_backends

        values: list[str] = []
        for partitions in list(sts_backends.values()):
            for backend in list(partitions.values()):
                for role in list(backend.assumed_roles):
                    values += [role.access_key_id, role.secret_access_key, role.session_token]
        return values

    def table_names(self) -> dict[str, str]:
        return {
            r.logical_id: str(r.ref)
            for r in self.resources.resources.values()
            if r.resource_type in ("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable")
        }

    def rules(self) -> dict[str, dict[str, Any]]:
        """The template's EventBridge rules as EventBridge describes them now (name, state, schedule, pattern)."""
        events = self.client("events")
        found: dict[str, dict[str, Any]] = {}
        for resource in self.resources.of_type("AWS::Events::Rule"):
            found[resource.logical_id] = events.describe_rule(Name=str(resource.ref))
        return found

    # -- triggers -------------------------------------------------------------------------------------

    def fire_scan(self, detail: Mapping[str, Any], *, detail_type: str | None = None) -> str:
        """Put a scan request on the event bus, as a user would (`PutEvents`), and return the event id.

        The source is `aegis.scan`; the detail-type is the one the template's rule for that source matches, unless
        given. Delivery to the agent is asynchronous, as with EventBridge: wait with `self.lambdas.wait_idle()`.
        """
        bus, chosen_type = self._scan_rule_target(detail_type)
        entry: dict[str, Any] = {"Source": SCAN_EVENT_SOURCE, "DetailType": chosen_type, "Detail": json.dumps(detail)}
        if bus != "default":
            entry["EventBusName"] = bus
        answer = self.client("events").put_events(Entries=[entry])
        result = answer["Entries"][0]
        if "EventId" not in result:
            raise ValueError(
                f"EventBridge refused the scan event: {result.get('ErrorCode')}: {result.get('ErrorMessage')}"
            )
        return str(result["EventId"])

    def fire_schedule(self, rule_logical_id: str | None = None) -> str | None:
        """Deliver the schedule rule's "Scheduled Event" now (None if the rule is disabled, e.g. by the kill
        switch). Without a logical id, the template must have exactly one schedule rule."""
        schedules = {
            logical_id: description
            for logical_id, description in self.rules().items()
            if description.get("ScheduleExpression")
        }
        if rule_logical_id is None:
            if len(schedules) != 1:
                raise LookupError(f"expected one schedule rule, found {sorted(schedules)}")
            rule_logical_id = next(iter(schedules))
        if rule_logical_id not in schedules:
            raise LookupError(f"{rule_logical_id} is not a schedule rule of the template")
        description = schedules[rule_logical_id]
        return EventBridgeDelivery.fire_schedule(
            self.identity.account_id,
            self.identity.region,
            description["Name"],
            description.get("EventBusName", "default"),
        )

    def _scan_rule_target(self, detail_type: str | None) -> tuple[str, str]:
        candidates: list[tuple[str, list[str]]] = []
        for description in self.rules().values():
            pattern = json.loads(description.get("EventPattern") or "{}")
            if SCAN_EVENT_SOURCE in (pattern.get("source") or []):
                types = [t for t in pattern.get("detail-type") or [] if isinstance(t, str)]
                candidates.append((description.get("EventBusName", "default"), types))
        if not candidates:
            raise LookupError(f"the template has no rule for events of source {SCAN_EVENT_SOURCE}")
        bus, types = candidates[0]
        if detail_type is not None:
            return bus, detail_type
        if len(types) != 1:
            raise LookupError(f"the scan rule matches detail-types {types}; pass detail_type")
        return bus, types[0]

    # -- internals ------------------------------------------------------------------------------------

    def _start_bedrock(self) -> str:
        self._bedrock = BedrockEmulator()
        return self._bedrock.start()

    def _local_parameter_values(self, template: Mapping[str, Any]) -> dict[str, str]:
        """Values that make the template's parameters point at the local emulator and its tenant."""
        from aegis_local.auth0 import (
            CIBA_GRANT,
            CLIENT_CREDENTIALS_GRANT,
            KILLSWITCH_MANAGEMENT_SCOPES,
            KILLSWITCH_SCOPE,
            TOKEN_VAULT_GRANT,
        )

        emulator = self._emulator
        config = emulator.config
        declared = template.get("Parameters") or {}
        approval_client = next((c for c in config.clients if CIBA_GRANT in c.grant_types), config.clients[0])
        audience = config.default_audience or next(
            (r.identifier for r in config.resource_servers if r.authorization_details_types),
            config.resource_servers[0].identifier,
        )
        # The executor's application is the API's Custom API Client: the one Token Vault accepts for its tokens.
        api = next(r for r in config.resource_servers if r.identifier == audience)
        executor_client = next(
            (
                c
                for c in config.clients
                if TOKEN_VAULT_GRANT in c.grant_types and c.client_id in api.token_exchange_client_ids
            ),
            approval_client,
        )
        # The kill switch's own API (the one defining its halt scope) and its machine-to-machine client (the one
        # granted what the kill switch needs on the Management API); never the approval application.
        ops_api_audience = next(
            (r.identifier for r in config.resource_servers if KILLSWITCH_SCOPE in r.scopes), audience
        )
        killswitch_client = next(
            (
                c
                for c in config.clients
                if CLIENT_CREDENTIALS_GRANT in c.grant_types
                and set(KILLSWITCH_MANAGEMENT_SCOPES) <= set(c.management_scopes)
            ),
            None,
        )
        approvers = [user.sub for user in config.approvers()] or [config.users[0].sub]
        values: dict[str, str] = {
            "Auth0Issuer": emulator.issuer,
            "ApprovalAuth0ClientId": approval_client.client_id,
            "ExecutorAuth0ClientId": executor_client.client_id,
            "Auth0Audience": audience,
            "ApproverSubs": ",".join(approvers),
            "OpsApiAudience": ops_api_audience,
        }
        if approval_client.token_endpoint_auth_method is not None:
            values["Auth0ClientAuthMethod"] = approval_client.token_endpoint_auth_method
        for parameter, client in (
            ("ApprovalAuth0ClientSecretArn", approval_client),
            ("ExecutorAuth0ClientSecretArn", executor_client),
        ):
            if parameter in declared:
                values[parameter] = self._create_client_secret(
                    emulator.client_secret(client.client_id),
                    description=f"Client secret of the Auth0 application {client.client_id} (local emulator)",
                    name=f"auth0-{client.client_id}-secret",
                )
        if killswitch_client is not None:
            values["KillSwitchAuth0ClientId"] = killswitch_client.client_id
            if "KillSwitchAuth0ClientSecretArn" in declared:
                values["KillSwitchAuth0ClientSecretArn"] = self._create_client_secret(
                    emulator.client_secret(killswitch_client.client_id),
                    description="Client secret of the kill switch's Auth0 M2M application (local emulator)",
                    name="auth0-killswitch-client-secret",
                )
        if config.connections:
            connection = config.connections[0]
            values["TokenVaultConnection"] = connection.name
            values["RemediationOidcAudience"] = connection.provider_audience
            # The approvers' subjects at the provider: what the remediation roles' trust pins besides the audience.
            # (Every approver with an account on the connection; a user's own account makes them no approver.)
            subjects = [
                account.provider_subject or user.sub
                for user in config.approvers()
                for account in user.connected_accounts
                if account.connection == connection.name
            ]
            values["RemediationOidcSubjects"] = ",".join(dict.fromkeys(subjects)) or ",".join(approvers)
            # Undo: a second connection to the same provider with an audience of its own (UndoRole trusts only it).
            undo = next(
                (
                    c
                    for c in config.connections[1:]
                    if c.provider_name == connection.provider_name
                    and c.provider_audience != connection.provider_audience
                ),
                None,
            )
            if undo is not None:
                values["UndoTokenVaultConnection"] = undo.name
                values["UndoOidcAudience"] = undo.provider_audience
            # IAM registers OIDC providers by https URL only (and moto's STS compares nothing), so the provider is
            # registered under the https form of the emulator's provider issuer.
            provider = str(emulator.provider_issuer(connection.name))
            values["RemediationOidcProviderUrl"] = "https://" + provider.split("://", 1)[1]
        return values

    def _create_organization(self, declared: Mapping[str, Any]) -> dict[str, str]:
        """Create the local organization (when asked for) and return the parameter value naming it. Called before
        the functions' environment is resolved: their ORGANIZATION_ID comes from this parameter."""
        if self._organization_spec is None:
            return {}
        if "OrganizationId" not in declared:
            raise ValueError("an organization given, but the template declares no OrganizationId parameter")
        self._organization = LocalOrganization.create(
            self.session(), self._organization_spec, region=self.identity.region
        )
        return {"OrganizationId": self._organization.organization_id}

    def _role_arns(self) -> dict[str, str]:
        """Logical id -> ARN of every IAM role of the security stack (the member template trusts some by ARN)."""
        created = _while_running(self._created)
        return {
            r.logical_id: str(r.attributes["Arn"]) for r in created.of_type("AWS::IAM::Role") if "Arn" in r.attributes
        }

    def _review_url_base(self, values: Mapping[str, str]) -> str:
        if self._review_url is not None:
            return self._review_url
        return local_review_url_base(str(values.get("ConsoleOrigins", "")))

    def _create_client_secret(self, client_secret: str, *, description: str, name: str) -> str:
        """The secret created outside the stack, as the template expects: SecretString = the client secret."""
        answer = self.client("secretsmanager").create_secret(
            Name=f"{self.identity.stack_name}/{name}",
            Description=description,
            SecretString=client_secret,
        )
        return str(answer["ARN"])

    def _runtime_environment(self) -> dict[str, str]:
        return {
            "AWS_REGION": self.identity.region,
            "AWS_DEFAULT_REGION": self.identity.region,
            "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_ACCESS_KEY,
            "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"],
            # Converse is not moto's: the service's own variable wins over AWS_ENDPOINT_URL for bedrock-runtime only.
            BEDROCK_ENDPOINT_VARIABLE: self.bedrock.url,
        }

    def _apply_process_environment(self, moto_url: str, port: int) -> None:
        wanted: dict[str, str | None] = {
            "AWS_ENDPOINT_URL": moto_url,
            "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_ACCESS_KEY,
            "AWS_SESSION_TOKEN": None,
            "AWS_SECURITY_TOKEN": None,
            "AWS_PROFILE": None,
            "AWS_DEFAULT_PROFILE": None,
            "AWS_REGION": self.identity.region,
            "AWS_DEFAULT_REGION": self.identity.region,
            "MOTO_PORT": str(port),
        }
        # Service-specific endpoints would win over AWS_ENDPOINT_URL and bypass moto.
        wanted.update(dict.fromkeys(name for name in os.environ if name.startswith("AWS_ENDPOINT_URL_")))
        # All but the emulated Bedrock runtime's, which moto does not serve; in the process environment too, for the
        # threads a handler starts itself (they do not see its overlay).
        if self._bedrock is not None:
            wanted[BEDROCK_ENDPOINT_VARIABLE] = self._bedrock.url
        self._set_environment(wanted)

    def _share_common_function_environment(self, functions: list[FunctionSpec]) -> None:
        """Put in the process environment every variable that has the same value in every function that declares
        it, so threads a handler starts itself (which do not inherit its overlay) still find them."""
        values: dict[str, set[str]] = {}
        for spec in functions:
            for name, value in spec.environment.items():
                values.setdefault(name, set()).add(value)
        common = {name: next(iter(found)) for name, found in values.items() if len(found) == 1}
        self._set_environment({name: value for name, value in common.items() if name not in self._saved_environment})

    def _set_environment(self, wanted: Mapping[str, str | None]) -> None:
        for name, value in wanted.items():
            if name not in self._saved_environment:
                self._saved_environment[name] = os.environ.get(name)
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def _restore_process_environment(self) -> None:
        for name, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_environment = {}

    def _configure_moto(self, moto_url: str) -> None:
        MotoDispatchFix.install()
        DynamoDBAtomicItemsFix.install()
        # A fresh moto: this process may have used moto before (backends are process-wide).
        _post_json(f"{moto_url}/moto-api/reset", None)
        _post_json(f"{moto_url}/moto-api/config", MOTO_CONFIG)
        # GET /moto-api/config does not report stepfunctions; the server runs in this process, so read it here.
        from moto.core.config import default_user_config

        for service, settings in MOTO_CONFIG.items():
            applied: dict[str, Any] = dict(default_user_config.get(service) or {})  # type: ignore[call-overload]
            for key, value in settings.items():
                if applied.get(key) != value:
                    raise RuntimeError(f"moto did not accept {service}.{key}={value!r}: {applied}")


def local_review_url_base(console_origins: str) -> str:
    """Where a batch's approver reviews it locally: the local console, which is the one loopback origin of the
    stack's ConsoleOrigins (aegis_local.console.server passes its own origin there), else none. Never the template's
    CloudFront domain: locally there is no distribution to serve it."""
    origins = [origin.strip().rstrip("/") for origin in console_origins.split(",") if origin.strip()]
    local = [origin for origin in origins if LOOPBACK_ORIGIN.fullmatch(origin)]
    return f"{local[0]}/" if len(local) == 1 else ""


def with_review_url_base(template: Mapping[str, Any], base: str) -> dict[str, Any]:
    """The template with every function's APPROVAL_REVIEW_URL_BASE set to `base`. On AWS the template derives it
    from the console's CloudFront domain (or "" without a console); the local stack serves the console itself, at
    an address only known when it runs."""
    copied = copy.deepcopy(dict(template))
    for resource in (copied.get("Resources") or {}).values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        variables = ((resource.get("Properties") or {}).get("Environment") or {}).get("Variables") or {}
        if REVIEW_URL_VARIABLE in variables:
            variables[REVIEW_URL_VARIABLE] = base
    return copied


def _post_json(url: str, body: Any, *, allow_failure: bool = False) -> None:
    data = b"" if body is None else json.dumps(body).encode("utf-8")
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"refusing to post to {url}: only the loopback moto server is configured this way")
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=5):  # noqa: S310 - checked above: loopback http only
            pass
    except OSError:
        if not allow_failure:
            raise


def _warm_up_moto() -> None:
    """Import what the first requests would otherwise import while the emulator and server start: the Step
    Functions interpreter (its ANTLR parser takes seconds) and the backends of the services the template uses."""
    try:
        import moto.stepfunctions.parser.models  # noqa: F401
        from moto.backends import get_backend

        for service in ("dynamodb", "iam", "kms", "lambda", "logs", "events", "secretsmanager", "stepfunctions"):
            get_backend(service)
    except Exception:  # pragma: no cover - the same imports happen again, and fail loudly, on first use
        logger.debug("moto warm-up failed", exc_info=True)


def _clear_layer_caches() -> None:
    """The shared layers cache boto3 resources, discovery documents and Powertools parameter providers (whose boto3
    client keeps the endpoint it was built with) per process; endpoints changed, so forget them."""
    try:
        from aegis.settings import clear_caches
    except ImportError:  # pragma: no cover - the layer is part of every install of this project
        return
    clear_caches()
    try:
        from aegis_auth.oidc import clear_caches as clear_auth_caches
    except ImportError:  # pragma: no cover - the auth layer is part of every install of this project
        return
    clear_auth_caches()
