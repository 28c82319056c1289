"""`aegis-local leak-audit`: search for secrets where none may be, in a `--dump-state` directory or in a running
local stack.

A directory is searched for the secrets whose SHA-256 fingerprints the dump holds (and any given with
`--secrets-file`). A running local stack is reached through its AWS endpoint (`--endpoint-url`, else
`$AWS_ENDPOINT_URL`, which `aegis-local up` prints): every table item, execution history and queued message is
searched for the client secrets the stack holds in its Secrets Manager (and any given).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from aegis_local.cli.common import DEFAULT_REGION, ENDPOINT_ENV, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CommandFailed
from aegis_local.reporting.leak_audit import (
    LeakAuditResult,
    audit,
    audit_fingerprints,
    dynamodb_places,
    file_places,
    sqs_places,
    stepfunctions_places,
)

__all__ = ["cmd_leak_audit", "register"]


def _secrets_file(path: str) -> list[str]:
    source = sys.stdin if path == "-" else Path(path).open(encoding="utf-8")  # noqa: SIM115 - closed below
    try:
        return [line.strip() for line in source if line.strip()]
    finally:
        if source is not sys.stdin:
            source.close()


def cmd_leak_audit(args: argparse.Namespace) -> int:
    values = _secrets_file(args.secrets_file) if args.secrets_file else []
    if args.directory:
        result = _audit_directory(args, Path(args.directory), values)
        if result is None:
            return EXIT_USAGE
    else:
        result = _audit_running_stack(args, values)
    print(result.summary())
    for kind, count in result.places.items():
        print(f"  {count} {kind}")
    for hit in result.hits:
        print(f"  LEAK: secret {hit.fingerprint}… found in {hit.place}")
    return EXIT_OK if result.clean else EXIT_FAILURE


def _audit_directory(args: argparse.Namespace, directory: Path, values: list[str]) -> LeakAuditResult | None:
    from aegis_local.reporting.state_dump import FINGERPRINTS_FILE, read_fingerprints

    if not directory.is_dir():
        print(f"aegis-local leak-audit: {directory} is not a directory", file=sys.stderr)
        return None
    fingerprints_path = Path(args.fingerprints) if args.fingerprints else directory / FINGERPRINTS_FILE
    fingerprints = read_fingerprints(fingerprints_path) if fingerprints_path.is_file() else {}
    places = [place for place in file_places([directory], root=directory) if place[0] != f"file:{FINGERPRINTS_FILE}"]
    results = []
    if fingerprints:
        results.append(audit_fingerprints(fingerprints, places))
    if values:
        results.append(audit(values, places))
    if not results:
        print(
            f"aegis-local leak-audit: nothing to search for: no {FINGERPRINTS_FILE} in {directory}, "
            "and no --secrets-file",
            file=sys.stderr,
        )
        return None
    first = results[0]
    return first.model_copy(
        update={
            "values_searched": sum(r.values_searched for r in results),
            "hits": [hit for r in results for hit in r.hits],
        }
    )


def _audit_running_stack(args: argparse.Namespace, values: list[str]) -> LeakAuditResult:
    from aegis_local.cli.common import endpoint_session
    from aegis_local.cli.scan_account import ScanAccountError, ensure_reachable, validate_endpoint_url

    endpoint = args.endpoint_url or os.environ.get(ENDPOINT_ENV)
    if not endpoint:
        raise CommandFailed(
            f"give a --dump-state DIRECTORY, or --endpoint-url (or set {ENDPOINT_ENV}) to the AWS endpoint "
            "`aegis-local up` printed"
        )
    try:
        endpoint = validate_endpoint_url(endpoint)
        ensure_reachable(endpoint)
    except ScanAccountError as error:
        raise CommandFailed(str(error)) from error
    session = endpoint_session(endpoint, args.region)
    values = values + _stack_secrets(session)
    return audit(values, [*dynamodb_places(session), *stepfunctions_places(session), *sqs_places(session)])


def _stack_secrets(session: Any) -> list[str]:
    """The client secrets the stack holds in its Secrets Manager: the one kind of secret the local side can read."""
    client = session.client("secretsmanager")
    values = []
    for page in client.get_paginator("list_secrets").paginate():
        for secret in page.get("SecretList", []):
            value = client.get_secret_value(SecretId=secret["ARN"]).get("SecretString")
            if value:
                values.append(value)
    return values


EXAMPLES = """\
examples:
  aegis-local leak-audit                                  the running local stack ($AWS_ENDPOINT_URL)
  aegis-local leak-audit reports/state                    a --dump-state directory
  aegis-local leak-audit reports/state --secrets-file my-secrets.txt

exit status: 0 nothing found, 1 a secret was found (or the search failed), 2 nothing to search for
"""


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "leak-audit",
        help="search a --dump-state directory, or the running local stack, for secrets",
        description=(__doc__ or "").split("\n\n")[0],
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("directory", nargs="?", help="a --dump-state directory (default: the running local stack)")
    parser.add_argument("--secrets-file", metavar="FILE", help="values to search for, one per line ('-': stdin)")
    parser.add_argument(
        "--fingerprints", metavar="FILE", help="SHA-256 fingerprints (default: DIR/issued-secrets.sha256)"
    )
    parser.add_argument("--endpoint-url", metavar="URL", help=f"the local AWS endpoint (default: ${ENDPOINT_ENV})")
    parser.add_argument("--region", default=DEFAULT_REGION, help="the local stack's region")
    parser.set_defaults(handler=cmd_leak_audit)
