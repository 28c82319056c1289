"""Builds the kill switch and the verifier of its HTTP callers (function URL and ops HTTP API) from the deployment's
settings (app.py keeps one of each per Lambda container). boto3 honours AWS_ENDPOINT_URL, so the same wiring serves
AWS and the local stack."""

from __future__ import annotations

from functools import partial

import boto3
import httpx

from aegis_auth.oidc import ClientAuthentication, OidcClient
from aegis_jwt.callers import CallerVerifier
from aegis_killswitch.auth0_steps import Auth0Management
from aegis_killswitch.members import MEMBER_CALL_CONFIG
from aegis_killswitch.service import KillSwitch
from aegis_killswitch.settings import KillSwitchSettings
from aegis_killswitch.steps import KillSwitchClients


def auth0_management(settings: KillSwitchSettings, http: httpx.Client | None = None) -> Auth0Management:
    """The Management API client of the kill switch's own Auth0 application, built when a step first needs it."""
    auth = ClientAuthentication.from_secret_arn(
        settings.auth0_client_id, settings.auth0_client_secret_arn, settings.client_auth_method
    )
    return Auth0Management(OidcClient(settings.auth0_issuer, auth, http=http), settings.management_audience, http=http)


def build_kill_switch(settings: KillSwitchSettings | None = None, *, http: httpx.Client | None = None) -> KillSwitch:
    settings = settings or KillSwitchSettings.from_env()
    dynamodb = boto3.resource("dynamodb")
    clients = KillSwitchClients(
        control_table=dynamodb.Table(settings.control_table),
        audit_table=dynamodb.Table(settings.audit_table),
        events=boto3.client("events"),
        stepfunctions=boto3.client("stepfunctions"),
        iam=boto3.client("iam"),
        auth0_management=partial(auth0_management, settings, http),
        handoff_table=dynamodb.Table(settings.handoff_table),
        # Each call for a member gives up after a few seconds: a member that hangs must not hold back the halt.
        organizations=boto3.client("organizations", config=MEMBER_CALL_CONFIG),
        sts=boto3.client("sts", config=MEMBER_CALL_CONFIG),
    )
    return KillSwitch(settings, clients)


def build_caller_verifier(
    settings: KillSwitchSettings | None = None, *, http: httpx.Client | None = None
) -> CallerVerifier:
    settings = settings or KillSwitchSettings.from_env()
    return CallerVerifier(settings.auth0_issuer, settings.ops_api_audience, http=http)
