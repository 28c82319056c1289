"""The operator commands against a running local stack, through its ops HTTP API and the gateway's JWT rules, with
tokens from a real `aegis-local login` (the console script, the device authorization grant against the Auth0
emulator, the user code confirmed on its activation page): the operator scans, lists, shows and audits a dry run,
triggers and re-arms the kill switch; a viewer is refused the kill switch with the scope named; an undo of a change
never applied is refused with its reason; `audit verify` and `leak-audit` read the stack's AWS side directly."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aegis_local.auth0 import EmulatorConfig
from aegis_local.aws.stack import LocalStack
from aegis_local.cli.common import EXIT_AUTH, EXIT_CONFLICT, EXIT_FORBIDDEN, EXIT_OK, endpoint_session
from aegis_local.cli.main import main
from aegis_local.cli.up import describe_stack
from aegis_local.scenario.seed import seed_account
from tests.support.browser_login import approve_device_code
from tests.support.waiting import wait_for

CONSOLE_SCRIPT = Path(sys.executable).parent / "aegis-local"
OPERATOR = "operator@aegis.local"
VIEWER = "viewer@aegis.local"
LOGIN_TIMEOUT_SECONDS = 60


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    # The device grant's poll interval at its floor, so that a login takes a second or two, not five.
    config = EmulatorConfig.default().model_copy(update={"device_code_interval_seconds": 1})
    with LocalStack(emulator_config=config) as running:
        seed_account(endpoint_session(running.endpoints.moto_url, running.endpoints.region), running.endpoints.region)
        yield running


@pytest.fixture(scope="module")
def operator_environment(stack: LocalStack) -> dict[str, str]:
    """What `aegis-local up` prints to export for this stack (its own `describe_stack`, not hand-written)."""
    return dict(describe_stack(stack)["environment"])


def login(
    stack: LocalStack, environment: dict[str, str], cache_home: Path, email: str, *, approve: bool = True
) -> tuple[int, str]:
    """Run `aegis-local login` as a user would, confirm (or deny) its code on the activation page as `email`; its
    exit status and output."""
    child_environment = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "MOTO_"))}
    child_environment |= environment | {"XDG_CACHE_HOME": str(cache_home)}
    process = subprocess.Popen(
        [str(CONSOLE_SCRIPT), "login"],
        env=child_environment,
        stdin=subprocess.DEVNULL,
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
    printed: list[str] = []
    try:
        user_code = None
        while user_code is None:
            line = lines.get(timeout=LOGIN_TIMEOUT_SECONDS)
            assert line is not None, "aegis-local login ended before printing a code:\n" + "".join(printed)
            printed.append(line)
            found = re.search(r"open (\S+) and enter the code (\S+)", line)
            if found:
                assert found.group(1).startswith(stack.endpoints.issuer)
                user_code = found.group(2)
        password = stack.emulator.config.user_password(email)
        approve_device_code(stack.endpoints.issuer, user_code, email, password, approve=approve)
        code = process.wait(timeout=LOGIN_TIMEOUT_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    while (line := lines.get(timeout=5)) is not None:
        printed.append(line)
    return code, "".join(printed)


@pytest.fixture(scope="module")
def operator_cache(
    stack: LocalStack, operator_environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    cache_home = tmp_path_factory.mktemp("operator-cache")
    code, output = login(stack, operator_environment, cache_home, OPERATOR)
    assert code == EXIT_OK, output
    assert "Logged in as auth0|aegis-operator" in output
    assert "aegis:killswitch" in output
    [token_file] = (cache_home / "aegis-local").iterdir()
    token = json.loads(token_file.read_text())["access_token"]
    assert token not in output  # the token is cached, never printed
    assert token_file.stat().st_mode & 0o077 == 0
    return cache_home


@pytest.fixture(scope="module")
def viewer_cache(
    stack: LocalStack, operator_environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    cache_home = tmp_path_factory.mktemp("viewer-cache")
    code, output = login(stack, operator_environment, cache_home, VIEWER)
    assert code == EXIT_OK, output
    assert "Logged in as auth0|aegis-viewer" in output
    assert "aegis:killswitch" not in output  # asked for, not granted: the viewer holds aegis:read and aegis:audit
    return cache_home


@pytest.fixture
def as_user(monkeypatch: pytest.MonkeyPatch, operator_environment: dict[str, str]) -> Any:
    """Point the in-process commands at the stack, with the token cache of one logged-in user."""
    for name in [name for name in os.environ if name.startswith("AEGIS_")]:
        monkeypatch.delenv(name)
    for name, value in operator_environment.items():
        if name.startswith("AEGIS_"):
            monkeypatch.setenv(name, value)

    def use(cache_home: Path) -> None:
        monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))

    return use


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_the_operator_scans_lists_shows_and_audits_a_dry_run(
    stack: LocalStack,
    operator_cache: Path,
    as_user: Any,
    operator_environment: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    as_user(operator_cache)
    code, output = run(capsys, "scan", "--check", "kms-key-rotation-off", "--dry-run")
    assert code == EXIT_OK, output
    mission_id = output.strip().rsplit(" ", 1)[-1]
    assert re.fullmatch(r"m-[0-9a-f]{20}", mission_id), output

    def completed() -> str | None:
        code, listed = run(capsys, "missions", "--all")
        return listed if code == EXIT_OK and f"{mission_id}  completed" in listed else None

    listed = wait_for(completed, "the dry run to complete", timeout=90)
    assert "(dry run)" in listed

    code, shown = run(capsys, "show", mission_id, "--html", str(tmp_path / "r.html"))
    assert code == EXIT_OK, shown
    assert f"Mission {mission_id}: completed" in shown
    assert "kms-key-rotation-off" in shown
    assert (tmp_path / "r.html").read_text().startswith("<!doctype html>")
    code, document = run(capsys, "show", mission_id, "--json")
    assert code == EXIT_OK
    assert json.loads(document)["mission"]["mission_id"] == mission_id

    code, trail = run(capsys, "audit", mission_id)
    assert code == EXIT_OK, trail
    assert "mission.created" in trail
    assert "mission.completed" in trail
    code, records = run(capsys, "audit", "--mission", mission_id, "--limit", "1", "--json")
    assert code == EXIT_OK
    page = json.loads(records)
    assert len(page["records"]) == 1
    assert page["next"]

    # The hash chain, recomputed from the tables with the stack's AWS endpoint (as `up` exports it), then a
    # record edited behind the API's back is named.
    for name in ("AWS_ENDPOINT_URL", "AEGIS_AUDIT_TABLE", "AEGIS_MISSIONS_TABLE"):
        monkeypatch.setenv(name, operator_environment[name])
    code, verdict = run(capsys, "audit", "verify", mission_id)
    assert code == EXIT_OK, verdict
    assert "intact" in verdict
    moto_url = stack.endpoints.moto_url
    dynamodb = endpoint_session(moto_url, stack.endpoints.region).resource("dynamodb", endpoint_url=moto_url)
    audit = dynamodb.Table(operator_environment["AEGIS_AUDIT_TABLE"])
    trail = audit.query(KeyConditionExpression="mission_id = :m", ExpressionAttributeValues={":m": mission_id})
    first = min(trail["Items"], key=lambda record: str(record["seq"]))
    audit.update_item(
        Key={"mission_id": mission_id, "seq": first["seq"]},
        UpdateExpression="SET outcome = :o",
        ExpressionAttributeValues={":o": "tampered"},
    )
    code, verdict = run(capsys, "audit", "verify", mission_id, "--json")
    assert code == 1, verdict
    problem = json.loads(verdict)["problem"]
    assert (problem["kind"], problem["seq"]) == ("changed", first["seq"])


def test_the_operator_triggers_and_rearms_the_kill_switch(
    operator_cache: Path, as_user: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    as_user(operator_cache)
    code, output = run(capsys, "kill", "--reason", "cli integration test")
    assert code == EXIT_OK, output
    assert "halted=True ok=True" in output
    code, output = run(capsys, "rearm", "--reason", "cli integration test over")
    assert code == EXIT_OK, output
    assert "halted=False ok=True" in output
    code, trail = run(capsys, "audit", "--mission", "killswitch", "--all")
    assert code == EXIT_OK, trail
    assert "killswitch.trigger." in trail
    assert "killswitch.rearm." in trail


def test_a_viewer_reads_but_is_refused_the_kill_switch_with_the_scope_named(
    viewer_cache: Path, as_user: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    as_user(viewer_cache)
    code, output = run(capsys, "missions")
    assert code == EXIT_OK, output
    code, output = run(capsys, "kill", "--reason", "a viewer tries")
    assert code == EXIT_FORBIDDEN, output
    assert "forbidden: POST /kill needs the aegis:killswitch scope" in output
    assert "your token for auth0|aegis-viewer does not hold" in output
    code, output = run(capsys, "scan", "--dry-run")
    assert code == EXIT_FORBIDDEN
    assert "needs the aegis:scan scope" in output


def test_an_undo_of_a_change_never_applied_is_refused_with_its_reason(
    operator_cache: Path, as_user: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    as_user(operator_cache)
    code, output = run(capsys, "undo", "chg-0123456789abcdef0123")
    assert code == EXIT_CONFLICT, output
    assert "refused: " in output
    assert "(reason: undo-not-applied)" in output


def test_a_token_the_api_refuses_sends_the_operator_to_login(
    operator_cache: Path, as_user: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A cached token whose signature is not the tenant's: the gateway answers 401, the CLI says to log in again.
    forged_home = tmp_path / "forged"
    (forged_home / "aegis-local").mkdir(parents=True, mode=0o700)
    [token_file] = (operator_cache / "aegis-local").iterdir()
    cached = json.loads(token_file.read_text())
    header, payload, _ = cached["access_token"].split(".")
    cached["access_token"] = f"{header}.{payload}.c2lnbmF0dXJl"
    forged = forged_home / "aegis-local" / token_file.name
    forged.write_text(json.dumps(cached))
    forged.chmod(0o600)
    as_user(forged_home)
    code, output = run(capsys, "missions")
    assert code == EXIT_AUTH, output
    assert "the ops API refused your token" in output
    assert "run `aegis-local login`" in output


def test_leak_audit_searches_the_running_stack_through_its_endpoint(
    operator_environment: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = run(capsys, "leak-audit", "--endpoint-url", operator_environment["AWS_ENDPOINT_URL"])
    assert code == EXIT_OK, output
    assert "3 values searched" in output  # the client secrets the stack holds: approval, executor, kill switch
    assert "no secret found" in output
    code, output = run(capsys, "leak-audit", str(tmp_path))
    assert code == 2
    assert "nothing to search for" in output


def test_a_login_the_user_denies_exits_4_and_caches_nothing(
    stack: LocalStack, operator_environment: dict[str, str], tmp_path: Path
) -> None:
    code, output = login(stack, operator_environment, tmp_path, OPERATOR, approve=False)
    assert code == EXIT_FORBIDDEN, output
    assert "the sign-in was denied (access_denied" in output
    assert not (tmp_path / "aegis-local").exists()
