"""`aegis-local scan-account`: the agent's checks, read-only, against whatever account the credentials point to.

No stack, no tables, no writes: the scan goes through a session whose every client refuses any operation that is
not a read (`Get*`, `List*`, `Describe*`, `Head*`), so "read-only" is enforced rather than assumed. With
`--endpoint-url` (a moto server, say) every client talks to that endpoint instead of AWS.

Exit codes: 0 whatever the scan finds (findings and per-check errors are the output), 2 when the scan cannot start
(usage, no or invalid credentials, unknown check id, unreachable endpoint), with one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

import boto3

from aegis.checks import CHECKS, PlanConfig, UnknownCheck
from aegis.cis import CIS_VERSIONS, DEFAULT_CIS_VERSION, CisVersion, cis_id_of, cis_sort_key
from aegis.models import Finding, Severity
from aegis.scan import InvalidScanRequest, ScanAborted, ScanResult, run_scan

COMMAND = "scan-account"
FORMATS = ("table", "json")
DEFAULT_REGION = "us-east-1"
EXIT_OK = 0
EXIT_USAGE = 2
READ_PREFIXES = ("Get", "List", "Describe", "Head")
SEVERITY_ORDER = (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW)
ENDPOINT_PROBE_SECONDS = 3.0
# S3 Control's endpoint rules put the account id in front of the host ("123456789012.127.0.0.1:5000"), which
# resolves nowhere but on AWS; against a custom endpoint the request goes to the endpoint's own host.
_ACCOUNT_LABEL = re.compile(r"^\d{12}\.")
# Errors that say the credentials, not the account, are the problem.
_CREDENTIAL_ERRORS = {
    "NoCredentialsError": "no AWS credentials found (profile, environment or instance role)",
    "PartialCredentialsError": "incomplete AWS credentials",
    "InvalidClientTokenId": "the AWS access key is not valid for this endpoint",
    "SignatureDoesNotMatch": "the AWS secret key does not match the access key",
    "ExpiredToken": "the AWS session token has expired",
    "ExpiredTokenException": "the AWS session token has expired",
    "UnrecognizedClientException": "the AWS credentials are not recognised",
    "AccessDenied": "the credentials may not call sts:GetCallerIdentity",
    "EndpointConnectionError": "the AWS endpoint could not be reached",
    "ConnectTimeoutError": "the AWS endpoint did not answer in time",
}


class ScanAccountError(Exception):
    """The scan could not start; the message is one line for the user."""


class MutatingCallRefused(RuntimeError):
    """A client of the read-only session was asked to call an operation that is not a read."""


class EndpointSession(boto3.Session):
    """A boto3 Session whose clients all talk to `endpoint_url` when one is given (else the usual resolution,
    `AWS_ENDPOINT_URL` included), and whose S3 Control clients work against a custom endpoint."""

    def __init__(self, *, endpoint_url: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.endpoint_url = endpoint_url
        self._custom_endpoint = endpoint_url is not None or _endpoint_in_environment()

    def client(self, *args: Any, **kwargs: Any) -> Any:
        if self.endpoint_url is not None:
            kwargs.setdefault("endpoint_url", self.endpoint_url)
        created = super().client(*args, **kwargs)
        if self._custom_endpoint and created.meta.service_model.service_name == "s3control":
            created.meta.events.register("before-sign.s3-control.*", _drop_account_label(created.meta.endpoint_url))
        return created


class ReadOnlySession(EndpointSession):
    """An `EndpointSession` whose clients (and the resources built on them) refuse every operation that is not a
    read."""

    def client(self, *args: Any, **kwargs: Any) -> Any:
        created = super().client(*args, **kwargs)
        created.meta.events.register("before-call.*.*", refuse_mutating_call)
        return created


def _endpoint_in_environment() -> bool:
    return any(name.startswith("AWS_ENDPOINT_URL") and value for name, value in os.environ.items())


def refuse_mutating_call(model: Any, **_: Any) -> None:
    if not model.name.startswith(READ_PREFIXES):
        raise MutatingCallRefused(f"{model.service_model.service_name}.{model.name} is not a read-only operation")


def _drop_account_label(endpoint_url: str) -> Any:
    endpoint_host = urlsplit(endpoint_url).netloc

    def rewrite(request: Any, **_: Any) -> None:
        parts = urlsplit(request.url)
        if parts.netloc != endpoint_host and _ACCOUNT_LABEL.sub("", parts.netloc) == endpoint_host:
            request.url = urlunsplit(parts._replace(netloc=endpoint_host))

    return rewrite


def validate_endpoint_url(endpoint_url: str) -> str:
    try:
        parts = urlsplit(endpoint_url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ScanAccountError(f"--endpoint-url must be http(s)://host[:port], not {endpoint_url!r}")
    return endpoint_url.rstrip("/")


def ensure_reachable(endpoint_url: str, timeout: float = ENDPOINT_PROBE_SECONDS) -> None:
    """Fail in seconds, not after botocore's retries, when nothing listens at the endpoint."""
    parts = urlsplit(endpoint_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return
    except OSError as exc:
        raise ScanAccountError(f"cannot reach {endpoint_url}: {exc.strerror or exc}") from None


def scan_account(
    *,
    regions: Sequence[str] | None = None,
    check_ids: Sequence[str] | None = None,
    endpoint_url: str | None = None,
    max_workers: int = 8,
) -> ScanResult:
    """Scan the account behind the standard credential chain (or `endpoint_url`), read-only.

    Regions default to the session's region, else us-east-1. Raises `ScanAccountError` with a one-line message
    when the scan cannot start.
    """
    if endpoint_url is not None:
        endpoint_url = validate_endpoint_url(endpoint_url)
        ensure_reachable(endpoint_url)
    session = ReadOnlySession(endpoint_url=endpoint_url)
    if session.get_credentials() is None:
        raise ScanAccountError(_CREDENTIAL_ERRORS["NoCredentialsError"])
    wanted_regions = list(regions) if regions else [session.region_name or DEFAULT_REGION]
    try:
        return run_scan(
            session,
            wanted_regions,
            check_ids=list(check_ids) if check_ids else None,
            plan_config=PlanConfig.from_env(),
            max_workers=max_workers,
        )
    except UnknownCheck as exc:
        raise ScanAccountError(str(exc)) from None
    except InvalidScanRequest as exc:
        raise ScanAccountError(str(exc)) from None
    except ScanAborted as exc:
        reason = _CREDENTIAL_ERRORS.get(exc.error, "the account could not be identified")
        raise ScanAccountError(f"{reason} ({exc})") from None


# --- output --------------------------------------------------------------------------------------------------------
def result_document(result: ScanResult) -> dict[str, Any]:
    """The JSON form: every field of the scan result, each finding with its `finding_id`, and the call total."""
    document = result.model_dump(mode="json")
    document["findings"] = [
        {"finding_id": finding.finding_id, **finding.model_dump(mode="json")} for finding in result.findings
    ]
    document["total_api_calls"] = result.total_api_calls
    return document


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = [indent + "  ".join(cell.ljust(width) for cell, width in zip(header, widths, strict=True)).rstrip()]
    lines.extend(
        indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )
    return lines


def render_table(result: ScanResult, version: CisVersion = DEFAULT_CIS_VERSION) -> str:
    """Findings grouped by severity (most severe first), by their CIS ids in `version` within each; then errors,
    notes, API calls."""
    by_severity: dict[Severity, list[Finding]] = defaultdict(list)
    for finding in result.findings:
        by_severity[finding.severity].append(finding)
    counts = ", ".join(f"{len(by_severity[s])} {s.value}" for s in SEVERITY_ORDER if by_severity[s])
    lines = [
        f"Account {result.account_id}, regions {', '.join(result.regions)}: {len(result.findings)} findings"
        + (f" ({counts})" if counts else "")
        + f", {len(result.errors)} errors, {result.total_api_calls} API calls, {result.elapsed_seconds:.2f} s"
    ]
    for severity in SEVERITY_ORDER:
        findings = sorted(
            by_severity[severity],
            key=lambda f: (cis_sort_key(cis_id_of(f, version)), f.check_id, f.region, f.resource_arn),
        )
        if not findings:
            continue
        lines += ["", f"{severity.value.upper()} ({len(findings)})"]
        rows = [
            [
                cis_id_of(f, version) or "-",
                f.check_id,
                f.region,
                f.resource_arn,
                f.remediation or "notify-only",
                "exempt" if "aegis:exempt" in f.tags else "",
            ]
            for f in findings
        ]
        lines += _table([f"CIS {version}", "check", "region", "resource", "remediation", ""], rows)
    if result.errors:
        lines += ["", f"ERRORS ({len(result.errors)})"]
        lines += _table(
            ["check", "region", "error", "message"], [[e.check_id, e.region, e.error, e.message] for e in result.errors]
        )
    if result.withheld:
        lines += ["", f"WITHHELD ({len(result.withheld)}): secret-shaped values kept out of the findings"]
        lines += _table(
            ["check", "resource", "field", "kind"],
            [[w.check_id, w.resource_arn, w.field, w.kind] for w in result.withheld],
        )
    if result.notes:
        lines += ["", "NOTES", *(f"  {note}" for note in result.notes)]
    per_service: Counter[str] = Counter()
    for operation, count in result.api_calls.items():
        per_service[operation.split(".", 1)[0]] += count
    lines += ["", "API CALLS", *(f"  {service}: {count}" for service, count in sorted(per_service.items()))]
    return "\n".join(lines) + "\n"


# --- command line --------------------------------------------------------------------------------------------------
def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint-url", help="send every AWS call to this endpoint (e.g. a moto server)")
    parser.add_argument(
        "--region",
        dest="regions",
        action="append",
        metavar="REGION",
        help=f"region to scan; repeat for several (default: the session's region, else {DEFAULT_REGION})",
    )
    parser.add_argument(
        "--checks",
        nargs="+",
        metavar="ID",
        help="check ids to run (default: all): " + ", ".join(sorted(CHECKS)),
    )
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    parser.add_argument(
        "--cis",
        choices=CIS_VERSIONS,
        default=DEFAULT_CIS_VERSION,
        help=f"the CIS AWS Foundations version the table groups by (default: {DEFAULT_CIS_VERSION})",
    )


def command(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the parsed `scan-account` command; return its exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        result = scan_account(regions=args.regions, check_ids=args.checks, endpoint_url=args.endpoint_url)
    except ScanAccountError as exc:
        print(f"aegis-local {COMMAND}: error: {exc}", file=err)
        return EXIT_USAGE
    if args.format == "json":
        out.write(json.dumps(result_document(result), indent=2, sort_keys=True) + "\n")
    else:
        out.write(render_table(result, args.cis))
    return EXIT_OK


EXAMPLES = """\
examples:
  aegis-local scan-account --region eu-west-1 --format table        the account of your AWS profile
  aegis-local scan-account --checks s3-bucket-public --format json
  aegis-local scan-account --endpoint-url http://127.0.0.1:5000     a moto server

exit status: 0 whatever the scan finds, 2 when it cannot start"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `scan-account` subcommand; the parsed namespace's `handler(args) -> int` runs it."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        COMMAND,
        help="scan an account read-only with the agent's checks and print the findings",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_arguments(parser)
    parser.set_defaults(handler=command)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"aegis-local {COMMAND}", description=__doc__)
    _add_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        # argparse exits 2 on a usage error (after printing it) and 0 for --help.
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    return command(args)


if __name__ == "__main__":
    raise SystemExit(main())
