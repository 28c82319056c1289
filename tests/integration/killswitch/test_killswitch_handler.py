"""The kill switch Lambda end to end in this process: its real handler (direct invocation and the function URL
route), moto executing the real mission state machine, and the Auth0 emulator over HTTP. The same routes through the
ops HTTP API (payload 2.0 events with `routeKey` "POST /kill") are tests/unit/killswitch/test_killswitch_http_api.py,
which shows both doors give the same answers."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

from aegis.audit import read_trail
from aegis.control import halt_state
from aegis_killswitch.errors import InvalidKillSwitchRequest
from aegis_killswitch.service import KILLSWITCH_AUDIT_ID
from aegis_killswitch.settings import KillSwitchSettings
from aegis_local.auth0 import DEFAULT_API_AUDIENCE, Auth0Emulator
from tests.support.killswitch_world import (
    NO_SCOPE_CLIENT,
    OPERATOR_CLIENT,
    OTHER_API_CLIENT,
    SCAN_RULE,
    SCHEDULE_RULE,
    TRIGGER_ONLY_CLIENT,
    UNDO_ROLE,
    AwsWorld,
    Context,
    HandlerAnswer,
    Phone,
    function_url_event,
    handler_answer,
    wait_until,
)
from tests.support.lambda_app import load_app


@pytest.fixture
def call(app: ModuleType) -> Callable[..., HandlerAnswer]:
    """The kill switch's function URL: `call(path, token, body, method)` with a body given as JSON data or text."""

    def invoke(path: str, token: str | None = None, body: Any = None, method: str = "POST") -> HandlerAnswer:
        raw = body if body is None or isinstance(body, str) else json.dumps(body)
        return handler_answer(app, function_url_event(path, token, raw, method))

    return invoke


@dataclass
class Scene:
    """What the kill switch could change, captured so that a refused call can be shown to have changed nothing."""

    mission: str
    refresh_token: str
    # A sealed approval of the mission that nobody consumed yet.
    handoff: str


@pytest.fixture
def scene(settings: KillSwitchSettings, aws_world: AwsWorld, phone: Phone) -> Scene:
    mission = aws_world.start_mission(f"m-{uuid.uuid4().hex[:8]}", changes=2)
    return Scene(
        mission=mission,
        refresh_token=phone.approver_refresh_token(settings.approver_subs[0]),
        handoff=aws_world.put_handoff(mission),
    )


def assert_nothing_changed(
    aws_world: AwsWorld, emulator: Auth0Emulator, phone: Phone, settings: KillSwitchSettings, scene: Scene
) -> None:
    assert halt_state(aws_world.control) is None
    assert aws_world.rule_states() == {SCHEDULE_RULE: "ENABLED", SCAN_RULE: "ENABLED"}
    assert aws_world.status(scene.mission) == "RUNNING"
    assert aws_world.deny_policy() is None
    assert aws_world.halted_policy(UNDO_ROLE) is None
    assert scene.handoff in aws_world.handoff_ids()
    assert not any(emulator.is_blocked(sub) for sub in settings.approver_subs)
    assert phone.refresh_works(scene.refresh_token)
    assert read_trail(aws_world.audit, KILLSWITCH_AUDIT_ID) == []
    assert not [e for e in emulator.management_events() if e.user_id in settings.approver_subs]


def assert_everything_halted(
    aws_world: AwsWorld, emulator: Auth0Emulator, phone: Phone, settings: KillSwitchSettings, scene: Scene
) -> None:
    assert halt_state(aws_world.control) is not None
    assert aws_world.rule_states() == {SCHEDULE_RULE: "DISABLED", SCAN_RULE: "DISABLED"}
    wait_until(lambda: aws_world.status(scene.mission) != "RUNNING", what="the mission to end")
    assert aws_world.deny_policy() is not None
    assert aws_world.halted_policy() is not None
    assert aws_world.deny_policy(UNDO_ROLE) is not None
    assert aws_world.halted_policy(UNDO_ROLE) is not None
    assert scene.handoff not in aws_world.handoff_ids()
    assert all(emulator.is_blocked(sub) for sub in settings.approver_subs)
    assert not phone.refresh_works(scene.refresh_token)


# --------------------------------------------------------------------------------------------------- refusals


