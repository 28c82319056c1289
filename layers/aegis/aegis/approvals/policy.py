"""Who approves which change, how many approvers it needs, and which changes may share one approval request.

Read from the environment the template sets (docs/CONTRACTS.md) by the validator, the approval function and the agent,
so the three agree on the plan without talking to each other. Every setting error names the variable, never its
value (an operator may paste something sensitive into the wrong variable).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from aegis.catalogue import ChangeBase
from aegis.catalogue.base import ACCOUNT_ID_PATTERN, PROPERTY_VALUE_MAX
from aegis.models import Risk
from aegis.named_errors import ConfigurationError
from aegis.settings import Environment

# The named rule a plan is refused by, and the reason the agent reports, for a change no two approvers can approve.
NEEDS_SECOND_APPROVER: Final = "needs-second-approver"

# The one place risk levels are ordered. Risk is a StrEnum, whose own `<` compares the strings ("high" < "low").
RISK_ORDER: Final[tuple[Risk, ...]] = (Risk.LOW, Risk.MEDIUM, Risk.HIGH)
_THRESHOLDS: Final = ("none", *(risk.value for risk in RISK_ORDER))

DEFAULT_BATCH_MAX_CHANGES: Final = 25
BATCH_MAX_CHANGES_RANGE: Final = (2, 100)
_ROUTING_KEYS: Final = ("checks", "resource_types", "accounts")
_RESOURCE_TYPE = re.compile(r"[a-z0-9-]+(?::[A-Za-z0-9-]+)?")
_CHECK_ID = re.compile(r"[a-z0-9][a-z0-9-]*")

# The longest fragment a review URL appends to its base: a mission id and a four-digit request id. The base is
# limited so that every review URL fits in one approval property (PROPERTY_VALUE_MAX), where it is never cut.
_LONGEST_FRAGMENT: Final = "#/missions/" + "m-" + "0" * 20 + "/requests/r9999"
_URL_MISSION_ID = re.compile(r"[a-z0-9-]{1,22}")
_URL_REQUEST_ID = re.compile(r"r[0-9]{3,4}")
REVIEW_URL_BASE_MAX: Final = PROPERTY_VALUE_MAX - len(_LONGEST_FRAGMENT)
_REVIEW_URL_BASE = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~/%-]*)?")


def risk_rank(risk: Risk) -> int:
    """The position of `risk` from low (0) to high: compare risks by this, never by their string values."""
    return RISK_ORDER.index(risk)


def risk_at_least(risk: Risk, threshold: Risk) -> bool:
    return risk_rank(risk) >= risk_rank(threshold)


def risk_at_most(risk: Risk, threshold: Risk) -> bool:
    return risk_rank(risk) <= risk_rank(threshold)


def highest_risk(risks: Iterable[Risk]) -> Risk:
    """The highest of `risks` (ValueError when there is none)."""
    return max(risks, key=risk_rank)


def resource_type_of(arn: str) -> str:
    """`<service>:<type>` for an ARN, the type being its resource part up to the first `/` or `:`; `<service>` when
    the resource part has neither (an S3 bucket, or an account-wide setting such as the
    IAM account password policy)."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or not parts[2] or not parts[5]:
        raise ValueError("not an ARN")
    service, resource = parts[2], parts[5]
    cut = min((at for at in (resource.find("/"), resource.find(":")) if at >= 0), default=-1)
    return service if cut < 0 else f"{service}:{resource[:cut]}"


@dataclass(frozen=True)
class ApproverRouting:
    """Approvers per check id, per resource type (`resource_type_of`) and per account; the most specific match wins:
    check > resource type > account > everyone in ApproverSubs. Empty maps route everything to everyone."""

    # Compared, but left out of the hash (a dict has none), so a policy can still be hashed and cached.
    checks: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    resource_types: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    accounts: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)

    @classmethod
    def parse(
        cls,
        text: str,
        approver_subs: tuple[str, ...],
        error: type[ConfigurationError],
        name: str = "APPROVER_ROUTING",
    ) -> ApproverRouting:
        """The routing in `text` (JSON; "" routes everything to everyone). Raises `error` naming `name` and where
        in it the fault is, never a value."""
        if not text.strip():
            return cls()
        try:
            document = json.loads(text)
        except ValueError:
            raise error(f"{name} is not valid JSON") from None
        if not isinstance(document, dict):
            raise error(f"{name} must be a JSON object")
        unknown = set(document) - set(_ROUTING_KEYS)
        if unknown:
            raise error(f"{name} may only hold the keys {', '.join(_ROUTING_KEYS)}")
        key_shapes = {
            "checks": (_CHECK_ID, "a check id"),
            "resource_types": (_RESOURCE_TYPE, "a resource type (service or service:type)"),
            "accounts": (re.compile(ACCOUNT_ID_PATTERN.strip("^$")), "a 12-digit account id"),
        }
        maps: dict[str, dict[str, tuple[str, ...]]] = {}
        for section in _ROUTING_KEYS:
            entries = document.get(section, {})
            if not isinstance(entries, dict):
                raise error(f"{name}.{section} must be a JSON object")
            shape, what = key_shapes[section]
            routed: dict[str, tuple[str, ...]] = {}
            for key, subs in entries.items():
                if not shape.fullmatch(key):
                    raise error(f"{name}.{section} has a key that is not {what}")
                if not isinstance(subs, list) or not subs or not all(isinstance(sub, str) for sub in subs):
                    raise error(f"{name}.{section} must map each key to a non-empty list of approver subs")
                if not all(sub in approver_subs for sub in subs):
                    raise error(f"{name}.{section} names an approver that is not in APPROVER_SUBS")
                routed[key] = tuple(sorted(set(subs)))
            maps[section] = routed
        return cls(checks=maps["checks"], resource_types=maps["resource_types"], accounts=maps["accounts"])

    def route(self, change: ChangeBase) -> tuple[str, ...] | None:
        """The approvers the most specific entry names for `change`, or None when no entry matches."""
        for routed, key in (
            (self.checks, change.check_id),
            (self.resource_types, resource_type_of(change.resource_arn)),
            (self.accounts, change.account_id),
        ):
            if key in routed:
                return routed[key]
        return None


