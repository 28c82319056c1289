"""Make one RDS DB instance not publicly accessible (CIS v5.0.0 2.2.3 / v7.0.0 3.2.3): its endpoint's DNS name then
resolves to its private address only, so nothing outside its VPC (and the networks routed to it) can connect.

ModifyDBInstance with ApplyImmediately also applies, at once, every modification RDS holds for the instance's next
maintenance window, some of which restart the database. So the state carries the names of those pending
modifications, and a change is made only while none is pending: the approver approves exactly one setting, and a
modification queued after the approval is drift, never applied along with it. The state also carries the
instance's DbiResourceId, which RDS never reuses: an instance deleted and re-created under the same name (the same
ARN) is another resource, and is drift too."""

from __future__ import annotations

import re
from typing import Any, Literal

from aegis.catalogue.base import ChangeBase, WideningChange
from aegis.models import Frozen

# RDS's own identifier rules: a letter, then letters, digits and single hyphens, at most 63 characters.
DB_INSTANCE_ID = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|-(?!-)){0,62}(?<!-)$")


def pending_modification_names(instance: dict[str, Any]) -> tuple[str, ...]:
    """The sorted names of the modifications RDS holds for a DB instance's next maintenance window (the keys of a
    DescribeDBInstances entry's PendingModifiedValues; their values, a password placeholder among them, are not
    kept)."""
    pending = instance.get("PendingModifiedValues") or {}
    return tuple(sorted(name for name, value in pending.items() if value not in (None, [], {})))


class DbInstancePublicAccess(Frozen):
    # False when the instance is gone: a change about it is then neither applicable nor applied.
    exists: bool = True
    # RDS's DbiResourceId ("db-..."), unique for the life of the instance ("" when it is gone).
    resource_id: str = ""
    publicly_accessible: bool
    # The names of the modifications pending for the next maintenance window (PendingModifiedValues' keys).
    pending_modifications: tuple[str, ...] = ()

    def describe(self) -> str:
        if not self.exists:
            return "no such DB instance"
        text = "publicly accessible" if self.publicly_accessible else "not publicly accessible"
        if self.pending_modifications:
            text += f"; pending modifications: {', '.join(self.pending_modifications)}"
        return f"{text} ({self.resource_id})" if self.resource_id else text


class DisableRdsPublicAccess(ChangeBase):
    kind: Literal["disable-rds-public-access"] = "disable-rds-public-access"
    before: DbInstancePublicAccess
    after: DbInstancePublicAccess

    TITLE = "Make a DB instance private"
    # ModifyDBInstance sets PubliclyAccessible only (with ApplyImmediately); DescribeDBInstances reads one instance.
    # Both authorise on the instance's ARN (db:<identifier>), which the session policy names.
    APPLY_ACTIONS = ("rds:ModifyDBInstance",)
    READ_ACTIONS = ("rds:DescribeDBInstances",)
    UNDO_ACTIONS = ("rds:ModifyDBInstance",)
    REGION_SCOPE = "scanned"

    @property
    def db_instance_id(self) -> str:
        return self.resource_arn.removeprefix(self._db_arn_prefix)

    @property
    def _db_arn_prefix(self) -> str:
        # The instance's ARN is in the change's own region and account: the change cannot address another's.
        return f"arn:{self.partition}:rds:{self.region}:{self.account_id}:db:"

    def assert_narrows(self) -> None:
        if not self.resource_arn.startswith(self._db_arn_prefix) or not DB_INSTANCE_ID.fullmatch(self.db_instance_id):
            raise ValueError("resource_arn must be the ARN of a DB instance in the change's region and account")
        before, after = self.before, self.after
        if not (before.exists and after.exists):
            raise WideningChange("the change is about an existing DB instance")
        if not before.resource_id or before.resource_id != after.resource_id:
            raise WideningChange("before and after must name the same DB instance (its DbiResourceId)")
        if before.pending_modifications or after.pending_modifications:
            # ApplyImmediately would apply them too: more than the one setting approved.
            raise WideningChange("the change is made only while no modification is pending")
        if not before.publicly_accessible or after.publicly_accessible:
            raise WideningChange("the change must turn public accessibility from on to off")

    def summary(self) -> str:
        return f"Make rds db {self.db_instance_id} private"

    def describe_after(self) -> str:
        # What the approver must weigh: clients that reach the endpoint over the internet lose it.
        return f"{self.after.describe()}; clients outside the VPC can no longer connect"
