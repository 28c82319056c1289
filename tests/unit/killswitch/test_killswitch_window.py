"""The kill switch leaves no window: the deny policies AWS enforces go on right after the halt flag, before any Auth0
call (which can hang); the deny-older-sessions cutoff is rounded up, never down; UndoRole is halted exactly as
RemediationRole."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from aegis.control import halt_state
from aegis_auth.oidc import ClientAuthentication, OidcClient
from aegis_killswitch import aws_steps
from aegis_killswitch.auth0_steps import Auth0Management
from aegis_killswitch.report import KillSwitchReport
from aegis_killswitch.settings import KillSwitchSettings
from tests.support.iam_policy import Request, decision
from tests.support.killswitch_world import (
    REMEDIATION_ROLE,
    REMEDIATION_ROLES,
    SCAN_RULE,
    SCHEDULE_RULE,
    UNDO_ROLE,
    AwsWorld,
    kill_switch_for,
    step_of,
    wait_until,
)
from tests.support.loopback_server import LoopbackServer, QuietHandler

# --------------------------------------------------------------------------------------------------- the cutoff


@pytest.mark.parametrize(
    ("now", "cutoff"),
    [
        (datetime(2030, 5, 4, 3, 2, 1, 700_000, tzinfo=UTC), "2030-05-04T03:02:02Z"),
        (datetime(2030, 5, 4, 3, 2, 1, 1, tzinfo=UTC), "2030-05-04T03:02:02Z"),
        (datetime(2030, 5, 4, 3, 2, 59, 999_999, tzinfo=UTC), "2030-05-04T03:03:00Z"),
        (datetime(2030, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC), "2031-01-01T00:00:00Z"),
        # Already a whole second: nothing issued before it is left out.
        (datetime(2030, 5, 4, 3, 2, 1, tzinfo=UTC), "2030-05-04T03:02:01Z"),
    ],
)
def test_the_cutoff_is_rounded_up_to_the_whole_second(now: datetime, cutoff: str) -> None:
    assert aws_steps.session_cutoff(now) == cutoff


def test_a_session_issued_earlier_in_the_trigger_second_is_denied(aws_world: AwsWorld) -> None:
    trigger = datetime(2030, 5, 4, 3, 2, 1, 900_000, tzinfo=UTC)
    issued = "2030-05-04T03:02:01Z"  # a session of 03:02:01.7, as aws:TokenIssueTime states it

    outcome = aws_steps.deny_remediation_sessions(aws_world.iam, (REMEDIATION_ROLE,), trigger)

    assert outcome.ok, outcome.reason
    deny = aws_world.deny_policy()
    assert deny is not None
    assert deny["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"] == "2030-05-04T03:02:02Z"
    # As IAM evaluates the attached policy: the earlier session is denied, one issued at the cutoff is not.
    for token_issued, denied in ((issued, True), ("2030-05-04T03:02:02Z", False)):
        request = Request("ec2:RevokeSecurityGroupIngress", context={"aws:TokenIssueTime": token_issued})
        assert (decision([deny], request) == "Deny") is denied, token_issued


# --------------------------------------------------------------------------------------------------- UndoRole


def test_the_trigger_halts_both_remediation_roles_and_the_rearm_lifts_both(
    settings: KillSwitchSettings, aws_world: AwsWorld
) -> None:
    aws_world.create_mission_state_machine()
    assert settings.remediation_role_names == REMEDIATION_ROLES
    switch = kill_switch_for(aws_world, settings)

    trigger = switch.trigger(reason="drill", requested_by="alice")

    assert trigger.ok, trigger.failed_steps
    deny = step_of(trigger, "deny_remediation_sessions")
    assert deny.details["halted_roles"] == deny.details["denied_roles"] == list(REMEDIATION_ROLES)
    for role in REMEDIATION_ROLES:
        assert aws_world.halted_policy(role) == aws_steps.halted_policy_document(), role
        assert aws_world.deny_policy(role) == aws_steps.deny_policy_document(
            str(deny.details["sessions_issued_before"])
        )

    rearm = switch.rearm(reason="all clear", requested_by="bob")

    assert rearm.ok, rearm.failed_steps
    assert step_of(rearm, "lift_halted_policy").details["lifted"] == list(REMEDIATION_ROLES)
    for role in REMEDIATION_ROLES:
        assert aws_world.halted_policy(role) is None, role
        assert aws_world.deny_policy(role) is not None, f"{role} keeps denying the sessions of before the trigger"


def test_without_an_undo_role_only_remediation_role_is_halted(
    settings: KillSwitchSettings, aws_world: AwsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UNDO_ROLE_NAME", "")
    without_undo = KillSwitchSettings.from_env()
    assert without_undo.remediation_role_names == (REMEDIATION_ROLE,)
    aws_world.create_mission_state_machine()

    report = kill_switch_for(aws_world, without_undo).trigger(reason="drill", requested_by="alice")

    assert report.ok, report.failed_steps
    assert aws_world.halted_policy(REMEDIATION_ROLE) is not None
    assert aws_world.halted_policy(UNDO_ROLE) is None
    assert aws_world.deny_policy(UNDO_ROLE) is None


# --------------------------------------------------------------------------------------------------- Auth0 hangs


class HangingAuth0(LoopbackServer):
    """An HTTP server on 127.0.0.1 that takes every request and answers nothing until released (then 503): an Auth0
    tenant that hangs."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.requested = threading.Event()
        self.paths: list[str] = []
        hanging = self

        class Handler(QuietHandler):
            def _hang(self) -> None:
                hanging.paths.append(self.path)
                hanging.requested.set()
                hanging.release.wait(timeout=30)
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = _hang
            do_POST = _hang

        super().__init__(Handler)

    @property
    def issuer(self) -> str:
        return self.url + "/"

    def close(self) -> None:
        self.release.set()
        super().close()


