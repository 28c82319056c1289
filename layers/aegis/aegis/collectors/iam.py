"""Read-only IAM inventory (global): customer-managed policies with their documents and attachments, the password
policy, the account summary, and the tags of a policy when a check needs them.

`GetAccountAuthorizationDetails` returns every customer policy with all its versions' documents and every role, user
and group with the managed policies attached to it, in pages: no `GetPolicyVersion` or `ListEntitiesForPolicy` per
policy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from botocore.exceptions import ClientError

from aegis.collectors.base import ServiceCollector, error_code, tag_dict

PAGE_SIZE = 1000
AUTHORIZATION_FILTER = ["LocalManagedPolicy", "Role", "User", "Group"]


@dataclass(frozen=True, slots=True)
class ManagedPolicy:
    arn: str
    attachment_count: int
    default_version_id: str
    default_document: dict[str, Any]
    roles: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()


@dataclass(slots=True)
class _Attachments:
    roles: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)


def policy_document(raw: Any) -> dict[str, Any]:
    """A policy document as returned by IAM: a dict (botocore decodes it) or URL-encoded JSON text."""
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        parsed = json.loads(unquote(raw))
        if isinstance(parsed, dict):
            return parsed
    raise ValueError("policy document is neither a JSON object nor URL-encoded JSON")


class IamCollector(ServiceCollector):
    def customer_policies(self) -> list[ManagedPolicy]:
        return self._once.get("policies", self._list_policies)

    def _list_policies(self) -> list[ManagedPolicy]:
        raw_policies: list[dict[str, Any]] = []
        attachments: dict[str, _Attachments] = {}
        pages = self._client.get_paginator("get_account_authorization_details").paginate(
            Filter=AUTHORIZATION_FILTER, PaginationConfig={"PageSize": PAGE_SIZE}
        )
        for page in pages:
            raw_policies.extend(page.get("Policies", []))
            for list_key, name_key, kind in (
                ("RoleDetailList", "RoleName", "roles"),
                ("UserDetailList", "UserName", "users"),
                ("GroupDetailList", "GroupName", "groups"),
            ):
                for entity in page.get(list_key, []):
                    for attached in entity.get("AttachedManagedPolicies", []):
                        holder = attachments.setdefault(attached["PolicyArn"], _Attachments())
                        getattr(holder, kind).append(entity[name_key])
        policies = []
        for raw in raw_policies:
            default_id = raw.get("DefaultVersionId", "")
            versions = raw.get("PolicyVersionList", [])
            default = next((v for v in versions if v.get("IsDefaultVersion") or v.get("VersionId") == default_id), None)
            held = attachments.get(raw["Arn"], _Attachments())
            policies.append(
                ManagedPolicy(
                    arn=raw["Arn"],
                    attachment_count=int(raw.get("AttachmentCount", 0)),
                    default_version_id=default_id,
                    default_document=policy_document(default["Document"]) if default else {},
                    roles=tuple(sorted(held.roles)),
                    users=tuple(sorted(held.users)),
                    groups=tuple(sorted(held.groups)),
                )
            )
        return policies

    def policy_tags(self, policy_arn: str) -> dict[str, str]:
        return self._once.get(("tags", policy_arn), lambda: self._list_policy_tags(policy_arn))

    def _list_policy_tags(self, policy_arn: str) -> dict[str, str]:
        pages = self._client.get_paginator("list_policy_tags").paginate(PolicyArn=policy_arn)
        return {k: v for page in pages for k, v in tag_dict(page.get("Tags")).items()}

    def password_policy(self) -> dict[str, Any] | None:
        """The account password policy, or None when the account has none."""
        return self._once.get("password_policy", self._get_password_policy)

    def _get_password_policy(self) -> dict[str, Any] | None:
        try:
            return self._client.get_account_password_policy()["PasswordPolicy"]
        except ClientError as exc:
            if error_code(exc) == "NoSuchEntity":
                return None
            raise

    def account_summary(self) -> dict[str, int]:
        return self._once.get("summary", lambda: dict(self._client.get_account_summary()["SummaryMap"]))
