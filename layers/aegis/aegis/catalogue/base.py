"""What every remediation kind shares: identity, digest, the approval texts and the session policy."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

from pydantic import Field, ValidationInfo, model_validator

from aegis.ids import ACCOUNT_ID_PATTERN, CHANGE_ID_PATTERN, CHECK_ID_PATTERN, REGION_PATTERN
from aegis.models import Frozen, Risk, canonical_json, sha256_hex
from aegis.partitions import arn_partition, partition_of
from aegis.secrets_guard import display_text

Phase = Literal["apply", "undo"]
# Where the validator accepts a kind's changes: in a region the deployment scans ("scanned"), in IAM's home region
# where account-wide settings are addressed ("home"), or in the resource's own region, whatever is scanned
# ("resource", for buckets, which S3 lists whatever regions are scanned).
RegionScope = Literal["scanned", "home", "resource"]

_BINDING_MESSAGE_UNSAFE = re.compile(r"[^A-Za-z0-9 +\-_.,:#]")
BINDING_MESSAGE_MAX = 64
# The binding message's short form of the account, when the long one (", account <id>") leaves the summary no room.
_ACCOUNT_SHORT = " acct "
PROPERTY_VALUE_MAX = 255
_DRAFT_ID = "chg-draft"


class WideningChange(ValueError):
    """A proposed change that would grant more access than it removes."""


class ApprovalTextTooLong(ValueError):
    """An approval property of the change is longer than Auth0 shows (PROPERTY_VALUE_MAX characters).

    Approval texts are never cut: an approver must see everything they approve. A change of a kind made of
    independent parts (rules of a group, attachments of a policy) is split instead (`split_for_approval`); any
    other is not proposed. The message names the properties, never their values."""

    def __init__(self, change_id: str, names: Sequence[str]) -> None:
        super().__init__(
            f"change {change_id}: approval properties {', '.join(names)} exceed {PROPERTY_VALUE_MAX} characters "
            "and cannot be split"
        )
        self.names = tuple(names)


def change_id_of_identity(identity: Any) -> str:
    """A change's id: a digest of what makes two proposals the same change (`ChangeBase.identity`)."""
    return "chg-" + sha256_hex(canonical_json(identity))[:20]