@pytest.fixture
def hanging_auth0() -> Iterator[HangingAuth0]:
    server = HangingAuth0()
    yield server
    server.close()


def test_a_hanging_auth0_does_not_delay_any_aws_side_stop(
    settings: KillSwitchSettings, aws_world: AwsWorld, hanging_auth0: HangingAuth0
) -> None:
    mission = aws_world.start_mission("m-hang", changes=1)
    handoff = aws_world.put_handoff(mission)
    switch = kill_switch_for(aws_world, settings)
    http = httpx.Client(timeout=60)
    auth = ClientAuthentication(settings.auth0_client_id, "client_secret_post", lambda: SecretStr("ks-secret"))
    switch.clients.auth0_management = lambda: Auth0Management(
        OidcClient(hanging_auth0.issuer, auth, http=http), settings.management_audience
    )
    reports: list[KillSwitchReport] = []
    trigger = threading.Thread(target=lambda: reports.append(switch.trigger(reason="drill", requested_by="alice")))

    trigger.start()
    try:
        assert hanging_auth0.requested.wait(timeout=20), "the trigger never reached Auth0"
        # Auth0 is hanging now, and has been asked nothing else: every AWS-side stop is already in place.
        assert trigger.is_alive()
        assert halt_state(aws_world.control) is not None
        for role in REMEDIATION_ROLES:
            assert aws_world.halted_policy(role) is not None, role
            assert aws_world.deny_policy(role) is not None, role
        assert aws_world.rule_states() == {SCHEDULE_RULE: "DISABLED", SCAN_RULE: "DISABLED"}
        wait_until(lambda: aws_world.status(mission) != "RUNNING", what="the mission to end")
        assert handoff not in aws_world.handoff_ids()
        assert hanging_auth0.paths == ["/.well-known/openid-configuration"]
    finally:
        hanging_auth0.release.set()
        trigger.join(timeout=30)
        http.close()

    (report,) = reports
    assert report.failed_steps == ["revoke_auth0_sessions", "block_token_vault_approvers"]
    # Auth0 failed once (the discovery of the first call): the second step failed at once, without a new wait.
    assert hanging_auth0.paths == ["/.well-known/openid-configuration"]


def test_the_deny_is_attached_before_the_scan_rules_and_missions(
    settings: KillSwitchSettings, aws_world: AwsWorld
) -> None:
    aws_world.create_mission_state_machine()
    calls: list[str] = []
    switch = kill_switch_for(aws_world, settings)

    class Recorded:
        def __init__(self, client: Any, name: str) -> None:
            self._client, self._name = client, name

        def __getattr__(self, attribute: str) -> Any:
            calls.append(f"{self._name}.{attribute}")
            return getattr(self._client, attribute)

    switch.clients.iam = Recorded(aws_world.iam, "iam")
    switch.clients.events = Recorded(aws_world.events, "events")
    switch.clients.stepfunctions = Recorded(aws_world.sfn, "stepfunctions")
    switch.clock = lambda: datetime(2030, 1, 1, tzinfo=UTC) + timedelta(seconds=len(calls))

    assert switch.trigger(reason="drill", requested_by="alice").ok
    first_other = min(i for i, call in enumerate(calls) if not call.startswith("iam."))
    assert calls[:first_other].count("iam.put_role_policy") == 2 * len(REMEDIATION_ROLES)
    assert "iam.put_role_policy" not in calls[first_other:]
