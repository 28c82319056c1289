"""The intention domain's code cannot reach credential code or mutate the account
(docs/ARCHITECTURE.md, "Trust domains"); the JWT-only layer holds no credential and touches no AWS API.

Every Python file under functions/agent and layers/aegis is parsed (not imported, so nothing can hide behind an
import-time condition) and checked for:
- imports of the other trust domains' packages, of token/crypto/HTTP libraries, or of secret-fetching helpers,
  including dynamic imports by name;
- boto3 clients of secret-holding services;
- calls of AWS operations that are not read-only, except the agent's own bookkeeping listed with a reason.
The IAM matrix (tests/unit/template/) proves the same from the other side: even such code would be denied.

layers/jwt (aegis_jwt, which the ops API ships without the AuthLayer) is checked the same way with its own list: it
may use HTTP and JWT libraries (verifying tokens is its job) but never aegis_auth, another function's package, a
secret-fetching helper, boto3 or an AWS call. aegis_auth builds on aegis_jwt, never the other way round.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import botocore.session
import pytest
from botocore import xform_name

from tests.support.stack import ROOT

AGENT_SIDE = (ROOT / "functions" / "agent", ROOT / "layers" / "aegis")
JWT_LAYER = (ROOT / "layers" / "jwt",)
# The plan validator holds no secret either (it gets only the AegisLayer) and writes nothing but its audit records.
VALIDATOR_SIDE = (ROOT / "functions" / "validator",)
# The ops API holds no secret either: AegisLayer and JwtLayer only, never the AuthLayer's hand-off code.
OPS_SIDE = (ROOT / "functions" / "ops",)

# Module prefixes the agent side may never import.
FORBIDDEN_MODULES: dict[str, str] = {
    "aegis_approval": "approval trust domain",
    "aegis_executor": "execution trust domain",
    "aegis_killswitch": "kill-switch trust domain",
    "aegis_auth": "client authentication, hand-offs and Token Vault (the AuthLayer)",
    "aegis_jwt": "token verification (the JwtLayer)",
    "aegis_local": "the local stack and its Auth0 emulator",
    "jose": "JWT handling",
    "jwt": "JWT handling",
    "authlib": "OAuth/JWT handling",
    "auth0": "Auth0 SDK (tokens, management API)",
    "auth0_ai": "Auth0 AI SDK (Token Vault)",
    "httpx": "an HTTP client could talk to the token endpoint",
    "requests": "an HTTP client could talk to the token endpoint",
    "urllib3": "an HTTP client could talk to the token endpoint",
    "urllib.request": "an HTTP client could talk to the token endpoint",
    "http.client": "an HTTP client could talk to the token endpoint",
    "aiohttp": "an HTTP client could talk to the token endpoint",
    "cryptography": "key material and decryption",
    "Crypto": "key material and decryption",
    "nacl": "key material and decryption",
    "aws_encryption_sdk": "decryption",
    "aws_lambda_powertools.utilities.parameters": "fetches secrets and parameters",
}
# boto3 clients/resources of services that hold or hand out secrets. (A kms client is fine: the key-rotation check
# reads through it, and kms decrypt/encrypt/generate_data_key are not read-only, so the call check refuses them.)
FORBIDDEN_CLIENTS: dict[str, str] = {
    "secretsmanager": "holds the Auth0 client secret",
    "ssm": "Parameter Store holds secrets",
    "sso": "hands out credentials",
    "sso-oidc": "hands out tokens",
    "cognito-identity": "hands out credentials",
}
# Services whose operation names count as AWS calls (everything the project's code could talk to).
AWS_SERVICES = (
    "cloudtrail",
    "cloudwatch",
    "config",
    "dynamodb",
    "ec2",
    "events",
    "iam",
    "kms",
    "lambda",
    "logs",
    "organizations",
    "s3",
    "s3control",
    "secretsmanager",
    "securityhub",
    "sns",
    "sqs",
    "ssm",
    "stepfunctions",
    "sts",
)
READ_ONLY_PREFIXES = ("describe_", "get_", "list_", "query", "scan", "batch_get_", "lookup_", "search_", "head_")
# Not-read-only operation names the agent side may call, and why.
ALLOWED_CALLS: dict[str, str] = {
    "put_item": "the agent's own tables (Checkpoints, Missions, Audit append); IAM limits the tables",
    "update_item": "the agent's own tables (Missions status); IAM limits the tables",
    "delete_item": "LangGraph checkpoint cleanup in the agent's Checkpoints table; IAM limits the table",
    "start_execution": "starting the mission's state machine is how the agent hands over",
    "assume_role": (
        "the agent reads a member account as its read-only AegisScanRole (aegis_agent.accounts); IAM limits it to "
        "that role name within the organization"
    ),
    "invoke": "LangGraph's Runnable.invoke shares lambda:Invoke's name; AgentRole has no lambda grant (IAM matrix)",
}
VALIDATOR_ALLOWED_CALLS: dict[str, str] = {
    "put_item": "its verdicts, appended to the Audit table; IAM limits it to that table",
}
# What the ops API may never import: the credential side and the other trust domains. It verifies callers' tokens
# with the JWT layer (which imports jose and httpx itself), so only those two are allowed beyond the agent side's.
OPS_FORBIDDEN_MODULES: dict[str, str] = {
    **{name: why for name, why in FORBIDDEN_MODULES.items() if name not in {"aegis_jwt"}},
    "aegis_agent": "intention trust domain (the ops API reads the agent's documents through the aegis layer)",
    "aegis_validator": "validation trust domain",
    "aegis_notifier": "notification trust domain",
    "aegis_auditchain": "audit chain trust domain",
}
OPS_ALLOWED_CALLS: dict[str, str] = {
    "put_events": "the aegis.scan and aegis.undo events that start a mission; IAM limits the sources",
}
# What the JWT layer may never import. Unlike the agent side it verifies tokens over HTTP, so jose, httpx and the
# cryptography under jose are its tools; secrets, other trust domains and AWS are not.
JWT_FORBIDDEN_MODULES: dict[str, str] = {
    "aegis_auth": "the AuthLayer builds on aegis_jwt, never the other way round",
    "aegis_agent": "intention trust domain",
    "aegis_approval": "approval trust domain",
    "aegis_executor": "execution trust domain",
    "aegis_killswitch": "kill-switch trust domain",
    "aegis_local": "the local stack and its Auth0 emulator",
    "boto3": "a verifier of tokens has no AWS API to call",
    "botocore": "a verifier of tokens has no AWS API to call",
    "aws_lambda_powertools.utilities.parameters": "fetches secrets and parameters",
}
# Not-read-only operation names the JWT layer may call, and why.
JWT_ALLOWED_CALLS: dict[str, str] = {
    "verify": "TokenVerifier.verify checks a JWT's signature in memory; it shares kms:Verify's name, and the layer "
    "imports no boto3",
}


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


@cache
def aws_operation_names() -> frozenset[str]:
    session = botocore.session.get_session()
    return frozenset(
        xform_name(operation)
        for service in AWS_SERVICES
        for operation in session.get_service_model(service).operation_names
    )


def _forbidden_module(name: str, forbidden: dict[str, str] = FORBIDDEN_MODULES) -> str | None:
    for prefix, why in forbidden.items():
        if name == prefix or name.startswith(prefix + "."):
            return why
    return None


def violations_in(
    source: str,
    path: str,
    allowed: dict[str, str] = ALLOWED_CALLS,
    forbidden: dict[str, str] = FORBIDDEN_MODULES,
) -> list[Violation]:
    found: list[Violation] = []
    for node in ast.walk(ast.parse(source, filename=path)):
        imported: list[str] = []
        if isinstance(node, ast.Import):
            imported = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in imported:
            why = _forbidden_module(name, forbidden)
            if why:
                found.append(Violation(path, node.lineno, f"imports {name} ({why})"))
                break
        if isinstance(node, ast.Call):
            found += _call_violations(node, path, allowed, forbidden)
    return found


def _call_violations(node: ast.Call, path: str, allowed: dict[str, str], forbidden: dict[str, str]) -> list[Violation]:
    found: list[Violation] = []
    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
    first = node.args[0] if node.args else None
    literal = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None
    why = _forbidden_module(literal, forbidden) if literal else None
    if name in ("import_module", "__import__") and literal and why:
        found.append(Violation(path, node.lineno, f"imports {literal} dynamically ({why})"))
    if name in ("client", "resource") and literal in FORBIDDEN_CLIENTS:
        found.append(Violation(path, node.lineno, f"creates a {literal} client ({FORBIDDEN_CLIENTS[literal]})"))
    operation = literal if name == "get_paginator" and literal else name
    if (
        isinstance(node.func, ast.Attribute)
        and operation in aws_operation_names()
        and not operation.startswith(READ_ONLY_PREFIXES)
        and operation not in allowed
    ):
        found.append(Violation(path, node.lineno, f"calls {operation}, an AWS operation that is not read-only"))
    return found


def agent_side_files(roots: tuple[Path, ...] = AGENT_SIDE) -> list[Path]:
    return sorted(path for root in roots for path in root.rglob("*.py") if "__pycache__" not in path.parts)


def test_the_agent_side_has_code_to_check() -> None:
    files = {path.relative_to(ROOT).as_posix() for path in agent_side_files()}
    assert "layers/aegis/aegis/catalogue/__init__.py" in files
    assert any(name.startswith("functions/agent/") for name in files)


def test_agent_side_reaches_no_credential_code_and_mutates_nothing() -> None:
    found = [
        str(v)
        for path in agent_side_files()
        for v in violations_in(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())
    ]
    assert found == []


def test_the_validator_reaches_no_credential_code_and_writes_only_its_audit_records() -> None:
    files = agent_side_files(VALIDATOR_SIDE)
    assert {path.name for path in files} >= {"app.py", "service.py", "rules.py"}
    found = [
        str(v)
        for path in files
        for v in violations_in(
            path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix(), VALIDATOR_ALLOWED_CALLS
        )
    ]
    assert found == []


@pytest.mark.parametrize(
    "snippet",
    [
        "boto3.client('stepfunctions').start_execution(stateMachineArn='arn', name='m-1', input='{}')",
        "table.update_item(Key={'mission_id': 'm-1'})",
        "from aegis_auth.rar import change_authorization_details",
        "boto3.client('secretsmanager')",
    ],
)
def test_the_validator_boundary_check_catches(snippet: str) -> None:
    assert violations_in(snippet, "functions/validator/aegis_validator/sneaky.py", VALIDATOR_ALLOWED_CALLS) != []


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("import aegis_executor.remediations", "imports aegis_executor.remediations (execution trust domain)"),
        ("from aegis_jwt.verify import TokenVerifier", "imports aegis_jwt.verify"),
        ("from aegis_auth.handoff import HandoffStore", "imports aegis_auth.handoff"),
        ("from jose import jwt", "imports jose (JWT handling)"),
        ("import httpx", "imports httpx"),
        ("from urllib import request", "imports urllib.request"),
        (
            "from aws_lambda_powertools.utilities import parameters",
            "imports aws_lambda_powertools.utilities.parameters",
        ),
        (
            "import importlib\nimportlib.import_module('aegis_killswitch.service')",
            "imports aegis_killswitch.service dynamically",
        ),
        ("import boto3\nboto3.client('secretsmanager')", "creates a secretsmanager client"),
        ("session.client('ssm', region_name='us-east-1')", "creates a ssm client"),
        ("kms.decrypt(CiphertextBlob=sealed, EncryptionContext=context)", "calls decrypt"),
        (
            "ec2.revoke_security_group_ingress(GroupId='sg-1', SecurityGroupRuleIds=['sgr-1'])",
            "calls revoke_security_group_ingress",
        ),
        (
            "sts.assume_role_with_web_identity(RoleArn=arn, WebIdentityToken=token)",
            "calls assume_role_with_web_identity",
        ),
        ("sfn.send_task_success(taskToken=token, output='{}')", "calls send_task_success"),
        ("table.meta.client.batch_write_item(RequestItems={})", "calls batch_write_item"),
        ("paginator = iam.get_paginator('delete_role')", "calls delete_role"),
    ],
)
def test_the_boundary_check_catches(snippet: str, expected: str) -> None:
    found = [str(v) for v in violations_in(snippet, "functions/agent/aegis_agent/sneaky.py")]
    assert len(found) == 1, found
    assert expected in found[0]


def test_the_boundary_check_lets_the_agent_do_its_job() -> None:
    allowed = """
