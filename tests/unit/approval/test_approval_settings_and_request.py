"""Configuration from the environment and the shape of the backchannel request."""

from __future__ import annotations

import dataclasses
import json
import threading

import pytest

import aegis_approval.wiring as wiring
from aegis.approvals.policy import ApprovalPolicy, ApproverRouting
from aegis.models import Risk
from aegis_approval.errors import InvalidSettings, RefreshTokenScopeRefused
from aegis_approval.request import backchannel_form, login_hint
from aegis_approval.settings import ApprovalSettings
from tests.support.changes import one_of_each_kind

ENV = {
    "HANDOFF_TABLE": "Handoff",
    "CONTINUATIONS_TABLE": "Continuations",
    "HANDOFF_KEY_ID": "arn:aws:kms:eu-west-1:123456789012:key/k",
    "CONTROL_TABLE": "Control",
    "AUDIT_TABLE": "Audit",
    "AUTH0_ISSUER": "https://tenant.eu.auth0.com/",
    "AUTH0_CLIENT_ID": "client",
    "AUTH0_CLIENT_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:auth0",
    "AUTH0_AUDIENCE": "https://aegis.example/api",
    "APPROVER_SUBS": "auth0|first, auth0|second",
    "CIBA_SCOPE": "profile openid remediate:approved_change",
    "CIBA_REQUESTED_EXPIRY": "120",
    "CLIENT_AUTH_METHOD": "client_secret_basic",
    "APPROVAL_FUNCTION_NAME": "aegis-approval",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CIBA_LOGIN_HINT_FORMAT", raising=False)
    return monkeypatch


def test_settings_come_from_the_template_environment(env: pytest.MonkeyPatch) -> None:
    settings = ApprovalSettings.from_env()
    # The approvers are the policy's, as the validator reads them; which one a push goes to is the event's.
    assert settings.policy == ApprovalPolicy(approver_subs=("auth0|first", "auth0|second"))
    assert not hasattr(settings, "approver_sub")
    assert settings.pushes_per_minute == 5
    assert settings.scope == ("openid", "profile", "remediate:approved_change")
    assert settings.requested_expiry == 120
    assert settings.client_auth_method == "client_secret_basic"
    assert settings.login_hint_format == "iss_sub"


def test_the_policy_and_the_push_limit_come_from_the_template_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("APPROVAL_BATCH_MAX_RISK", "low")
    env.setenv("APPROVAL_BATCH_MAX_CHANGES", "12")
    env.setenv("APPROVAL_TWO_PERSON_RISK", "none")
    env.setenv("APPROVER_ROUTING", '{"accounts": {"123456789012": ["auth0|second"]}}')
    env.setenv("APPROVAL_REVIEW_URL_BASE", "https://console.example/")
    env.setenv("APPROVER_PUSHES_PER_MINUTE", "60")
    settings = ApprovalSettings.from_env()
    assert settings.policy == ApprovalPolicy(
        approver_subs=("auth0|first", "auth0|second"),
        batch_max_risk=Risk.LOW,
        batch_max_changes=12,
        two_person_risk=None,
        routing=ApproverRouting(accounts={"123456789012": ("auth0|second",)}),
        review_url_base="https://console.example/",
    )
    assert settings.pushes_per_minute == 60


def test_openid_is_always_requested_and_expiry_defaults_to_300(env: pytest.MonkeyPatch) -> None:
    env.delenv("CIBA_SCOPE")
    env.delenv("CIBA_REQUESTED_EXPIRY")
    settings = ApprovalSettings.from_env()
    assert settings.scope == ("openid",)
    assert settings.requested_expiry == 300


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CIBA_REQUESTED_EXPIRY", "301", "1 to 300"),
        ("CIBA_REQUESTED_EXPIRY", "0", "1 to 300"),
        ("CIBA_REQUESTED_EXPIRY", "five", "1 to 300"),
        ("CLIENT_AUTH_METHOD", "private_key_jwt", "CLIENT_AUTH_METHOD"),
        ("APPROVER_SUBS", " , ", "approver"),
        ("CIBA_LOGIN_HINT_FORMAT", "email", "CIBA_LOGIN_HINT_FORMAT"),
        ("AUTH0_AUDIENCE", "", "AUTH0_AUDIENCE"),
        ("APPROVER_PUSHES_PER_MINUTE", "0", "APPROVER_PUSHES_PER_MINUTE must be a whole number from 1 to 60"),
        ("APPROVER_PUSHES_PER_MINUTE", "61", "APPROVER_PUSHES_PER_MINUTE must be a whole number from 1 to 60"),
        ("APPROVER_PUSHES_PER_MINUTE", "five", "APPROVER_PUSHES_PER_MINUTE must be a whole number"),
        ("APPROVAL_BATCH_MAX_RISK", "critical", "APPROVAL_BATCH_MAX_RISK"),
        ("APPROVAL_TWO_PERSON_RISK", "extreme", "APPROVAL_TWO_PERSON_RISK"),
        ("APPROVER_ROUTING", '{"accounts": {"123456789012": ["auth0|stranger"]}}', "APPROVER_ROUTING"),
    ],
)
def test_bad_settings_are_named(env: pytest.MonkeyPatch, name: str, value: str, message: str) -> None:
    env.setenv(name, value)
    with pytest.raises(InvalidSettings, match=message):
        ApprovalSettings.from_env()


@pytest.mark.parametrize(
    "scope", ["openid offline_access", "offline_access", "openid,offline_access", "OFFLINE_ACCESS"]
)
def test_a_scope_asking_for_a_refresh_token_is_refused_at_start_up(env: pytest.MonkeyPatch, scope: str) -> None:
    env.setenv("CIBA_SCOPE", scope)
    with pytest.raises(RefreshTokenScopeRefused, match="CIBA_SCOPE must not contain offline_access"):
        ApprovalSettings.from_env()
    # However the settings are built, not only from the environment.
    env.setenv("CIBA_SCOPE", "openid")
    with pytest.raises(RefreshTokenScopeRefused):
        dataclasses.replace(ApprovalSettings.from_env(), scope=("openid", "offline_access"))


def test_login_hint_is_an_iss_sub_subject_identifier_or_the_value_as_is() -> None:
    assert json.loads(login_hint("https://t.auth0.com/", "auth0|a", "iss_sub")) == {
        "format": "iss_sub",
        "iss": "https://t.auth0.com/",
        "sub": "auth0|a",
    }
    assert login_hint("https://idp/", "alice", "opaque") == "alice"


def test_resource_is_sent_only_for_absolute_uri_audiences() -> None:
    change = one_of_each_kind()[0]

    def form(audience: str) -> dict[str, str]:
        return backchannel_form(
            change,
            issuer="https://t/",
            approver_sub="auth0|a",
            scope=("openid",),
            audience=audience,
            requested_expiry=60,
        )

    with_uri = form("https://aegis.example/api")
    assert with_uri["resource"] == with_uri["audience"] == "https://aegis.example/api"
    plain = form("aegis-api")
    assert plain["audience"] == "aegis-api"
    assert "resource" not in plain
    assert plain["requested_expiry"] == "60"


def test_the_service_is_built_once_per_container_thread(env: pytest.MonkeyPatch) -> None:
    env.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    wiring.reset()
    try:
        first = wiring.build_service()
        assert wiring.build_service() is first
        assert first.settings == ApprovalSettings.from_env()
        other: list[object] = []
        thread = threading.Thread(target=lambda: other.append(wiring.build_service()))
        thread.start()
        thread.join()
        assert other[0] is not first  # concurrent containers of the local stack never share boto3 resources
    finally:
        wiring.reset()
