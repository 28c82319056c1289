"""`aegis-local`: the phone commands against a real emulator, seeding a real moto server, and `up` run as the
console script a user would type, read and stopped with Ctrl-C."""

from __future__ import annotations

import json
import os
import queue
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from aegis_local.auth0 import (
    AEGIS_CHANGE_TYPE,
    CIBA_GRANT,
    DEFAULT_API_AUDIENCE,
    DEFAULT_APPROVAL_CLIENT_ID,
    DEFAULT_APPROVER_SUB,
    Auth0Emulator,
    EmulatorConfig,
    ManualClock,
)
from aegis_local.auth0 import tenant as tenant_module
from aegis_local.aws.stack import default_template_path
from aegis_local.aws.template import load_template
from aegis_local.cli.main import COMMAND_MODULES, build_parser, main

CONSOLE_SCRIPT = Path(sys.executable).parent / "aegis-local"


CLOCK = ManualClock()


@pytest.fixture(scope="module")
def emulator() -> Iterator[Auth0Emulator]:
    config = EmulatorConfig.default().model_copy(update={"ciba_requests_per_user_per_minute": 100})
    with Auth0Emulator(config, clock=CLOCK) as running:
        yield running


@pytest.fixture(autouse=True)
def _no_stack_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AEGIS_LOCAL_ISSUER", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def start_request(emulator: Auth0Emulator, message: str) -> str:
    """What the approval function does: a CIBA request for the approver, with the change as RAR details."""
    response = httpx.post(
        f"{emulator.issuer}bc-authorize",
        data={
            "client_id": DEFAULT_APPROVAL_CLIENT_ID,
            "client_secret": emulator.client_secret(DEFAULT_APPROVAL_CLIENT_ID),
            "scope": "openid",
            "login_hint": json.dumps({"format": "iss_sub", "iss": emulator.issuer, "sub": DEFAULT_APPROVER_SUB}),
            "binding_message": message,
            "audience": DEFAULT_API_AUDIENCE,
            "authorization_details": json.dumps(
                [{"type": AEGIS_CHANGE_TYPE, "change_id": "chg-1", "digest": "d" * 64, "risk": "high"}]
            ),
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["auth_req_id"])


def poll(emulator: Auth0Emulator, auth_req_id: str) -> httpx.Response:
    # The backchannel client waits its polling interval before asking, as the approval function does.
    CLOCK.advance(emulator.config.ciba_interval_seconds)
    return httpx.post(
        f"{emulator.issuer}oauth/token",
        data={
            "grant_type": CIBA_GRANT,
            "auth_req_id": auth_req_id,
            "client_id": DEFAULT_APPROVAL_CLIENT_ID,
            "client_secret": emulator.client_secret(DEFAULT_APPROVAL_CLIENT_ID),
        },
        timeout=10,
    )


def clear_pending(emulator: Auth0Emulator) -> None:
    for request in emulator.pending(DEFAULT_APPROVER_SUB):
        emulator.deny(request["auth_req_id"])


# ---------------------------------------------------------------------------------------------------------------
# The parser


def test_every_command_is_registered_and_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {"up", "seed", "pending", "approve", "deny", "scan-account"} <= set(commands)
    assert COMMAND_MODULES  # subcommands of later issues plug in here
    assert main(["no-such-command"]) == 2
    assert main([]) == 2
    assert main(["--help"]) == 0
    assert "up" in capsys.readouterr().out


def test_a_malformed_parameter_is_refused_before_anything_starts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["up", "--parameter", "NoEqualsSign"]) == 1
    assert "NAME=VALUE" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------------
# The phone


