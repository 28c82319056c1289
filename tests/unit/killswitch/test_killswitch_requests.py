from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from pydantic import ValidationError

from aegis_killswitch.errors import InvalidKillSwitchRequest
from aegis_killswitch.report import KillSwitchReport, StepOutcome, describe_error
from aegis_killswitch.requests import DEFAULT_KILL_REASON, DirectRequest, KillBody, RearmBody

JWT_LIKE = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhdXRoMHx4In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


def test_a_direct_request_names_action_reason_and_requester() -> None:
    request = DirectRequest.model_validate({"action": "trigger", "reason": "  drill ", "requested_by": "alice"})
    assert (request.action, request.reason, request.requested_by) == ("trigger", "drill", "alice")


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"reason": "r", "requested_by": "a"}, "action"),
        ({"action": "explode", "reason": "r", "requested_by": "a"}, "action"),
        ({"action": "rearm", "reason": "", "requested_by": "a"}, "reason"),
        ({"action": "rearm", "reason": "r" * 501, "requested_by": "a"}, "reason"),
        ({"action": "trigger", "reason": "r"}, "requested_by"),
        ({"action": "trigger", "reason": "r", "requested_by": "a", "force": True}, "force"),
        ({"action": "trigger", "reason": f"token was {JWT_LIKE}", "requested_by": "a"}, "reason"),
    ],
)
def test_bad_direct_requests_name_the_field(event: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        DirectRequest.model_validate(event)
    error = InvalidKillSwitchRequest.from_validation(caught.value)
    assert field in str(error)
    assert JWT_LIKE not in str(error)


def test_a_kill_needs_no_reason_but_a_rearm_does() -> None:
    assert KillBody.model_validate({}).reason == DEFAULT_KILL_REASON
    with pytest.raises(ValidationError, match="reason"):
        RearmBody.model_validate({})


def test_a_credential_pasted_as_reason_is_refused() -> None:
    with pytest.raises(ValidationError, match="credential"):
        KillBody.model_validate({"reason": f"Bearer {JWT_LIKE}"})


def test_the_report_is_ok_only_when_every_step_is() -> None:
    steps = [StepOutcome(step="a", ok=True, reason="done"), StepOutcome(step="b", ok=False, reason="503")]
    report = KillSwitchReport(
        operation="trigger", operation_id="ks-1", requested_by="alice", reason="r", at="t", halted=True, steps=steps
    )
    body = report.as_response()
    assert body["ok"] is False
    assert body["failed_steps"] == ["b"]
    assert body["steps"] == [
        {"step": "a", "ok": True, "reason": "done", "details": {}},
        {"step": "b", "ok": False, "reason": "503", "details": {}},
    ]


def test_error_descriptions_withhold_credentials() -> None:
    assert describe_error(RuntimeError(f"boom {JWT_LIKE}")) == (
        "RuntimeError (message withheld: it contained a credential-shaped value)"
    )
    error = ClientError({"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, "PutRolePolicy")
    assert describe_error(error) == "AccessDenied: not allowed"
