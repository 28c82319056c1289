"""The fixture stack's only function: answers with its event and the variables the template gives it."""

import os


def handler(event, context):
    return {
        "event": event,
        "table": os.environ.get("TABLE"),
        "stage": os.environ.get("STAGE"),
        "regions": os.environ.get("REGIONS"),
        "function_name": context.function_name,
    }