from aegis.catalogue import parse_change
import boto3
table = boto3.resource("dynamodb").Table("missions")
table.put_item(Item={"mission_id": "m-1"}, ConditionExpression="attribute_not_exists(mission_id)")
table.query(KeyConditionExpression="x")
ec2 = boto3.client("ec2")
for page in ec2.get_paginator("describe_security_group_rules").paginate():
    pass
boto3.client("stepfunctions").start_execution(stateMachineArn="arn", name="m-1", input="{}")
graph.invoke({"mission_id": "m-1"})
"""
    assert violations_in(allowed, "functions/agent/aegis_agent/ok.py") == []


# --------------------------------------------------------------------------------------------------- the ops API


def ops_violations(source: str, path: str) -> list[Violation]:
    return violations_in(source, path, OPS_ALLOWED_CALLS, OPS_FORBIDDEN_MODULES)


def test_the_ops_api_reaches_no_credential_code_and_only_requests_missions() -> None:
    files = agent_side_files(OPS_SIDE)
    assert {path.name for path in files} >= {"app.py", "missions.py", "undo.py", "scans.py"}
    found = [
        str(v)
        for path in files
        for v in ops_violations(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())
    ]
    assert found == []


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("from aegis_auth.handoff import HandoffStore", "imports aegis_auth.handoff"),
        ("from aegis_agent.missions import MissionStore", "imports aegis_agent.missions"),
        ("import httpx", "imports httpx"),
        ("boto3.client('lambda').invoke(FunctionName='killswitch')", "calls invoke"),
        ("table.put_item(Item={})", "calls put_item"),
        ("boto3.client('secretsmanager')", "creates a secretsmanager client"),
    ],
)
def test_the_ops_boundary_check_catches(snippet: str, expected: str) -> None:
    found = [str(v) for v in ops_violations(snippet, "functions/ops/aegis_ops/sneaky.py")]
    assert len(found) == 1, found
    assert expected in found[0]


# --------------------------------------------------------------------------------------------------- the JWT layer


def jwt_layer_violations(source: str, path: str) -> list[Violation]:
    return violations_in(source, path, JWT_ALLOWED_CALLS, JWT_FORBIDDEN_MODULES)


def test_the_jwt_layer_reaches_no_credential_code_and_no_aws_api() -> None:
    files = agent_side_files(JWT_LAYER)
    assert {path.name for path in files} >= {"callers.py", "discovery.py", "errors.py", "verify.py"}
    found = [
        str(v)
        for path in files
        for v in jwt_layer_violations(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())
    ]
    assert found == []


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("from aegis_auth.oidc import load_client_secret", "imports aegis_auth.oidc"),
        ("import aegis_auth", "imports aegis_auth"),
        ("import importlib\nimportlib.import_module('aegis_auth.handoff')", "imports aegis_auth.handoff dynamically"),
        ("import boto3", "imports boto3"),
        ("from botocore.session import get_session", "imports botocore.session"),
        (
            "from aws_lambda_powertools.utilities import parameters",
            "imports aws_lambda_powertools.utilities.parameters",
        ),
        ("from aegis_killswitch.scopes import KILL_SCOPE", "imports aegis_killswitch.scopes"),
        ("client.put_events(Entries=[])", "calls put_events"),
        ("kms.decrypt(CiphertextBlob=sealed)", "calls decrypt"),
    ],
)
def test_the_jwt_layer_boundary_check_catches(snippet: str, expected: str) -> None:
    found = [str(v) for v in jwt_layer_violations(snippet, "layers/jwt/aegis_jwt/sneaky.py")]
    assert len(found) == 1, found
    assert expected in found[0]


def test_the_jwt_layer_boundary_check_lets_it_verify_tokens() -> None:
    allowed = """
