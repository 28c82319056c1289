"""`aegis-local pending`, `approve` and `deny`: the phone commands against a real emulator."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from aegis.approvals.policy import ApprovalPolicy
from aegis.approvals.requests import plan_requests
from aegis_auth.rar import batch_authorization_details, batch_binding_message
from aegis_local.auth0 import (
    AEGIS_CHANGE_TYPE,
    DEFAULT_APPROVER_SUB,
    Auth0Emulator,
    ManualClock,
)
from aegis_local.auth0.tenant import ciba as ciba_module
from aegis_local.cli.main import main
from tests.support.approval_plans import variants
from tests.support.auth0_wire import Wire
from tests.unit.local.phone_emulator import approval_wire, ask_approval, poll

CLOCK = ManualClock()


@pytest.fixture(scope="module")
def wire() -> Iterator[Wire]:
    with approval_wire(CLOCK, ciba_requests_per_user_per_minute=100) as running:
        yield running


@pytest.fixture
def emulator(wire: Wire) -> Auth0Emulator:
    """The module's emulator, with nothing pending for the approver: each test asks its own requests."""
    for request in wire.emulator.pending(DEFAULT_APPROVER_SUB):
        wire.emulator.deny(request["auth_req_id"])
    return wire.emulator


@pytest.fixture(autouse=True)
def _no_stack_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AEGIS_LOCAL_ISSUER", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def start_request(wire: Wire, message: str) -> str:
    return ask_approval(
        wire, message, [{"type": AEGIS_CHANGE_TYPE, "change_id": "chg-1", "digest": "d" * 64, "risk": "high"}]
    )


def test_pending_lists_what_the_approver_is_asked(
    emulator: Auth0Emulator, wire: Wire, capsys: pytest.CaptureFixture[str]
) -> None:
    auth_req_id = start_request(wire, "Close SSH on sg-1")

    assert main(["pending", "--issuer", emulator.issuer]) == 0
    out = capsys.readouterr().out
    assert auth_req_id in out
    assert "Close SSH on sg-1" in out
    assert "change_id=chg-1" in out

    assert main(["pending", "--issuer", emulator.issuer, "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["auth_req_id"] == auth_req_id
    assert listed["authorization_details"][0]["risk"] == "high"


def test_approve_answers_the_only_pending_request(
    emulator: Auth0Emulator, wire: Wire, capsys: pytest.CaptureFixture[str]
) -> None:
    auth_req_id = start_request(wire, "Enable EBS encryption")

    assert main(["approve", "--issuer", emulator.issuer]) == 0
    assert f"{auth_req_id}: approved" in capsys.readouterr().out
    # The approval is real: the backchannel client now gets its tokens.
    token = poll(wire, auth_req_id)
    assert token.status_code == 200, token.text
    assert "access_token" in token.json()


def test_deny_by_id_makes_the_client_see_access_denied(
    emulator: Auth0Emulator, wire: Wire, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = start_request(wire, "Rotate key one")
    denied = start_request(wire, "Rotate key two")

    assert main(["deny", denied, "--issuer", emulator.issuer]) == 0
    assert f"{denied}: denied" in capsys.readouterr().out
    assert poll(wire, denied).json()["error"] == "access_denied"
    assert [r["auth_req_id"] for r in emulator.pending(DEFAULT_APPROVER_SUB)] == [kept]


class _IdsBeginningWith:
    """`secrets` as the emulator's tenant uses it for CIBA request ids, except that each new id begins with `prefix`:
    what one real id in 64 does by chance (base64url has '-' among its 64 characters)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __getattr__(self, name: str) -> Any:
        return getattr(secrets, name)

    def token_urlsafe(self, nbytes: int | None = None) -> str:
        value = secrets.token_urlsafe(nbytes)
        return self.prefix + value[len(self.prefix) :]


@pytest.mark.parametrize("prefix", ["-vFFz", "-h", "--all", "--user", "--"])
@pytest.mark.parametrize("verb", ["approve", "deny"])
def test_an_id_beginning_with_a_dash_is_an_id(
    emulator: Auth0Emulator,
    wire: Wire,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    verb: str,
    prefix: str,
) -> None:
    kept = start_request(wire, "Rotate key one")
    # The id first, last, and after `--`, as a user would type it.
    for placed in ("first", "last", "after --"):
        with monkeypatch.context() as planted:
            planted.setattr(ciba_module, "secrets", _IdsBeginningWith(prefix))
            answered = start_request(wire, "Rotate key two")
        assert answered.startswith(prefix)
        argv = {
            "first": [verb, answered, "--issuer", emulator.issuer],
            "last": [verb, "--issuer", emulator.issuer, answered],
            "after --": [verb, "--issuer", emulator.issuer, "--", answered],
        }[placed]

        assert main(argv) == 0, capsys.readouterr().err
        assert f"{answered}: {'approved' if verb == 'approve' else 'denied'}" in capsys.readouterr().out
        polled = poll(wire, answered)
        if verb == "approve":
            assert polled.status_code == 200, polled.text
        else:
            assert polled.json()["error"] == "access_denied"
        assert [r["auth_req_id"] for r in emulator.pending(DEFAULT_APPROVER_SUB)] == [kept]


def test_several_pending_requests_need_an_id_or_all(
    emulator: Auth0Emulator, wire: Wire, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = start_request(wire, "Change one")
    second = start_request(wire, "Change two")
    monkeypatch.setenv("AEGIS_LOCAL_ISSUER", emulator.issuer)  # as `up` tells the user to export

    assert main(["approve"]) == 1
    assert "2 pending requests" in capsys.readouterr().err
    assert main(["approve", "--all"]) == 0
    out = capsys.readouterr().out
    assert f"{first}: approved" in out
    assert f"{second}: approved" in out
    assert emulator.pending(DEFAULT_APPROVER_SUB) == []


def test_phone_errors_are_one_line_and_exit_1(emulator: Auth0Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["approve", "no-such-request", "--issuer", emulator.issuer]) == 1
    assert "404 unknown_request" in capsys.readouterr().err
    assert main(["pending", "--issuer", emulator.issuer, "--user", "auth0|nobody"]) == 1
    assert "unknown_user" in capsys.readouterr().err
    assert main(["pending"]) == 1
    assert "--issuer" in capsys.readouterr().err
    assert main(["approve", "--issuer", emulator.issuer]) == 1
    assert "no pending requests" in capsys.readouterr().err


def test_pending_shows_a_batchs_properties_in_the_phones_order(
    emulator: Auth0Emulator, wire: Wire, capsys: pytest.CaptureFixture[str]
) -> None:
    changes = variants("enable-kms-key-rotation", 3)
    policy = ApprovalPolicy(approver_subs=(DEFAULT_APPROVER_SUB,), review_url_base="https://console.example/")
    [request] = plan_requests("m-00000000000000000001", changes, policy)
    message = batch_binding_message(request)
    ask_approval(wire, message, batch_authorization_details("m-00000000000000000001", request))

    assert main(["pending", "--issuer", emulator.issuer]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(message in line for line in lines)
    labels = ["Mission", "Changes", "By kind", "Highest risk", "Account", "Review", "Merkle root (SHA-256)"]
    shown = [next(i for i, line in enumerate(lines) if line.strip().startswith(label)) for label in labels]
    assert shown == sorted(shown)  # the seven properties, in the phone's order
    assert any(line.strip().endswith(str(request.root)) for line in lines)
    assert any("#/missions/m-00000000000000000001/requests/r001" in line for line in lines)
    assert any(line.strip() == "Approve these 3 AWS changes as reviewed in the console" for line in lines)
