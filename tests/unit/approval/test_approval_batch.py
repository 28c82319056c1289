"""Approval requests of the new shape against a scripted provider and a real execution waiting on its token: a batch
asks once with the batch RAR and binding message and seals one handoff per change; requests the policy does not allow
for this approver are refused before any push; a grant of anything but the batch's own root is never released."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from aegis.approvals.merkle import merkle_root
from aegis.approvals.policy import ApprovalPolicy, ApproverRouting
from aegis.approvals.requests import ApprovalRequest
from aegis.models import Risk
from aegis.reporting.assembly import change_facts
from aegis.secrets_guard import WITHHELD
from aegis_auth.errors import HandoffAlreadyConsumed, HandoffContextMismatch
from aegis_auth.handoff import HandoffStore
from aegis_auth.rar import (
    AEGIS_BATCH_DETAILS_TYPE,
    batch_authorization_details,
    batch_binding_message,
    change_authorization_details,
    instruction_for,
)
from tests.support import planted_secrets
from tests.support.approval_plans import variants
from tests.support.approval_world import (
    RecordingTaskTokens,
    World,
    batch_request,
    low_risk_detach,
    single_request,
)
from tests.support.changes import ACCOUNT
from tests.support.provider_double import AUDIENCE, CLIENT_ID, ProviderDouble, Reply, oauth_error

APPROVER = "auth0|approver-1"
SECOND = "auth0|approver-2"
CHANGES = variants("revoke-security-group-rules", 9) + variants("enable-kms-key-rotation", 3)
REVIEW_BASE = "https://console.example/"
REQUEST = batch_request(CHANGES, APPROVER, review_url_base=REVIEW_BASE)
PENDING = oauth_error(400, "authorization_pending")
ITEM_FIELDS = {
    "change_id",
    "change_digest",
    "kind",
    "resource_arn",
    "region",
    "risk",
    "before_text",
    "after_text",
    "instruction",
}


def policy(**overrides: Any) -> ApprovalPolicy:
    values: dict[str, Any] = {"approver_subs": (APPROVER, SECOND), "two_person_risk": None}
    return ApprovalPolicy(**(values | overrides))


@pytest.fixture
def provider(world: World) -> ProviderDouble:
    return ProviderDouble(clock=world.clock)


@pytest.fixture
def tasks(world: World) -> RecordingTaskTokens:
    return RecordingTaskTokens(world.stepfunctions.sfn)


def service_with(world: World, provider: ProviderDouble, tasks: RecordingTaskTokens, **policy_overrides: Any) -> Any:
    settings = world.settings(provider.issuer, CLIENT_ID, AUDIENCE, APPROVER, policy=policy(**policy_overrides))
    return world.service(settings, provider.client(), tasks=tasks)


@pytest.fixture
def service(world: World, provider: ProviderDouble, tasks: RecordingTaskTokens) -> Any:
    return service_with(world, provider, tasks)


def grant(details: list[dict[str, Any]] | Callable[[ProviderDouble], list[dict[str, Any]]], sub: str = APPROVER) -> Any:
    """A token answer whose signed access token grants `details` (or what `details(double)` gives)."""

    def reply(double: ProviderDouble, _: object) -> Reply:
        granted = details(double) if callable(details) else details
        return 200, double.token_response(sub, digest=None, details_type="", authorization_details=granted), {}

    return reply


def what_was_asked(double: ProviderDouble) -> list[dict[str, Any]]:
    """What Auth0 grants: the authorization_details of the request the approver answered."""
    return list(json.loads(double.requests_to("/bc-authorize")[-1].form["authorization_details"]))


def finished(world: World, event: dict[str, Any]) -> dict[str, Any]:
    return world.stepfunctions.finished(event["execution_arn"])


def records(world: World, action: str) -> list[dict[str, Any]]:
    return [json.loads(item["details"]) for item in world.audit_trail() if item["action"] == action]


# --- asking -----------------------------------------------------------------------------------------------------------
def test_a_batch_is_asked_once_with_the_batch_rar_and_binding_message(
    world: World, provider: ProviderDouble, service: Any
) -> None:
    event = world.stepfunctions.start(REQUEST)
    provider.token_script.extend([PENDING, grant(what_was_asked)])
    assert service.handle(event, world.lambda_time(900)) == {"outcome": "approved"}

    (sent,) = provider.requests_to("/bc-authorize")
    assert sent.form["binding_message"] == batch_binding_message(REQUEST) == f"Approve 12 changes #{REQUEST.root[:6]}"
    assert json.loads(sent.form["login_hint"])["sub"] == APPROVER
    details = json.loads(sent.form["authorization_details"])
    assert details == batch_authorization_details("m-test", REQUEST)
    (detail,) = details
    assert detail["type"] == AEGIS_BATCH_DETAILS_TYPE
    values = {name: prop["value"] for name, prop in detail["properties"].items()}
    assert values == {
        "mission": "m-test",
        "count": "12",
        "kinds": "revoke-security-group-rules: 9, enable-kms-key-rotation: 3",
        "risk": "low",
        "account": ACCOUNT,
        "review_url": f"{REVIEW_BASE}#/missions/m-test/requests/r001",
        "merkle_root": REQUEST.root,
    }
    assert (sent.form["scope"], sent.form["audience"], sent.form["requested_expiry"]) == ("openid", AUDIENCE, "300")


def test_a_single_request_is_asked_as_before(world: World, provider: ProviderDouble, service: Any) -> None:
    change = CHANGES[0]
    event = world.stepfunctions.start(single_request(change, (APPROVER,)))
    provider.token_script.append(grant(what_was_asked))
    assert service.handle(event, world.lambda_time(900)) == {"outcome": "approved"}
    (sent,) = provider.requests_to("/bc-authorize")
    assert sent.form["binding_message"] == change.binding_message()
    assert json.loads(sent.form["authorization_details"]) == change_authorization_details(change)
    output = json.loads(finished(world, event)["output"])
    assert set(output["handoffs"]) == {change.change_id}


# --- a granted batch ------------------------------------------------------------------------------------------------
def test_a_granted_batch_seals_one_handoff_per_change_each_opened_only_with_its_own_digest(
    world: World, provider: ProviderDouble, service: Any
) -> None:
    event = world.stepfunctions.start(REQUEST)
    provider.token_script.append(grant(what_was_asked))
    assert service.handle(event, world.lambda_time(900)) == {"outcome": "approved"}

    execution = finished(world, event)
    assert execution["status"] == "SUCCEEDED"
    output = json.loads(execution["output"])
    assert set(output) == {"decision", "approver_sub", "approved_at", "handoffs"}
    assert (output["decision"], output["approver_sub"]) == ("approved", APPROVER)
    assert output["approved_at"].endswith("Z")
    handoffs = output["handoffs"]
    assert set(handoffs) == {change.change_id for change in CHANGES}
    assert len(set(handoffs.values())) == len(CHANGES)
    sealed = {item["handoff_id"]: item for item in world.sealed_handoffs()}
    assert set(sealed) == set(handoffs.values())
    for change in CHANGES:
        item = sealed[handoffs[change.change_id]]
        assert (item["change_id"], item["change_digest"], item["approver_sub"]) == (
            change.change_id,
            change.digest,
            APPROVER,
        )
        assert item["execution_arn"] == event["execution_arn"]

    store = HandoffStore(world.tables["Handoff"], boto3.client("kms"), clock=world.clock)
    first, second, *rest = CHANGES
    with pytest.raises(HandoffContextMismatch):
        # The first change's handoff under the second change's digest: refused (and gone, as every failed consume).
        store.consume(handoffs[first.change_id], execution_arn=event["execution_arn"], change_digest=second.digest)
    tokens = set()
    for change in [second, *rest]:
        opened = store.consume(
            handoffs[change.change_id], execution_arn=event["execution_arn"], change_digest=change.digest
        )
        assert (opened.change_id, opened.change_digest) == (change.change_id, change.digest)
        tokens.add(opened.token_response["access_token"])
        with pytest.raises(HandoffAlreadyConsumed):
            store.consume(handoffs[change.change_id], execution_arn=event["execution_arn"], change_digest=change.digest)
    (token,) = tokens  # the same token response, sealed once per change
    assert token in provider.issued


def test_a_batch_is_audited_with_every_changes_diff_and_a_decision_per_change(
    world: World, provider: ProviderDouble, service: Any
) -> None:
    event = world.stepfunctions.start(REQUEST)
    provider.token_script.append(grant(what_was_asked))
    service.handle(event, world.lambda_time(900))

    (requested,) = records(world, "approval.requested")
    assert requested["request_id"] == "r001"
    assert requested["request_kind"] == "batch"
    assert requested["approvers"] == [APPROVER]
    assert requested["approver_sub"] == APPROVER
    assert requested["merkle_root"] == REQUEST.root
    assert requested["review_url"] == f"{REVIEW_BASE}#/missions/m-test/requests/r001"
    assert requested["count"] == 12
    assert requested["kinds"] == "revoke-security-group-rules: 9, enable-kms-key-rotation: 3"
    assert requested["binding_message"] == batch_binding_message(REQUEST)
    assert requested["instruction"] == "Approve these 12 AWS changes as reviewed in the console"
    assert "expires_at" in requested
    assert "change_id" not in requested  # a batch is no one change: its changes are its items
    items = requested["items"]
    assert [item["change_digest"] for item in items] == sorted(change.digest for change in CHANGES)
    by_id = {change.change_id: change for change in CHANGES}
    for item in items:
        assert set(item) == ITEM_FIELDS
        change = by_id[item["change_id"]]
        assert (item["before_text"], item["after_text"]) == (change.describe_before(), change.describe_after())
        assert item["instruction"] == instruction_for(change)
        assert (item["kind"], item["resource_arn"], item["region"], item["risk"]) == (
            change.kind,
            change.resource_arn,
            change.region,
            "low",
        )

    output = json.loads(finished(world, event)["output"])
    decided = records(world, "approval.decided")
    assert sorted(record["change_id"] for record in decided) == sorted(by_id)
    for record in decided:
        assert record["handoff_id"] == output["handoffs"][record["change_id"]]
        assert record["change_digest"] == by_id[record["change_id"]].digest
        assert (record["request_id"], record["merkle_root"]) == ("r001", REQUEST.root)
    # Each change's own trail tells its decision, as for a single request (the report reads it so).
    facts = change_facts(world.audit_trail())
    assert all(facts[change_id].decision == "approved" for change_id in by_id)


def test_a_credential_shaped_name_in_a_batch_is_withheld_in_the_record_and_the_approval_goes_on(
    world: World, provider: ProviderDouble, service: Any
) -> None:
    planted = planted_secrets.access_key_id()
    request = batch_request([low_risk_detach(planted), *CHANGES[:3]], APPROVER)
    event = world.stepfunctions.start(request)
    provider.token_script.append(grant(what_was_asked))
    assert service.handle(event, world.lambda_time(900)) == {"outcome": "approved"}
    (requested,) = records(world, "approval.requested")
    assert planted not in json.dumps(world.audit_trail(), default=str)
    (hostile,) = [item for item in requested["items"] if item["kind"] == "detach-policy"]
    assert WITHHELD in hostile["before_text"] + hostile["instruction"]
    assert planted not in finished(world, event)["output"]


# --- refused before any push ----------------------------------------------------------------------------------------
def _tampered_item(request: ApprovalRequest) -> dict[str, Any]:
    """The batch's JSON with its first change swapped for another (root and proofs left as they were)."""
    raw = request.model_dump(mode="json")
    raw["items"][0]["change"] = variants("revoke-security-group-rules", 1, start=99)[0].model_dump(mode="json")
    return raw


