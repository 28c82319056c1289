"""A second test function, also called app.py: a dataclass at module level needs its module registered."""

import os
from dataclasses import asdict, dataclass

state = {"invocations": 0}


@dataclass
class Seen:
    records_only: str | None
    greeting: str | None
    invocations: int


def handler(event, context):
    state["invocations"] += 1
    return asdict(Seen(os.environ.get("RECORDS_ONLY"), os.environ.get("GREETING"), state["invocations"]))
