"""AWS's answers made up in a test, for a `before-send` handler to return instead of sending the request."""

from __future__ import annotations

from botocore.awsrequest import AWSResponse

from aegis_local.aws.lambdas.faults import made_up_answer


def answer(url: str, status: int, body: bytes) -> AWSResponse:
    return made_up_answer(url, status, body)
