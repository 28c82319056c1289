"""A network ACL lets the whole internet reach SSH (22) or RDP (3389): CIS v3.0.0 5.1 / v5.0.0 5.2 / v6.0.0 and
v7.0.0 6.2.

One paginated `DescribeNetworkAcls` listing per region, entries and tags included. Every default VPC's default ACL
allows all traffic from 0.0.0.0/0 (in AWS as in moto), so a fresh account fails this control in every region.

An ACL is evaluated as AWS does, entry by entry in rule-number order, the first entry matching a packet deciding:
for each admin port and each of 0.0.0.0/0 and ::/0, the first entry from exactly that source whose protocol is all
or TCP with a port range covering the port decides. An allow entry that decides exposes the port; one shadowed by an
earlier deny from the same source (a common hardening: "deny 22 and 3389, then allow all") exposes nothing and is
not flagged, so the fix never denies traffic that an earlier entry already protects.
"""

from __future__ import annotations

from pydantic import JsonValue

from aegis.catalogue import ChangeBase
from aegis.catalogue.kinds.deny_nacl_admin_ingress import DenyNaclAdminIngress, NaclEntry, NaclIngressEntries
from aegis.checks._security_groups import ADMIN_PORTS
from aegis.checks.base import CheckMetadata, PlanConfig, change_for, evidence_withheld
from aegis.collectors import Inventory
from aegis.models import Finding, Risk, Severity
from aegis.partitions import partition_of

METADATA = CheckMetadata(
    check_id="ec2-nacl-admin-port-open",
    title="Network ACL allows SSH or RDP from the internet",
    cis_v3="5.1",
    cis_v5="5.2",
    cis_v7="6.2",
    # v3.0.0's id is not in the shared reference table (read from Prowler's cis_3.0_aws.json instead).
    cis_unsure=("v3",),
    severity=Severity.HIGH,
    rationale=(
        "A network ACL that admits SSH or RDP from any address leaves every instance of its subnets one security "
        "group mistake away from brute force and exploitation of remote administration services."
    ),
    remediation_kind="deny-nacl-admin-ingress",
    manual_fix=(
        "VPC console > Network ACLs > the ACL > Edit inbound rules: replace the allow-from-anywhere entry by entries "
        "allowing only the ports its subnets serve, SSH/RDP only from known networks (API: "
        "ec2:ReplaceNetworkAclEntry, ec2:CreateNetworkAclEntry)."
    ),
    resource_type="AWS::EC2::NetworkAcl",
    services=("ec2",),
    scope="region",
)

# Every source address, per family.
WORLD = ("0.0.0.0/0", "::/0")
_ALL = "-1"
_TCP = ("6", "tcp")


def network_acl_arn(region: str, account_id: str, network_acl_id: str) -> str:
    return f"arn:{partition_of(region)}:ec2:{region}:{account_id}:network-acl/{network_acl_id}"


def covers(entry: NaclEntry, port: int) -> bool:
    """The entry matches TCP packets to `port` (all protocols, or TCP with a range covering it)."""
    if entry.protocol == _ALL:
        return True
    if entry.protocol.lower() not in _TCP:
        return False
    if entry.from_port is None or entry.to_port is None:
        return True
    return entry.from_port <= port <= entry.to_port


def exposing_entries(ingress: tuple[NaclEntry, ...]) -> dict[NaclEntry, list[int]]:
    """The allow entries that decide, for some admin port and world source, that the internet gets in; with those
    ports, in rule-number order."""
    exposed: dict[NaclEntry, list[int]] = {}
    ordered = sorted(ingress, key=lambda entry: entry.rule_number)
    for world in WORLD:
        from_world = [entry for entry in ordered if entry.source == world]
        for port in ADMIN_PORTS:
            deciding = next((entry for entry in from_world if covers(entry, port)), None)
            if deciding is not None and deciding.rule_action == "allow":
                ports = exposed.setdefault(deciding, [])
                if port not in ports:
                    ports.append(port)
    return dict(sorted(exposed.items(), key=lambda item: item[0].rule_number))


def evaluate(inventory: Inventory) -> list[Finding]:
    """One finding per ACL with at least one exposing entry; the evidence lists exactly those entries."""
    acls = inventory.ec2.network_acls()
    inventory.count(METADATA.resource_type, len(acls))
    findings = []
    for acl in sorted(acls, key=lambda a: a.network_acl_id):
        exposed = exposing_entries(acl.ingress)
        if not exposed:
            continue
        ports: list[JsonValue] = [*sorted({port for found in exposed.values() for port in found})]
        findings.append(
            METADATA.finding(
                resource_arn=network_acl_arn(inventory.region, inventory.account_id, acl.network_acl_id),
                account_id=inventory.account_id,
                region=inventory.region,
                evidence={
                    "network_acl_id": acl.network_acl_id,
                    "vpc_id": acl.vpc_id,
                    "is_default": acl.is_default,
                    "subnets": acl.subnets,
                    "exposed_ports": ports,
                    "entries": [entry.model_dump(mode="json") for entry in exposed],
                },
                tags=acl.tags,
            )
        )
    return findings


def propose(finding: Finding, config: PlanConfig) -> ChangeBase | None:
    if evidence_withheld(finding, "entries"):
        return None
    entries = tuple(NaclEntry.model_validate(e) for e in finding.evidence["entries"])  # type: ignore[union-attr]
    return change_for(
        finding,
        DenyNaclAdminIngress,
        # Denying an entry denies everything it allowed: an "all traffic" entry takes every inbound flow of the
        # ACL's subnets with it.
        risk=Risk.HIGH,
        before=NaclIngressEntries(entries=entries),
        after=NaclIngressEntries(entries=tuple(e.with_action("deny") for e in entries)),
    )
