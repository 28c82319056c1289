"""Builds the org-scan service from the deployment's settings (app.py keeps one per Lambda container)."""

from __future__ import annotations

import boto3

from aegis.settings import dynamodb_resource
from aegis_orgscan.service import OrgScanService
from aegis_orgscan.settings import OrgScanSettings


def build_service(settings: OrgScanSettings | None = None) -> OrgScanService:
    settings = settings or OrgScanSettings.from_env()
    dynamodb = dynamodb_resource()
    return OrgScanService(
        settings=settings,
        organizations=boto3.client("organizations"),
        s3=boto3.client("s3"),
        missions_table=dynamodb.Table(settings.missions_table),
        audit_table=dynamodb.Table(settings.audit_table),
        control_table=dynamodb.Table(settings.control_table),
    )
