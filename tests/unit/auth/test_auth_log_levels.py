"""Lambda's advanced logging controls at DEBUG leave no credential in the logs of the executor and the approval.

`ApplicationLogLevel: DEBUG` makes the Python runtime set the root logger to DEBUG before it imports the handler, and
`AWS_LAMBDA_LOG_LEVEL=DEBUG` reaches Powertools. botocore's loggers are NOTSET, so they would log the parameters of
`AssumeRoleWithWebIdentity` (the web identity token) and the body of its answer (the STS credentials). Importing
either handler pins them (`aegis_auth.log_levels`). Each test first shows the leak with the libraries left as the
runtime leaves them, so that the capture is known to see botocore's output, then imports the handler and repeats.
"""

from __future__ import annotations

import io
import logging
import secrets
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from aegis_auth.log_levels import PINNED_LEVEL, PINNED_LOGGERS
from tests.support.lambda_app import load_app

# The functions whose handlers pin the libraries' loggers.
HANDLERS = ("approval", "executor")
ROLE_ARN = "arn:aws:iam::123456789012:role/RemediationRole"


@pytest.fixture
def lambda_debug_logging(aws: boto3.Session, monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The process as the Python runtime leaves it with ApplicationLogLevel DEBUG, before the handler is imported,
    with everything that reaches the root logger written to the returned stream."""
    for name, value in {
        "AWS_LAMBDA_LOG_LEVEL": "DEBUG",
        "POWERTOOLS_SERVICE_NAME": "aegis-log-levels",
        "POWERTOOLS_METRICS_NAMESPACE": "AegisCloud",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "IDEMPOTENCY_TABLE": "Idempotency",
    }.items():
        monkeypatch.setenv(name, value)
    root = logging.getLogger()
    saved = {name: logging.getLogger(name).level for name in ("", *PINNED_LOGGERS)}
    stream = io.StringIO()
    capture = logging.StreamHandler(stream)
    capture.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    for name in PINNED_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)
    try:
        yield stream
    finally:
        root.removeHandler(capture)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def planted_token() -> str:
    """A web identity token of the shape a provider issues, unique to the call that carries it."""
    return f"eyJhbGciOiJSUzI1NiJ9.{secrets.token_urlsafe(32)}.{secrets.token_urlsafe(48)}"


def assume_role_with_web_identity(token: str) -> dict[str, Any]:
    sts = boto3.client("sts")
    answer = sts.assume_role_with_web_identity(
        RoleArn=ROLE_ARN, RoleSessionName="aegis-log-levels", WebIdentityToken=token, DurationSeconds=900
    )
    return dict(answer["Credentials"])


def secrets_in(text: str, token: str, credentials: dict[str, Any]) -> list[str]:
    values = {"token": token, **{k: credentials[k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")}}
    return [name for name, value in values.items() if value in text]


@pytest.mark.parametrize("handler", HANDLERS)
def test_at_debug_no_web_identity_token_or_sts_credential_reaches_the_logs(
    lambda_debug_logging: io.StringIO, handler: str
) -> None:
    # The leak as it was: botocore at the root's DEBUG writes the token it sends and the credentials it receives.
    exposed_token = planted_token()
    exposed = assume_role_with_web_identity(exposed_token)
    assert set(secrets_in(lambda_debug_logging.getvalue(), exposed_token, exposed)) >= {"token", "SecretAccessKey"}

    load_app(handler)
    lambda_debug_logging.seek(0)
    lambda_debug_logging.truncate()
    token = planted_token()
    credentials = assume_role_with_web_identity(token)

    assert logging.getLogger().level == logging.DEBUG, "the root logger keeps the level Lambda gave it"
    assert secrets_in(lambda_debug_logging.getvalue(), token, credentials) == []
    for name in PINNED_LOGGERS:
        assert logging.getLogger(name).getEffectiveLevel() == PINNED_LEVEL, name
    # Children inherit the pin: the loggers that wrote the token and the credentials above.
    for name in ("botocore.endpoint", "botocore.parsers", "botocore.hooks", "urllib3.connectionpool"):
        assert logging.getLogger(name).getEffectiveLevel() == PINNED_LEVEL, name


def test_a_warning_from_a_pinned_library_still_reaches_the_logs(lambda_debug_logging: io.StringIO) -> None:
    # Pinned at WARNING, not silenced: a retry storm or a connection pool warning is still seen.
    load_app("executor")
    logging.getLogger("botocore.retryhandler").warning("retry attempt 3 of 5")
    logging.getLogger("botocore.retryhandler").debug("request body follows")
    captured = lambda_debug_logging.getvalue()
    assert "retry attempt 3 of 5" in captured
    assert "request body follows" not in captured
