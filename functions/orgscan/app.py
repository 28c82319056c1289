"""OrgScanFunction: the organization-scan state machine's ListAccounts and Summarize tasks (see
aegis_orgscan.service).

A thin Powertools handler. It never logs the event (the execution's input is chosen by whoever started it); a
refusal reaches Step Functions as an `OrgScan.*` error type (aegis_orgscan.errors).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from aegis_orgscan import wiring
from aegis_orgscan.errors import OrgScanError
from aegis_orgscan.service import OrgScanService

logger = Logger()
# Patch only what this function talks through, AWS (botocore): X-Ray's patch_all would import and patch every
# library it supports that is installed on each cold start.
tracer = Tracer(patch_modules=("botocore",))
metrics = Metrics()


@cache
def service() -> OrgScanService:
    """Built on first use and kept for the container."""
    return wiring.build_service()


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        answer = service().handle(event)
    except OrgScanError as exc:
        metrics.add_dimension(name="Error", value=type(exc).__name__)
        metrics.add_metric(name="OrgScanTasksRefused", unit=MetricUnit.Count, value=1)
        raise
    if "accounts" in answer:
        metrics.add_metric(name="OrgScanAccountsListed", unit=MetricUnit.Count, value=answer["accounts"])
    else:
        metrics.add_metric(name="OrgScansSummarized", unit=MetricUnit.Count, value=1)
    return answer
