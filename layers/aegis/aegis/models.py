"""Values that cross the agent's boundary: findings, scan errors, per-change results.

Everything here is plain data. Nothing in this package handles a token, a secret or a mutating API.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Risk(StrEnum):
    """How likely applying a change is to break a running workload."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Finding(Frozen):
    """One control failing on one resource. `evidence` keeps only the fields the check looked at."""

    check_id: str
    title: str
    cis_v3: str
    cis_v5: str
    # v6.0.0 and v7.0.0 ids; empty in findings recorded before the checks carried them.
    cis_v6: str = ""
    cis_v7: str = ""
    severity: Severity
    resource_arn: str
    resource_type: str
    account_id: str
    region: str
    evidence: dict[str, JsonValue] = Field(default_factory=dict)
    remediation: str | None = None  # catalogue kind, or None for notify-only
    tags: dict[str, str] = Field(default_factory=dict)

    @property
    def finding_id(self) -> str:
        return "f-" + sha256_hex(canonical_json([self.check_id, self.resource_arn]))[:16]

    def json_identifiers(self) -> dict[str, Any]:
        """Where the evidence holds resource names, as the finding's check declares them: the secret guard keeps a
        name there that fits AWS's character set for it, whatever it looks like (`aegis.secrets_guard`)."""
        from aegis.checks.base import evidence_identifiers  # the checks import this module

        return {f"evidence.{path}": shape for path, shape in evidence_identifiers(self.check_id).items()}


class ScanError(Frozen):
    """A check (or a collector feeding it) that could not finish; the rest of the scan goes on."""

    check_id: str
    region: str
    error: str  # a named error, e.g. "Throttling" or "AccessDenied"
    message: str


class Outcome(StrEnum):
    APPLIED = "applied"
    DRIFT = "drift"
    FAILED = "failed"
    HALTED = "halted"
    DENIED = "denied"
    EXPIRED = "expired"
    SKIPPED = "skipped"


class Decision(StrEnum):
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
    HALTED = "halted"
    FAILED = "failed"


class ChangeResult(Frozen):
    """The opaque per-change result the state machine hands back to the agent. Never a token."""

    change_id: str
    decision: Decision
    outcome: Outcome | None = None
    reason: str = ""
    verified_after: dict[str, JsonValue] | None = None


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no whitespace, UTF-8. Digests are taken over this."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
