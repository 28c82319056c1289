"""The approval client against an independent OpenID provider: panva/oidc-provider (Node.js), configured for CIBA
poll mode, Rich Authorization Requests and RS256 JWT access tokens. Nothing in the client knows it is not Auth0:
it gets an issuer URL and client credentials, as it would in production.

Opt-in, because it needs Node.js and an npm package the Python toolchain does not install:
`npm install --prefix tests/integration/approval/independent_provider`. Runs in real time (about 10 s a test).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from aegis_auth.handoff import HandoffStore
from aegis_auth.rar import AEGIS_CHANGE_DETAILS_TYPE, require_granted_digest
from aegis_jwt.discovery import provider_metadata
from aegis_jwt.verify import TokenVerifier
from tests.support.approval_world import RecordingTaskTokens, StepFunctions, World, create_tables
from tests.support.changes import one_of_each_kind

PROVIDER_DIR = Path(__file__).resolve().parent / "independent_provider"
AUDIENCE = "https://aegis.example/api"
APPROVER = "alice"
CHANGE = one_of_each_kind()[0]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("node") is None or not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir(),
        reason="needs node and `npm install --prefix tests/integration/approval/independent_provider`",
    ),
]


class WallClock:
    def __call__(self) -> float:
        return time.time()

    def advance(self, seconds: float) -> float:
        time.sleep(seconds)
        return time.time()


def start_provider(auth_method: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    process = subprocess.Popen(
        ["node", "server.mjs", "0"],
        cwd=PROVIDER_DIR,
        env={"PATH": os.environ.get("PATH", ""), "AUTH_METHOD": auth_method},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("{"):
            return process, json.loads(line)
    process.kill()
    raise RuntimeError("the independent provider did not start")


@pytest.fixture(params=["client_secret_post", "client_secret_basic"])
def provider(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    process, details = start_provider(request.param)
    details["auth_method"] = request.param
    try:
        yield details
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def world(aws: boto3.Session) -> World:
    key_id = str(boto3.client("kms").create_key()["KeyMetadata"]["KeyId"])
    return World(
        clock=WallClock(),
        tables=create_tables(),
        key_id=key_id,
        stepfunctions=StepFunctions(approver=APPROVER),
        secret="",
    )


def authentication_device(issuer: str, approve: bool, after: float) -> threading.Thread:
    def act() -> None:
        deadline = time.time() + 30
        while time.time() < deadline:
            pending = httpx.get(f"{issuer}/__test/pending").json()
            if pending:
                time.sleep(after)
                params = {"auth_req_id": pending[0]["auth_req_id"], "approve": str(approve).lower()}
                httpx.get(f"{issuer}/__test/decide", params=params)
                return
            time.sleep(0.2)

    thread = threading.Thread(target=act, daemon=True)
    thread.start()
    return thread


def run(
    world: World, provider: dict[str, str], login_hint_format: str, requested_expiry: int = 60
) -> tuple[dict[str, Any], dict[str, str]]:
    world.secret = provider["client_secret"]
    settings = world.settings(
        provider["issuer"],
        provider["client_id"],
        AUDIENCE,
        APPROVER,
        client_auth_method=provider["auth_method"],
        login_hint_format=login_hint_format,
        requested_expiry=requested_expiry,
    )
    http = httpx.Client(timeout=5)
    service = world.service(settings, http, tasks=RecordingTaskTokens(world.stepfunctions.sfn))
    event = world.stepfunctions.start(CHANGE)
    started = time.time()
    result = service.handle(event, lambda: 900 - (time.time() - started))
    return event, result


@pytest.mark.parametrize("login_hint_format", ["iss_sub", "opaque"])
def test_approval_through_an_independent_provider(
    world: World, provider: dict[str, str], login_hint_format: str
) -> None:
    authentication_device(provider["issuer"], approve=True, after=6)
    event, result = run(world, provider, login_hint_format)
    assert result == {"outcome": "approved"}
    execution = world.stepfunctions.finished(event["execution_arn"])
    output = json.loads(execution["output"])
    assert set(output) == {"decision", "approver_sub", "approved_at", "handoffs"}
    opened = HandoffStore(world.tables["Handoff"], boto3.client("kms")).consume(
        output["handoffs"][CHANGE.change_id], execution_arn=event["execution_arn"], change_digest=CHANGE.digest
    )
    verifier = TokenVerifier.for_provider(provider_metadata(provider["issuer"]))
    claims = verifier.verify(opened.token_response["access_token"], AUDIENCE)
    require_granted_digest(claims, CHANGE.digest)
    assert claims["sub"] == APPROVER
    assert claims["authorization_details"][0]["type"] == AEGIS_CHANGE_DETAILS_TYPE


def test_denial_through_an_independent_provider(world: World, provider: dict[str, str]) -> None:
    authentication_device(provider["issuer"], approve=False, after=1)
    event, result = run(world, provider, "iss_sub")
    assert result == {"outcome": "denied"}
    assert world.stepfunctions.finished(event["execution_arn"])["error"] == "Approval.Denied"
    assert world.sealed_handoffs() == []


def test_expiry_through_an_independent_provider(world: World, provider: dict[str, str]) -> None:
    event, result = run(world, provider, "iss_sub", requested_expiry=12)
    assert result == {"outcome": "expired"}
    assert world.stepfunctions.finished(event["execution_arn"])["error"] == "Approval.Expired"