def _threshold(env: Environment, name: str, default: str) -> Risk | None:
    value = env.choice(name, _THRESHOLDS, default)
    return None if value == "none" else Risk(value)


@dataclass(frozen=True)
class ApprovalPolicy:
    """Who may approve a change, how many must, and which changes may be approved together in one batch."""

    approver_subs: tuple[str, ...]
    batch_max_risk: Risk | None = Risk.MEDIUM
    batch_max_changes: int = DEFAULT_BATCH_MAX_CHANGES
    two_person_risk: Risk | None = Risk.HIGH
    routing: ApproverRouting = field(default_factory=ApproverRouting)
    review_url_base: str = ""

    def __post_init__(self) -> None:
        # The settings are checked when read (`from_env`); a policy built in code is held to the same shape.
        if not self.approver_subs or len(set(self.approver_subs)) != len(self.approver_subs):
            raise ValueError("approver_subs must name at least one approver, each once")
        low, high = BATCH_MAX_CHANGES_RANGE
        if not low <= self.batch_max_changes <= high:
            raise ValueError(f"batch_max_changes must be between {low} and {high}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None, error_type: type[ConfigurationError]) -> ApprovalPolicy:
        env = Environment(error_type, environ)
        approvers = env.items("APPROVER_SUBS")
        if not approvers:
            raise env.invalid("APPROVER_SUBS names no approver")
        low, high = BATCH_MAX_CHANGES_RANGE
        batch_max_changes = env.number("APPROVAL_BATCH_MAX_CHANGES", int, DEFAULT_BATCH_MAX_CHANGES)
        if not low <= batch_max_changes <= high:
            raise env.invalid(f"APPROVAL_BATCH_MAX_CHANGES must be between {low} and {high}")
        review_url_base = env.optional("APPROVAL_REVIEW_URL_BASE")
        if review_url_base and not _REVIEW_URL_BASE.fullmatch(review_url_base):
            raise env.invalid("APPROVAL_REVIEW_URL_BASE must be an http(s) URL without query or fragment")
        if len(review_url_base) > REVIEW_URL_BASE_MAX:
            raise env.invalid(f"APPROVAL_REVIEW_URL_BASE must be at most {REVIEW_URL_BASE_MAX} characters")
        return cls(
            approver_subs=approvers,
            batch_max_risk=_threshold(env, "APPROVAL_BATCH_MAX_RISK", "medium"),
            batch_max_changes=batch_max_changes,
            two_person_risk=_threshold(env, "APPROVAL_TWO_PERSON_RISK", "high"),
            routing=ApproverRouting.parse(env.optional("APPROVER_ROUTING"), approvers, error_type),
            review_url_base=review_url_base,
        )

    def eligible(self, change: ChangeBase) -> tuple[str, ...]:
        """The approvers who may approve `change`, sorted and each once."""
        return tuple(sorted(set(self.routing.route(change) or self.approver_subs)))

    def approvers_needed(self, change: ChangeBase) -> int:
        """2 at or above the two-person risk, else 1."""
        if self.two_person_risk is not None and risk_at_least(change.risk, self.two_person_risk):
            return 2
        return 1

    def can_plan(self, change: ChangeBase) -> bool:
        """Whether enough distinct approvers may approve `change`; a change that cannot "needs a second approver"
        and is never downgraded to one."""
        return len(self.eligible(change)) >= self.approvers_needed(change)

    def batchable(self, change: ChangeBase) -> bool:
        """Whether `change` may share an approval request with others: at or below the batch risk, one approver."""
        return (
            self.batch_max_risk is not None
            and risk_at_most(change.risk, self.batch_max_risk)
            and self.approvers_needed(change) == 1
        )

    def review_url(self, mission_id: str, request_id: str) -> str | None:
        """The console page of a request, or None without a console."""
        if not self.review_url_base:
            return None
        if not _URL_MISSION_ID.fullmatch(mission_id) or not _URL_REQUEST_ID.fullmatch(request_id):
            # Both go into a URL the approver opens: only identifiers of our shape (MISSION_ID_PATTERN's length, no
            # character a URL gives meaning to) ever do, and the URL always fits one approval property.
            raise ValueError("a review URL names a mission id and a request id of AegisCloud's shape")
        return f"{self.review_url_base}#/missions/{mission_id}/requests/{request_id}"
