"""NotifierFunction: reads the Audit table's stream and publishes what the operator must know to the stack's SNS
topic (aegis_notifier.service; the table of what is told, aegis_notifier.notifications).

A thin Powertools handler: the batch is processed record by record, in the stream's order, and answered with the
records that failed (the event source mapping's ReportBatchItemFailures), so Lambda retries from the first of them and
never publishes a notification twice. The event is never logged: it holds whole audit records.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from aws_lambda_powertools.utilities.typing import LambdaContext

from aegis_notifier import wiring
from aegis_notifier.service import InStreamOrder, Notifier

logger = Logger()
# Patch only what this function talks through, AWS (botocore): X-Ray's patch_all would import and patch every
# library it supports that is installed (sqlite3, requests, database drivers) on each cold start.
tracer = Tracer(patch_modules=("botocore",))
metrics = Metrics()
# A batch whose every record failed raises (a function error, retried by Lambda as a whole and counted in its Errors
# metric); otherwise the failed records are reported.
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


@cache
def notifier() -> Notifier:
    """Built on first use and kept for the container."""
    return wiring.build_notifier()


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    service = notifier()
    published_before = service.published
    in_order = InStreamOrder(service.notify)
    try:
        response = process_partial_response(event=event, record_handler=in_order, processor=processor, context=context)
    except BatchProcessingError:
        metrics.add_metric(name="NotificationRecordsFailed", unit=MetricUnit.Count, value=len(event["Records"]))
        raise
    finally:
        published = service.published - published_before
        metrics.add_metric(name="NotificationsPublished", unit=MetricUnit.Count, value=published)
    failed = len(response.get("batchItemFailures", []))
    metrics.add_metric(name="NotificationRecordsFailed", unit=MetricUnit.Count, value=failed)
    return dict(response)
