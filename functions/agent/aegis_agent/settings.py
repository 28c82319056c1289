"""The agent's settings, read once from the environment the template sets (docs/CONTRACTS.md).

An invalid setting is `Agent.InvalidSettings` naming the variable; its value is never echoed (an operator may have
pasted something sensitive into the wrong variable).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from aegis_agent.errors import InvalidSettings
from aegis_agent.events import REGION_PATTERN
from aegis_agent.state import PlanPolicy, Suppression

DEFAULT_MAX_CHANGES = 20
DEFAULT_MAX_SHARE = 0.5
DEFAULT_CHECKPOINT_TTL_DAYS = 30

_SUPPRESSIONS = TypeAdapter(tuple[Suppression, ...])


class AgentSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    checkpoints_table: str = Field(min_length=1)
    missions_table: str = Field(min_length=1)
    audit_table: str = Field(min_length=1)
    control_table: str = Field(min_length=1)
    state_machine_arn: str = Field(pattern=r"^arn:aws[\w-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]+$")
    scan_regions: tuple[str, ...] = Field(min_length=1)
    dry_run: bool = False
    max_changes_per_mission: int = Field(default=DEFAULT_MAX_CHANGES, ge=0)
    max_share_per_resource_type: float = Field(default=DEFAULT_MAX_SHARE, ge=0.0, le=1.0)
    suppressions: tuple[Suppression, ...] = ()
    trust_exemption_tags: bool = False
    undo_enabled: bool = False
    checkpoint_ttl_days: int = Field(default=DEFAULT_CHECKPOINT_TTL_DAYS, ge=1)

    def policy(self, dry_run: bool | None = None) -> PlanPolicy:
        return PlanPolicy(
            max_changes_per_mission=self.max_changes_per_mission,
            max_share_per_resource_type=self.max_share_per_resource_type,
            suppressions=self.suppressions,
            dry_run=self.dry_run if dry_run is None else dry_run or self.dry_run,
            trust_exemption_tags=self.trust_exemption_tags,
            undo_enabled=self.undo_enabled,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AgentSettings:
        env = os.environ if environ is None else environ
        values = {
            "checkpoints_table": _required(env, "CHECKPOINTS_TABLE"),
            "missions_table": _required(env, "MISSIONS_TABLE"),
            "audit_table": _required(env, "AUDIT_TABLE"),
            "control_table": _required(env, "CONTROL_TABLE"),
            "state_machine_arn": _required(env, "STATE_MACHINE_ARN"),
            "scan_regions": _regions(env),
            "dry_run": _bool(env, "DRY_RUN"),
            "max_changes_per_mission": _number(env, "MAX_CHANGES_PER_MISSION", int, DEFAULT_MAX_CHANGES),
            "max_share_per_resource_type": _number(env, "MAX_SHARE_PER_RESOURCE_TYPE", float, DEFAULT_MAX_SHARE),
            "suppressions": _suppressions(env),
            "trust_exemption_tags": _bool(env, "TRUST_EXEMPTION_TAGS"),
            "undo_enabled": _bool(env, "UNDO_ENABLED"),
            "checkpoint_ttl_days": _number(env, "CHECKPOINT_TTL_DAYS", int, DEFAULT_CHECKPOINT_TTL_DAYS),
        }
        try:
            return cls(**values)
        except ValidationError as exc:
            names = sorted({str(err["loc"][0]).upper() for err in exc.errors() if err["loc"]})
            raise InvalidSettings(f"invalid setting(s): {', '.join(names)}") from None


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise InvalidSettings(f"{name} is required")
    return value


def _regions(env: Mapping[str, str]) -> tuple[str, ...]:
    regions = tuple(part.strip() for part in env.get("SCAN_REGIONS", "").split(",") if part.strip())
    if not regions or not all(re.fullmatch(REGION_PATTERN, r) for r in regions):
        raise InvalidSettings("SCAN_REGIONS must be a comma list of region names")
    return tuple(dict.fromkeys(regions))


def _bool(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "false").strip().lower() or "false"
    if value not in {"true", "false"}:
        raise InvalidSettings(f"{name} must be true or false")
    return value == "true"


def _number(env: Mapping[str, str], name: str, kind: type[int] | type[float], default: float) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        return kind(text)
    except ValueError:
        raise InvalidSettings(f"{name} must be a number") from None


def _suppressions(env: Mapping[str, str]) -> tuple[Suppression, ...]:
    text = env.get("SUPPRESSIONS", "").strip()
    if not text:
        return ()
    try:
        return _SUPPRESSIONS.validate_python(json.loads(text))
    except (ValueError, ValidationError):
        raise InvalidSettings("SUPPRESSIONS must be a JSON list of {check_id, resource_arn, reason}") from None
