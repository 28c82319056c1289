"""AuditChainFunction: reads the Audit table's stream and links each new record into its mission's hash chain
(aegis_auditchain.service, aegis.audit_chain).

A thin Powertools handler. Only insertions are linked (the template's filter passes nothing else, and the code checks
again: the chainer's own updates come back on the stream as modifications). Any failure fails the whole batch, which
Lambda retries from its first record; records already linked are skipped, so the chain neither skips nor repeats.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from aegis_auditchain import wiring
from aegis_auditchain.service import AuditChainer, inserted_records

logger = Logger()
tracer = Tracer(patch_modules=("botocore",))
metrics = Metrics()


@cache
def chainer() -> AuditChainer:
    """Built on first use and kept for the container."""
    return wiring.build_chainer()


@logger.inject_lambda_context(log_event=False, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
@event_source(data_class=DynamoDBStreamEvent)
def handler(event: DynamoDBStreamEvent, context: LambdaContext) -> dict[str, Any]:
    heads = chainer().link_all(inserted_records(event))
    metrics.add_metric(name="AuditRecordsLinked", unit=MetricUnit.Count, value=len(heads))
    return {"linked": len(heads)}
