"""ExecutorFunction: apply exactly one approved change (see aegis_executor.execute).

A thin Powertools handler. It never logs the event (it names handoffs) or anything the pipeline holds; the
result it returns is sanitized. Errors reach Step Functions as `Executor.*` error types (aegis_executor.errors).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import idempotent_function
from aws_lambda_powertools.utilities.typing import LambdaContext

from aegis_auth.log_levels import pin_library_loggers
from aegis_executor import wiring
from aegis_executor.execute import Executor, parse_request

# Before any client exists: at DEBUG, botocore would log the web identity token and the STS credentials.
pin_library_loggers()
logger = Logger()
# Patch only what this function talks through, AWS (botocore) and the identity provider (httpx): X-Ray's patch_all
# would import and patch every library it supports that is installed (sqlite3, requests, database drivers) on each
# cold start.
tracer = Tracer(patch_modules=("botocore", "httpx"))
metrics = Metrics()
persistence = wiring.idempotency_store()
idempotency = wiring.idempotency_config()


@cache
def executor() -> Executor:
    """Built on first use and kept for the container: discovery, JWKS and the client secret are cached in it."""
    return wiring.build_executor()


@idempotent_function(data_keyword_argument="request", persistence_store=persistence, config=idempotency)
def execute_once(request: dict[str, Any]) -> dict[str, Any]:
    return executor().execute(request)


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Refuse a malformed payload before it reaches the idempotency store.
    request, change = parse_request(event)
    logger.append_keys(change_id=change.change_id, mission_id=request.mission_id)
    idempotency.register_lambda_context(context)
    result = execute_once(request=event)
    metrics.add_dimension(name="Outcome", value=str(result.get("outcome")))
    metrics.add_metric(name="ChangesExecuted", unit=MetricUnit.Count, value=1)
    return result