def _two_items_single() -> dict[str, Any]:
    raw = single_request(CHANGES[0], (APPROVER,)).model_dump(mode="json")
    raw["items"].append(single_request(CHANGES[1], (APPROVER,)).model_dump(mode="json")["items"][0])
    return raw


def _another_root() -> dict[str, Any]:
    raw = REQUEST.model_dump(mode="json")
    raw["root"] = merkle_root(change.digest for change in CHANGES[:-1])
    return raw


REFUSALS: dict[str, tuple[Callable[[], dict[str, Any]], str, dict[str, Any], str]] = {
    # name: (request JSON, approver asked, the function's policy, why)
    "approver-not-in-the-request": (lambda: REQUEST.model_dump(mode="json"), SECOND, {}, "not one of the request"),
    "approver-not-eligible": (
        lambda: REQUEST.model_dump(mode="json"),
        APPROVER,
        {"routing": ApproverRouting(accounts={ACCOUNT: (SECOND,)})},
        "may not approve change",
    ),
    "root-does-not-recompute": (_another_root, APPROVER, {}, "does not bind its changes"),
    "a-change-swapped-into-the-batch": (lambda: _tampered_item(REQUEST), APPROVER, {}, "does not bind its changes"),
    "single-with-two-items": (_two_items_single, APPROVER, {}, "malformed"),
    "batch-above-the-batch-risk": (
        lambda: REQUEST.model_dump(mode="json"),
        APPROVER,
        {"batch_max_risk": None},
        "may not be approved in a batch",
    ),
    "two-person-change-asked-of-one": (
        lambda: single_request(CHANGES[0], (APPROVER,)).model_dump(mode="json"),
        APPROVER,
        {"two_person_risk": Risk.LOW},
        "needs 2 distinct approvers",
    ),
}


