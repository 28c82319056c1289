"""Require IMDSv2 on one EC2 instance (CIS v5 5.7 / v7 6.7): ModifyInstanceMetadataOptions with HttpTokens=required
and nothing else, so the endpoint, the hop limit and every other metadata option stay as they are. Undo sets
HttpTokens back to optional.

Why MEDIUM risk: software on the instance that still reads the metadata service the IMDSv1 way (a plain GET without
a session token: old SDKs, agents, scripts) gets 401 from then on, including for the instance role's credentials.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field

from aegis.catalogue.base import ChangeBase, WideningChange
from aegis.models import Frozen

INSTANCE_ID_PATTERN = r"i-[0-9a-f]{8,17}"
# What DescribeInstances reports for an instance that no longer runs anything, and will not again.
GONE_STATES = frozenset({"shutting-down", "terminated"})
# AWS's defaults for the options an answer leaves out (moto drops those a ModifyInstanceMetadataOptions call does
# not name; AWS always lists them).
DEFAULT_HOP_LIMIT = 1


class InstanceMetadataOptions(Frozen):
    """The instance metadata service options of one instance that the control and the change are about."""

    # False when the instance is gone (terminated, or not found): a change about it is neither applicable nor applied.
    exists: bool = True
    http_endpoint: Literal["enabled", "disabled"] = "enabled"
    http_tokens: Literal["optional", "required"] = "optional"
    # How many network hops the token's PUT response may travel (1: only the instance itself; more lets containers
    # on it reach the service). Part of the approved state: an out-of-band change of it is drift.
    hop_limit: int = Field(default=DEFAULT_HOP_LIMIT, ge=1, le=64)

    @classmethod
    def from_aws(cls, options: dict[str, Any] | None) -> InstanceMetadataOptions:
        """An instance's `MetadataOptions`, as DescribeInstances lists them."""
        options = options or {}
        return cls(
            http_endpoint=options.get("HttpEndpoint") or "enabled",
            http_tokens=options.get("HttpTokens") or "optional",
            hop_limit=options.get("HttpPutResponseHopLimit") or DEFAULT_HOP_LIMIT,
        )

    @property
    def imdsv1_allowed(self) -> bool:
        """The control fails: the service answers and answers without a session token."""
        return self.exists and self.http_endpoint == "enabled" and self.http_tokens == "optional"

    def describe(self) -> str:
        if not self.exists:
            return "instance gone"
        if self.http_endpoint == "disabled":
            return f"metadata service disabled (HttpTokens {self.http_tokens}, hop limit {self.hop_limit})"
        versions = "IMDSv1 and IMDSv2 answer" if self.http_tokens == "optional" else "only IMDSv2 answers"
        return f"metadata service on: {versions} (HttpTokens {self.http_tokens}), hop limit {self.hop_limit}"


class RequireImdsv2(ChangeBase):
    kind: Literal["require-imdsv2"] = "require-imdsv2"
    before: InstanceMetadataOptions
    after: InstanceMetadataOptions

    TITLE = "Require IMDSv2 on an instance"
    APPLY_ACTIONS = ("ec2:ModifyInstanceMetadataOptions",)
    READ_ACTIONS = ("ec2:DescribeInstances",)
    UNDO_ACTIONS = ("ec2:ModifyInstanceMetadataOptions",)
    UNSCOPED_ACTIONS = ("ec2:DescribeInstances",)
    REGION_SCOPE = "scanned"

    @property
    def instance_id(self) -> str:
        return self.resource_arn.rsplit("/", 1)[-1]

    def assert_narrows(self) -> None:
        prefix = re.escape(f"arn:{self.partition}:ec2:{self.region}:{self.account_id}:instance/")
        if not re.fullmatch(prefix + INSTANCE_ID_PATTERN, self.resource_arn):
            raise ValueError("resource_arn must be an EC2 instance ARN of the change's account and region")
        if not (self.before.exists and self.after.exists):
            raise WideningChange("the change is about an existing instance")
        if self.before.http_tokens != "optional" or self.after.http_tokens != "required":
            raise WideningChange("the change must turn HttpTokens from optional to required")
        if self.after != self.before.model_copy(update={"http_tokens": "required"}):
            raise WideningChange("the change may set HttpTokens only; every other metadata option stays")

    def summary(self) -> str:
        return f"Require IMDSv2 on {self.instance_id}"

    def describe_after(self) -> str:
        # What the approver must weigh: IMDSv1 clients on the instance stop getting answers.
        return f"{self.after.describe()}; IMDSv1 calls (no token) get 401"
