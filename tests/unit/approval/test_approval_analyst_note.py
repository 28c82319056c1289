"""The analyst's note on the approver's phone: a single request's aegis-change object gets one more property,
`analyst` ("AI analyst (advisory)", `P<priority>: <rationale>`, at most 255 characters) in the change id's place
(Auth0 shows at most 10 properties); the binding message stays the change's own; the grant still binds to the digest
alone, so an approval of the noted request is accepted. A batch's aegis-batch object is unchanged, and its
`approval.requested` record lists each change's note for the console's review page."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aegis.approvals.requests import AnalystNote, with_analyst_notes
from aegis.catalogue.base import PROPERTY_VALUE_MAX
from aegis.secrets_guard import WITHHELD
from aegis_auth.rar import (
    ANALYST_LABEL,
    MAX_PROPERTIES,
    batch_authorization_details,
    change_authorization_details,
    require_change_digest,
)
from tests.support import planted_secrets
from tests.support.approval_plans import variants
from tests.support.approval_world import RecordingTaskTokens, World, batch_request, single_request
from tests.support.changes import one_of_each_kind
from tests.support.provider_double import AUDIENCE, CLIENT_ID, ProviderDouble, Reply

APPROVER = "auth0|approver-1"
RATIONALE = "Public bucket holding exports: fix first"


@pytest.fixture
def provider(world: World) -> ProviderDouble:
    return ProviderDouble(clock=world.clock)


@pytest.fixture
def service(world: World, provider: ProviderDouble) -> Any:
    settings = world.settings(provider.issuer, CLIENT_ID, AUDIENCE, APPROVER)
    return world.service(settings, provider.client(), tasks=RecordingTaskTokens(world.stepfunctions.sfn))


def grant_what_was_asked(double: ProviderDouble, _: object) -> Reply:
    """Auth0 grants what the request asked: the access token carries the request's own authorization_details."""
    asked = json.loads(double.requests_to("/bc-authorize")[-1].form["authorization_details"])
    return 200, double.token_response(APPROVER, digest=None, details_type="", authorization_details=asked), {}


def requested(world: World) -> dict[str, Any]:
    [record] = [item for item in world.audit_trail() if item["action"] == "approval.requested"]
    return dict(json.loads(record["details"]))


def test_a_single_requests_object_carries_the_note_and_its_binding_message_does_not(
    world: World, provider: ProviderDouble, service: Any
) -> None:
    change = one_of_each_kind()[0]
    (request,) = with_analyst_notes(
        [single_request(change, (APPROVER,))], {change.change_id: AnalystNote(priority=1, rationale=RATIONALE)}
    )
    event = world.stepfunctions.start(request)
    provider.token_script.append(grant_what_was_asked)

    assert service.handle(event, world.lambda_time(900)) == {"outcome": "approved"}

    (sent,) = provider.requests_to("/bc-authorize")
    (detail,) = json.loads(sent.form["authorization_details"])
    properties = detail["properties"]
    assert properties["analyst"]["name"] == ANALYST_LABEL == "AI analyst (advisory)"
    assert properties["analyst"]["value"] == f"P1: {RATIONALE}"
    assert len(properties) <= MAX_PROPERTIES
    # The digest is still there and still what binds; the change id gave the note its place.
    assert properties["digest"]["value"] == change.digest
    assert "change_id" not in properties
    require_change_digest([detail], change.digest)
    # The binding message is the change's own, built from identifiers: no model text.
    assert sent.form["binding_message"] == change.binding_message()
    assert RATIONALE not in sent.form["binding_message"]
    assert "P1" not in sent.form["binding_message"]
    record = requested(world)
    assert record["analyst"] == f"P1: {RATIONALE}"
    assert record["binding_message"] == change.binding_message()


def test_without_a_note_the_object_is_as_before(world: World, provider: ProviderDouble, service: Any) -> None:
    change = one_of_each_kind()[0]
    event = world.stepfunctions.start(single_request(change, (APPROVER,)))
    provider.token_script.append(grant_what_was_asked)
    service.handle(event, world.lambda_time(900))

    (sent,) = provider.requests_to("/bc-authorize")
    assert json.loads(sent.form["authorization_details"]) == change_authorization_details(change)
    assert "analyst" not in requested(world)


def test_a_batchs_object_is_unchanged_and_its_record_lists_each_changes_note(
    world: World, provider: ProviderDouble, service: Any
) -> None:
    changes = variants("enable-kms-key-rotation", 3)
    plain = batch_request(changes, APPROVER)
    notes = {changes[0].change_id: AnalystNote(priority=3, rationale="Rotation is cheap; batch it")}
    (request,) = with_analyst_notes([plain], notes)
    event = world.stepfunctions.start(request)
    provider.token_script.append(grant_what_was_asked)

    assert service.handle(event, world.lambda_time(900)) == {"outcome": "approved"}

    (sent,) = provider.requests_to("/bc-authorize")
    assert json.loads(sent.form["authorization_details"]) == batch_authorization_details("m-test", plain)
    items = {item["change_id"]: item for item in requested(world)["items"]}
    assert items[changes[0].change_id]["analyst"] == "P3: Rotation is cheap; batch it"
    assert all("analyst" not in items[change.change_id] for change in changes[1:])


def test_the_notes_value_is_screened_and_never_longer_than_a_property() -> None:
    change = one_of_each_kind()[0]
    # Invisible characters are spelled out (six characters each), then the advisory text is cut to fit.
    spelled = change_authorization_details(change, analyst="P2: " + "\u202e" * 200)
    value = spelled[0]["properties"]["analyst"]["value"]
    assert len(value) == PROPERTY_VALUE_MAX
    assert "\u202e" not in value
    assert value.endswith("…")
    planted = planted_secrets.access_key_id()
    withheld = change_authorization_details(change, analyst=f"P1: {planted}")
    assert planted not in json.dumps(withheld)
    assert WITHHELD in withheld[0]["properties"]["analyst"]["value"]
