"""The `approval.requested` record holds what the approver's phone shows (binding message, digest, before and after),
so that the ops API lists pending approvals from the audit trail alone; a resource name shaped like a credential is
withheld there, as in every text shown to people, rather than making the audit writer refuse the record."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aegis.secrets_guard import WITHHELD
from aegis_auth.rar import AEGIS_CHANGE_DETAILS_TYPE, instruction_for
from tests.support import planted_secrets
from tests.support.approval_world import RecordingTaskTokens, World
from tests.support.changes import detach_admin_policy_from, one_of_each_kind
from tests.support.provider_double import AUDIENCE, CLIENT_ID, ProviderDouble

APPROVER = "auth0|approver-1"


@pytest.fixture
def provider(world: World) -> ProviderDouble:
    return ProviderDouble(clock=world.clock)


@pytest.fixture
def service(world: World, provider: ProviderDouble) -> Any:
    settings = world.settings(provider.issuer, CLIENT_ID, AUDIENCE, APPROVER)
    return world.service(settings, provider.client(), tasks=RecordingTaskTokens(world.stepfunctions.sfn))


def requested_details(world: World) -> dict[str, Any]:
    [record] = [item for item in world.audit_trail() if item["action"] == "approval.requested"]
    return dict(json.loads(record["details"]))


def approve(provider: ProviderDouble, digest: str) -> None:
    provider.token_script.append(
        (200, provider.token_response(APPROVER, digest=digest, details_type=AEGIS_CHANGE_DETAILS_TYPE), {})
    )


def test_the_request_record_holds_what_the_phone_shows(world: World, provider: ProviderDouble, service: Any) -> None:
    change = one_of_each_kind()[0]
    event = world.stepfunctions.start(change)
    approve(provider, change.digest)
    service.handle(event, world.lambda_time(900))

    details = requested_details(world)
    assert (details["request_id"], details["request_kind"], details["approvers"]) == ("r001", "single", [APPROVER])
    [sent] = provider.requests_to("/bc-authorize")
    assert details["binding_message"] == sent.form["binding_message"] == change.binding_message()
    assert details["change_digest"] == change.digest
    assert (details["before_text"], details["after_text"]) == (change.describe_before(), change.describe_after())
    assert details["instruction"] == instruction_for(change)
    assert (details["kind"], details["resource_arn"], details["region"]) == (
        change.kind,
        change.resource_arn,
        change.region,
    )


def test_a_credential_shaped_name_is_withheld_in_the_record_and_the_approval_goes_on(
    world: World, provider: ProviderDouble, service: Any
) -> None:
    planted = planted_secrets.access_key_id()
    change = detach_admin_policy_from(planted)
    event = world.stepfunctions.start(change)
    approve(provider, change.digest)

    assert service.handle(event, world.lambda_time(900)) == {"outcome": "approved"}

    details = requested_details(world)
    assert planted not in json.dumps(details)
    assert WITHHELD in details["before_text"] + details["after_text"] + details["instruction"]
