"""Read-only RDS inventory of one region: every DB instance, from one paginated DescribeDBInstances listing.

The listing carries everything the checks read (public accessibility, storage encryption, status, pending
modifications and tags), so no call is ever made per instance. Of the pending modifications only their names are
kept: their values are none of the checks' business (one of them is the pending master password's placeholder).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aegis.catalogue.kinds.disable_rds_public_access import pending_modification_names
from aegis.collectors.base import ServiceCollector, tag_dict

PAGE_SIZE = 100  # DescribeDBInstances accepts MaxRecords 20 to 100
# Engines of other services that DescribeDBInstances lists too.
OTHER_SERVICES_ENGINES = frozenset({"docdb", "neptune"})


@dataclass(frozen=True, slots=True)
class DbInstance:
    identifier: str
    arn: str
    resource_id: str  # DbiResourceId: unique for the life of the instance
    engine: str
    status: str
    publicly_accessible: bool
    storage_encrypted: bool
    pending_modifications: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_aws(cls, instance: dict[str, Any]) -> DbInstance:
        return cls(
            identifier=instance["DBInstanceIdentifier"],
            arn=instance["DBInstanceArn"],
            resource_id=instance.get("DbiResourceId", ""),
            engine=instance.get("Engine", ""),
            status=instance.get("DBInstanceStatus", ""),
            publicly_accessible=bool(instance.get("PubliclyAccessible")),
            storage_encrypted=bool(instance.get("StorageEncrypted")),
            pending_modifications=pending_modification_names(instance),
            tags=tag_dict(instance.get("TagList")),
        )


class RdsCollector(ServiceCollector):
    def db_instances(self) -> list[DbInstance]:
        """Every RDS DB instance of the region (Aurora's included), sorted by ARN. DocumentDB and Neptune instances,
        which the same API lists, are left out: the CIS RDS controls are not about them."""
        return self._once.get("db_instances", self._list_db_instances)

    def _list_db_instances(self) -> list[DbInstance]:
        pages = self._client.get_paginator("describe_db_instances").paginate(PaginationConfig={"PageSize": PAGE_SIZE})
        instances = [
            DbInstance.from_aws(instance)
            for page in pages
            for instance in page.get("DBInstances", [])
            if instance.get("Engine") not in OTHER_SERVICES_ENGINES
        ]
        return sorted(instances, key=lambda instance: instance.arn)
