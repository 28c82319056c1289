from __future__ import annotations

import httpx
import pytest

from aegis_auth import oidc
from aegis_auth.errors import OAuthProtocolError
from aegis_jwt.errors import ProviderUnavailable
from aegis_killswitch.auth0_steps import (
    Auth0Management,
    block_token_vault_approvers,
    revoke_approver_sessions,
    unblock_approvers,
)
from aegis_killswitch.settings import KillSwitchSettings
from aegis_local.auth0 import DEFAULT_CONNECTION, Auth0Emulator
from tests.support.killswitch_world import ApproverPool, AwsWorld, Phone, kill_switch_for

GITHUB = "github"


def management_for(settings: KillSwitchSettings, aws_world: AwsWorld) -> Auth0Management:
    return kill_switch_for(aws_world, settings).clients.auth0_management()


def test_revoking_ends_every_refresh_token_of_every_approver(
    settings: KillSwitchSettings, aws_world: AwsWorld, phone: Phone, emulator: Auth0Emulator
) -> None:
    first, second = settings.approver_subs
    tokens = [phone.approver_refresh_token(first), phone.approver_refresh_token(second)]
    assert all(phone.refresh_works(token) for token in tokens)
    management = management_for(settings, aws_world)

    outcome = revoke_approver_sessions(lambda: management, settings.approver_subs)

    assert outcome.ok, outcome.reason
    assert outcome.details["revoked"] == [first, second]
    assert not any(phone.refresh_works(token) for token in tokens)
    actions = {(e.action, e.user_id) for e in emulator.management_events()}
    assert {("revoke_access", first), ("delete_grants", first), ("revoke_access", second)} <= actions


def test_auth0_down_is_reported_per_step_not_raised(
    settings: KillSwitchSettings, aws_world: AwsWorld, emulator: Auth0Emulator
) -> None:
    management = management_for(settings, aws_world)
    emulator.set_down(True)
    outcome = revoke_approver_sessions(lambda: management, settings.approver_subs)
    assert not outcome.ok
    assert "503" in outcome.reason
    assert set(outcome.details["failures"]) == set(settings.approver_subs)


def test_an_unknown_approver_fails_alone(
    settings: KillSwitchSettings, aws_world: AwsWorld, phone: Phone, approver_pool: ApproverPool
) -> None:
    (known,) = approver_pool.take()
    token = phone.approver_refresh_token(known)
    management = management_for(settings, aws_world)
    outcome = revoke_approver_sessions(lambda: management, ("auth0|nobody", known))
    assert not outcome.ok
    assert "auth0|nobody" in outcome.reason
    assert "404" in outcome.details["failures"]["auth0|nobody"]
    assert outcome.details["revoked"] == [known]
    assert not phone.refresh_works(token)


def test_no_approvers_means_nothing_to_revoke(settings: KillSwitchSettings, aws_world: AwsWorld) -> None:
    outcome = revoke_approver_sessions(lambda: management_for(settings, aws_world), ())
    assert outcome.ok
    assert "no approver" in outcome.reason


def test_approvers_with_a_vault_account_are_blocked_and_remembered_then_unblocked(
    settings: KillSwitchSettings, aws_world: AwsWorld, emulator: Auth0Emulator
) -> None:
    management = management_for(settings, aws_world)
    remembered: set[str] = set()

    outcome = block_token_vault_approvers(
        lambda: management, settings.approver_subs, DEFAULT_CONNECTION, remembered.update
    )

    assert outcome.ok, outcome.reason
    assert outcome.details["blocked"] == list(settings.approver_subs)
    assert remembered == set(settings.approver_subs)
    assert all(emulator.is_blocked(sub) for sub in settings.approver_subs)

    # A second trigger finds them blocked: it neither blocks again nor claims the block as its own.
    again: set[str] = set()
    outcome = block_token_vault_approvers(lambda: management, settings.approver_subs, DEFAULT_CONNECTION, again.update)
    assert outcome.ok
    assert outcome.details["already_blocked"] == list(settings.approver_subs)
    assert again == set()

    forgotten: set[str] = set()
    outcome = unblock_approvers(lambda: management, remembered, forgotten.update)
    assert outcome.ok, outcome.reason
    assert forgotten == set(settings.approver_subs)
    assert not any(emulator.is_blocked(sub) for sub in settings.approver_subs)


