"""Make one RDS DB instance not publicly accessible (by its identifier, from the approved ARN); undo makes it
publicly accessible again. The ModifyDBInstance call names PubliclyAccessible only, with ApplyImmediately: the
approved before-state has no pending modification, so nothing else is applied with it (a modification queued since
is drift, and nothing is called)."""

from __future__ import annotations

from boto3.session import Session

from aegis.catalogue.kinds.disable_rds_public_access import (
    DbInstancePublicAccess,
    DisableRdsPublicAccess,
    pending_modification_names,
)
from aegis_executor.remediations.base import SettingRemediation, remediation


@remediation("disable-rds-public-access")
class RdsPublicAccessRemediation(SettingRemediation[DisableRdsPublicAccess, DbInstancePublicAccess]):
    def read_current(self, session: Session, change: DisableRdsPublicAccess) -> DbInstancePublicAccess:
        rds = self.client(session, "rds", change)
        try:
            listed = rds.describe_db_instances(DBInstanceIdentifier=change.db_instance_id)["DBInstances"]
        except rds.exceptions.DBInstanceNotFoundFault:
            listed = []
        for instance in listed:
            if instance.get("DBInstanceArn") == change.resource_arn:
                return DbInstancePublicAccess(
                    resource_id=instance.get("DbiResourceId", ""),
                    publicly_accessible=bool(instance.get("PubliclyAccessible")),
                    pending_modifications=pending_modification_names(instance),
                )
        return DbInstancePublicAccess(exists=False, publicly_accessible=False)

    def write(self, session: Session, change: DisableRdsPublicAccess, state: DbInstancePublicAccess) -> None:
        self.client(session, "rds", change).modify_db_instance(
            DBInstanceIdentifier=change.db_instance_id,
            PubliclyAccessible=state.publicly_accessible,
            ApplyImmediately=True,
        )
