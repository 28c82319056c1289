"""The scanner: run the selected checks over the given regions of one account, read-only, and return findings.

Every check runs as its own task in a bounded thread pool; collectors are shared, so a listing that several checks
need (the security-group rules, say) is made once. Botocore retries throttling and transient errors (standard retry
mode); a check that still fails, or whose collector fails, becomes a `ScanError` named after the AWS error code (or
the exception class) and the rest of the scan goes on.

What leaves the scanner is plain data: of the resources' tags only `aegis:exempt` is kept, and any kept string that
looks like a credential is replaced by `<withheld>` with a note saying where (never what, nor a dict key) in
`withheld`. Resource identifiers are not credentials, whatever they look like: a whole ARN, and a name where the
check declares one (`CheckMetadata.evidence_identifiers`) that fits AWS's character set for it, are kept, so that a
resource named like a key still gets its change.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import Field

from aegis.checks import CHECKS, CheckModule, PlanConfig, get_check
from aegis.checks.base import WITHHELD
from aegis.collectors import Clients, Collectors, Inventory
from aegis.collectors.base import error_name
from aegis.models import Finding, Frozen, ScanError
from aegis.partitions import MixedPartitions, UnknownRegion, home_region_of, partition_of_regions
from aegis.secrets_guard import secret_kind, withhold_secrets

_REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$")
_GLOBAL_SERVICES = frozenset({"iam", "s3", "s3control"})
MESSAGE_MAX = 300


class InvalidScanRequest(ValueError):
    """Regions, check ids or pool size that cannot describe a scan: among them, regions that no partition has or
    that span several partitions (an account and its credentials live in one)."""


class ScanAborted(RuntimeError):
    """The scan could not start: the account behind the session could not be identified."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(f"{error}: {message}")
        self.error = error


class WithheldValue(Frozen):
    """A secret-shaped value found in resource data and kept out of the findings. Says where, never what."""

    check_id: str
    resource_arn: str
    field: str
    kind: str


class ScanResult(Frozen):
    account_id: str
    regions: list[str]
    check_ids: list[str]
    findings: list[Finding] = Field(default_factory=list)
    errors: list[ScanError] = Field(default_factory=list)
    withheld: list[WithheldValue] = Field(default_factory=list)
    # "service.Operation" -> calls made by this scan's clients (retries of one call count once).
    api_calls: dict[str, int] = Field(default_factory=dict)
    # Resources evaluated per resource type (Finding.resource_type), summed over regions: the base of the planner's
    # "max share of a resource type" cap. A type is missing when no check of it could run.
    resource_counts: dict[str, int] = Field(default_factory=dict)
    # What the scan decided not to look at and why, e.g. per-bucket calls skipped by the account-level block.
    notes: list[str] = Field(default_factory=list)
    elapsed_seconds: float = 0.0

    @property
    def total_api_calls(self) -> int:
        return sum(self.api_calls.values())


def run_scan(
    session: boto3.Session,
    regions: list[str],
    check_ids: list[str] | None = None,
    plan_config: PlanConfig | None = None,
    max_workers: int = 8,
) -> ScanResult:
    """Scan `regions` of the session's account with the checks `check_ids` (all when None).

    `plan_config` decides which findings are remediable in this configuration (`Finding.remediation` is the
    catalogue kind its check would propose, or None); it changes nothing that is read.
    """
    started = time.monotonic()
    regions = _valid_regions(regions)
    checks = _selected(check_ids)
    if not isinstance(max_workers, int) or max_workers < 1:
        raise InvalidScanRequest(f"max_workers must be a positive integer, not {max_workers!r}")
    config = plan_config or PlanConfig()
    home = regions[0]

    clients = Clients(session, max_pool_connections=max(10, max_workers))
    try:
        account_id = str(clients.client("sts", home).get_caller_identity()["Account"])
    except (ClientError, BotoCoreError) as exc:
        raise ScanAborted(error_name(exc), _safe_message(str(exc))) from exc
    collectors = Collectors(clients, account_id)

    tasks: list[tuple[CheckModule, str]] = [
        (check, region) for check in checks for region in (regions if check.METADATA.scope == "region" else [home])
    ]
    findings: list[Finding] = []
    errors: list[ScanError] = []
    with ThreadPoolExecutor(max_workers=min(max_workers, len(tasks)), thread_name_prefix="aegis-scan") as pool:
        futures: list[tuple[CheckModule, str, Future[list[Finding]]]] = [
            (check, region, pool.submit(check.evaluate, Inventory(collectors, region))) for check, region in tasks
        ]
        for check, region, future in futures:
            try:
                findings.extend(future.result())
            except Exception as exc:
                errors.append(_scan_error(check, region, exc))
    errors.extend(collectors.errors)

    kept: list[Finding] = []
    withheld: list[WithheldValue] = []
    for finding in findings:
        # Every check builds a well-formed ARN, which is never secret-shaped; only a malformed one can be.
        if secret_kind(finding.resource_arn):
            errors.append(
                ScanError(
                    check_id=finding.check_id,
                    region=finding.region,
                    error="SecretShapedIdentifier",
                    message="a resource whose identifier looks like a credential was left out of the findings",
                )
            )
            continue
        clean, notes = _withhold_secrets(finding)
        withheld.extend(notes)
        kept.append(_with_remediation(clean, config, errors))

    kept.sort(key=lambda f: (f.check_id, f.region, f.resource_arn))
    errors = [e.model_copy(update={"message": _safe_message(e.message)}) for e in errors]
    errors.sort(key=lambda e: (e.check_id, e.region, e.error, e.message))
    return ScanResult(
        account_id=account_id,
        regions=regions,
        check_ids=[c.METADATA.check_id for c in checks],
        findings=kept,
        errors=errors,
        withheld=withheld,
        api_calls=clients.api_calls,
        resource_counts=collectors.resource_counts,
        notes=collectors.notes,
        elapsed_seconds=round(time.monotonic() - started, 3),
    )