class ChangeBase(Frozen):
    """One exact, approvable change to one resource.

    Subclasses declare `kind`, typed `before`/`after` states and the IAM actions they need. The change id is derived
    from the content, so a change cannot be renamed without the validator noticing; the digest covers everything.
    """

    kind: str
    change_id: str
    # The finding's check (aegis.checks' own id shape): names only, so no free text rides along into approval texts.
    check_id: str = Field(pattern=CHECK_ID_PATTERN)
    resource_arn: str
    account_id: str = Field(pattern=ACCOUNT_ID_PATTERN)
    region: str = Field(pattern=REGION_PATTERN)
    risk: Risk

    if TYPE_CHECKING:
        # Every member has typed states; they are fields on forward kinds and derived properties on Undo.
        before: Any
        after: Any

    APPLY_ACTIONS: ClassVar[tuple[str, ...]] = ()
    READ_ACTIONS: ClassVar[tuple[str, ...]] = ()
    UNDO_ACTIONS: ClassVar[tuple[str, ...]] = ()
    # Actions that AWS only authorises on Resource "*" (no resource-level permissions).
    UNSCOPED_ACTIONS: ClassVar[tuple[str, ...]] = ()
    TITLE: ClassVar[str] = ""
    # None refuses every change of the kind (region-out-of-scope) until the kind says where its changes belong.
    REGION_SCOPE: ClassVar[RegionScope | None] = None

    @classmethod
    def propose(cls, **fields: Any) -> Self:
        """Build a change from its content; the id is derived, never chosen."""
        draft = cls.model_validate({**fields, "change_id": _DRAFT_ID}, context={_DRAFT_ID: True})
        return cls.model_validate({**draft.model_dump(), "change_id": draft.derived_change_id()})

    def with_states(self, before: Any, after: Any) -> Self:
        """A change of this kind, check, resource, account, region and risk that goes from `before` to `after`."""
        same = self.model_dump(include={"check_id", "resource_arn", "account_id", "region", "risk"})
        return self.propose(**same, before=before, after=after)

    def identity(self) -> Any:
        """What makes two proposals the same change (stable across scans of an unchanged resource)."""
        dumped = self.model_dump(mode="json", include={"kind", "resource_arn", "before", "after"})
        return dumped

    def derived_change_id(self) -> str:
        return change_id_of_identity(self.identity())

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Self:
        self.assert_in_partition()
        self.assert_narrows()
        if info.context and info.context.get(_DRAFT_ID) and self.change_id == _DRAFT_ID:
            return self
        if not re.fullmatch(CHANGE_ID_PATTERN, self.change_id):
            raise ValueError("change_id is not of the form chg-<20 hex>")
        if self.change_id != self.derived_change_id():
            raise ValueError("change_id does not match the change's content")
        return self

    @property
    def partition(self) -> str:
        """The partition of the change's region ("aws", "aws-us-gov", "aws-cn" ...): every ARN the change names or
        builds is in it."""
        return partition_of(self.region)

    def assert_in_partition(self) -> None:
        """ValueError unless the resource ARN is in the partition of the change's region (UnknownRegion, a
        ValueError, for a region no partition has): a change addressed to us-gov-west-1 about an ARN of the
        commercial partition names a resource its session can never reach."""
        if arn_partition(self.resource_arn) != self.partition:
            raise ValueError("resource_arn is not an ARN in the partition of the change's region")

    def assert_narrows(self) -> None:
        """Raise WideningChange if `after` grants anything `before` did not. Every forward kind overrides this."""
        raise NotImplementedError

    @property
    def digest(self) -> str:
        return sha256_hex(self.canonical())

    def canonical(self) -> str:
        return canonical_json(self.model_dump(mode="json"))

    # --- what the approver sees -------------------------------------------------------------------------------
    def summary(self) -> str:
        """A short imperative naming only AWS identifiers (never names or tags, which are attacker-controlled)."""
        raise NotImplementedError

    def describe_before(self) -> str:
        """The before-state in words; by default the state model's own `describe()`."""
        return self.before.describe()

    def describe_after(self) -> str:
        return self.after.describe()

    def binding_message(self) -> str:
        """What the phone shows next to the approval: the summary, the account and the digest's first 6 hex, in
        Auth0's binding_message characters and length. The account and the digest are never cut (with one
        deployment approving changes in many accounts, the account is part of what is approved); the summary is
        cut when all three do not fit. Tried in order, the first that shows the whole summary wins:
        `<summary> #<hex>` when the summary already names the account (an account-wide change),
        `<summary>, account <id> #<hex>`, `<summary> acct <id> #<hex>`; else the short form with the summary cut."""
        digest = f" #{self.digest[:6]}"
        text = _BINDING_MESSAGE_UNSAFE.sub("-", self.summary())
        candidates = ([digest] if self.account_id in text else []) + [
            f", account {self.account_id}{digest}",
            f"{_ACCOUNT_SHORT}{self.account_id}{digest}",
        ]
        for suffix in candidates:
            if len(text) + len(suffix) <= BINDING_MESSAGE_MAX:
                return text + suffix
        suffix = candidates[-1]
        return text[: BINDING_MESSAGE_MAX - len(suffix)].rstrip() + suffix

    def approval_properties(self) -> dict[str, str]:
        """What the approver's phone shows, property by property. ApprovalTextTooLong if any is too long to show
        whole: a cut text would let an approver approve what they were not shown."""
        overlong = self.overlong_properties()
        if overlong:
            raise ApprovalTextTooLong(self.change_id, overlong)
        return self._approval_texts()

    def overlong_properties(self) -> tuple[str, ...]:
        """The names of the approval properties longer than PROPERTY_VALUE_MAX characters."""
        return tuple(name for name, value in self._approval_texts().items() if len(value) > PROPERTY_VALUE_MAX)

    def _approval_texts(self) -> dict[str, str]:
        return {
            "change_id": self.change_id,
            "digest": self.digest,
            "kind": self.kind,
            # Shown as every name is (display_text): an ARN AWS issued reads unchanged, anything else is spelled out.
            "resource": display_text(self.resource_arn),
            "region": self.region,
            "risk": self.risk.value,
            # An S3 ARN names no account, and one deployment approves changes in many: the account is always shown.
            "account": self.account_id,
            # The states are resource data: whatever a kind's own description leaves raw is shown the same way.
            "before": display_text(self.describe_before()),
            "after": display_text(self.describe_after()),
            "check": self.check_id,
        }

    # --- fitting on the approver's screen ------------------------------------------------------------------------
    def split_for_approval(self) -> tuple[ChangeBase, ...]:
        """This change as changes whose approval properties all fit on the approver's screen: `(self,)` when it
        fits; for a kind made of independent parts (`approval_parts`), as few changes of consecutive parts as fit,
        which together change exactly what this change changes. ApprovalTextTooLong when even one part alone, or a
        property no split shortens (the resource ARN), is too long."""
        if not self.overlong_properties():
            return (self,)
        items = self.approval_parts()
        if len(items) < 2:
            raise ApprovalTextTooLong(self.change_id, self.overlong_properties())
        parts: list[ChangeBase] = []
        batch: list[Any] = []
        for item in items:
            if batch and self.with_parts((*batch, item)).overlong_properties():
                parts.append(self._fitting_part(batch))
                batch = [item]
            else:
                batch.append(item)
        parts.append(self._fitting_part(batch))
        return tuple(parts)

    def approval_parts(self) -> tuple[Any, ...]:
        """The independent parts this change is made of, in a stable order; () for a kind that cannot be split."""
        return ()

    def with_parts(self, items: Sequence[Any]) -> ChangeBase:
        """A change of this kind on the same resource that changes exactly `items` (a subset of `approval_parts`)."""
        raise NotImplementedError

    def _fitting_part(self, items: Sequence[Any]) -> ChangeBase:
        part = self.with_parts(tuple(items))
        overlong = part.overlong_properties()
        if overlong:
            raise ApprovalTextTooLong(self.change_id, overlong)
        return part

    # --- what the executor may do --------------------------------------------------------------------------------
    def actions(self, phase: Phase) -> tuple[str, ...]:
        mutating = self.APPLY_ACTIONS if phase == "apply" else self.UNDO_ACTIONS
        return mutating + self.READ_ACTIONS

    def scoped_resources(self, phase: Phase) -> list[str]:
        """ARNs the resource-scoped actions of `phase` may touch; defaults to the change's own resource."""
        return [self.resource_arn]

    def session_policy_statements(self, phase: Phase = "apply") -> list[dict[str, Any]]:
        """Statements of the inline session policy for one STS session that may perform this change only."""
        scoped = [a for a in self.actions(phase) if a not in self.UNSCOPED_ACTIONS]
        unscoped = [a for a in self.actions(phase) if a in self.UNSCOPED_ACTIONS]
        statements: list[dict[str, Any]] = []
        if scoped:
            statements.append(
                {
                    "Sid": "ThisChangeOnly",
                    "Effect": "Allow",
                    "Action": sorted(scoped),
                    "Resource": sorted(self.scoped_resources(phase)),
                }
            )
        if unscoped:
            statements.append(
                {
                    "Sid": "UnscopedActionsInRegion",
                    "Effect": "Allow",
                    "Action": sorted(unscoped),
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:RequestedRegion": self.region}},
                }
            )
        return statements
