"""Builds the agent's service from the deployment's settings (app.py keeps one per Lambda container)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import boto3

from aegis.aws_sessions import fresh_session
from aegis_agent.accounts import AccountScanners, AccountSessions, ScannerFactory
from aegis_agent.analyst import Analyst
from aegis_agent.errors import InvalidSettings
from aegis_agent.scanner import AwsScanner, Scanner
from aegis_agent.service import AgentService, utcnow
from aegis_agent.settings import AgentSettings


def build_service(
    *,
    scanner: Scanner | None = None,
    settings: AgentSettings | None = None,
    session: Any = None,
    clock: Callable[[], datetime] = utcnow,
    member_scanner: ScannerFactory | None = None,
    bedrock: Any = None,
) -> AgentService:
    """A new service (saver, serializer and compiled graph), as a new Lambda container builds it: settings from the
    environment, tables and clients of boto3's default session, and the layer's scanner with the function's own
    (read-only) credentials, unless the caller gives its own. Another account of an organization scan is read through
    its AegisScanRole, assumed with this session's STS client (`member_scanner` builds that account's scanner; by
    default the layer's scanner on the assumed session). `bedrock` is the analyst's `bedrock-runtime` client (by
    default this session's, when the deployment has an analyst)."""
    # Here, not at the top: the checks package (every check module) would otherwise load with the handler, before the
    # first invocation needs it.
    from aegis.checks.base import InvalidRemediationChoice, PlanConfig

    settings = settings or AgentSettings.from_env()
    aws: Any = session or boto3
    dynamodb = aws.resource("dynamodb")
    try:
        plan_config = PlanConfig.from_env()
    except InvalidRemediationChoice as exc:
        # A pinned fix names only a check and a kind: the message is safe to show.
        raise InvalidSettings(str(exc)) from None
    if scanner is None:
        scanner = AwsScanner(fresh_session, plan_config)
        member_scanner = member_scanner or (lambda session_factory: AwsScanner(session_factory, plan_config))
    accounts = AccountScanners(
        scanner,
        AccountSessions(
            aws.client("sts"), role_name=settings.member_scan_role_name, external_id=settings.member_external_id
        ),
        member_scanner,
    )
    analyst = None
    if settings.analyst is not None:
        from botocore.config import Config

        # The model's time is bounded per call (read timeout, one retry) and per mission (aegis_agent.analyst).
        client = bedrock or aws.client(
            "bedrock-runtime",
            config=Config(
                connect_timeout=5,
                read_timeout=settings.analyst.timeout_seconds,
                retries={"mode": "standard", "total_max_attempts": 2},
            ),
        )
        analyst = Analyst(settings.analyst, client, cis=settings.cis_version)
    return AgentService(
        settings=settings,
        checkpoints_table=dynamodb.Table(settings.checkpoints_table),
        missions_table=dynamodb.Table(settings.missions_table),
        audit_table=dynamodb.Table(settings.audit_table),
        control_table=dynamodb.Table(settings.control_table),
        stepfunctions=aws.client("stepfunctions"),
        scanner=scanner,
        clock=clock,
        accounts=accounts,
        analyst=analyst,
        pinned_checks=frozenset(plan_config.remediation_choices),
    )