REFUSED: list[tuple[str, str, Callable[[Phone], str | None], int]] = [
    ("kill without a token", "/kill", lambda phone: None, 401),
    ("kill with an expired token", "/kill", lambda phone: phone.signed_by_tenant(iat=1_000_000, exp=1_000_600), 401),
    (
        "kill with a token for another API",
        "/kill",
        lambda phone: phone.operator_token(OTHER_API_CLIENT, DEFAULT_API_AUDIENCE),
        401,
    ),
    ("kill with alg none", "/kill", lambda phone: phone.alg_none_token(), 401),
    ("kill with HS256 keyed by the public key", "/kill", lambda phone: phone.hs256_confusion_token(), 401),
    ("kill signed by a foreign key", "/kill", lambda phone: phone.foreign_key_token(reuse_tenant_kid=True), 401),
    ("kill without the scope", "/kill", lambda phone: phone.operator_token(NO_SCOPE_CLIENT), 403),
    ("rearm without a token", "/rearm", lambda phone: None, 401),
    ("rearm with alg none", "/rearm", lambda phone: phone.alg_none_token(), 401),
    ("rearm without the rearm scope", "/rearm", lambda phone: phone.operator_token(TRIGGER_ONLY_CLIENT), 403),
]


def test_refused_calls_change_nothing(
    call: Any, aws_world: AwsWorld, emulator: Auth0Emulator, phone: Phone, settings: KillSwitchSettings, scene: Scene
) -> None:
    # One scene for every refused caller (a moto account and a waiting mission cost about a second to build).
    for what, path, token_for, status in REFUSED:
        code, body, headers = call(path, token_for(phone), {"reason": "let me in"})
        assert code == status, what
        assert body["error"] == ("invalid_token" if status == 401 else "insufficient_scope"), what
        assert headers["WWW-Authenticate"].startswith("Bearer error="), what
        assert_nothing_changed(aws_world, emulator, phone, settings, scene)


def test_rearm_while_halted_without_its_scope_keeps_everything_halted(
    call: Any, aws_world: AwsWorld, emulator: Auth0Emulator, phone: Phone, settings: KillSwitchSettings, scene: Scene
) -> None:
    assert call("/kill", phone.operator_token(TRIGGER_ONLY_CLIENT), {"reason": "drill"})[0] == 200
    code, body, _ = call("/rearm", phone.operator_token(TRIGGER_ONLY_CLIENT), {"reason": "let me re-arm"})
    assert (code, body["error"]) == (403, "insufficient_scope")
    assert_everything_halted(aws_world, emulator, phone, settings, scene)


def test_a_bad_body_is_refused_after_authentication_and_changes_nothing(
    call: Any, aws_world: AwsWorld, emulator: Auth0Emulator, phone: Phone, settings: KillSwitchSettings, scene: Scene
) -> None:
    token = phone.operator_token()
    assert call("/kill", token, "{not json")[0] == 400
    code, body, _ = call("/kill", token, {"reason": "x", "extra": 1})
    assert code == 400
    assert "extra" in body["error_description"]
    assert call("/rearm", token, {})[0] == 400  # re-arming states a reason
    # An anonymous caller with a bad body hears only 401: the body is not read before authentication.
    assert call("/kill", None, "{not json")[0] == 401
    assert_nothing_changed(aws_world, emulator, phone, settings, scene)


def test_unknown_routes_are_404(call: Any, phone: Phone, settings: KillSwitchSettings) -> None:
    assert call("/kill", phone.operator_token(), method="GET")[0] == 404
    assert call("/unknown", phone.operator_token())[0] == 404


# --------------------------------------------------------------------------------------------------- kill and re-arm


