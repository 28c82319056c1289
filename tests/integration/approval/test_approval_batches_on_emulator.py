"""Batches and pacing end to end: the approval handler against the Auth0 emulator over HTTP (at Auth0's real limit of
5 CIBA requests per user per minute), moto, and real executions waiting on their task tokens."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import boto3
import httpx

import aegis_approval.wiring as wiring
from aegis.approvals.merkle import require_inclusion
from aegis.approvals.requests import ApprovalRequest
from aegis_approval.pacing import ApproverPacer
from aegis_auth.handoff import HandoffStore
from aegis_auth.rar import AEGIS_BATCH_DETAILS_TYPE, batch_binding_message, granted_kind, require_granted_root
from aegis_jwt.discovery import provider_metadata
from aegis_jwt.verify import TokenVerifier
from aegis_local.auth0 import ManualClock
from tests.integration.approval.conftest import APPROVER, AUDIENCE
from tests.support.approval_plans import variants
from tests.support.approval_world import batch_request
from tests.support.virtual_time import VirtualTime

CHANGES = variants("revoke-security-group-rules", 9) + variants("enable-kms-key-rotation", 3)
REVIEW_BASE = "https://console.aegis.local/"


class Responses(httpx.BaseTransport):
    """The emulator on the wire, remembering the status and time of every answer by path (thread-safe)."""

    def __init__(self, clock: ManualClock) -> None:
        self._inner = httpx.HTTPTransport()
        self._clock = clock
        self._lock = threading.Lock()
        self.seen: list[tuple[str, int, float]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        sent_at = self._clock()
        response = self._inner.handle_request(request)
        with self._lock:
            self.seen.append((request.url.path, response.status_code, sent_at))
        return response

    def statuses(self, path: str) -> list[int]:
        return [status for seen_path, status, _ in self.seen if seen_path == path]

    def times(self, path: str) -> list[float]:
        return sorted(at for seen_path, _, at in self.seen if seen_path == path)


class AtomicTable:
    """A DynamoDB table whose conditional updates are atomic across threads, as DynamoDB's are: moto's in-process
    backend checks a condition and writes in separate Python steps, which threads may interleave."""

    _lock = threading.Lock()

    def __init__(self, table: Any) -> None:
        self._table = table

    def update_item(self, **kwargs: Any) -> Any:
        with self._lock:
            return self._table.update_item(**kwargs)


def never_more_than_five_a_minute(pushes: list[float]) -> None:
    for at in pushes:
        assert sum(1 for other in pushes if at <= other < at + 60) <= 5


def request_for(mission_id: str) -> ApprovalRequest:
    return batch_request(CHANGES, APPROVER, mission_id=mission_id, review_url_base=REVIEW_BASE)


def test_a_batch_approved_on_the_phone_releases_one_handoff_per_change_each_bound_to_the_root(make_stack: Any) -> None:
    stack = make_stack()
    request = request_for("m-batch")
    event = stack.world.stepfunctions.start(request, mission_id="m-batch")
    stack.phone.approve_after(12)
    assert stack.invoke(event) == {"outcome": "approved"}

    # What the phone showed: the batch's binding message and exactly one aegis-batch object with its 7 properties.
    (shown,) = stack.phone.seen
    assert shown["binding_message"] == batch_binding_message(request)
    (detail,) = shown["authorization_details"]
    assert detail["type"] == AEGIS_BATCH_DETAILS_TYPE
    assert [name for name, _ in sorted(detail["properties"].items(), key=lambda p: p[1]["display_order"])] == [
        "mission",
        "count",
        "kinds",
        "risk",
        "account",
        "review_url",
        "merkle_root",
    ]
    assert detail["properties"]["merkle_root"]["value"] == request.root

    execution = stack.world.stepfunctions.finished(event["execution_arn"])
    output = json.loads(execution["output"])
    assert set(output) == {"decision", "approver_sub", "approved_at", "handoffs"}
    assert set(output["handoffs"]) == {change.change_id for change in CHANGES}
    # What the executor of each change does: consume its own handoff, verify the token, find the root it signed, and
    # check the change's proof against that root.
    store = HandoffStore(stack.world.tables["Handoff"], boto3.client("kms"), clock=stack.world.clock)
    verifier = TokenVerifier.for_provider(provider_metadata(stack.emulator.issuer), clock=stack.world.clock)
    proofs = {change.digest: item.merkle_proof() for change, item in zip(request.changes(), request.items, strict=True)}
    for change in CHANGES:
        opened = store.consume(
            output["handoffs"][change.change_id], execution_arn=event["execution_arn"], change_digest=change.digest
        )
        claims = verifier.verify(opened.token_response["access_token"], AUDIENCE)
        assert granted_kind(claims) == "batch"
        require_granted_root(claims, request.root or "")
        proof = proofs[change.digest]
        assert proof is not None
        require_inclusion(change.digest, proof, request.root or "", tree_size=len(CHANGES))
        assert claims["sub"] == opened.approver_sub == APPROVER


def test_a_batch_denied_on_the_phone_denies_every_change_in_it(make_stack: Any) -> None:
    stack = make_stack()
    request = request_for("m-denied")
    event = stack.world.stepfunctions.start(request, mission_id="m-denied")
    stack.phone.deny_after(6)
    assert stack.invoke(event) == {"outcome": "denied"}
    assert stack.world.stepfunctions.finished(event["execution_arn"])["error"] == "Approval.Denied"
    assert stack.world.sealed_handoffs() == []
    decided = [
        json.loads(item["details"])
        for item in stack.world.audit_trail("m-denied")
        if item["action"] == "approval.decided"
    ]
    assert sorted(record["change_id"] for record in decided) == sorted(change.change_id for change in CHANGES)


def test_twelve_requests_for_one_approver_at_auths_real_limit_are_paced_and_never_refused(
    make_stack: Any, clock: ManualClock
) -> None:
    """The emulator enforces Auth0's 5 CIBA requests per user per minute (and answers the 6th with 429). Twelve
    approval tasks for one approver, each approved as soon as it reaches the phone: the approval function's pacer
    spaces the pushes so that the provider never refuses one."""
    responses = Responses(clock)
    stack = make_stack(transport=responses)
    assert stack.emulator.config.ciba_requests_per_user_per_minute == 5
    stack.phone.approve_after(0)
    changes = variants("enable-kms-key-rotation", 12, start=100)
    for change in changes:
        event = stack.world.stepfunctions.start(change, mission_id="m-paced")
        assert stack.invoke(event) == {"outcome": "approved"}
        assert stack.world.stepfunctions.finished(event["execution_arn"])["status"] == "SUCCEEDED"

    assert responses.statuses("/bc-authorize") == [200] * 12  # not one 429
    pushes = [at for at, path in stack.polls if path == "/bc-authorize"]
    first = pushes[0]
    assert [round(at - first) for at in pushes] == [0, 5, 10, 15, 20, 61, 66, 71, 76, 81, 122, 127]
    never_more_than_five_a_minute(pushes)  # however the minute is placed
    # The pushes after the fifth each waited for the oldest of the last five to be a minute old (and a second).
    for earlier, later in zip(pushes, pushes[5:], strict=False):
        assert later - earlier >= 61
    assert len(stack.phone.seen) == 12


def test_twelve_concurrent_invocations_for_one_approver_share_the_limit_and_are_never_refused(
    make_stack: Any, clock: ManualClock
) -> None:
    """Twelve invocations at once, as the state machine's Map starts them, each its own service on its own clients
    (as Lambda containers are), sharing only the tables and the provider: they take the approver's five slots of the
    minute between them, the others wait for the next ones, and the emulator never answers 429."""
    responses = Responses(clock)
    stack = make_stack(transport=responses)
    stack.phone.approve_after(0)
    timeline = VirtualTime(clock, on_wake=stack.phone.tick)
    changes = variants("enable-kms-key-rotation", 12, start=200)
    events = [stack.world.stepfunctions.start(change, mission_id="m-concurrent") for change in changes]
    started = clock()

    def invocation(event: dict[str, Any]) -> Callable[[], Any]:
        # Built here, one by one: boto3's default session may not create clients from several threads at once.
        service = wiring.create_service(clock=clock, sleep=timeline.sleep, http=httpx.Client(transport=responses))
        continuations = AtomicTable(boto3.resource("dynamodb").Table(service.settings.continuations_table))
        service.pacer = ApproverPacer(continuations, limit=service.settings.pushes_per_minute, clock=clock)
        return lambda: service.handle(event, lambda: 900 - (clock() - started))

    outcomes = timeline.run([invocation(event) for event in events])

    assert outcomes == [{"outcome": "approved"}] * 12
    assert responses.statuses("/bc-authorize") == [200] * 12
    pushes = [at - started for at in responses.times("/bc-authorize")]
    assert [round(at) for at in pushes] == [0] * 5 + [61] * 5 + [122] * 2
    never_more_than_five_a_minute(pushes)
    for event in events:
        assert stack.world.stepfunctions.finished(event["execution_arn"])["status"] == "SUCCEEDED"
