"""A test function: counts its invocations per container and reports what the runtime gave it."""

import decimal
import os
import time

GREETING_AT_IMPORT = os.environ.get("GREETING")
state = {"invocations": 0}


class ApprovalFailed(Exception):
    """Named like a Step Functions error, as the project's handlers name theirs."""


ApprovalFailed.__name__ = "Approval.Failed"


def handler(event, context):
    state["invocations"] += 1
    time.sleep(float(event.get("sleep", 0)))
    return {
        "invocations": state["invocations"],
        "greeting_at_import": GREETING_AT_IMPORT,
        "greeting": os.environ.get("GREETING"),
        "records_only": os.environ.get("RECORDS_ONLY"),
        "function_name_env": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
        "function_name": context.function_name,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "request_id": context.aws_request_id,
        "log_group_name": context.log_group_name,
        "event": event,
    }


def failing_handler(event, context):
    raise ApprovalFailed(f"could not ask {event.get('who', 'anyone')}")


def decimal_handler(event, context):
    return {"amount": decimal.Decimal("2.5"), "count": decimal.Decimal(3)}


def unserializable_handler(event, context):
    return {"when": object()}
