"""`aegis-local up` run as the console script a user would type, read and stopped with Ctrl-C; `seed` into a real
moto server; and `up`'s refusal of a malformed parameter."""

from __future__ import annotations

import json
import os
import queue
import re
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

from aegis_local.auth0 import DEFAULT_APPROVER_SUB
from aegis_local.aws.stack import default_template_path
from aegis_local.aws.template import load_template
from aegis_local.cli.main import main

CONSOLE_SCRIPT = Path(sys.executable).parent / "aegis-local"


@pytest.fixture(autouse=True)
def _no_stack_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AEGIS_LOCAL_ISSUER", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def test_a_malformed_parameter_is_refused_before_anything_starts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["up", "--parameter", "NoEqualsSign"]) == 1
    assert "NAME=VALUE" in capsys.readouterr().err


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
        # The operator commands' settings: the ops API, where to log in, for which audience, with which application.
        exports = dict(
            word.split("=", 1) for line in printed if line.strip().startswith("export ") for word in line.split()[1:]
        )
        ops_api = field(printed, "HTTP API OpsApi:")
        assert exports["AEGIS_API_URL"] == ops_api
        assert exports["AEGIS_ISSUER"] == issuer
        assert exports["AEGIS_API_AUDIENCE"] == "https://aegis.local/ops"
        assert exports["AEGIS_CLI_CLIENT_ID"] == "aegis-cli"
        assert httpx.get(f"{ops_api}/missions", timeout=30).status_code == 401
        assert "  aegis-local login" in output
        # Who may sign in to this run's tenant, with the password generated for it.
        assert re.search(r"^  operator@aegis\.local +password \S{12,}$", output, re.MULTILINE)
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
        assert exports["AEGIS_AUDIT_TABLE"] == field(printed, "AuditTable ")  # what `audit verify` reads
        machines = boto3.client("stepfunctions", **aws).list_state_machines()["stateMachines"]
        # The mission's state machine, and the organization scan's beside it.
        arns = sorted(machine["stateMachineArn"] for machine in machines)
        assert arns == sorted([state_machine, state_machine.removesuffix("-mission") + "-org-scan"])
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

        # What is published to the stack's topic is printed as it comes and kept in reports/notifications.jsonl.
        [topic] = [t["TopicArn"] for t in boto3.client("sns", **aws).list_topics()["Topics"]]
        boto3.client("sns", **aws).publish(TopicArn=topic, Subject="aegis-local: hello", Message="{}")
        read_until(lines, "notify  aegis-local: hello", timeout=10)
        kept = (tmp_path / "reports" / "notifications.jsonl").read_text().splitlines()
        assert [json.loads(line)["subject"] for line in kept] == ["aegis-local: hello"]

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
        assert "stopped" in read_until(lines, "stopped", timeout=5)[-1]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
