"""Read-only IAM inventory (global): customer-managed policies with their documents and attachments, the inline
policies of every role, user and group, the password policy, the account summary, and the tags of a policy when a
check needs them.

`GetAccountAuthorizationDetails` returns every customer policy with all its versions' documents and every role, user
and group with the managed policies attached to it, its inline policies' documents and (roles, users) its tags, in
pages: no `GetPolicyVersion`, `ListPolicyVersions`, `ListEntitiesForPolicy` or `Get*Policy` per policy or entity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import ClientError

from aegis.catalogue.policy_documents import parse_policy_document
from aegis.collectors.base import ServiceCollector, error_code, tag_dict

PAGE_SIZE = 1000
AUTHORIZATION_FILTER = ["LocalManagedPolicy", "Role", "User", "Group"]
EntityType = Literal["role", "user", "group"]
# The listing's keys for each kind of entity: its list, its name, its inline policies.
_ENTITY_KEYS: tuple[tuple[EntityType, str, str, str], ...] = (
    ("role", "RoleDetailList", "RoleName", "RolePolicyList"),
    ("user", "UserDetailList", "UserName", "UserPolicyList"),
    ("group", "GroupDetailList", "GroupName", "GroupPolicyList"),
)


@dataclass(frozen=True, slots=True)
class ManagedPolicy:
    arn: str
    attachment_count: int
    default_version_id: str
    default_document: dict[str, Any]
    roles: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    # Every version the policy has, the default included (IAM keeps at most five).
    version_count: int = 1


@dataclass(frozen=True, slots=True)
class InlinePolicy:
    name: str
    document: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PolicyHolder:
    """A role, user or group with its inline policies. Groups have no tags."""

    entity_type: EntityType
    name: str
    arn: str
    inline_policies: tuple[InlinePolicy, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class _Attachments:
    roles: list[str] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Details:
    policies: list[ManagedPolicy]
    holders: list[PolicyHolder]


class IamCollector(ServiceCollector):
    def customer_policies(self) -> list[ManagedPolicy]:
        return self._details().policies

    def inline_policy_holders(self) -> list[PolicyHolder]:
        """Every role, user and group, with its inline policies (from the same listing as the policies)."""
        return self._details().holders

    def _details(self) -> _Details:
        return self._once.get("policies", self._list_details)

    def _list_details(self) -> _Details:
        raw_policies: list[dict[str, Any]] = []
        attachments: dict[str, _Attachments] = {}
        holders: list[PolicyHolder] = []
        pages = self._client.get_paginator("get_account_authorization_details").paginate(
            Filter=AUTHORIZATION_FILTER, PaginationConfig={"PageSize": PAGE_SIZE}
        )
        for page in pages:
            raw_policies.extend(page.get("Policies", []))
            for entity_type, list_key, name_key, inline_key in _ENTITY_KEYS:
                for entity in page.get(list_key, []):
                    for attached in entity.get("AttachedManagedPolicies", []):
                        holder = attachments.setdefault(attached["PolicyArn"], _Attachments())
                        getattr(holder, f"{entity_type}s").append(entity[name_key])
                    holders.append(
                        PolicyHolder(
                            entity_type=entity_type,
                            name=entity[name_key],
                            arn=entity["Arn"],
                            inline_policies=tuple(
                                InlinePolicy(name=p["PolicyName"], document=parse_policy_document(p["PolicyDocument"]))
                                for p in entity.get(inline_key, [])
                            ),
                            tags=tag_dict(entity.get("Tags")),
                        )
                    )
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
                    default_document=parse_policy_document(default["Document"]) if default else {},
                    roles=tuple(sorted(held.roles)),
                    users=tuple(sorted(held.users)),
                    groups=tuple(sorted(held.groups)),
                    version_count=len(versions),
                )
            )
        return _Details(policies=policies, holders=holders)

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
