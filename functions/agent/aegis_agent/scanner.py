"""The agent's view of the scanner: scan (read-only), propose (pure), and the screen that keeps secret-shaped
resource data out of the state.

`AwsScanner` adapts the layer's `aegis.scan.run_scan` and `aegis.checks.CHECKS`; tests may pass any object with
the same three methods. The screen runs on whatever a scanner returns, so the state holds no secret-shaped value
even if a collector kept one: such a value is withheld (replaced by the marker) with a note naming where, never
what (nor a dict key). Resource data must not be able to stop every scan; only what the agent itself produces stops
a run. Identifiers are not withheld, whatever they look like: a whole ARN, and a name where the finding's check
declares one and it fits AWS's character set for it (`aegis.secrets_guard`), so that a resource named like a key
still gets its change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

from aegis.catalogue import ChangeBase
from aegis.models import Finding, ScanError, canonical_json, sha256_hex
from aegis.secrets_guard import WITHHELD, secret_kind, withhold_secrets
from aegis_agent.plan import EXEMPT_TAG
from aegis_agent.state import WithheldNote


@dataclass
class ScanOutcome:
    account_id: str
    findings: list[Finding]
    errors: list[ScanError] = field(default_factory=list)
    withheld: list[WithheldNote] = field(default_factory=list)
    api_calls: int = 0
    # Resources inventoried per resource type, for the blast-radius share cap.
    resource_counts: dict[str, int] = field(default_factory=dict)


class Scanner(Protocol):
    def scan(self, regions: Sequence[str], check_ids: Sequence[str] | None) -> ScanOutcome: ...

    def propose(self, finding: Finding) -> ChangeBase | None: ...

    def known_check_ids(self) -> frozenset[str]: ...


class AwsScanner:
    """The layer's scanner with the agent's read-only session. Imports are deferred so that the agent package can be
    imported (and unit-tested) without the scanner's AWS dependencies being loaded."""

    def __init__(self, session_factory: Callable[[], Any], plan_config: Any = None) -> None:
        self._session_factory = session_factory
        self._plan_config = plan_config

    def scan(self, regions: Sequence[str], check_ids: Sequence[str] | None) -> ScanOutcome:
        from aegis.scan import run_scan

        result = run_scan(
            self._session_factory(),
            list(regions),
            check_ids=list(check_ids) if check_ids else None,
            plan_config=self._plan_config,
        )
        return ScanOutcome(
            account_id=result.account_id,
            findings=list(result.findings),
            errors=list(result.errors),
            withheld=[_withheld_note(item) for item in result.withheld],
            api_calls=_call_count(result.api_calls),
            resource_counts=dict(getattr(result, "resource_counts", None) or {}),
        )

    def propose(self, finding: Finding) -> ChangeBase | None:
        from aegis.checks import CHECKS

        check = CHECKS.get(finding.check_id)
        if check is None:
            return None
        return check.propose(finding, self._plan_config)

    def candidates(self, finding: Finding) -> list[ChangeBase]:
        """Every fix the finding's check builds for it (what the analyst may choose among)."""
        from aegis.checks import CHECKS
        from aegis.checks.base import PlanConfig, candidates_of

        check = CHECKS.get(finding.check_id)
        if check is None:
            return []
        return candidates_of(check, finding, self._plan_config or PlanConfig())

    def known_check_ids(self) -> frozenset[str]:
        from aegis.checks import CHECKS

        return frozenset(CHECKS)


def _call_count(api_calls: Any) -> int:
    if isinstance(api_calls, dict):
        return sum(int(n) for n in api_calls.values())
    return int(api_calls or 0)


def _withheld_note(item: Any) -> WithheldNote:
    """The scanner's `WithheldValue` (check_id, resource_arn, field, kind) as the agent's note."""
    data = item.model_dump(mode="json") if isinstance(item, BaseModel) else dict(item)
    check_id = str(data.get("check_id", ""))
    resource_arn = data.get("resource_arn")
    return WithheldNote(
        check_id=check_id,
        field=str(data.get("field", "")),
        kind=str(data.get("kind", "secret-shaped")),
        finding_id=finding_id_of(check_id, str(resource_arn)) if resource_arn else None,
    )


def finding_id_of(check_id: str, resource_arn: str) -> str:
    """`Finding.finding_id` for a check and resource, without building the finding."""
    return "f-" + sha256_hex(canonical_json([check_id, resource_arn]))[:16]


def screen(outcome: ScanOutcome) -> ScanOutcome:
    """The outcome with every secret-shaped value of resource data withheld, and a note for each."""
    notes = list(outcome.withheld)
    findings: list[Finding] = []
    for finding in outcome.findings:
        kept = _screen_finding(finding, notes)
        if kept is not None:
            findings.append(kept)
    errors = []
    for error in outcome.errors:
        kind = secret_kind(error.message) or secret_kind(error.error)
        if kind:
            notes.append(WithheldNote(check_id=error.check_id, field="scan_error.message", kind=kind))
            errors.append(error.model_copy(update={"message": WITHHELD, "error": _safe_name(error.error)}))
        else:
            errors.append(error)
    return ScanOutcome(
        account_id=outcome.account_id,
        findings=findings,
        errors=errors,
        withheld=notes,
        api_calls=outcome.api_calls,
        resource_counts=dict(outcome.resource_counts),
    )


def _screen_finding(finding: Finding, notes: list[WithheldNote]) -> Finding | None:
    tags: dict[str, str] = {}
    for index, (key, value) in enumerate(finding.tags.items()):
        key_kind = secret_kind(key)
        if key_kind:
            notes.append(_note(finding, f"tags[{index}].key", key_kind))
            continue
        value_kind = secret_kind(value)
        if value_kind:
            # Named by key only for the one tag the scanner keeps: another key is the resource owner's text.
            notes.append(_note(finding, f"tags.{key}" if key == EXEMPT_TAG else f"tags[{index}]", value_kind))
        tags[key] = WITHHELD if value_kind else value
    from aegis.checks.base import evidence_identifiers  # with the scanner's dependencies, when a scan is screened

    evidence, withheld = withhold_secrets(
        finding.evidence, "evidence", identifiers=evidence_identifiers(finding.check_id)
    )
    notes.extend(_note(finding, where, kind) for where, kind in withheld)
    screened = finding.model_copy(update={"tags": tags, "evidence": evidence})
    identity = (screened.check_id, screened.title, screened.resource_arn, screened.resource_type, screened.region)
    for text in identity:
        kind = secret_kind(text)
        if kind:
            # The resource's own identifier looks like a secret (a whole ARN never does): nothing about it is kept.
            notes.append(WithheldNote(check_id=_safe_name(finding.check_id), field="finding", kind=kind))
            return None
    return screened


def _note(finding: Finding, where: str, kind: str) -> WithheldNote:
    return WithheldNote(check_id=finding.check_id, field=where, kind=kind, finding_id=finding.finding_id)


def _safe_name(text: str) -> str:
    return text if not secret_kind(text) else WITHHELD