def test_pending_lists_what_the_approver_is_asked(emulator: Auth0Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    clear_pending(emulator)
    auth_req_id = start_request(emulator, "Close SSH on sg-1")

    assert main(["pending", "--issuer", emulator.issuer]) == 0
    out = capsys.readouterr().out
    assert auth_req_id in out
    assert "Close SSH on sg-1" in out
    assert "change_id=chg-1" in out

    assert main(["pending", "--issuer", emulator.issuer, "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["auth_req_id"] == auth_req_id
    assert listed["authorization_details"][0]["risk"] == "high"


def test_approve_answers_the_only_pending_request(emulator: Auth0Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    clear_pending(emulator)
    auth_req_id = start_request(emulator, "Enable EBS encryption")

    assert main(["approve", "--issuer", emulator.issuer]) == 0
    assert f"{auth_req_id}: approved" in capsys.readouterr().out
    # The approval is real: the backchannel client now gets its tokens.
    token = poll(emulator, auth_req_id)
    assert token.status_code == 200, token.text
    assert "access_token" in token.json()


def test_deny_by_id_makes_the_client_see_access_denied(
    emulator: Auth0Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    clear_pending(emulator)
    kept = start_request(emulator, "Rotate key one")
    denied = start_request(emulator, "Rotate key two")

    assert main(["deny", denied, "--issuer", emulator.issuer]) == 0
    assert f"{denied}: denied" in capsys.readouterr().out
    assert poll(emulator, denied).json()["error"] == "access_denied"
    assert [r["auth_req_id"] for r in emulator.pending(DEFAULT_APPROVER_SUB)] == [kept]


class _IdsBeginningWith:
    """`secrets` as the emulator's tenant uses it, except that each new id begins with `prefix`: what one real id in
    64 does by chance (base64url has '-' among its 64 characters)."""

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
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    verb: str,
    prefix: str,
) -> None:
    clear_pending(emulator)
    kept = start_request(emulator, "Rotate key one")
    # The id first, last, and after `--`, as a user would type it.
    for placed in ("first", "last", "after --"):
        with monkeypatch.context() as planted:
            planted.setattr(tenant_module, "secrets", _IdsBeginningWith(prefix))
            answered = start_request(emulator, "Rotate key two")
        assert answered.startswith(prefix)
        argv = {
            "first": [verb, answered, "--issuer", emulator.issuer],
            "last": [verb, "--issuer", emulator.issuer, answered],
            "after --": [verb, "--issuer", emulator.issuer, "--", answered],
        }[placed]

        assert main(argv) == 0, capsys.readouterr().err
        assert f"{answered}: {'approved' if verb == 'approve' else 'denied'}" in capsys.readouterr().out
        polled = poll(emulator, answered)
        if verb == "approve":
            assert polled.status_code == 200, polled.text
        else:
            assert polled.json()["error"] == "access_denied"
        assert [r["auth_req_id"] for r in emulator.pending(DEFAULT_APPROVER_SUB)] == [kept]


def test_several_pending_requests_need_an_id_or_all(
    emulator: Auth0Emulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clear_pending(emulator)
    first = start_request(emulator, "Change one")
    second = start_request(emulator, "Change two")
    monkeypatch.setenv("AEGIS_LOCAL_ISSUER", emulator.issuer)  # as `up` tells the user to export

    assert main(["approve"]) == 1
    assert "2 pending requests" in capsys.readouterr().err
    assert main(["approve", "--all"]) == 0
    out = capsys.readouterr().out
    assert f"{first}: approved" in out
    assert f"{second}: approved" in out
    assert emulator.pending(DEFAULT_APPROVER_SUB) == []


def test_phone_errors_are_one_line_and_exit_1(emulator: Auth0Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    clear_pending(emulator)
    assert main(["approve", "no-such-request", "--issuer", emulator.issuer]) == 1
    assert "404 unknown_request" in capsys.readouterr().err
    assert main(["pending", "--issuer", emulator.issuer, "--user", "auth0|nobody"]) == 1
    assert "unknown_user" in capsys.readouterr().err
    assert main(["pending"]) == 1
    assert "--issuer" in capsys.readouterr().err
    assert main(["approve", "--issuer", emulator.issuer]) == 1
    assert "no pending requests" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------------
# Seeding a running moto server


@pytest.fixture
def moto_server() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    try:
        yield url
    finally:
        httpx.post(f"{url}/moto-api/reset", timeout=5)
        server.stop()


def test_seed_creates_the_vulnerable_account_once(moto_server: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["seed", "--endpoint-url", moto_server, "--json"]) == 0
    seeded = json.loads(capsys.readouterr().out)
    ec2 = boto3.client(
        "ec2",
        endpoint_url=moto_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    groups = {group["GroupId"] for group in ec2.describe_security_groups()["SecurityGroups"]}
    assert set(seeded["security_groups"].values()) <= groups
    assert seeded["expected_findings"]

    assert main(["seed", "--endpoint-url", moto_server]) == 1
    assert "seeded already" in capsys.readouterr().err


def test_seed_needs_a_reachable_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["seed"]) == 1
    assert "--endpoint-url" in capsys.readouterr().err
    assert main(["seed", "--endpoint-url", "http://127.0.0.1:9"]) == 1
    assert "cannot reach" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------------
# `aegis-local up`, as a user runs it


def read_until(lines: queue.Queue[str | None], marker: str, timeout: float) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line.rstrip("\n"))
        if marker in line:
            return seen
    raise AssertionError(f"{marker!r} not printed within {timeout}s; got:\n" + "\n".join(seen))


def field(lines: list[str], label: str) -> str:
    [value] = [line.split()[-1] for line in lines if line.strip().startswith(label)]
    return value


def test_up_starts_the_stack_prints_its_endpoints_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "MOTO_"))}
    environment["AEGIS_LOCAL_STATE_DIR"] = str(tmp_path / "state")  # where the other commands find the stack
    process = subprocess.Popen(
        [str(CONSOLE_SCRIPT), "up"],
        cwd=tmp_path,  # the checkout's template is found from the package, not the working directory
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    try:
        printed = read_until(lines, "Press Ctrl-C to stop.", timeout=90)
        output = "\n".join(printed)
        moto_url = field(printed, "moto (AWS APIs)")
        issuer = field(printed, "Auth0 issuer")
        state_machine = field(printed, "MissionStateMachine ")
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", moto_url)
        assert f"export AWS_ENDPOINT_URL={moto_url}" in output
        assert f"AEGIS_LOCAL_ISSUER={issuer}" in output
        kill_switch_url = field(printed, "URL of KillSwitchFunction:")
        assert httpx.post(f"{kill_switch_url}kill", json={}, timeout=30).status_code == 401
        functions = [r for r in load_template(default_template_path())["Resources"].values() if "Function" in r["Type"]]
        assert f"all {len(functions)} handlers load" in output

        aws: dict[str, Any] = {
            "endpoint_url": moto_url,
            "region_name": "us-east-1",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        tables = boto3.client("dynamodb", **aws).list_tables()["TableNames"]
        assert field(printed, "AuditTable ") in tables
        machines = boto3.client("stepfunctions", **aws).list_state_machines()["stateMachines"]
        assert [machine["stateMachineArn"] for machine in machines] == [state_machine]
        assert httpx.get(f"{issuer}.well-known/openid-configuration", timeout=5).json()["issuer"] == issuer
        phone = field(printed, f"phone of {DEFAULT_APPROVER_SUB}:")
        assert httpx.get(phone, timeout=5).json() == {"requests": []}
        # The endpoints are printed, the Auth0 client secrets (the approval application's, the executor's, the kill
        # switch's) never.
        secretsmanager = boto3.client("secretsmanager", **aws)
        stored = secretsmanager.list_secrets()["SecretList"]
        assert len(stored) == 3
        for secret in stored:
            assert secretsmanager.get_secret_value(SecretId=secret["ARN"])["SecretString"] not in output

        assert (tmp_path / "state" / "aegis-local.json").is_file()

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
        assert not (tmp_path / "state" / "aegis-local.json").exists()
        assert "stopped" in read_until(lines, "stopped", timeout=5)[-1]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
