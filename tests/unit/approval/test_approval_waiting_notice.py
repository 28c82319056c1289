"""A mission whose changes wait for approval too long is told once: the approval function appends one
`approval.waiting` record per mission execution, ApprovalWaitingNotifyMinutes after the mission's first approval
request, whichever of its changes' approval invocations sees it first (the notifier turns it into a notification)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from aegis.catalogue import ChangeBase
from aegis_approval.continuation import ITEM_KEY, KIND_MISSION_WAIT, ContinuationStore, MissionWait, mission_wait_id
from aegis_approval.errors import InvalidSettings
from aegis_approval.settings import ApprovalSettings
from aegis_auth.rar import AEGIS_CHANGE_DETAILS_TYPE
from tests.support.approval_world import RecordingTaskTokens, World
from tests.support.changes import one_of_each_kind
from tests.support.provider_double import AUDIENCE, CLIENT_ID, ProviderDouble, oauth_error

APPROVER = "auth0|approver-1"
FIRST, SECOND, THIRD = one_of_each_kind()[:3]
PENDING = oauth_error(400, "authorization_pending")
EXPIRED = oauth_error(400, "expired_token")
# The provider double asks for a poll every 5 s: twelve unanswered polls are a minute.
POLLS_PER_MINUTE = 12


def approved(change: ChangeBase) -> Any:
    def reply(double: ProviderDouble, _: object) -> Any:
        return 200, double.token_response(APPROVER, digest=change.digest, details_type=AEGIS_CHANGE_DETAILS_TYPE), {}

    return reply


@pytest.fixture
def provider(world: World) -> ProviderDouble:
    return ProviderDouble(clock=world.clock)


def service_with(world: World, provider: ProviderDouble, minutes: int) -> Any:
    settings = world.settings(provider.issuer, CLIENT_ID, AUDIENCE, APPROVER, waiting_notify_minutes=minutes)
    return world.service(settings, provider.client(), tasks=RecordingTaskTokens(world.stepfunctions.sfn))


def waiting_records(world: World, mission_id: str = "m-test") -> list[dict[str, Any]]:
    return [item for item in world.audit_trail(mission_id) if item["action"] == "approval.waiting"]


def test_changes_waiting_longer_than_the_threshold_are_recorded_once_and_the_approval_goes_on(
    world: World, provider: ProviderDouble
) -> None:
    service = service_with(world, provider, minutes=2)
    event = world.stepfunctions.start(FIRST)
    asked_at = world.clock()
    provider.token_script.extend([*[PENDING] * (3 * POLLS_PER_MINUTE), approved(FIRST)])

    assert service.handle(event, world.lambda_time(900)) == {"outcome": "approved"}

    trail = world.audit_trail()
    assert [item["action"] for item in trail] == ["approval.requested", "approval.waiting", "approval.decided"]
    (waiting,) = waiting_records(world)
    assert waiting["outcome"] == "waiting"
    assert waiting["actor"] == "approval"
    details = json.loads(waiting["details"])
    assert details["waited_minutes"] == 2
    assert details["threshold_minutes"] == 2
    assert details["change_id"] == FIRST.change_id
    assert details["execution_arn"] == event["execution_arn"]
    assert details["waiting_since"] == datetime.fromtimestamp(asked_at, UTC).isoformat().replace("+00:00", "Z")
    assert set(details) == {
        "request_id",
        "request_kind",
        "change_id",
        "change_digest",
        "approver_sub",
        "execution_arn",
        "waiting_since",
        "waited_minutes",
        "threshold_minutes",
    }
    # Neither the task token nor the CIBA request's auth_req_id is anywhere in the record.
    (sent,) = provider.requests_to("/bc-authorize")
    auth_req_ids = {r.form.get("auth_req_id") for r in provider.requests_to("/oauth/token")} - {None}
    assert auth_req_ids
    text = json.dumps(waiting, default=str)
    assert event["task_token"] not in text
    assert not any(auth_req_id in text for auth_req_id in auth_req_ids)
    assert sent.form["binding_message"] not in text


def test_a_mission_answered_in_time_records_no_wait(world: World, provider: ProviderDouble) -> None:
    service = service_with(world, provider, minutes=2)
    event = world.stepfunctions.start(FIRST)
    provider.token_script.extend([*[PENDING] * (2 * POLLS_PER_MINUTE - 2), approved(FIRST)])

    assert service.handle(event, world.lambda_time(900)) == {"outcome": "approved"}
    assert waiting_records(world) == []


def test_the_wait_is_the_missions_since_its_first_request_and_is_told_once(
    world: World, provider: ProviderDouble
) -> None:
    """Each CIBA request lasts minutes at most; a mission whose approver does not answer keeps its changes waiting one
    request after another. The second change's request is the one that crosses the threshold, counted from the
    first's; the third, later still, tells nobody again."""
    service = service_with(world, provider, minutes=3)
    first = world.stepfunctions.start(FIRST)
    started = world.clock()
    provider.token_script.extend([*[PENDING] * (2 * POLLS_PER_MINUTE), EXPIRED])
    assert service.handle(first, world.lambda_time(900)) == {"outcome": "expired"}
    assert waiting_records(world) == []

    # The same mission's next change (same execution; its own task token).
    second = {**world.stepfunctions.start(SECOND), "execution_arn": first["execution_arn"]}
    provider.token_script.extend([*[PENDING] * (2 * POLLS_PER_MINUTE), EXPIRED])
    assert service.handle(second, world.lambda_time(900)) == {"outcome": "expired"}
    (waiting,) = waiting_records(world)
    details = json.loads(waiting["details"])
    assert details["change_id"] == SECOND.change_id
    assert details["waited_minutes"] >= 3
    assert world.clock() - started > 3 * 60

    third = {**world.stepfunctions.start(THIRD), "execution_arn": first["execution_arn"]}
    provider.token_script.extend([*[PENDING] * POLLS_PER_MINUTE, approved(THIRD)])
    assert service.handle(third, world.lambda_time(900)) == {"outcome": "approved"}
    assert len(waiting_records(world)) == 1

    item = world.tables["Continuations"].get_item(Key={ITEM_KEY: mission_wait_id(first["execution_arn"])})["Item"]
    assert item["kind"] == KIND_MISSION_WAIT
    assert float(item["first_requested_at"]) <= started + 1
    assert "noticed_at" in item
    assert set(item) == {ITEM_KEY, "kind", "first_requested_at", "noticed_at", "expires_at"}


