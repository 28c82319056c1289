"""Builds the validator from the deployment's settings (app.py keeps one per Lambda container)."""

from __future__ import annotations

from aegis.settings import dynamodb_resource
from aegis_validator.service import PlanValidator
from aegis_validator.settings import ValidatorSettings


def build_validator(settings: ValidatorSettings | None = None) -> PlanValidator:
    settings = settings or ValidatorSettings.from_env()
    dynamodb = dynamodb_resource()
    return PlanValidator(
        settings=settings,
        audit_table=dynamodb.Table(settings.audit_table),
        missions_table=dynamodb.Table(settings.missions_table),
    )
