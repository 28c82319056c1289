"""Replace network ACL ingress entries, by rule number, with deny; undo replaces them with allow again.

The change names whole entries (rule number, protocol, ports, source, action), and the executor reads only those rule
numbers: an entry added or edited elsewhere in the ACL since the scan is none of the change's business, while any
difference at the named rule numbers (another port range, another source, already deny) is drift.
"""

from __future__ import annotations

from typing import Literal

from boto3.session import Session
from botocore.exceptions import ClientError

from aegis.catalogue.kinds.deny_nacl_admin_ingress import DenyNaclAdminIngress, NaclEntry, NaclIngressEntries
from aegis_executor.remediations.base import Remediation, remediation

# What EC2 answers for a network ACL id it does not know (any more); moto answers with the route table's code.
_NOT_FOUND = frozenset({"InvalidNetworkAclID.NotFound", "InvalidRouteTableID.NotFound"})


@remediation("deny-nacl-admin-ingress")
class DenyNaclAdminIngressRemediation(Remediation[DenyNaclAdminIngress, NaclIngressEntries]):
    def read_current(self, session: Session, change: DenyNaclAdminIngress) -> NaclIngressEntries:
        """The ACL's ingress entries at the change's rule numbers, in the change's order (none if the ACL is gone)."""
        ec2 = self.client(session, "ec2", change)
        try:
            acls = ec2.describe_network_acls(NetworkAclIds=[change.network_acl_id])["NetworkAcls"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _NOT_FOUND:
                return NaclIngressEntries(entries=())
            raise
        wanted = [entry.rule_number for entry in change.before.entries]
        found = {
            int(entry["RuleNumber"]): NaclEntry.from_aws(entry)
            for acl in acls
            if acl.get("NetworkAclId") == change.network_acl_id
            for entry in acl.get("Entries", [])
            if not entry.get("Egress") and int(entry["RuleNumber"]) in wanted
        }
        return NaclIngressEntries(entries=tuple(found[number] for number in wanted if number in found))

    def apply(self, session: Session, change: DenyNaclAdminIngress) -> None:
        self._replace(session, change, "deny")

    def undo(self, session: Session, change: DenyNaclAdminIngress) -> None:
        self._replace(session, change, "allow")

    def _replace(self, session: Session, change: DenyNaclAdminIngress, action: Literal["allow", "deny"]) -> None:
        ec2 = self.client(session, "ec2", change)
        for entry in change.before.entries:
            ec2.replace_network_acl_entry(**entry.with_action(action).replace_request(change.network_acl_id))
