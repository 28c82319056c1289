"""What the `aegis-local` subcommands share: exit codes, the one-line failure, the variables `up` prints for other
shells, and the parsing of `--parameter NAME=VALUE`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
# The operator commands' answers from the ops API (and `login`'s), so that a script can tell them apart.
EXIT_AUTH = 3  # not logged in, the token expired or was refused, or the login code expired
EXIT_FORBIDDEN = 4  # the token lacks the route's scope, or the sign-in was denied
EXIT_CONFLICT = 5  # the API refused the request as it stands (an undo it cannot do)
# `up` prints these for other shells; the phone and seed commands read them as defaults.
ISSUER_ENV = "AEGIS_LOCAL_ISSUER"
ENDPOINT_ENV = "AWS_ENDPOINT_URL"
DEFAULT_REGION = "us-east-1"


class CommandFailed(Exception):
    """The command could not do its job; the message is one line for the user, `exit_code` the status."""

    exit_code = EXIT_FAILURE


def parse_parameters(pairs: Sequence[str], refuse: Callable[[str], Exception]) -> dict[str, str]:
    """Template parameter overrides given as `--parameter NAME=VALUE`; a malformed pair raises `refuse(message)`."""
    parameters: dict[str, str] = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not name:
            raise refuse(f"--parameter needs NAME=VALUE, not {pair!r}")
        parameters[name] = value
    return parameters


def endpoint_session(endpoint: str, region: str) -> Any:
    """A boto3 session whose every client talks to the local stack's moto server, with moto's fake credentials."""
    from aegis_local.cli.scan_account import EndpointSession

    return EndpointSession(
        endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
    )