def _valid_regions(regions: Sequence[str]) -> list[str]:
    if isinstance(regions, str) or not isinstance(regions, Sequence) or not regions:
        raise InvalidScanRequest("regions must be a non-empty list of region names")
    unique: list[str] = []
    for region in regions:
        if not isinstance(region, str) or not _REGION.match(region):
            raise InvalidScanRequest(f"not a region name: {region!r}")
        if region not in unique:
            unique.append(region)
    try:
        partition_of_regions(unique)
    except (UnknownRegion, MixedPartitions) as exc:
        raise InvalidScanRequest(str(exc)) from exc
    return unique


def _selected(check_ids: list[str] | None) -> list[CheckModule]:
    if check_ids is None:
        return list(CHECKS.values())
    if isinstance(check_ids, str) or not check_ids:
        raise InvalidScanRequest("check_ids must be None (every check) or a non-empty list of check ids")
    return [get_check(check_id) for check_id in dict.fromkeys(check_ids)]


def _scan_error(check: CheckModule, region: str, exc: BaseException) -> ScanError:
    services = set(check.METADATA.services)
    where = home_region_of(region) if services <= _GLOBAL_SERVICES else region
    return ScanError(check_id=check.METADATA.check_id, region=where, error=error_name(exc), message=str(exc))


def _safe_message(message: str) -> str:
    if secret_kind(message):
        return "message withheld: it contained a value shaped like a credential"
    return message if len(message) <= MESSAGE_MAX else message[: MESSAGE_MAX - 1] + "…"


def _withhold_secrets(finding: Finding) -> tuple[Finding, list[WithheldValue]]:
    notes: list[WithheldValue] = []

    def note(field: str, kind: str) -> None:
        notes.append(
            WithheldValue(check_id=finding.check_id, resource_arn=finding.resource_arn, field=field, kind=kind)
        )

    tags: dict[str, str] = {}
    for key, value in finding.tags.items():
        kind = secret_kind(value)
        if kind:
            # Only `aegis:exempt` is kept (`kept_tags`): the key is ours, not the resource's.
            note(f"tags.{key}", kind)
        tags[key] = WITHHELD if kind else value
    evidence, withheld = withhold_secrets(
        finding.evidence, "evidence", identifiers=CHECKS[finding.check_id].METADATA.identifier_shapes()
    )
    for field, kind in withheld:
        note(field, kind)
    if not notes:
        return finding, notes
    return finding.model_copy(update={"tags": tags, "evidence": evidence}), notes


def _with_remediation(finding: Finding, config: PlanConfig, errors: list[ScanError]) -> Finding:
    """Set `remediation` to what the check would propose in this configuration (None: notify-only)."""
    check = CHECKS[finding.check_id]
    try:
        change = check.propose(finding, config)
    except Exception as exc:
        errors.append(
            ScanError(
                check_id=finding.check_id,
                region=finding.region,
                error=error_name(exc),
                message=f"no remediation could be built for {finding.resource_arn}: {exc}",
            )
        )
        change = None
    remediation = change.kind if change is not None else None
    if remediation == finding.remediation:
        return finding
    return finding.model_copy(update={"remediation": remediation})


__all__ = ["InvalidScanRequest", "ScanAborted", "ScanResult", "WithheldValue", "run_scan"]
