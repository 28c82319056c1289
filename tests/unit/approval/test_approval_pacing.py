"""The per-approver pacer on DynamoDB (moto): at most `limit` requests per approver in any sliding window, shared
by concurrent invocations through one item and conditional writes. Concurrency is played deterministically: a
table wrapper lets another pacer act between one pacer's read and its write."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest

from aegis.catalogue import ChangeBase
from aegis_approval.continuation import ITEM_KEY
from aegis_approval.pacing import KIND_PACE, ApproverPacer, PacingContended, pace_id
from aegis_auth.rar import AEGIS_CHANGE_DETAILS_TYPE
from aegis_local.auth0.clock import ManualClock
from tests.support.approval_plans import variants
from tests.support.approval_world import RecordingTaskTokens, World
from tests.support.changes import one_of_each_kind
from tests.support.provider_double import AUDIENCE, CLIENT_ID, ProviderDouble, oauth_error

APPROVER = "auth0|approver-1"
OTHER = "auth0|approver-2"
CHANGES = one_of_each_kind()


class Interleaved:
    """The Continuations table as one invocation sees it, where `between` runs right after each of its reads of the
    pace item and before its write: another invocation acting at exactly the worst moment."""

    def __init__(self, table: Any, between: Callable[[], None] | None = None) -> None:
        self._table = table
        self.between = between

    def update_item(self, **kwargs: Any) -> Any:
        result = self._table.update_item(**kwargs)
        if kwargs.get("ReturnValues") == "ALL_NEW" and self.between is not None:
            self.between()
        return result


def pacer(world: World, table: Any = None, **options: Any) -> ApproverPacer:
    return ApproverPacer(table or world.tables["Continuations"], clock=world.clock, **options)


def the_item(world: World, sub: str = APPROVER) -> dict[str, Any]:
    return dict(world.tables["Continuations"].get_item(Key={ITEM_KEY: pace_id(sub)})["Item"])


def most_in_any_window(times: list[float], window: float) -> int:
    """The largest number of `times` within any half-open window [t, t + window)."""
    ordered = sorted(times)
    return max((sum(1 for u in ordered if t <= u < t + window) for t in ordered), default=0)


def test_five_in_a_minute_pass_and_the_sixth_waits_until_the_oldest_is_sixty_seconds_old(world: World) -> None:
    clock = world.clock
    exact = pacer(world, margin=0.0)
    started = clock()
    for _ in range(5):
        assert exact.take(APPROVER) == 0.0
        clock.advance(2)
    # Five sent at 0, 2, 4, 6, 8 s; now 10 s: the first leaves the window at 60 s.
    assert exact.take(APPROVER) == pytest.approx(50.0)
    clock.advance(49.5)
    assert exact.take(APPROVER) == pytest.approx(0.5)  # a refused attempt takes nothing
    clock.advance(0.5)
    assert clock() - started == 60
    assert exact.take(APPROVER) == 0.0
    # The next frees when the second (sent at 2 s) is 60 s old.
    assert exact.take(APPROVER) == pytest.approx(2.0)
    item = the_item(world)
    assert [float(t) - started for t in item["sent"]] == [2, 4, 6, 8, 60]
    assert (item["kind"], item[ITEM_KEY]) == (KIND_PACE, "pace#" + APPROVER)


def test_the_default_window_keeps_a_second_of_margin_for_the_trip_to_the_provider(world: World) -> None:
    paced = pacer(world)
    for _ in range(5):
        assert paced.take(APPROVER) == 0.0
    assert paced.take(APPROVER) == pytest.approx(61.0)


def test_approvers_are_paced_apart(world: World) -> None:
    paced = pacer(world, limit=1)
    assert paced.take(APPROVER) == 0.0
    assert paced.take(OTHER) == 0.0
    assert paced.take(APPROVER) > 0
    assert {the_item(world)["version"], the_item(world, OTHER)["version"]} == {1}


def test_a_lost_conditional_write_is_retried_on_the_new_state(world: World) -> None:
    table = world.tables["Continuations"]
    other_invocation = pacer(world, limit=2)
    wrapper = Interleaved(table)
    wrapper.between = lambda: (setattr(wrapper, "between", None), other_invocation.take(APPROVER))  # once
    this_invocation = pacer(world, wrapper, limit=2)

    assert this_invocation.take(APPROVER) == 0.0
    assert (this_invocation.conflicts, other_invocation.conflicts) == (1, 0)
    item = the_item(world)
    assert len(item["sent"]) == 2  # both slots recorded: the loser wrote on top of the winner's, not over it
    assert item["version"] == 2
    # The window is now full for both of them.
    assert this_invocation.take(APPROVER) > 0
    assert other_invocation.take(APPROVER) > 0


def test_a_lost_write_that_fills_the_window_turns_into_a_wait(world: World) -> None:
    other_invocation = pacer(world, limit=1)
    wrapper = Interleaved(world.tables["Continuations"])
    wrapper.between = lambda: (setattr(wrapper, "between", None), other_invocation.take(APPROVER))
    this_invocation = pacer(world, wrapper, limit=1)
    assert this_invocation.take(APPROVER) == pytest.approx(61.0)
    assert this_invocation.conflicts == 1
    assert len(the_item(world)["sent"]) == 1


def test_two_concurrent_pacers_never_exceed_the_limit_together(world: World) -> None:
    clock: ManualClock = world.clock
    sent: list[float] = []
    first = pacer(world, margin=0.0)
    # The second invocation's every read is followed by a try of the first's: whenever both want a slot at the
    # same moment, the first writes between the second's read and write.
    wrapper = Interleaved(world.tables["Continuations"])
    second = pacer(world, wrapper, margin=0.0)

    def first_tries() -> None:
        if first.take(APPROVER) == 0.0:
            sent.append(clock())

    wrapper.between = first_tries
    started = clock()
    for step in itertools.count():
        if clock() - started >= 300:
            break
        if second.take(APPROVER) == 0.0:
            sent.append(clock())
        clock.advance(1 if step % 7 else 3)

    assert second.conflicts > 0  # the race was really run
    assert most_in_any_window(sent, 60) == 5
    # And the pacing costs nothing: a slot is taken as soon as one frees, 5 per minute over the five minutes.
    assert len(sent) == 25


def test_a_pacer_that_keeps_losing_gives_up_by_name(world: World) -> None:
    winner = pacer(world, limit=60)
    wrapper = Interleaved(world.tables["Continuations"], between=lambda: winner.take(APPROVER))
    loser = pacer(world, wrapper, limit=60, max_conflicts=3)
    with pytest.raises(PacingContended, match="3 concurrent writes"):
        loser.take(APPROVER)
    assert loser.conflicts == 3


def test_the_pace_item_never_overwrites_an_item_of_another_kind(world: World) -> None:
    world.tables["Continuations"].put_item(Item={ITEM_KEY: pace_id(APPROVER), "kind": "continuation"})
    with pytest.raises(Exception, match="ConditionalCheckFailed"):
        pacer(world).take(APPROVER)


@pytest.mark.parametrize("limit", [0, 61])
def test_the_limit_is_one_to_sixty(world: World, limit: int) -> None:
    with pytest.raises(ValueError, match=r"1\.\.60"):
        pacer(world, limit=limit)


# --- in the approval function -----------------------------------------------------------------------------------------
@pytest.fixture
def provider(world: World) -> ProviderDouble:
    return ProviderDouble(clock=world.clock)


@pytest.fixture
def tasks(world: World) -> RecordingTaskTokens:
    return RecordingTaskTokens(world.stepfunctions.sfn)


@pytest.fixture
def service(world: World, provider: ProviderDouble, tasks: RecordingTaskTokens) -> Any:
    return world.service(world.settings(provider.issuer, CLIENT_ID, AUDIENCE, APPROVER), provider.client(), tasks=tasks)


def approve_at_once(provider: ProviderDouble, change: ChangeBase) -> None:
    provider.token_script.append(
        (200, provider.token_response(APPROVER, digest=change.digest, details_type=AEGIS_CHANGE_DETAILS_TYPE), {})
    )


def pushes(provider: ProviderDouble, since: float) -> list[float]:
    return [r.at - since for r in provider.requests_to("/bc-authorize")]


def test_successive_invocations_for_one_approver_share_the_five_per_minute(
    world: World, provider: ProviderDouble, service: Any
) -> None:
    started = world.clock()
    changes = variants("enable-kms-key-rotation", 7)
    for change in changes:
        event = world.stepfunctions.start(change)
        approve_at_once(provider, change)
        assert service.handle(event, world.lambda_time(900)) == {"outcome": "approved"}
    # Five pushes at once, then each waits until the oldest push is 61 s old (60 s and a second of margin).
    assert pushes(provider, started) == [0, 5, 10, 15, 20, 61, 66]


def test_a_push_waiting_for_its_slot_keeps_the_task_alive_and_watches_the_halt_flag(
    world: World, provider: ProviderDouble, service: Any, tasks: RecordingTaskTokens
) -> None:
    full = pacer(world)
    for _ in range(5):
        full.take(APPROVER)  # five pushes of other invocations just now
    started = world.clock()
    change = CHANGES[0]
    event = world.stepfunctions.start(change)
    approve_at_once(provider, change)
    assert service.handle(event, world.lambda_time(900)) == {"outcome": "approved"}
    assert pushes(provider, started) == [61]
    assert tasks.calls.count("heartbeat") >= 61 // 20

    # And a halt during the wait ends it before any push.
    for _ in range(4):
        full.take(APPROVER)
    event = world.stepfunctions.start(CHANGES[1])
    world.on_sleep.append(lambda _: world.halt())
    assert service.handle(event, world.lambda_time(900)) == {"outcome": "halted"}
    assert len(provider.requests_to("/bc-authorize")) == 1


def test_a_slot_further_away_than_the_invocation_can_wait_hands_over_before_anything_is_sent(
    world: World, provider: ProviderDouble, service: Any
) -> None:
    full = pacer(world)
    for _ in range(5):
        full.take(APPROVER)
    started = world.clock()
    change = CHANGES[0]
    event = world.stepfunctions.start(change)
    assert service.handle(event, world.lambda_time(60)) == {"outcome": "continued"}
    assert provider.requests_to("/bc-authorize") == []
    (invocation,) = world.self_invocations
    stored = world.tables["Continuations"].get_item(Key={ITEM_KEY: invocation["continuation_id"]})["Item"]
    assert stored["phase"] == "pacing"
    assert "auth_req_id" not in stored
    assert stored["approver_sub"] == APPROVER
    assert json.loads(stored["request"])["items"][0]["change"] == change.model_dump(mode="json")
    assert [item["action"] for item in world.audit_trail()] == ["approval.continued"]
    assert world.stepfunctions.status(event["execution_arn"]) == "RUNNING"

    approve_at_once(provider, change)
    assert service.handle(invocation, world.lambda_time(900)) == {"outcome": "approved"}
    assert pushes(provider, started) == [61]
    assert world.stepfunctions.finished(event["execution_arn"])["status"] == "SUCCEEDED"
    assert [item["action"] for item in world.audit_trail()] == [
        "approval.continued",
        "approval.requested",
        "approval.decided",
    ]
    assert service.handle(invocation, world.lambda_time(900)) == {"outcome": "duplicate"}


@pytest.mark.parametrize(
    "refusal",
    [
        oauth_error(429, "too_many_requests", {"Retry-After": "20"}),
        oauth_error(400, "slow_down", {"Retry-After": "20"}),
    ],
    ids=["429-too-many-requests", "slow-down"],
)
def test_a_rate_limited_bc_authorize_is_waited_out_and_sent_again_in_a_new_slot(
    world: World, provider: ProviderDouble, service: Any, refusal: Any
) -> None:
    started = world.clock()
    change = CHANGES[0]
    event = world.stepfunctions.start(change)
    provider.backchannel_script.append(refusal)
    approve_at_once(provider, change)
    assert service.handle(event, world.lambda_time(900)) == {"outcome": "approved"}
    assert pushes(provider, started) == [0, 20]
    (item,) = world.pace_items()
    assert [float(t) - started for t in item["sent"]] == [0, 20]


def test_a_retry_after_beyond_the_invocation_hands_over_and_the_fresh_one_sends(
    world: World, provider: ProviderDouble, service: Any
) -> None:
    started = world.clock()
    change = CHANGES[0]
    event = world.stepfunctions.start(change)
    provider.backchannel_script.append(oauth_error(429, "too_many_requests", {"Retry-After": "45"}))
    assert service.handle(event, world.lambda_time(60)) == {"outcome": "continued"}
    (invocation,) = world.self_invocations
    world.clock.advance(45)  # the fresh invocation starts after the provider's wait
    approve_at_once(provider, change)
    assert service.handle(invocation, world.lambda_time(900)) == {"outcome": "approved"}
    assert pushes(provider, started) == [0, 45]