def test_kill_over_http_halts_everything_and_reports_each_step(
    call: Any,
    aws_world: AwsWorld,
    emulator: Auth0Emulator,
    phone: Phone,
    settings: KillSwitchSettings,
    scene: Scene,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, body, _ = call("/kill", phone.operator_token(), {"reason": "unexpected change on prod"})

    assert code == 200
    assert body["ok"] is True
    assert body["halted"] is True
    assert body["requested_by"] == f"{OPERATOR_CLIENT}@clients"
    assert [(s["step"], s["ok"]) for s in body["steps"]] == [
        ("set_halt_flag", True),
        ("deny_remediation_sessions", True),
        ("halt_member_accounts", True),
        ("disable_rules", True),
        ("stop_org_scans", True),
        ("stop_executions", True),
        ("purge_handoffs", True),
        ("revoke_auth0_sessions", True),
        ("block_token_vault_approvers", True),
    ]
    assert all(s["reason"] for s in body["steps"])
    assert halt_state(aws_world.control)["engaged_by"] == f"{OPERATOR_CLIENT}@clients"
    assert_everything_halted(aws_world, emulator, phone, settings, scene)
    # No credential the emulator issued reached the logs or the response.
    printed = capsys.readouterr()
    secrets = emulator.issued_secrets()
    assert not [s for s in secrets if s in printed.out or s in printed.err or s in json.dumps(body)]


def test_kill_with_auth0_down_still_halts_and_answers_502(
    call: Any, aws_world: AwsWorld, emulator: Auth0Emulator, phone: Phone, settings: KillSwitchSettings, scene: Scene
) -> None:
    # A warm container has the signing keys already; a refused re-arm is enough to fetch them (and changes nothing).
    token = phone.operator_token(TRIGGER_ONLY_CLIENT)
    assert call("/rearm", token, {"reason": "warm up"})[0] == 403
    emulator.set_down(True)

    code, body, _ = call("/kill", token, {"reason": "auth0 is down too"})

    emulator.set_down(False)
    assert code == 502
    assert body["ok"] is False
    assert body["halted"] is True
    assert body["failed_steps"] == ["revoke_auth0_sessions", "block_token_vault_approvers"]
    assert halt_state(aws_world.control) is not None
    assert aws_world.rule_states() == {SCHEDULE_RULE: "DISABLED", SCAN_RULE: "DISABLED"}
    wait_until(lambda: aws_world.status(scene.mission) != "RUNNING", what="the mission to end")
    assert aws_world.deny_policy() is not None


def test_rearm_over_http_needs_its_scope_and_then_lets_missions_run_again(
    call: Any, aws_world: AwsWorld, emulator: Auth0Emulator, phone: Phone, settings: KillSwitchSettings, scene: Scene
) -> None:
    assert call("/kill", phone.operator_token(), {"reason": "drill"})[0] == 200

    code, body, _ = call("/rearm", phone.operator_token(), {"reason": "drill over"})

    assert code == 200
    assert body["ok"] is True
    assert body["halted"] is False
    assert [s["step"] for s in body["steps"]] == [
        "release_halt_flag",
        "enable_rules",
        "unblock_approvers",
        "lift_halted_policy",
        "rearm_member_accounts",
    ]
    assert halt_state(aws_world.control) is None
    assert aws_world.rule_states() == {SCHEDULE_RULE: "ENABLED", SCAN_RULE: "ENABLED"}
    assert not any(emulator.is_blocked(sub) for sub in settings.approver_subs)
    assert not phone.refresh_works(scene.refresh_token)  # revoked stays revoked
    assert aws_world.deny_policy() is not None  # kept: it denies sessions issued before the re-arm
    assert aws_world.halted_policy() is None
    assert aws_world.status(aws_world.start_mission("m-after-rearm")) == "RUNNING"


# --------------------------------------------------------------------------------------------------- direct


def test_direct_trigger_and_rearm(
    app: ModuleType,
    aws_world: AwsWorld,
    emulator: Auth0Emulator,
    phone: Phone,
    settings: KillSwitchSettings,
    scene: Scene,
) -> None:
    result = app.handler({"action": "trigger", "reason": "pager alert", "requested_by": "oncall"}, Context())
    assert result["ok"] is True
    assert result["requested_by"] == "oncall"
    assert_everything_halted(aws_world, emulator, phone, settings, scene)

    result = app.handler({"action": "rearm", "reason": "resolved", "requested_by": "oncall"}, Context())
    assert result["ok"] is True
    assert halt_state(aws_world.control) is None
    assert aws_world.halted_policy() is None
    assert aws_world.deny_policy() is not None


def test_a_bad_direct_event_is_a_named_error(app: ModuleType, aws_world: AwsWorld) -> None:
    with pytest.raises(InvalidKillSwitchRequest, match="action"):
        app.handler({"action": "disarm", "reason": "r", "requested_by": "x"}, Context())
    with pytest.raises(InvalidKillSwitchRequest, match="JSON object"):
        app.handler(["trigger"], Context())
    assert halt_state(aws_world.control) is None


def test_concurrent_triggers_are_fine(
    settings: KillSwitchSettings, aws_world: AwsWorld, emulator: Auth0Emulator, phone: Phone, scene: Scene
) -> None:
    # Two containers at once, as when two people hit the kill switch together.
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def trigger(who: str) -> None:
        try:
            results.append(
                load_app("killswitch").handler(
                    {"action": "trigger", "reason": "together", "requested_by": who}, Context()
                )
            )
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=trigger, args=(f"op-{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len(results) == 2
    for result in results:
        failed = {s["step"]: s["reason"] for s in result["steps"] if not s["ok"]}
        assert failed == {}
        assert result["halted"] is True
    assert halt_state(aws_world.control)["engaged_by"] in {"op-0", "op-1"}
    assert_everything_halted(aws_world, emulator, phone, settings, scene)
