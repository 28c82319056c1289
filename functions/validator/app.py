"""ValidatorFunction: the mission state machine's first step, refusing a plan that breaks a rule before any change of
it is sent for approval (see aegis_validator.service).

A thin Powertools handler. It never logs the event (the plan is untrusted input); refusals reach Step Functions as
`Validation.*` error types (aegis_validator.errors).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from aegis_validator import wiring
from aegis_validator.errors import ValidatorError
from aegis_validator.service import PlanValidator

logger = Logger()
# Patch only what this function talks through, AWS (botocore): X-Ray's patch_all would import and patch every
# library it supports that is installed (sqlite3, requests, database drivers) on each cold start.
tracer = Tracer(patch_modules=("botocore",))
metrics = Metrics()


@cache
def validator() -> PlanValidator:
    """Built on first use and kept for the container."""
    return wiring.build_validator()


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        verdict = validator().validate(event)
    except ValidatorError as exc:
        metrics.add_dimension(name="Error", value=type(exc).__name__)
        metrics.add_metric(name="PlansRefused", unit=MetricUnit.Count, value=1)
        raise
    metrics.add_metric(name="PlansAccepted", unit=MetricUnit.Count, value=1)
    return verdict
