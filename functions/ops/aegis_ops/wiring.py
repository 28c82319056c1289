"""Builds what the routes use from the deployment's settings; app.py keeps one of each per Lambda container."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3

from aegis.settings import dynamodb_resource
from aegis_jwt.callers import CallerVerifier
from aegis_ops.settings import OpsSettings


@dataclass(frozen=True)
class OpsDependencies:
    settings: OpsSettings
    dynamodb: Any  # boto3's DynamoDB service resource, for BatchGetItem
    missions: Any  # boto3 Table resources
    audit: Any
    control: Any
    events: Any  # boto3 EventBridge client


def build_dependencies(settings: OpsSettings | None = None) -> OpsDependencies:
    settings = settings or OpsSettings.from_env()
    dynamodb = dynamodb_resource()
    return OpsDependencies(
        settings=settings,
        dynamodb=dynamodb,
        missions=dynamodb.Table(settings.missions_table),
        audit=dynamodb.Table(settings.audit_table),
        control=dynamodb.Table(settings.control_table),
        events=boto3.client("events"),
    )


def build_caller_verifier(settings: OpsSettings | None = None) -> CallerVerifier:
    settings = settings or OpsSettings.from_env()
    return CallerVerifier(settings.auth0_issuer, settings.ops_api_audience)