@pytest.mark.parametrize(
    ("first_invocation_seconds", "crossed_in"),
    [(100, "the first invocation"), (44, "the continuation")],
)
def test_a_continued_request_tells_once_whichever_invocation_crosses_the_threshold(
    world: World, provider: ProviderDouble, first_invocation_seconds: int, crossed_in: str
) -> None:
    service = service_with(world, provider, minutes=1)
    event = world.stepfunctions.start(FIRST)
    provider.token_script.extend([*[PENDING] * (3 * POLLS_PER_MINUTE), approved(FIRST)])

    assert service.handle(event, world.lambda_time(first_invocation_seconds)) == {"outcome": "continued"}
    told_before_the_hop = len(waiting_records(world))
    assert told_before_the_hop == (1 if crossed_in == "the first invocation" else 0)
    (invocation,) = world.self_invocations
    assert service.handle(invocation, world.lambda_time(900)) == {"outcome": "approved"}
    assert len(waiting_records(world)) == 1


def test_a_wait_that_cannot_be_read_never_holds_up_the_approval(world: World, provider: ProviderDouble) -> None:
    service = service_with(world, provider, minutes=1)

    def unreachable(execution_arn: str) -> Any:
        raise RuntimeError("the Continuations table is unreachable")

    service.continuations.mission_waiting = unreachable
    event = world.stepfunctions.start(FIRST)
    provider.token_script.extend([*[PENDING] * (2 * POLLS_PER_MINUTE), approved(FIRST)])
    assert service.handle(event, world.lambda_time(900)) == {"outcome": "approved"}
    assert waiting_records(world) == []


