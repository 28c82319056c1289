"""The agent's settings, read once from the environment the template sets (docs/CONTRACTS.md).

An invalid setting is `Agent.InvalidSettings` naming the variable; its value is never echoed (an operator may have
pasted something sensitive into the wrong variable).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from aegis.approvals.policy import ApprovalPolicy
from aegis.cis import CIS_VERSIONS, DEFAULT_CIS_VERSION, CisVersion, InvalidCisVersion, cis_version
from aegis.settings import Environment
from aegis_agent.analyst import AnalystSettings
from aegis_agent.errors import InvalidSettings
from aegis_agent.events import REGION_PATTERN
from aegis_agent.state import PlanPolicy, Suppression

DEFAULT_MAX_CHANGES = 20
DEFAULT_MAX_SHARE = 0.5
DEFAULT_CHECKPOINT_TTL_DAYS = 30
# The template's defaults (MaxChangesPerOrgScan; member/template.yaml's fixed role name).
DEFAULT_MAX_CHANGES_PER_ORG_SCAN = 200
DEFAULT_MEMBER_SCAN_ROLE_NAME = "AegisScanRole"
STATE_MACHINE_ARN_PATTERN = r"^arn:aws[\w-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]+$"

_SUPPRESSIONS = TypeAdapter(tuple[Suppression, ...])


class AgentSettings(BaseModel):
    # ApprovalPolicy is the layer's frozen dataclass, shared with the validator and the approval function.
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    checkpoints_table: str = Field(min_length=1)
    missions_table: str = Field(min_length=1)
    audit_table: str = Field(min_length=1)
    control_table: str = Field(min_length=1)
    state_machine_arn: str = Field(pattern=STATE_MACHINE_ARN_PATTERN)
    scan_regions: tuple[str, ...] = Field(min_length=1)
    dry_run: bool = False
    max_changes_per_mission: int = Field(default=DEFAULT_MAX_CHANGES, ge=0)
    max_share_per_resource_type: float = Field(default=DEFAULT_MAX_SHARE, ge=0.0, le=1.0)
    suppressions: tuple[Suppression, ...] = ()
    trust_exemption_tags: bool = False
    undo_enabled: bool = False
    cis_version: CisVersion = DEFAULT_CIS_VERSION
    checkpoint_ttl_days: int = Field(default=DEFAULT_CHECKPOINT_TTL_DAYS, ge=1)
    # Who may approve which change (APPROVER_SUBS, APPROVAL_*): a change it gives fewer eligible approvers than the
    # change needs is left out of the plan and reported as needing a second approver, never downgraded. The
    # environment always sets it; None (settings built in code, e.g. a benchmark) leaves that check to the validator.
    approval: ApprovalPolicy | None = None
    # Organization scans. Optional, so that a function the template gives none of them (AgentResumeFunction) still
    # loads its settings: without the state machine an organization scan is refused by name, and without the external
    # id no member account can be read (its missions end `unreachable`).
    org_scan_state_machine_arn: str | None = Field(default=None, pattern=STATE_MACHINE_ARN_PATTERN)
    member_scan_role_name: str = Field(default=DEFAULT_MEMBER_SCAN_ROLE_NAME, pattern=r"^[\w+=,.@-]{1,64}$")
    member_external_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9+=,.@:/_-]{2,1224}$")
    max_changes_per_org_scan: int = Field(default=DEFAULT_MAX_CHANGES_PER_ORG_SCAN, ge=0)
    # The analyst (ANALYST_*): None, the default, plans deterministically (the safest or pinned candidate).
    analyst: AnalystSettings | None = None

    def policy(self, dry_run: bool | None = None) -> PlanPolicy:
        return PlanPolicy(
            max_changes_per_mission=self.max_changes_per_mission,
            max_share_per_resource_type=self.max_share_per_resource_type,
            suppressions=self.suppressions,
            dry_run=self.dry_run if dry_run is None else dry_run or self.dry_run,
            trust_exemption_tags=self.trust_exemption_tags,
            undo_enabled=self.undo_enabled,
            cis_version=self.cis_version,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AgentSettings:
        env = Environment(InvalidSettings, environ)
        values = {
            "checkpoints_table": env.required("CHECKPOINTS_TABLE"),
            "missions_table": env.required("MISSIONS_TABLE"),
            "audit_table": env.required("AUDIT_TABLE"),
            "control_table": env.required("CONTROL_TABLE"),
            "state_machine_arn": env.required("STATE_MACHINE_ARN"),
            "scan_regions": _regions(env),
            "dry_run": env.flag("DRY_RUN"),
            "max_changes_per_mission": env.number("MAX_CHANGES_PER_MISSION", int, DEFAULT_MAX_CHANGES),
            "max_share_per_resource_type": env.number("MAX_SHARE_PER_RESOURCE_TYPE", float, DEFAULT_MAX_SHARE),
            "suppressions": _suppressions(env),
            "trust_exemption_tags": env.flag("TRUST_EXEMPTION_TAGS"),
            "undo_enabled": env.flag("UNDO_ENABLED"),
            "cis_version": _cis_version(env),
            "checkpoint_ttl_days": env.number("CHECKPOINT_TTL_DAYS", int, DEFAULT_CHECKPOINT_TTL_DAYS),
            "approval": ApprovalPolicy.from_env(environ, InvalidSettings),
            "org_scan_state_machine_arn": env.optional("ORG_SCAN_STATE_MACHINE_ARN") or None,
            "member_scan_role_name": env.optional("MEMBER_SCAN_ROLE_NAME") or DEFAULT_MEMBER_SCAN_ROLE_NAME,
            "member_external_id": env.optional("MEMBER_EXTERNAL_ID") or None,
            "max_changes_per_org_scan": env.number("MAX_CHANGES_PER_ORG_SCAN", int, DEFAULT_MAX_CHANGES_PER_ORG_SCAN),
            "analyst": _analyst(env),
        }
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            names = sorted({str(err["loc"][0]).upper() for err in exc.errors() if err["loc"]})
            raise env.invalid(f"invalid setting(s): {', '.join(names)}") from None


def _analyst(env: Environment) -> AnalystSettings | None:
    model_id = env.optional("ANALYST_MODEL_ID")
    if not model_id:
        return None
    try:
        return AnalystSettings(
            model_id=model_id,
            guardrail_id=env.optional("ANALYST_GUARDRAIL_ID") or None,
            guardrail_version=env.optional("ANALYST_GUARDRAIL_VERSION") or "DRAFT",
            token_budget=env.number("ANALYST_TOKEN_BUDGET", int, 200_000),
            timeout_seconds=env.number("ANALYST_TIMEOUT_SECONDS", int, 30),
        )
    except ValidationError as exc:
        names = sorted({"ANALYST_" + str(err["loc"][0]).upper() for err in exc.errors() if err["loc"]})
        raise env.invalid(f"invalid setting(s): {', '.join(names)}") from None


def _regions(env: Environment) -> tuple[str, ...]:
    regions = env.items("SCAN_REGIONS")
    if not regions or not all(re.fullmatch(REGION_PATTERN, r) for r in regions):
        raise env.invalid("SCAN_REGIONS must be a comma list of region names")
    return regions


def _cis_version(env: Environment) -> CisVersion:
    try:
        return cis_version(env.optional("CIS_VERSION"))
    except InvalidCisVersion:
        raise env.invalid("CIS_VERSION must be one of " + ", ".join(CIS_VERSIONS)) from None


def _suppressions(env: Environment) -> tuple[Suppression, ...]:
    text = env.optional("SUPPRESSIONS")
    if not text:
        return ()
    try:
        return _SUPPRESSIONS.validate_python(json.loads(text))
    except (ValueError, ValidationError):
        raise env.invalid("SUPPRESSIONS must be a JSON list of {check_id, resource_arn, reason}") from None
