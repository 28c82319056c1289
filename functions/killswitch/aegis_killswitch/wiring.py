"""Building a KillSwitch and a CallerVerifier from the deployment's settings (boto3 honours AWS_ENDPOINT_URL, so
the same wiring serves AWS and the local stack)."""

from __future__ import annotations

import boto3
import httpx

from aegis_auth.oidc import OidcClient
from aegis_killswitch.auth0_steps import Auth0Management
from aegis_killswitch.caller_auth import CallerVerifier
from aegis_killswitch.service import KillSwitch, KillSwitchClients
from aegis_killswitch.settings import KillSwitchSettings


def build_kill_switch(settings: KillSwitchSettings, *, http: httpx.Client | None = None) -> KillSwitch:
    dynamodb = boto3.resource("dynamodb")

    def management() -> Auth0Management:
        oidc = OidcClient.from_env(http=http)
        return Auth0Management(oidc, settings.management_audience, http=http)

    clients = KillSwitchClients(
        control_table=dynamodb.Table(settings.control_table),
        audit_table=dynamodb.Table(settings.audit_table),
        events=boto3.client("events"),
        stepfunctions=boto3.client("stepfunctions"),
        iam=boto3.client("iam"),
        auth0_management=management,
        handoff_table=dynamodb.Table(settings.handoff_table),
    )
    return KillSwitch(settings, clients)


def build_caller_verifier(settings: KillSwitchSettings, *, http: httpx.Client | None = None) -> CallerVerifier:
    return CallerVerifier(settings.auth0_issuer, settings.killswitch_audience, http=http)