def test_two_callers_that_both_read_the_wait_unnoticed_mark_it_once(world: World) -> None:
    """The racing path: two invocations of one mission both read `noticed` False before either marks it; the
    conditional mark lets the first tell and refuses the second."""
    execution_arn = world.stepfunctions.start(FIRST)["execution_arn"]
    one = ContinuationStore(world.tables["Continuations"], clock=world.clock)
    other = ContinuationStore(world.tables["Continuations"], clock=world.clock)

    first_read = one.mission_waiting(execution_arn)
    world.clock.advance(30)
    second_read = other.mission_waiting(execution_arn)
    assert first_read.noticed is False
    assert second_read.noticed is False
    assert second_read.since == first_read.since

    assert one.notice_waiting(execution_arn) is True
    assert other.notice_waiting(execution_arn) is False
    assert one.notice_waiting(execution_arn) is False
    assert other.mission_waiting(execution_arn).noticed is True


def test_two_runs_of_one_execution_past_the_threshold_append_one_waiting_record(
    world: World, provider: ProviderDouble
) -> None:
    """Both runs read the wait as not yet told (as two concurrent invocations would, each before the other marked
    it) and both cross the threshold: only the one whose conditional mark succeeds appends `approval.waiting`."""
    service = service_with(world, provider, minutes=1)
    read_wait = service.continuations.mission_waiting
    stale_reads: list[MissionWait] = []

    def read_before_the_other_marked(execution_arn: str) -> MissionWait:
        wait = read_wait(execution_arn)
        stale_reads.append(wait)
        return MissionWait(since=wait.since, noticed=False)

    service.continuations.mission_waiting = read_before_the_other_marked
    first = world.stepfunctions.start(FIRST)
    provider.token_script.extend([*[PENDING] * (2 * POLLS_PER_MINUTE), approved(FIRST)])
    assert service.handle(first, world.lambda_time(900)) == {"outcome": "approved"}
    assert len(waiting_records(world)) == 1

    second = {**world.stepfunctions.start(SECOND), "execution_arn": first["execution_arn"]}
    provider.token_script.extend([*[PENDING] * (2 * POLLS_PER_MINUTE), approved(SECOND)])
    assert service.handle(second, world.lambda_time(900)) == {"outcome": "approved"}

    assert len(stale_reads) == 2
    assert stale_reads[1].noticed is True, "the second run was made to ignore the mark: only the condition stops it"
    (waiting,) = waiting_records(world)
    assert json.loads(waiting["details"])["change_id"] == FIRST.change_id


# --- the setting ------------------------------------------------------------------------------------------------------
def environment(world: World, **overrides: str) -> dict[str, str]:
    return world.environment(
        "https://tenant.example/", CLIENT_ID, AUDIENCE, APPROVER, "arn:aws:secretsmanager:x", **overrides
    )


def test_the_threshold_defaults_to_fifteen_minutes_and_reads_the_template_variable(world: World) -> None:
    assert ApprovalSettings.from_env(environment(world)).waiting_notify_minutes == 15
    settings = ApprovalSettings.from_env(environment(world, APPROVAL_WAITING_NOTIFY_MINUTES="40"))
    assert settings.waiting_notify_minutes == 40


@pytest.mark.parametrize("value", ["0", "10081", "-5", "ten", "1.5"])
def test_a_threshold_out_of_range_is_refused_by_name(world: World, value: str) -> None:
    with pytest.raises(InvalidSettings) as refused:
        ApprovalSettings.from_env(environment(world, APPROVAL_WAITING_NOTIFY_MINUTES=value))
    assert "APPROVAL_WAITING_NOTIFY_MINUTES" in str(refused.value)
