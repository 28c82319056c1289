"""Read-only KMS inventory of one region: keys with their metadata, and rotation status and tags on demand.

KMS has no listing that returns key metadata, so `DescribeKey` is called per key; keys that an `alias/aws/...` alias
points at are AWS-managed and skipped without a call (one `ListAliases` listing tells them apart).
"""

from __future__ import annotations

from dataclasses import dataclass

from aegis.collectors.base import ServiceCollector, tag_dict

PAGE_SIZE = 1000  # ListKeys and ListAliases accept at most 1,000


@dataclass(frozen=True, slots=True)
class KmsKey:
    key_id: str
    arn: str
    key_manager: str
    key_spec: str
    key_state: str
    origin: str


class KmsCollector(ServiceCollector):
    def keys(self) -> list[KmsKey]:
        return self._once.get("keys", self._list_keys)

    def _list_keys(self) -> list[KmsKey]:
        aws_managed = {
            alias["TargetKeyId"]
            for page in self._client.get_paginator("list_aliases").paginate(PaginationConfig={"PageSize": PAGE_SIZE})
            for alias in page.get("Aliases", [])
            if alias.get("AliasName", "").startswith("alias/aws/") and alias.get("TargetKeyId")
        }
        keys = []
        for page in self._client.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": PAGE_SIZE}):
            for listed in page.get("Keys", []):
                if listed["KeyId"] in aws_managed:
                    continue
                meta = self._client.describe_key(KeyId=listed["KeyId"])["KeyMetadata"]
                keys.append(
                    KmsKey(
                        key_id=meta["KeyId"],
                        arn=meta["Arn"],
                        key_manager=meta.get("KeyManager", ""),
                        key_spec=meta.get("KeySpec") or meta.get("CustomerMasterKeySpec", ""),
                        key_state=meta.get("KeyState", ""),
                        origin=meta.get("Origin", ""),
                    )
                )
        return keys

    def rotation_enabled(self, key_id: str) -> bool:
        return self._once.get(
            ("rotation", key_id), lambda: bool(self._client.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"])
        )

    def key_tags(self, key_id: str) -> dict[str, str]:
        return self._once.get(("tags", key_id), lambda: self._list_tags(key_id))

    def _list_tags(self, key_id: str) -> dict[str, str]:
        pages = self._client.get_paginator("list_resource_tags").paginate(KeyId=key_id)
        return {k: v for page in pages for k, v in tag_dict(page.get("Tags"), "TagKey", "TagValue").items()}
