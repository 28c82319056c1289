"""The kill switch's HTTP route on the local stack, as an operator uses it: a client-credentials token from the
default emulator tenant's operator client for the kill switch API (the stack's OpsApiAudience), sent to the
function URL the stack serves, where the real kill switch handler verifies it. Only the operation's scope opens it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from aegis.control import halt_state
from aegis_killswitch.scopes import KILL_SCOPE, REARM_SCOPE
from aegis_local import auth0
from aegis_local.auth0 import CLIENT_CREDENTIALS_GRANT, DEFAULT_OPERATOR_CLIENT_ID, DEFAULT_OPS_API_AUDIENCE
from aegis_local.aws.stack import LocalStack
from aegis_local.aws.template import load_template

TIMEOUT = 30.0


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack() as running:
        yield running


def operator_token(stack: LocalStack, scope: str) -> str:
    """A token of the tenant's kill switch operator, for the stack's OpsApiAudience, carrying only `scope`."""
    emulator = stack.emulator
    answer = httpx.post(
        f"{emulator.issuer}oauth/token",
        data={
            "grant_type": CLIENT_CREDENTIALS_GRANT,
            "client_id": DEFAULT_OPERATOR_CLIENT_ID,
            "client_secret": emulator.client_secret(DEFAULT_OPERATOR_CLIENT_ID),
            "audience": stack.parameters["OpsApiAudience"],
            "scope": scope,
        },
        timeout=TIMEOUT,
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def post(stack: LocalStack, path: str, token: str, reason: str) -> httpx.Response:
    return httpx.post(
        stack.function_urls()["KillSwitchFunction"] + path,
        json={"reason": reason},
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    )


def halted(stack: LocalStack) -> dict[str, Any] | None:
    return halt_state(stack.session().resource("dynamodb").Table(stack.physical_id("ControlTable")))


def remediation_role_policies(stack: LocalStack, role: str = "RemediationRole") -> set[str]:
    """The inline policies the kill switch attached to the role (those template.yaml declares left out)."""
    declared = {
        policy["PolicyName"]
        for policy in load_template(stack.template_path)["Resources"][role]["Properties"]["Policies"]
    }
    iam = stack.client("iam")
    names = set(iam.list_role_policies(RoleName=stack.physical_id(role))["PolicyNames"])
    assert declared <= names, f"{role} lacks its own policies {declared - names}"
    return names - declared


def test_the_tenant_defines_the_scopes_the_kill_switch_requires(stack: LocalStack) -> None:
    assert (auth0.KILLSWITCH_SCOPE, auth0.REARM_SCOPE) == (KILL_SCOPE, REARM_SCOPE)
    assert stack.parameters["OpsApiAudience"] == DEFAULT_OPS_API_AUDIENCE
    assert stack.function("KillSwitchFunction").environment["OPS_API_AUDIENCE"] == DEFAULT_OPS_API_AUDIENCE


def test_an_operator_token_halts_and_rearms_over_the_function_url_and_only_with_each_scope(
    stack: LocalStack,
) -> None:
    kill_token = operator_token(stack, KILL_SCOPE)
    rearm_token = operator_token(stack, REARM_SCOPE)

    refused = post(stack, "kill", rearm_token, "a re-arm token cannot halt")
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"] == "insufficient_scope"
    assert halted(stack) is None
    assert remediation_role_policies(stack) == set()

    killed = post(stack, "kill", kill_token, "local drill")

    assert killed.status_code == 200, killed.text
    report = killed.json()
    assert report["ok"] is True, [step for step in report["steps"] if not step["ok"]]
    assert report["halted"] is True
    state = halted(stack)
    assert state is not None
    assert state["engaged_by"] == f"{DEFAULT_OPERATOR_CLIENT_ID}@clients"
    # The scan and undo rules are off; the purge of ended missions' handoffs stays on, as part of the halt.
    assert {name: rule["State"] for name, rule in stack.rules().items()} == {
        "ScheduledScanRule": "DISABLED",
        "ScanRequestRule": "DISABLED",
        "UndoRequestRule": "DISABLED",
        "MissionEndedRule": "ENABLED",
    }
    for role in ("RemediationRole", "UndoRole"):
        assert remediation_role_policies(stack, role) == {"AegisHalted", "AegisDenyOlderSessions"}, role

    refused = post(stack, "rearm", kill_token, "a halt token cannot re-arm")
    assert refused.status_code == 403, refused.text
    assert halted(stack) is not None

    rearmed = post(stack, "rearm", rearm_token, "drill over")

    assert rearmed.status_code == 200, rearmed.text
    assert json.loads(rearmed.text)["halted"] is False
    assert halted(stack) is None
    assert {rule["State"] for rule in stack.rules().values()} == {"ENABLED"}
    # New sessions are allowed again; sessions issued before the halt stay denied.
    for role in ("RemediationRole", "UndoRole"):
        assert remediation_role_policies(stack, role) == {"AegisDenyOlderSessions"}, role