import httpx
from jose import jwt
from aegis.named_errors import ConfigurationError
claims = verifier.verify(token, audience)
response = httpx.Client().get(jwks_uri)
"""
    assert jwt_layer_violations(allowed, "layers/jwt/aegis_jwt/ok.py") == []


def _top_level_definitions(root: Path) -> dict[str, str]:
    defined: dict[str, str] = {}
    for path in agent_side_files((root,)):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef | ast.FunctionDef):
                defined[node.name] = path.relative_to(ROOT).as_posix()
    return defined


def test_the_auth_layer_imports_the_jwt_code_and_keeps_no_copy_of_it() -> None:
    # A copy left in aegis_auth (a second TokenVerifier, a second discovery cache) would let the credential side and
    # the ops API verify tokens by different rules.
    jwt_defined = _top_level_definitions(ROOT / "layers" / "jwt")
    auth_defined = _top_level_definitions(ROOT / "layers" / "auth")
    public = {name for name in jwt_defined if not name.startswith("_")}
    assert {"TokenVerifier", "JwksCache", "ProviderMetadata", "CallerVerifier", "AuthError"} <= public
    # Same name, another job: aegis_auth.oidc's also forgets cached secrets, after calling aegis_jwt's.
    same_name_on_purpose = {"clear_caches"}
    assert sorted(public & set(auth_defined) - same_name_on_purpose) == []
    auth_imports = {
        node.module
        for path in agent_side_files((ROOT / "layers" / "auth",))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert {"aegis_jwt.errors", "aegis_jwt.discovery"} <= auth_imports