@pytest.mark.parametrize("name", list(REFUSALS))
def test_a_request_this_approver_may_not_be_sent_is_refused_before_any_push(
    world: World, provider: ProviderDouble, tasks: RecordingTaskTokens, name: str
) -> None:
    make, approver, overrides, why = REFUSALS[name]
    service = service_with(world, provider, tasks, **overrides)
    event = world.stepfunctions.start(make(), approver=approver)
    assert service.handle(event, world.lambda_time(900)) == {"outcome": "failed"}
    execution = finished(world, event)
    assert (execution["status"], execution["error"]) == ("FAILED", "Approval.Failed")
    assert provider.requests_to("/bc-authorize") == []
    assert world.pace_items() == []  # not even a pacing slot was taken
    assert world.sealed_handoffs() == []
    decided = records(world, "approval.decided")
    assert decided
    assert all(record["reason"].find(why) >= 0 for record in decided), decided[0]["reason"]
    assert event["task_token"] not in json.dumps(world.audit_trail(), default=str)


# --- a grant of anything else is never released ---------------------------------------------------------------------
def _batch_details(**values: str) -> Callable[[ProviderDouble], list[dict[str, Any]]]:
    def details(double: ProviderDouble) -> list[dict[str, Any]]:
        (detail,) = what_was_asked(double)
        for name, value in values.items():
            detail["properties"][name]["value"] = value
        return [detail]

    return details


