"""Network ACLs that let the internet reach SSH or RDP: CIS v3.0.0 5.1 / v5.0.0 5.2 / v7.0.0 6.2."""

from __future__ import annotations

from aegis.catalogue.kinds.deny_nacl_admin_ingress import DenyNaclAdminIngress, NaclEntry
from aegis.checks import PlanConfig, ec2_nacl_admin_port_open
from aegis.checks.base import EXEMPT_TAG
from aegis.models import Risk, Severity
from tests.support.changes import create_network_acl

CHECK = ec2_nacl_admin_port_open
_cidrs = iter(range(60, 250))


def entry(number: int, action: str = "allow", protocol: str = "6", ports: tuple[int, int] | None = None, **source):
    source = source or {"cidr_ipv4": "0.0.0.0/0"}
    ranged = {"from_port": ports[0], "to_port": ports[1]} if ports else {}
    return NaclEntry(rule_number=number, protocol=protocol, rule_action=action, **source, **ranged)


def acl(*entries: NaclEntry) -> str:
    return create_network_acl(*entries, cidr=f"10.{next(_cidrs)}.0.0/16")


def _findings(inventory) -> dict[str, object]:
    return {f.evidence["network_acl_id"]: f for f in CHECK.evaluate(inventory())}


def _default_acl(ec2) -> str:
    [found] = ec2.describe_network_acls(Filters=[{"Name": "default", "Values": ["true"]}])["NetworkAcls"]
    return str(found["NetworkAclId"])


def test_the_default_vpcs_default_acl_is_flagged_with_its_allow_all_entry(ec2, inventory):
    default = _default_acl(ec2)

    inv = inventory()
    [finding] = CHECK.evaluate(inv)

    assert finding.evidence["network_acl_id"] == default
    assert (finding.check_id, finding.cis_v3, finding.cis_v5, finding.cis_v7) == (
        "ec2-nacl-admin-port-open",
        "5.1",
        "5.2",
        "6.2",
    )
    assert finding.severity is Severity.HIGH
    assert finding.resource_arn == f"arn:aws:ec2:us-east-1:123456789012:network-acl/{default}"
    assert finding.evidence["is_default"] is True
    assert finding.evidence["exposed_ports"] == [22, 3389]
    assert finding.evidence["entries"] == [
        {
            "rule_number": 100,
            "protocol": "-1",
            "rule_action": "allow",
            "cidr_ipv4": "0.0.0.0/0",
            "cidr_ipv6": None,
            "from_port": None,
            "to_port": None,
        }
    ]
    assert inv.collectors.clients.api_calls["ec2.DescribeNetworkAcls"] == 1


def test_entries_that_let_the_internet_reach_admin_ports_are_flagged(ec2, inventory):
    ssh = acl(entry(100, ports=(22, 22)), entry(110, ports=(443, 443)))
    wide = acl(entry(100, ports=(0, 65535)))
    rdp_range = acl(entry(100, ports=(3000, 4000)))
    ipv6_all = acl(entry(100, protocol="-1", cidr_ipv6="::/0"))
    tcp_by_name = acl(entry(100, protocol="tcp", ports=(22, 22)))

    findings = _findings(inventory)

    assert {ssh, wide, rdp_range, ipv6_all, tcp_by_name} <= set(findings)
    assert [e["rule_number"] for e in findings[ssh].evidence["entries"]] == [100]
    assert findings[ssh].evidence["exposed_ports"] == [22]
    assert findings[wide].evidence["exposed_ports"] == [22, 3389]
    assert findings[rdp_range].evidence["exposed_ports"] == [3389]
    assert findings[ipv6_all].evidence["entries"][0]["cidr_ipv6"] == "::/0"


def test_lookalikes_are_not_flagged(ec2, inventory):
    https_only = acl(entry(100, ports=(443, 443)))
    private = acl(entry(100, ports=(22, 22), cidr_ipv4="10.0.0.0/8"))
    half_the_internet = acl(entry(100, ports=(22, 22), cidr_ipv4="0.0.0.0/1"))
    udp = acl(entry(100, protocol="17", ports=(22, 3389)))
    denied = acl(entry(100, "deny", protocol="-1"))
    outbound = acl()
    ec2.create_network_acl_entry(
        NetworkAclId=outbound, RuleNumber=100, Protocol="-1", RuleAction="allow", Egress=True, CidrBlock="0.0.0.0/0"
    )
    # The common hardening: deny the admin ports first, then allow the rest; AWS stops at the first match.
    hardened = acl(entry(90, "deny", ports=(22, 22)), entry(91, "deny", ports=(3389, 3389)), entry(100, protocol="-1"))

    findings = _findings(inventory)

    assert not {https_only, private, half_the_internet, udp, denied, outbound, hardened} & set(findings)


def test_an_allow_shadowed_for_one_port_only_is_flagged_for_the_other(inventory):
    partly = acl(entry(90, "deny", ports=(22, 22)), entry(100, protocol="-1"))
    later_deny = acl(entry(100, protocol="-1"), entry(110, "deny", ports=(22, 22)))

    findings = _findings(inventory)

    assert findings[partly].evidence["exposed_ports"] == [3389]
    assert [e["rule_number"] for e in findings[partly].evidence["entries"]] == [100]
    assert findings[later_deny].evidence["exposed_ports"] == [22, 3389]


def test_the_proposal_denies_exactly_the_flagged_entries_in_place(inventory):
    both = acl(entry(100, ports=(22, 22)), entry(110, ports=(443, 443)), entry(120, protocol="-1", cidr_ipv6="::/0"))
    finding = _findings(inventory)[both]

    change = CHECK.propose(finding, PlanConfig())

    assert isinstance(change, DenyNaclAdminIngress)
    assert change.network_acl_id == both
    assert [(e.rule_number, e.rule_action) for e in change.before.entries] == [(100, "allow"), (120, "allow")]
    assert [(e.rule_number, e.rule_action) for e in change.after.entries] == [(100, "deny"), (120, "deny")]
    assert change.risk is Risk.HIGH
    assert "not only 22/3389" in change.describe_after()


def test_only_the_exempt_tag_is_kept(ec2, inventory):
    exempt = acl(entry(100, ports=(22, 22)))
    ec2.create_tags(
        Resources=[exempt], Tags=[{"Key": EXEMPT_TAG, "Value": "bastion subnet"}, {"Key": "Note", "Value": "open"}]
    )

    assert _findings(inventory)[exempt].tags == {EXEMPT_TAG: "bastion subnet"}


def test_nothing_is_proposed_from_withheld_evidence(inventory):
    finding = next(iter(_findings(inventory).values()))
    withheld = finding.model_copy(update={"evidence": {**finding.evidence, "entries": "<withheld>"}})

    assert CHECK.propose(withheld, PlanConfig()) is None


def test_cis_numbers_and_remediation_kind():
    meta = ec2_nacl_admin_port_open.METADATA
    assert (meta.cis_v3, meta.cis_v5, meta.cis_id("v6"), meta.cis_v7) == ("5.1", "5.2", "6.2", "6.2")
    assert meta.cis_unsure == ("v3",)
    assert meta.remediation_kind == "deny-nacl-admin-ingress"
    assert "ReplaceNetworkAclEntry" in meta.manual_fix
