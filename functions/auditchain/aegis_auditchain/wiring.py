"""Builds the chainer from the deployment's settings (app.py keeps one per Lambda container)."""

from __future__ import annotations

import boto3

from aegis.settings import dynamodb_table
from aegis_auditchain.service import AuditChainer, TrailExport
from aegis_auditchain.settings import ChainSettings


def build_chainer(settings: ChainSettings | None = None) -> AuditChainer:
    settings = settings or ChainSettings.from_env()
    export = TrailExport(boto3.client("s3"), settings.export_bucket) if settings.export_bucket else None
    return AuditChainer(
        audit_table=dynamodb_table(settings.audit_table),
        missions_table=dynamodb_table(settings.missions_table),
        export=export,
    )