OTHER_ROOT = merkle_root(change.digest for change in CHANGES[1:])
GRANT_FORGERIES: dict[str, Callable[[ProviderDouble], list[dict[str, Any]]]] = {
    "another-root": _batch_details(merkle_root=OTHER_ROOT),
    "another-count": _batch_details(count="11"),
    "a-single-digest-for-the-batch": lambda _: change_authorization_details(CHANGES[0]),
    "both-a-batch-and-a-change": lambda double: what_was_asked(double) + change_authorization_details(CHANGES[0]),
    "two-batch-objects": lambda double: what_was_asked(double) * 2,
    "no-object-of-ours": lambda _: [{"type": "urn:auth0:schemas:authorization-details:v1:payment"}],
}


@pytest.mark.parametrize("name", list(GRANT_FORGERIES))
def test_a_grant_of_anything_but_this_batch_is_never_released(
    world: World, provider: ProviderDouble, service: Any, name: str
) -> None:
    event = world.stepfunctions.start(REQUEST)
    provider.token_script.append(grant(GRANT_FORGERIES[name]))
    assert service.handle(event, world.lambda_time(900)) == {"outcome": "failed"}
    assert finished(world, event)["error"] == "Approval.Failed"
    assert world.sealed_handoffs() == []
    decided = records(world, "approval.decided")
    assert {record["change_id"] for record in decided} == {change.change_id for change in CHANGES}
    assert all(record["error"] == "Approval.Failed" for record in decided)


def test_a_batch_grant_for_a_single_request_is_never_released(
    world: World, provider: ProviderDouble, service: Any
) -> None:
    change = CHANGES[0]
    event = world.stepfunctions.start(single_request(change, (APPROVER,)))
    provider.token_script.append(grant(batch_authorization_details("m-test", REQUEST)))
    assert service.handle(event, world.lambda_time(900)) == {"outcome": "failed"}
    assert world.sealed_handoffs() == []
    assert "grants a batch approval" in records(world, "approval.decided")[-1]["reason"]


# --- denial, expiry, continuation -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reply", "error", "decision"),
    [
        (oauth_error(400, "access_denied"), "Approval.Denied", "denied"),
        (oauth_error(400, "expired_token"), "Approval.Expired", "expired"),
    ],
)
def test_denying_or_letting_a_batch_expire_decides_every_change_in_it(
    world: World, provider: ProviderDouble, service: Any, reply: Reply, error: str, decision: str
) -> None:
    event = world.stepfunctions.start(REQUEST)
    provider.token_script.extend([PENDING, reply])
    assert service.handle(event, world.lambda_time(900)) == {"outcome": decision}
    assert finished(world, event)["error"] == error
    decided = records(world, "approval.decided")
    assert sorted(record["change_id"] for record in decided) == sorted(change.change_id for change in CHANGES)
    facts = change_facts(world.audit_trail())
    assert {facts[change.change_id].decision for change in CHANGES} == {decision}


def test_a_batch_continues_in_a_fresh_invocation_with_its_request_and_approver(
    world: World, provider: ProviderDouble, service: Any
) -> None:
    event = world.stepfunctions.start(REQUEST)
    provider.token_script.extend([PENDING, PENDING, PENDING, grant(what_was_asked)])
    assert service.handle(event, world.lambda_time(44)) == {"outcome": "continued"}
    (invocation,) = world.self_invocations
    stored = world.tables["Continuations"].get_item(Key={"id": invocation["continuation_id"]})["Item"]
    assert stored["phase"] == "polling"
    assert stored["approver_sub"] == APPROVER
    assert ApprovalRequest.model_validate_json(stored["request"]) == REQUEST
    history = json.dumps(world.stepfunctions.history(event["execution_arn"]), default=str)
    assert invocation["continuation_id"] not in history

    assert service.handle(invocation, world.lambda_time(900)) == {"outcome": "approved"}
    output = json.loads(finished(world, event)["output"])
    assert set(output["handoffs"]) == {change.change_id for change in CHANGES}
    assert len(provider.requests_to("/bc-authorize")) == 1
    continued = records(world, "approval.continued")
    assert [(record["phase"], record["request_id"]) for record in continued] == [("polling", "r001")]
