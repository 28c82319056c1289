"""The AWS toolchain accepts the application: `sam validate --lint`, cfn-lint, `sam build`, and `sam local` runs
every function, with each of its events/ samples, against the local stack.

aws-sam-cli and cfn-lint live in their own virtualenv (.venv-sam, `make setup-sam`); `make test` puts its bin
directory on PATH. Where they are missing the tests skip, except under CI (env CI set), where that is a failure.

`sam local` runs each function in a container of the invocation image built on this machine
(`aegis_local.lambda_image`, `make lambda-image`; no registry is needed). Those tests skip, with the reason, where no
Docker daemon answers `docker info` or the image cannot be built (no root, no debootstrap) -- and fail under CI.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
from boto3.dynamodb.types import TypeDeserializer

from aegis.audit import read_trail
from aegis.audit_chain import verify_mission
from aegis.catalogue import ChangeBase, parse_change
from aegis.catalogue.kinds.revoke_security_group_rules import (
    RevokeSecurityGroupRules,
    SecurityGroupRule,
    SecurityGroupRules,
)
from aegis.control import halt_state
from aegis_agent.missions import MissionStore
from aegis_approval.ciba import HANDOVER_MARGIN_SECONDS
from aegis_killswitch.scopes import KILL_SCOPE, REARM_SCOPE
from aegis_local.auth0 import CLIENT_CREDENTIALS_GRANT, DEFAULT_OPERATOR_CLIENT_ID, EmulatorConfig
from aegis_local.aws.notifications import NOTIFICATIONS_FILE, NotificationCapture
from aegis_local.aws.organization import OrganizationSpec
from aegis_local.aws.stack import LocalStack
from aegis_local.aws.template import load_template
from aegis_local.lambda_image import CannotBuildHere, ensure_image
from aegis_local.scenario.demo import DEMO_CIBA_INTERVAL_SECONDS, DEMO_PARAMETERS
from aegis_local.scenario.phone import Answer as PhoneAnswer
from aegis_local.scenario.phone import EmulatedPhone
from aegis_local.scenario.seed import SeededAccount, seed_account
from tests.support.executions import wait_until_ended
from tests.support.loopback_relay import LoopbackRelay
from tests.support.loopback_server import LoopbackServer, QuietHandler
from tests.support.sam_local import Answer, SamLocalLambda, run_invoke, start_lambda
from tests.support.stack import EVENTS_BY_FUNCTION, EVENTS_DIR, ROOT, TEMPLATE_PATH

REGION = "us-east-1"
BUILD_CACHE = ROOT / ".aws-sam" / "test-cache"
# Modules that must never be in the agent's deployment package (the boundary holds for the artifact too).
NOT_IN_AGENT_PACKAGE = ("aegis_auth", "aegis_jwt", "aegis_approval", "aegis_executor", "aegis_killswitch", "jose")


def _unavailable(reason: str) -> NoReturn:
    """Skip with the reason printed; under CI (env CI) a missing prerequisite is a failure."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    _unavailable(f"{name} is not on PATH (it lives in .venv-sam: run `make setup-sam`, or the tests via `make test`)")


def _python313_dir() -> str | None:
    """The directory of a working python3.13 (pyenv's shim may exist and still say "command not found")."""
    candidates: list[str] = []
    pyenv = shutil.which("pyenv")
    if pyenv:
        prefix = subprocess.run([pyenv, "prefix", "3.13"], capture_output=True, text=True, check=False)
        if prefix.returncode == 0 and prefix.stdout.strip():
            candidates.append(str(Path(prefix.stdout.strip().splitlines()[0]) / "bin" / "python3.13"))
    on_path = shutil.which("python3.13")
    if on_path:
        candidates.append(on_path)
    for candidate in candidates:
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 13))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.stdout.strip() == "True":
            return str(Path(candidate).parent)
    return None


def _sam_env(extra_path: str | None = None) -> dict[str, str]:
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": REGION}
    if extra_path:
        env["PATH"] = extra_path + os.pathsep + env.get("PATH", "")
    return env


