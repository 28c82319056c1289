"""ApprovalFunction: asks one approver to approve one approval request (one exact change, or a batch of changes bound
by its Merkle root) by CIBA + RAR, paced per approver, and answers the Step Functions task token.

A thin Powertools handler; the logic is in `aegis_approval`. The event and the response are never logged or traced:
the event carries the task token, and nothing here may put a token into logs or X-Ray.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from aegis.named_errors import ConfigurationError
from aegis_approval import wiring
from aegis_approval.errors import InvalidApprovalEvent
from aegis_auth.log_levels import pin_library_loggers

# Before any client exists: at DEBUG, botocore would log the task token and httpcore the provider's answers.
pin_library_loggers()
logger = Logger()
# Patch only what this function talks through, AWS (botocore) and the identity provider (httpx): X-Ray's patch_all
# would import and patch every library it supports that is installed (sqlite3, requests, database drivers) on each
# cold start.
tracer = Tracer(patch_modules=("botocore", "httpx"))
metrics = Metrics()


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    result = _answer(event, context)
    metrics.add_dimension(name="outcome", value=result["outcome"])
    metrics.add_metric(name="ApprovalInvocations", unit=MetricUnit.Count, value=1)
    return result


def _answer(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    try:
        service = wiring.build_service()
    except ConfigurationError as exc:
        # Tell Step Functions now rather than at the heartbeat timeout; Lambda retries would not help.
        logger.error("the approval function is misconfigured", reason=str(exc))
        wiring.fail_task_of(event, f"approval function misconfigured: {exc}")
        return {"outcome": "misconfigured"}
    try:
        return service.handle(event, time_left=lambda: context.get_remaining_time_in_millis() / 1000)
    except InvalidApprovalEvent as exc:
        # Nothing to answer: without a task token there is no task to fail. Retrying would not help either.
        logger.error("rejected an event that is not an approval task", reason=str(exc))
        return {"outcome": "rejected_event"}