def test_approvers_without_an_account_on_the_connection_are_left_alone(
    settings: KillSwitchSettings, aws_world: AwsWorld, emulator: Auth0Emulator
) -> None:
    management = management_for(settings, aws_world)
    remembered: set[str] = set()
    outcome = block_token_vault_approvers(lambda: management, settings.approver_subs, GITHUB, remembered.update)
    assert outcome.ok
    assert outcome.details["without_connected_account"] == list(settings.approver_subs)
    assert remembered == set()
    assert not any(emulator.is_blocked(sub) for sub in settings.approver_subs)


def test_no_connection_configured_blocks_nobody(
    settings: KillSwitchSettings, aws_world: AwsWorld, emulator: Auth0Emulator
) -> None:
    outcome = block_token_vault_approvers(
        lambda: management_for(settings, aws_world), settings.approver_subs, "", set().update
    )
    assert outcome.ok
    assert "no Token Vault connection" in outcome.reason
    assert not any(emulator.is_blocked(sub) for sub in settings.approver_subs)


def test_a_block_that_cannot_be_recorded_still_blocks_and_says_so(
    settings: KillSwitchSettings, aws_world: AwsWorld, emulator: Auth0Emulator
) -> None:
    def broken_record(_: set[str]) -> None:
        raise RuntimeError("control table unavailable")

    management = management_for(settings, aws_world)
    outcome = block_token_vault_approvers(lambda: management, settings.approver_subs, DEFAULT_CONNECTION, broken_record)
    assert not outcome.ok
    assert "could not record the block" in outcome.reason
    assert all(emulator.is_blocked(sub) for sub in settings.approver_subs)


def test_the_management_token_comes_from_client_credentials_with_the_tenant_audience(
    settings: KillSwitchSettings, aws_world: AwsWorld, emulator: Auth0Emulator
) -> None:
    management = management_for(settings, aws_world)
    assert settings.management_audience == emulator.management_audience
    management.revoke_access(settings.approver_subs[0])
    assert management._token in emulator.issued_secrets()


def test_a_wrong_client_secret_is_a_protocol_error(
    settings: KillSwitchSettings, aws_world: AwsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    from aegis_auth import oidc

    boto3.client("secretsmanager").put_secret_value(SecretId=aws_world.secret_arn, SecretString="not-the-secret")
    oidc.clear_caches()
    management = management_for(settings, aws_world)
    with pytest.raises(OAuthProtocolError, match="invalid_client"):
        management.revoke_access(settings.approver_subs[0])
    outcome = revoke_approver_sessions(lambda: management, settings.approver_subs)
    assert not outcome.ok
    assert "not-the-secret" not in outcome.reason


def test_transport_failure_is_provider_unavailable(
    settings: KillSwitchSettings, aws_world: AwsWorld, emulator: Auth0Emulator
) -> None:
    management = management_for(settings, aws_world)
    management.is_blocked(settings.approver_subs[0])  # token obtained
    emulator.set_down(True)
    with pytest.raises(ProviderUnavailable, match="503"):
        management.is_blocked(settings.approver_subs[0])


def test_once_auth0_fails_to_answer_the_operation_stops_calling_it(
    settings: KillSwitchSettings, aws_world: AwsWorld, emulator: Auth0Emulator, phone: Phone
) -> None:
    # A hanging Auth0 must cost one timeout per operation, not one per approver and call: count what reaches it.
    phone.operator_token()  # the discovery document is fetched (and cached) while Auth0 is up
    requests: list[str] = []
    http = httpx.Client(timeout=5, event_hooks={"request": [lambda request: requests.append(request.url.path)]})
    auth = oidc.ClientAuthentication.from_secret_arn(
        settings.auth0_client_id, settings.auth0_client_secret_arn, settings.client_auth_method
    )
    client = oidc.OidcClient(settings.auth0_issuer, auth, http=http)
    management = Auth0Management(client, settings.management_audience, http=http)
    management.is_blocked(settings.approver_subs[0])
    requests.clear()
    emulator.set_down(True)

    revoked = revoke_approver_sessions(lambda: management, settings.approver_subs)
    blocked = block_token_vault_approvers(lambda: management, settings.approver_subs, DEFAULT_CONNECTION, set().update)

    assert requests == [f"/api/v2/users/{settings.approver_subs[0]}/revoke-access"]
    assert not revoked.ok
    assert not blocked.ok
    assert "503" in revoked.reason
    assert "not attempted" in blocked.reason
    http.close()