def _run(command: list[str], env: dict[str, str], timeout: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def test_sam_validate_lint_accepts_the_template() -> None:
    sam = _tool("sam")
    result = _run([sam, "validate", "--lint", "--template", str(TEMPLATE_PATH), "--region", REGION], _sam_env(), 300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_sam_validate_translates_the_template() -> None:
    """Without --lint, SAM runs its transform: the template must become valid CloudFormation."""
    sam = _tool("sam")
    result = _run([sam, "validate", "--template", str(TEMPLATE_PATH), "--region", REGION], _sam_env(), 300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_reports_nothing() -> None:
    cfn_lint = _tool("cfn-lint")
    result = _run([cfn_lint, str(TEMPLATE_PATH)], _sam_env(), 300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


# Runs inside .venv-sam (samtranslator lives there): the SAM transform of template.yaml, as CloudFormation sees it.
_TRANSFORM = """
import json, sys
from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform

class NoManagedPolicies:
    def load(self):
        return {}

template = yaml_parse(open(sys.argv[1]).read())
for resource in template["Resources"].values():
    for key in ("CodeUri", "ContentUri", "DefinitionUri"):
        if key in resource.get("Properties", {}):
            resource["Properties"][key] = "s3://artifacts/" + key
print(json.dumps(transform(template, {}, NoManagedPolicies())))
"""


def test_the_sam_transform_adds_no_permission_the_iam_matrix_does_not_see() -> None:
    """SAM can create roles and permissions on its own (Events, Policies, function URLs); only the expected ones."""
    sam = _tool("sam")
    python = Path(sam).parent / "python"
    result = _run([str(python), "-c", _TRANSFORM, str(TEMPLATE_PATH)], _sam_env(), 300)
    assert result.returncode == 0, result.stderr[-4000:]
    resources = json.loads(result.stdout)["Resources"]
    by_type: dict[str, set[str]] = {}
    for name, resource in resources.items():
        by_type.setdefault(resource["Type"], set()).add(name)
    source = load_template(TEMPLATE_PATH)["Resources"]
    assert by_type["AWS::IAM::Role"] == {n for n, r in source.items() if r["Type"] == "AWS::IAM::Role"}
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::User"):
        assert kind not in by_type, kind
    permissions = {
        name: (p["Properties"]["Action"], p["Properties"]["Principal"], p["Properties"]["FunctionName"])
        for name in by_type["AWS::Lambda::Permission"]
        for p in [resources[name]]
    }
    assert sorted(permissions.values(), key=str) == sorted(
        [
            # ScheduledScanRule, ScanRequestRule and UndoRequestRule.
            ("lambda:InvokeFunction", "events.amazonaws.com", {"Ref": "AgentScanFunction"}),
            ("lambda:InvokeFunction", "events.amazonaws.com", {"Ref": "AgentScanFunction"}),
            ("lambda:InvokeFunction", "events.amazonaws.com", {"Ref": "AgentScanFunction"}),
            ("lambda:InvokeFunctionUrl", "*", {"Ref": "KillSwitchFunction"}),
            ("lambda:InvokeFunction", "*", {"Ref": "KillSwitchFunction"}),
            # MissionEndedRule: an ended execution's unconsumed handoffs are purged by the kill switch.
            ("lambda:InvokeFunction", "events.amazonaws.com", {"Ref": "KillSwitchFunction"}),
            # One per route of the ops HTTP API (its JWT authorizer in front, the function checking the token again).
            *(
                ("lambda:InvokeFunction", "apigateway.amazonaws.com", {"Ref": name})
                for name, resource in source.items()
                if resource["Type"] == "AWS::Serverless::Function"
                for event in (resource["Properties"].get("Events") or {}).values()
                if event["Type"] == "HttpApi"
            ),
        ],
        key=str,
    )
    # API Gateway may invoke a function only for a route of the stack's own HTTP API.
    for name in by_type["AWS::Lambda::Permission"]:
        properties = resources[name]["Properties"]
        if properties["Principal"] == "apigateway.amazonaws.com":
            _, variables = properties["SourceArn"]["Fn::Sub"]
            assert variables["__ApiId__"] == {"Ref": "OpsApi"}, properties
    public = [resources[n]["Properties"] for n in by_type["AWS::Lambda::Permission"]]
    public = [p for p in public if p["Principal"] == "*"]
    # The public may reach the kill switch only through its URL (which authenticates the caller itself).
    assert all(p.get("FunctionUrlAuthType") == "NONE" or p.get("InvokedViaFunctionUrl") is True for p in public)
    machine = resources["MissionStateMachine"]["Properties"]
    assert machine["LoggingConfiguration"]["IncludeExecutionData"] is False
    assert machine["RoleArn"] == {"Fn::GetAtt": ["StateMachineRole", "Arn"]}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`sam build` (no container) into a temporary directory, reusing dependencies cached in .aws-sam/test-cache."""
    sam = _tool("sam")
    python_dir = _python313_dir()
    if python_dir is None:
        _unavailable("sam build needs Python 3.13 (pyenv prefix 3.13, or python3.13 on PATH)")
    build_dir = tmp_path_factory.mktemp("sam") / "build"
    # sam keeps its build graph (build.toml) beside the build dir; carrying it over lets --cached reuse the
    # dependencies of unchanged functions and layers from the persistent cache instead of reinstalling them.
    graph = BUILD_CACHE / "build.toml"
    command = [
        sam,
        "build",
        "--template",
        str(TEMPLATE_PATH),
        "--build-dir",
        str(build_dir),
        "--cached",
        "--cache-dir",
        str(BUILD_CACHE),
    ]
    BUILD_CACHE.mkdir(parents=True, exist_ok=True)
    # pytest-xdist may run this fixture in two workers at once; they share the cache, so they build in turn.
    with (BUILD_CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if graph.is_file():
            shutil.copy2(graph, build_dir.parent / "build.toml")
        result = _run(command, _sam_env(python_dir), 1800)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        shutil.copy2(build_dir.parent / "build.toml", graph)
    return build_dir


@pytest.mark.slow
def test_sam_build_packages_every_function_and_layer_and_no_credential_code_for_the_agent(built: Path) -> None:
    # One test for both properties, so that one build serves them even when pytest-xdist splits the module.
    resources = load_template(built / "template.yaml")["Resources"]
    functions = [name for name, r in resources.items() if r["Type"] == "AWS::Serverless::Function"]
    assert sorted(functions) == sorted(EVENTS_BY_FUNCTION)
    for name in functions:
        artifact = built / resources[name]["Properties"]["CodeUri"]
        handler_module = resources[name]["Properties"]["Handler"].split(".")[0]
        assert (artifact / f"{handler_module}.py").is_file(), f"{name}: no {handler_module}.py in {artifact}"
    aegis_layer = built / resources["AegisLayer"]["Properties"]["ContentUri"] / "python"
    jwt_layer = built / resources["JwtLayer"]["Properties"]["ContentUri"] / "python"
    auth_layer = built / resources["AuthLayer"]["Properties"]["ContentUri"] / "python"
    for package in ("aegis", "pydantic", "aws_lambda_powertools"):
        assert (aegis_layer / package).is_dir(), f"AegisLayer lacks {package}"
    for package in ("aegis_jwt", "jose", "httpx"):
        assert (jwt_layer / package).is_dir(), f"JwtLayer lacks {package}"
    assert (auth_layer / "aegis_auth").is_dir(), "AuthLayer lacks aegis_auth"
    # The AuthLayer's libraries are the JwtLayer's, which goes with it everywhere: one copy of cryptography.
    for package in ("httpx", "cryptography"):
        assert (jwt_layer / package).is_dir(), f"JwtLayer lacks {package}"
        assert not (auth_layer / package).exists(), f"AuthLayer ships a second {package}"
    # Lambda's runtime provides boto3 and botocore: a copy in a layer would shadow the runtime's under its boto3.
    for layer in (aegis_layer, jwt_layer, auth_layer):
        for package in ("boto3", "botocore"):
            assert not (layer / package).exists(), f"{layer.parent.name} ships {package}"
    # Every module of the layers and the agent's package has its unchecked-hash bytecode beside it (flags 0b01 in the
    # pyc's header): no cold start compiles a module.
    agent_package = built / resources["AgentScanFunction"]["Properties"]["CodeUri"]
    for package in (aegis_layer, jwt_layer, auth_layer, agent_package):
        sources = [path for path in package.rglob("*.py") if "__pycache__" not in path.parts]
        assert sources, package
        for source in sources:
            compiled = source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc"
            assert compiled.is_file(), f"{package.name}: no bytecode for {source.relative_to(package)}"
            assert int.from_bytes(compiled.read_bytes()[4:8], "little") == 0b01, compiled
    assert not (agent_package / "zstandard").exists(), "the agent ships zstandard"
    assert not (agent_package / "pydantic").exists(), "the agent ships a pydantic over the layer's"
    for package in ("aegis_auth", "aegis_jwt", "jose"):
        assert not (aegis_layer / package).exists(), f"AegisLayer ships {package}"
    assert not (jwt_layer / "aegis_auth").exists(), "JwtLayer ships the credential code"

    for name in ("AgentScanFunction", "AgentResumeFunction"):
        artifact = built / resources[name]["Properties"]["CodeUri"]
        assert (artifact / "aegis_agent").is_dir()
        present = [module for module in NOT_IN_AGENT_PACKAGE if (artifact / module).exists()]
        assert present == [], f"{name} ships {present}"
        assert resources[name]["Properties"]["Layers"] == [{"Ref": "AegisLayer"}]


# --------------------------------------------------------------------------------------------- sam local, for real
# Every function runs in a container of the locally built invocation image (aegis_local.lambda_image) against a
# LocalStack started here, through `sam local start-lambda` (tests/support/sam_local.py says why and how), with its
# events/ sample; where a sample names what only the stack has (a task token, a security group, a continuation, a
# sealed approval), the event is the sample with the stack's values. The state machine's own calls stay in this
# process (the stack's Lambda router), where `InProcessSteps` holds the steps whose events the containers run.

# The samples' regions: the validator's plan changes a group in eu-west-1, the requested scan covers both.
SCAN_REGIONS = "us-east-1,eu-west-1"
SEEDED_REGION = "us-east-1"
WAIT_SECONDS = 120.0


def _load_sample(name: str) -> dict[str, Any]:
    sample: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))
    return sample


def _container_runtime_problem() -> str | None:
    """Why containers cannot run here, or None: the docker CLI and a daemon that answers `docker info`."""
    docker = shutil.which("docker")
    if docker is None:
        return "no container runtime: the docker CLI is not installed (sam local runs functions in containers)"
    info = subprocess.run([docker, "info"], capture_output=True, text=True, timeout=60, check=False)
    if info.returncode != 0:
        return f"no container runtime: `docker info` failed ({(info.stderr or info.stdout).strip()[:300]})"
    return None


@pytest.fixture(scope="module")
def invoke_image() -> str:
    """The invocation image, found by its content hash or built now (`make lambda-image` builds it ahead)."""
    problem = _container_runtime_problem()
    if problem:
        _unavailable(problem)
    python_dir = _python313_dir()
    if python_dir is None:
        _unavailable("the invocation image needs Python 3.13 (pyenv prefix 3.13, or python3.13 on PATH)")
    try:
        return ensure_image(Path(python_dir) / "python3.13").tag
    except CannotBuildHere as error:
        _unavailable(f"the invocation image cannot be built here: {error}")


class InProcessSteps:
    """The state machine's calls to the approval, executor, resume and kill switch functions, intercepted in the
    stack's Lambda router, so that the containers run the events the state machine builds:

    - an approval task is recorded (a container answers its token), unless its mission is to run short of time:
      then the real handler runs here with 30 s left, hands over, and the continuation it sends itself is recorded;
    - an executor task is recorded and held until the test gives it the answer of the container that ran it;
    - the resume and the execution-status events for the kill switch are recorded, never run here;
    - the audit chainer gets every stream record but those of the missions a container is to link, recorded instead.
    """

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self.approval_tasks: dict[str, dict[str, Any]] = {}
        self.continuations: dict[str, dict[str, str]] = {}
        self.executor_tasks: dict[str, dict[str, Any]] = {}
        self.short_of_time: set[str] = set()
        self.resumed: list[dict[str, Any]] = []
        self.execution_ends: list[dict[str, Any]] = []
        self.chained_in_container: set[str] = set()
        self.stream_records: dict[str, list[dict[str, Any]]] = {}
        self._answers: dict[str, Any] = {}

    def install(self, stack: LocalStack, exits: ExitStack) -> None:
        exits.enter_context(stack.lambdas.intercept("ApprovalFunction", self._approval))
        exits.enter_context(stack.lambdas.intercept("ExecutorFunction", self._executor))
        exits.enter_context(stack.lambdas.intercept("AgentResumeFunction", self._recorder(self.resumed)))
        exits.enter_context(stack.lambdas.intercept("KillSwitchFunction", self._recorder(self.execution_ends)))
        exits.enter_context(stack.lambdas.intercept("AuditChainFunction", self._audit_chain))
        exits.callback(self.release_all)

    def _audit_chain(self, event: dict[str, Any], context: Any, handler: Any) -> Any:
        def mission(record: dict[str, Any]) -> str:
            return str(record["dynamodb"]["Keys"]["mission_id"]["S"])

        with self._lock:
            for record in event["Records"]:
                if mission(record) in self.chained_in_container:
                    self.stream_records.setdefault(mission(record), []).append(record)
            self._lock.notify_all()
        others = [record for record in event["Records"] if mission(record) not in self.chained_in_container]
        return handler({**event, "Records": others}, context) if others else None

    def _approval(self, event: dict[str, Any], context: Any, handler: Any) -> Any:
        if set(event) == {"continuation_id"}:
            with self._lock:
                # Only the handler run here hands over; its mission is the one it ran for.
                [mission_id] = self.short_of_time - set(self.continuations)
                self.continuations[mission_id] = event
                self._lock.notify_all()
            return None
        if event.get("mission_id") in self.short_of_time:
            return handler(event, replace(context, deadline_monotonic=time.monotonic() + HANDOVER_MARGIN_SECONDS))
        with self._lock:
            self.approval_tasks[event["mission_id"]] = event
            self._lock.notify_all()
        return None

    def _executor(self, event: dict[str, Any], context: Any, handler: Any) -> Any:
        mission_id = event["mission_id"]
        with self._lock:
            self.executor_tasks[mission_id] = event
            self._lock.notify_all()
            if not self._lock.wait_for(lambda: mission_id in self._answers, timeout=WAIT_SECONDS):
                raise TimeoutError(f"the executor step of {mission_id} was never answered")
            answer = self._answers[mission_id]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def _recorder(self, into: list[dict[str, Any]]) -> Any:
        def record(event: dict[str, Any], context: Any, handler: Any) -> None:
            with self._lock:
                into.append(event)
                self._lock.notify_all()

        return record

    def wait(self, recorded: dict[str, Any], mission_id: str, what: str) -> Any:
        """What `recorded` holds for `mission_id`, once it is there."""
        with self._lock:
            if not self._lock.wait_for(lambda: mission_id in recorded, timeout=WAIT_SECONDS):
                raise AssertionError(f"no {what} for {mission_id} within {WAIT_SECONDS} s")
            return recorded[mission_id]

    def answer_executor(self, mission_id: str, answer: Any) -> None:
        with self._lock:
            self._answers[mission_id] = answer
            self._lock.notify_all()

    def release_all(self) -> None:
        with self._lock:
            for mission_id in self.executor_tasks:
                self._answers.setdefault(mission_id, RuntimeError("the test ended before this step was answered"))
            self._lock.notify_all()


@dataclass
class Scene:
    """The local stack the containers call, what was seeded in it, its intercepted steps, and what its topic got."""

    stack: LocalStack
    seeded: SeededAccount
    steps: InProcessSteps
    notifications: NotificationCapture

    @property
    def approver_sub(self) -> str:
        return str(self.stack.parameters["ApproverSubs"]).split(",")[0]

    @property
    def missions(self) -> MissionStore:
        return MissionStore(self.table("MissionsTable"))

    def table(self, logical_id: str) -> Any:
        return self.stack.session().resource("dynamodb").Table(self.stack.physical_id(logical_id))

    def audit_actions(self, mission_id: str) -> list[tuple[str, str]]:
        return [(item["action"], item["outcome"]) for item in read_trail(self.table("AuditTable"), mission_id)]

    def halted(self) -> bool:
        return halt_state(self.table("ControlTable")) is not None

    def rule_states(self) -> set[str]:
        events = self.stack.client("events")
        names = [self.stack.physical_id(rule) for rule in ("ScheduledScanRule", "ScanRequestRule")]
        return {events.describe_rule(Name=name)["State"] for name in names}

    def handoffs_of(self, execution_arn: str) -> list[dict[str, Any]]:
        items = self.table("HandoffTable").scan()["Items"]
        return [item for item in items if item.get("execution_arn") == execution_arn]

    def execution(self, execution_arn: str) -> dict[str, Any]:
        return dict(self.stack.client("stepfunctions").describe_execution(executionArn=execution_arn))

    def start_mission(self, changes: list[ChangeBase], *, short_of_time: bool = False) -> tuple[str, str]:
        """An execution of the stack's mission state machine for `changes`, started as the agent starts one."""
        mission_id = "m-" + uuid.uuid4().hex[:20]
        if short_of_time:
            self.steps.short_of_time.add(mission_id)
        execution_arn = self.stack.client("stepfunctions").start_execution(
            stateMachineArn=self.stack.state_machine_arn(),
            name=mission_id,
            input=json.dumps({"mission_id": mission_id, "changes": [c.model_dump(mode="json") for c in changes]}),
        )["executionArn"]
        return mission_id, str(execution_arn)

    def open_group_like(self, sample_change: dict[str, Any]) -> RevokeSecurityGroupRules:
        """A security group of the stack's account, open as the sample's `before` says, and the sample's change for
        it: the same kind, check, region and risk, the group's own id and rule ids, its id derived again."""
        sample = parse_change(sample_change)
        assert isinstance(sample, RevokeSecurityGroupRules)
        account = self.stack.endpoints.account_id
        ec2 = self.stack.session().client("ec2", region_name=sample.region)
        vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
        group = ec2.create_security_group(GroupName=f"sam-{uuid.uuid4().hex[:8]}", Description="sam", VpcId=vpc)
        group_id = group["GroupId"]
        ec2.authorize_security_group_ingress(
            GroupId=group_id, IpPermissions=[rule.ip_permission() for rule in sample.before.rules]
        )
        rules = tuple(SecurityGroupRule.from_aws(rule) for rule in self.ingress_rules(sample.region, group_id))
        return RevokeSecurityGroupRules.propose(
            **sample.model_dump(include={"check_id", "region", "risk"}),
            account_id=account,
            resource_arn=sample.resource_arn.replace(sample.account_id, account).rsplit("/", 1)[0] + f"/{group_id}",
            before=SecurityGroupRules(group_id=group_id, rules=rules),
            after=SecurityGroupRules(group_id=group_id, rules=()),
        )

    def ingress_rules(self, region: str, group_id: str) -> list[dict[str, Any]]:
        ec2 = self.stack.session().client("ec2", region_name=region)
        found = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])
        return [rule for rule in found["SecurityGroupRules"] if not rule["IsEgress"]]


@contextmanager
def _approver_phone(scene: Scene) -> Iterator[list[str]]:
    """The approver's phone, approving every request that reaches it while the block runs; the digests it saw."""
    phone = EmulatedPhone(scene.stack.emulator, scene.approver_sub)
    seen: list[str] = []
    stop = threading.Event()

    def answer() -> None:
        while not stop.is_set():
            for request in phone.pending():
                seen.append(str(request.digest))
                phone.answer(request, PhoneAnswer.APPROVE)
            stop.wait(0.2)

    thread = threading.Thread(target=answer, name="approver-phone", daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def scene(invoke_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    emulator = EmulatorConfig.default().model_copy(update={"ciba_interval_seconds": DEMO_CIBA_INTERVAL_SECONDS})
    # The demo's caps let a mission change the seeded account; the samples' regions are scanned.
    parameters = {**DEMO_PARAMETERS, "ScanRegions": SCAN_REGIONS}
    with (
        # An organization of one member (with the member stack), so that the org-scan samples list real accounts.
        LocalStack(
            template_path=TEMPLATE_PATH,
            parameters=parameters,
            emulator_config=emulator,
            organization=OrganizationSpec(accounts=1),
        ) as stack,
        NotificationCapture(tmp_path_factory.mktemp("sam-local") / NOTIFICATIONS_FILE) as notifications,
        ExitStack() as exits,
    ):
        steps = InProcessSteps()
        steps.install(stack, exits)
        seeded = seed_account(stack.session(), SEEDED_REGION)
        yield Scene(stack=stack, seeded=seeded, steps=steps, notifications=notifications)


@pytest.fixture(scope="module")
def sam_lambda(built: Path, invoke_image: str, scene: Scene) -> Iterator[SamLocalLambda]:
    functions = [spec.logical_id for spec in scene.stack.lambdas.specs]
    with start_lambda(_tool("sam"), built / "template.yaml", scene.stack, invoke_image, functions) as server:
        yield server


def _scene(request: pytest.FixtureRequest) -> Scene:
    scene: Scene = request.getfixturevalue("scene")
    return scene


def _sam(request: pytest.FixtureRequest) -> SamLocalLambda:
    server: SamLocalLambda = request.getfixturevalue("sam_lambda")
    return server


def _succeeded(answer: Answer) -> dict[str, Any]:
    assert answer.function_error is None, answer.payload
    assert isinstance(answer.payload, dict), answer.payload
    return answer.payload


# --- the agent --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def scheduled_scan(scene: Scene, sam_lambda: SamLocalLambda) -> Answer:
    return sam_lambda.invoke("AgentScanFunction", _load_sample("scan-scheduled.json"))


def check_scheduled_scan(request: pytest.FixtureRequest) -> None:
    """The schedule's scan of the seeded account: a mission awaiting approval, its plan started as an execution."""
    scene = _scene(request)
    outcome = _succeeded(request.getfixturevalue("scheduled_scan"))
    assert outcome["status"] == "awaiting_approval", outcome
    mission = scene.missions.get(outcome["mission_id"])
    assert (mission["status"], mission["trigger"]) == ("awaiting_approval", "scheduled")
    assert mission["regions"] == SCAN_REGIONS.split(",")
    assert mission["execution_arn"] == outcome["execution_arn"]
    execution = scene.execution(outcome["execution_arn"])
    planned = json.loads(execution["input"])["changes"]
    assert execution["status"] == "RUNNING"
    assert len(planned) == outcome["changes"] == mission["counts"]["changes"] > 0
    assert {change["resource_arn"] for change in planned} & {arn for _, arn in scene.seeded.expected_findings}


def check_requested_scan(request: pytest.FixtureRequest) -> None:
    """An `aegis.scan` request in dry-run mode: the seeded open groups and public buckets found, nothing started."""
    scene = _scene(request)
    sample = _load_sample("scan-requested.json")
    outcome = _succeeded(_sam(request).invoke("AgentScanFunction", sample))
    assert (outcome["status"], outcome["plan_status"]) == ("completed", "dry_run"), outcome
    report = scene.missions.read_report(outcome["mission_id"])
    assert report is not None
    assert (report.trigger, report.regions, report.dry_run) == ("custom", sample["detail"]["regions"], True)
    requested = set(sample["detail"]["checks"])
    found = {(finding.check_id, finding.resource_arn) for finding in report.findings}
    assert {check_id for check_id, _ in found} <= requested
    expected = {(check_id, arn) for check_id, arn in scene.seeded.expected_findings if check_id in requested}
    assert expected <= found, report.scan_errors
    assert report.changes
    assert {change.decision for change in report.changes} == {"not-requested"}
    assert "execution_arn" not in scene.missions.get(outcome["mission_id"])


def check_account_scan(request: pytest.FixtureRequest) -> None:
    """The Distributed Map's item for an account without the member stack: its AegisScanRole cannot be assumed
    (AccessDenied), so the account's mission is recorded unreachable and answered normally, with nothing scanned."""
    scene = _scene(request)
    sample = _load_sample("agent-account-scan.json")
    outcome = _succeeded(_sam(request).invoke("AgentScanFunction", sample))
    assert (outcome["status"], outcome["account_id"]) == ("unreachable", sample["account_id"]), outcome
    mission = scene.missions.get(outcome["mission_id"])
    assert (mission["status"], mission["org_scan"], mission["account_id"], mission["error"]) == (
        "unreachable",
        sample["org_scan_id"],
        sample["account_id"],
        "AccessDenied",
    )
    assert ("mission.unreachable", "AccessDenied") in scene.audit_actions(outcome["mission_id"])


def check_requested_undo(request: pytest.FixtureRequest) -> None:
    """An `aegis.undo` request for a change this stack never applied: the mission ends failed, refused by name."""
    scene = _scene(request)
    sample = _load_sample("agent-undo-requested.json")
    outcome = _succeeded(_sam(request).invoke("AgentScanFunction", sample))
    assert (outcome["status"], outcome["reason"]) == ("failed", "undo-not-applied"), outcome
    mission = scene.missions.get(outcome["mission_id"])
    assert (mission["trigger"], mission["undo_of"], mission["undo_refused"]) == (
        "undo",
        sample["detail"]["change_id"],
        "undo-not-applied",
    )
    assert "execution_arn" not in mission


def check_resume(request: pytest.FixtureRequest) -> None:
    """The state machine's last step for the scheduled mission: the sample's denied and expired results, given to
    the mission's own changes, complete it with those decisions in its report."""
    scene = _scene(request)
    scan = _succeeded(request.getfixturevalue("scheduled_scan"))
    sample = _load_sample("resume.json")
    # One list per approval request, as the Map over requests answers (here one request per change).
    unapplied = [result for group in sample["results"] for result in group if result["outcome"] == "skipped"]
    planned = [change["change_id"] for change in json.loads(scene.execution(scan["execution_arn"])["input"])["changes"]]
    results = [[{**unapplied[i % len(unapplied)], "change_id": change_id}] for i, change_id in enumerate(planned)]
    event = {**sample, "mission_id": scan["mission_id"], "results": results}
    outcome = _succeeded(_sam(request).invoke("AgentResumeFunction", event))
    assert (outcome["mission_id"], outcome["status"]) == (scan["mission_id"], "completed")
    report = scene.missions.read_report(scan["mission_id"])
    assert report is not None
    assert report.status == "completed"
    assert {change.change_id: change.decision for change in report.changes} == {
        result["change_id"]: result["decision"] for group in results for result in group
    }


# --- the validator ----------------------------------------------------------------------------------------------
def check_validator(request: pytest.FixtureRequest) -> None:
    """The sample plan, within the stack's regions, account and caps: accepted, and the acceptance audited."""
    sample = _load_sample("validator-plan.json")
    verdict = _succeeded(_sam(request).invoke("ValidatorFunction", sample))
    mission_id = sample["plan"]["mission_id"]
    assert (verdict["mission_id"], verdict["verdict"], verdict["changes"]) == (
        mission_id,
        "accepted",
        len(sample["plan"]["changes"]),
    )
    # Planned into approval requests, each change in exactly one.
    planned = [item["change"] for request in verdict["requests"] for item in request["items"]]
    assert sorted(c["change_id"] for c in planned) == sorted(c["change_id"] for c in sample["plan"]["changes"])
    assert ("validator.accepted", "accepted") in _scene(request).audit_actions(mission_id)


# --- the organization scan ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def org_scan_listed(scene: Scene, sam_lambda: SamLocalLambda) -> dict[str, Any]:
    return _succeeded(sam_lambda.invoke("OrgScanFunction", _load_sample("orgscan-list.json")))


def check_org_scan_list(request: pytest.FixtureRequest) -> None:
    """The org-scan execution's first task: the organization's ACTIVE accounts (the management account and the
    member) written as the Distributed Map's items, each with the requested regions, and the org scan's item."""
    scene = _scene(request)
    sample = _load_sample("orgscan-list.json")
    listed: dict[str, Any] = request.getfixturevalue("org_scan_listed")
    organization = scene.stack.organization
    accounts = {organization.management_account_id, *organization.member_account_ids}
    assert (listed["org_scan_id"], listed["accounts"]) == (sample["org_scan_id"], len(accounts)), listed
    body = scene.stack.client("s3").get_object(Bucket=listed["bucket"], Key=listed["key"])["Body"].read()
    items = json.loads(body)
    assert {item["account_id"] for item in items} == accounts
    assert all(item["regions"] == sample["request"]["regions"] for item in items)
    org_item = scene.table("MissionsTable").get_item(Key={"mission_id": f"org#{sample['org_scan_id']}"})["Item"]
    assert (org_item["status"], set(org_item["accounts"])) == ("scanning", accounts)


def check_org_scan_summarize(request: pytest.FixtureRequest) -> None:
    """The org-scan execution's last task, after the listing: no account has a mission yet, so every listed account
    is counted not started, and the org scan is recorded scanned."""
    scene = _scene(request)
    request.getfixturevalue("org_scan_listed")
    sample = _load_sample("orgscan-summarize.json")
    summary = _succeeded(_sam(request).invoke("OrgScanFunction", sample))
    accounts = 1 + len(scene.stack.organization.member_account_ids)
    assert (summary["org_scan_id"], summary["status"]) == (sample["org_scan_id"], "scanned"), summary
    assert summary["counts"] == {"not_started": accounts}


# --- the audit trail's stream consumers -------------------------------------------------------------------------
def check_audit_chain(request: pytest.FixtureRequest) -> None:
    """audit-stream.json: the sample's record, written to the stack's Audit table as its writer wrote it, comes back
    on the table's stream; that delivery, run in the container, links it as the first of its mission's chain."""
    scene = _scene(request)
    sample = _load_sample("audit-stream.json")
    [sample_record] = sample["Records"]
    image = {
        name: TypeDeserializer().deserialize(value) for name, value in sample_record["dynamodb"]["NewImage"].items()
    }
    mission_id = image["mission_id"]
    scene.steps.chained_in_container.add(mission_id)
    scene.table("AuditTable").put_item(Item=image, ConditionExpression="attribute_not_exists(seq)")
    [delivered] = scene.steps.wait(scene.steps.stream_records, mission_id, "stream record")
    event = {**sample, "Records": [{**sample_record, **delivered}]}
    assert _succeeded(_sam(request).invoke("AuditChainFunction", event)) == {"linked": 1}
    verdict = verify_mission(scene.table("AuditTable"), scene.table("MissionsTable"), mission_id, settled=True)
    assert verdict.intact, verdict.summary()
    assert (verdict.records, verdict.linked) == (1, 1)


def check_notifier(request: pytest.FixtureRequest) -> None:
    """notifier-audit-stream.json as it is (its records need nothing of the stack): an applied change tells nobody;
    the failed change, the completed mission and the kill switch's trigger reach the stack's topic, in that order."""
    scene = _scene(request)
    scene.stack.drain_streams()
    before = len(scene.notifications.published)
    response = _succeeded(_sam(request).invoke("NotifierFunction", _load_sample("notifier-audit-stream.json")))
    assert response == {"batchItemFailures": []}
    published = scene.notifications.published[before:]
    assert [notice.attributes.get("kind") for notice in published] == [
        "change-failed",
        "mission-completed",
        "killswitch-triggered",
    ]
    assert "chg-0123456789abcdef0123" in published[0].message
    assert "m-0123456789abcdef0123" in published[1].message
    assert "unexpected IAM change in prod" in published[2].message


# --- approvals and the executor ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Approved:
    """One approval a container gave, and what it left right after: the handoff it sealed, the audit trail, the
    executor task the execution moved on to."""

    mission_id: str
    execution_arn: str
    change: RevokeSecurityGroupRules
    answer: Answer
    phone_saw: list[str]
    handoffs: list[dict[str, Any]]
    audit: list[tuple[str, str]]
    executor_task: dict[str, Any]


def _approve_in_container(
    scene: Scene, server: SamLocalLambda, mission_id: str, execution_arn: str, change: Any, event: dict[str, Any]
) -> Approved:
    with _approver_phone(scene) as seen:
        answer = server.invoke("ApprovalFunction", event)
    executor_task = scene.steps.wait(scene.steps.executor_tasks, mission_id, "executor task")
    return Approved(
        mission_id=mission_id,
        execution_arn=execution_arn,
        change=change,
        answer=answer,
        phone_saw=list(seen),
        handoffs=scene.handoffs_of(execution_arn),
        audit=scene.audit_actions(mission_id),
        executor_task=executor_task,
    )


@pytest.fixture(scope="module")
def approved_task(scene: Scene, sam_lambda: SamLocalLambda) -> Approved:
    """approval-task.json with the token, execution and mission of a real execution waiting for this approval, and
    the sample's change made for an open group of the stack; the approver approves on the emulator's phone."""
    sample = _load_sample("approval-task.json")
    change = scene.open_group_like(sample["request"]["items"][0]["change"])
    mission_id, execution_arn = scene.start_mission([change])
    task = scene.steps.wait(scene.steps.approval_tasks, mission_id, "approval task")
    keys = ("task_token", "execution_arn", "mission_id", "approver_sub", "request")
    event = {**sample, **{key: task[key] for key in keys}}
    return _approve_in_container(scene, sam_lambda, mission_id, execution_arn, change, event)


@pytest.fixture(scope="module")
def continued_approval(scene: Scene, sam_lambda: SamLocalLambda) -> Approved:
    """approval-continuation.json with the id of a real continuation: the approval of another execution ran here
    with too little time left and handed over; the container takes over its pending request."""
    change = scene.open_group_like(_load_sample("approval-task.json")["request"]["items"][0]["change"])
    mission_id, execution_arn = scene.start_mission([change], short_of_time=True)
    handed_over = scene.steps.wait(scene.steps.continuations, mission_id, "continuation")
    event = {**_load_sample("approval-continuation.json"), "continuation_id": handed_over["continuation_id"]}
    return _approve_in_container(scene, sam_lambda, mission_id, execution_arn, change, event)


def _check_approved(approved: Approved) -> None:
    assert _succeeded(approved.answer) == {"outcome": "approved"}
    assert approved.phone_saw == [approved.change.digest]
    [handoff] = approved.handoffs
    assert handoff["change_id"] == approved.change.change_id
    assert ("approval.decided", "approved") in approved.audit
    # The task token was answered: the execution went on to the executor with the sealed approval's id.
    assert approved.executor_task["approval"]["decision"] == "approved"
    [answer] = approved.executor_task["approval"]["approvals"]
    assert answer["handoffs"] == {approved.change.change_id: handoff["handoff_id"]}


def check_approval_task(request: pytest.FixtureRequest) -> None:
    _check_approved(request.getfixturevalue("approved_task"))


def check_approval_continuation(request: pytest.FixtureRequest) -> None:
    approved: Approved = request.getfixturevalue("continued_approval")
    _check_approved(approved)
    assert ("approval.continued", "continued") in approved.audit


def check_executor(request: pytest.FixtureRequest) -> None:
    """executor-task.json as the state machine sent it after the approval above: the container consumes the sealed
    approval, exchanges it at Token Vault, assumes the remediation role and revokes the group's open rules."""
    scene = _scene(request)
    approved: Approved = request.getfixturevalue("approved_task")
    task = approved.executor_task
    event = {**_load_sample("executor-task.json"), **{key: task[key] for key in ("execution_arn", "mission_id")}}
    event.update(change=task["change"], proof=task["proof"], approval=task["approval"])
    answer = _sam(request).invoke("ExecutorFunction", event)
    scene.steps.answer_executor(approved.mission_id, answer.payload)
    result = _succeeded(answer)
    assert (result["change_id"], result["outcome"]) == (approved.change.change_id, "applied")
    assert scene.ingress_rules(approved.change.region, approved.change.before.group_id) == []
    assert scene.handoffs_of(approved.execution_arn) == []
    finished = wait_until_ended(scene.stack.client("stepfunctions"), approved.execution_arn, WAIT_SECONDS)
    assert finished["status"] == "SUCCEEDED"


# --- the kill switch --------------------------------------------------------------------------------------------
@dataclass
class KillSwitchStory:
    """The kill switch's samples, run in an order that leaves the switch re-armed, and what each left behind."""

    ended: Approved
    answers: dict[str, Answer]
    halted_after: dict[str, bool]
    rules_after: dict[str, set[str]]
    handoffs_after: dict[str, int]


def _operator_token(scene: Scene, scope: str) -> str:
    """A client-credentials token of the emulator tenant's kill switch operator, for the stack's audience."""
    emulator = scene.stack.emulator
    answer = httpx.post(
        f"{emulator.issuer}oauth/token",
        data={
            "grant_type": CLIENT_CREDENTIALS_GRANT,
            "client_id": DEFAULT_OPERATOR_CLIENT_ID,
            "client_secret": emulator.client_secret(DEFAULT_OPERATOR_CLIENT_ID),
            "audience": scene.stack.parameters["OpsApiAudience"],
            "scope": scope,
        },
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def _with_token(sample: dict[str, Any], token: str) -> dict[str, Any]:
    return {**sample, "headers": {**sample["headers"], "authorization": f"Bearer {token}"}}


def _ended_event(scene: Scene, ended: Approved, status: str) -> dict[str, Any]:
    """killswitch-execution-ended.json for an execution of the stack's state machine that ended with `status`."""
    sample = _load_sample("killswitch-execution-ended.json")
    return {
        **sample,
        "account": scene.stack.endpoints.account_id,
        "region": scene.stack.endpoints.region,
        "resources": [ended.execution_arn],
        "detail": {
            **sample["detail"],
            "executionArn": ended.execution_arn,
            "stateMachineArn": scene.stack.state_machine_arn(),
            "name": ended.mission_id,
            "status": status,
        },
    }


@pytest.fixture(scope="module")
def kill_switch_story(scene: Scene, sam_lambda: SamLocalLambda, continued_approval: Approved) -> KillSwitchStory:
    """First the end of the continued approval's execution, stopped by hand before its change was applied (its
    handoff is for that event to purge, not a trigger); then each HTTP sample as it is (a token nobody signed),
    the direct trigger and re-arm, and the HTTP samples with the tenant operator's tokens."""
    sfn = scene.stack.client("stepfunctions")
    sfn.stop_execution(executionArn=continued_approval.execution_arn, error="Operator.Stopped", cause="by hand")
    scene.steps.answer_executor(continued_approval.mission_id, RuntimeError("the execution was stopped"))
    stopped = wait_until_ended(sfn, continued_approval.execution_arn, WAIT_SECONDS)
    events = {
        "killswitch-execution-ended.json": _ended_event(scene, continued_approval, stopped["status"]),
        "killswitch-url-kill.json": _load_sample("killswitch-url-kill.json"),
        "killswitch-url-rearm.json": _load_sample("killswitch-url-rearm.json"),
        "killswitch-trigger.json": _load_sample("killswitch-trigger.json"),
        "killswitch-rearm.json": _load_sample("killswitch-rearm.json"),
        "killswitch-url-kill.json, operator": _with_token(
            _load_sample("killswitch-url-kill.json"), _operator_token(scene, KILL_SCOPE)
        ),
        "killswitch-url-rearm.json, operator": _with_token(
            _load_sample("killswitch-url-rearm.json"), _operator_token(scene, REARM_SCOPE)
        ),
    }
    story = KillSwitchStory(continued_approval, {}, {}, {}, {})
    for name, event in events.items():
        story.answers[name] = sam_lambda.invoke("KillSwitchFunction", event)
        story.halted_after[name] = scene.halted()
        story.rules_after[name] = scene.rule_states()
        story.handoffs_after[name] = len(scene.handoffs_of(continued_approval.execution_arn))
    return story


def _story(request: pytest.FixtureRequest) -> KillSwitchStory:
    story: KillSwitchStory = request.getfixturevalue("kill_switch_story")
    return story


def _all_steps_done(answer: Answer) -> None:
    report = _succeeded(answer)
    assert (report["ok"], report["failed_steps"]) == (True, []), report


def _http(story: KillSwitchStory, name: str) -> tuple[int, dict[str, Any]]:
    response = _succeeded(story.answers[name])
    return int(response["statusCode"]), json.loads(response["body"])


def check_trigger(request: pytest.FixtureRequest) -> None:
    """The direct trigger: every step done, the halt flag engaged, the scan rules disabled."""
    story = _story(request)
    _all_steps_done(story.answers["killswitch-trigger.json"])
    assert story.halted_after["killswitch-trigger.json"] is True
    assert story.rules_after["killswitch-trigger.json"] == {"DISABLED"}


def check_rearm(request: pytest.FixtureRequest) -> None:
    story = _story(request)
    _all_steps_done(story.answers["killswitch-rearm.json"])
    assert story.halted_after["killswitch-rearm.json"] is False
    assert story.rules_after["killswitch-rearm.json"] == {"ENABLED"}


def check_url_kill(request: pytest.FixtureRequest) -> None:
    """POST /kill: the sample's token (signed by nobody) refused with 401, nothing changed; the same request with
    the operator's token halts."""
    story = _story(request)
    status, body = _http(story, "killswitch-url-kill.json")
    assert (status, body["error"]) == (401, "invalid_token")
    assert story.halted_after["killswitch-url-kill.json"] is False
    status, body = _http(story, "killswitch-url-kill.json, operator")
    assert (status, body["ok"]) == (200, True), body
    assert story.halted_after["killswitch-url-kill.json, operator"] is True


def check_url_rearm(request: pytest.FixtureRequest) -> None:
    story = _story(request)
    status, body = _http(story, "killswitch-url-rearm.json")
    assert (status, body["error"]) == (401, "invalid_token")
    status, body = _http(story, "killswitch-url-rearm.json, operator")
    assert (status, body["ok"]) == (200, True), body
    assert story.halted_after["killswitch-url-rearm.json, operator"] is False
    assert story.rules_after["killswitch-url-rearm.json, operator"] == {"ENABLED"}


def check_execution_ended(request: pytest.FixtureRequest) -> None:
    """MissionEndedRule's event for the execution stopped after its approval was sealed: that handoff purged."""
    story = _story(request)
    purge = _succeeded(story.answers["killswitch-execution-ended.json"])
    assert (purge["ok"], purge["found"]) == (True, 1), purge
    assert len(story.ended.handoffs) == 1
    assert story.handoffs_after["killswitch-execution-ended.json"] == 0


# --- the ops API ------------------------------------------------------------------------------------------------
def check_ops_list_missions(request: pytest.FixtureRequest) -> None:
    """GET /missions as the HTTP API sends it: the sample's token (signed by nobody) refused with 401, as the gateway
    answers; the operator's token for aegis:read lists the stack's missions (the ones the scans above created)."""
    scene: Scene = request.getfixturevalue("scene")
    sam_lambda: SamLocalLambda = request.getfixturevalue("sam_lambda")
    request.getfixturevalue("scheduled_scan")
    sample = _load_sample("ops-list-missions.json")
    refused = _succeeded(sam_lambda.invoke("OpsFunction", sample))
    assert (refused["statusCode"], json.loads(refused["body"])) == (401, {"message": "Unauthorized"})
    listed = _succeeded(sam_lambda.invoke("OpsFunction", _with_token(sample, _operator_token(scene, "aegis:read"))))
    assert listed["statusCode"] == 200, listed
    missions = json.loads(listed["body"])["missions"]
    assert missions, "the scheduled scan's mission is listed"
    assert all(mission["mission_id"].startswith("m-") for mission in missions)


# Every sample of events/ (EVENTS_BY_FUNCTION) and what its invocation must show.
EXPECTATIONS: dict[tuple[str, str], Callable[[pytest.FixtureRequest], None]] = {
    ("AgentScanFunction", "scan-scheduled.json"): check_scheduled_scan,
    ("AgentScanFunction", "scan-requested.json"): check_requested_scan,
    ("AgentScanFunction", "agent-undo-requested.json"): check_requested_undo,
    ("AgentScanFunction", "agent-account-scan.json"): check_account_scan,
    ("OrgScanFunction", "orgscan-list.json"): check_org_scan_list,
    ("OrgScanFunction", "orgscan-summarize.json"): check_org_scan_summarize,
    ("AgentResumeFunction", "resume.json"): check_resume,
    ("ValidatorFunction", "validator-plan.json"): check_validator,
    ("AuditChainFunction", "audit-stream.json"): check_audit_chain,
    ("NotifierFunction", "notifier-audit-stream.json"): check_notifier,
    ("ApprovalFunction", "approval-task.json"): check_approval_task,
    ("ApprovalFunction", "approval-continuation.json"): check_approval_continuation,
    ("ExecutorFunction", "executor-task.json"): check_executor,
    ("KillSwitchFunction", "killswitch-trigger.json"): check_trigger,
    ("KillSwitchFunction", "killswitch-rearm.json"): check_rearm,
    ("KillSwitchFunction", "killswitch-url-kill.json"): check_url_kill,
    ("KillSwitchFunction", "killswitch-url-rearm.json"): check_url_rearm,
    ("KillSwitchFunction", "killswitch-execution-ended.json"): check_execution_ended,
    ("OpsFunction", "ops-list-missions.json"): check_ops_list_missions,
}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("function", "event"), [(function, event) for function, events in EVENTS_BY_FUNCTION.items() for event in events]
)
def test_sam_local_invoke_runs_each_function_with_its_event(
    function: str, event: str, request: pytest.FixtureRequest
) -> None:
    check = EXPECTATIONS.get((function, event))
    assert check is not None, f"{function} with {event}: say in EXPECTATIONS what its invocation must show"
    check(request)


class _Echo(QuietHandler):
    """Answers every request with what it received: method, path, Host header, body."""

    def _echo(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "host": self.headers["Host"],
                "body": self.rfile.read(length).decode("utf-8"),
            }
        ).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _echo


def test_the_relay_forwards_requests_for_the_stacks_ports_to_this_machines_loopback() -> None:
    server = LoopbackServer(_Echo)
    port = int(server.server.server_address[1])
    relay = LoopbackRelay("127.0.0.1", [port])
    try:
        proxied = httpx.Client(proxy=relay.url, timeout=10)
        answer = proxied.post(f"http://127.0.0.1:{port}/a/b?c=d", content=b"x" * 100_000)
        assert answer.json() == {
            "method": "POST",
            "path": "/a/b?c=d",
            "host": f"127.0.0.1:{port}",
            "body": "x" * 100_000,
        }
        # S3 Control's host carries the account id in front: the request reaches the stack's endpoint all the same.
        answer = proxied.get(f"http://123456789012.127.0.0.1:{port}/v20180820/configuration/publicAccessBlock")
        assert (answer.json()["host"], answer.json()["path"]) == (
            f"127.0.0.1:{port}",
            "/v20180820/configuration/publicAccessBlock",
        )
    finally:
        relay.close()
        server.close()


def test_the_relay_refuses_what_is_not_one_of_the_stacks_servers() -> None:
    server = LoopbackServer(_Echo)
    port = int(server.server.server_address[1])
    relay = LoopbackRelay("127.0.0.1", [port + 1])
    try:
        proxied = httpx.Client(proxy=relay.url, timeout=10)
        assert proxied.get(f"http://127.0.0.1:{port}/").status_code == 403
        assert proxied.get(f"http://example.com:{port + 1}/").status_code == 403
        with socket.create_connection(("127.0.0.1", int(relay.url.rsplit(":", 1)[1])), timeout=10) as raw:
            raw.sendall(f"CONNECT 127.0.0.1:{port + 1} HTTP/1.1\r\n\r\n".encode("ascii"))
            assert raw.recv(100).startswith(b"HTTP/1.1 405")
    finally:
        relay.close()
        server.close()


@pytest.mark.slow
def test_sam_local_invoke_itself_runs_a_function_in_the_local_image(
    built: Path, invoke_image: str, scene: Scene
) -> None:
    """The command a person types: one `sam local invoke` (a container of its own) of the validator's sample."""
    sample = _load_sample("validator-plan.json")
    answer = run_invoke(_tool("sam"), built / "template.yaml", scene.stack, invoke_image, "ValidatorFunction", sample)
    verdict = _succeeded(answer)
    assert (verdict["mission_id"], verdict["verdict"]) == (sample["plan"]["mission_id"], "accepted")
