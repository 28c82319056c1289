"""SSH/RDP open to the IPv6 internet: CIS v3.0.0 5.3 / v5.0.0 5.4."""

from __future__ import annotations

from aegis.catalogue.kinds.revoke_security_group_rules import RevokeSecurityGroupRules
from aegis.checks import PlanConfig, ec2_admin_port_open_ipv4, ec2_admin_port_open_ipv6

IPV4 = ec2_admin_port_open_ipv4
IPV6 = ec2_admin_port_open_ipv6


def test_ipv6_rules_are_flagged_by_the_ipv6_check_only(new_group, permission, inventory, rule_ids):
    v6 = new_group([permission(22, "::/0"), permission(22, "0.0.0.0/0")])

    [v6_finding] = IPV6.evaluate(inventory())
    [v4_finding] = IPV4.evaluate(inventory())

    assert (v6_finding.check_id, v6_finding.cis_v3, v6_finding.cis_v5) == ("ec2-admin-port-open-ipv6", "5.3", "5.4")
    assert v6_finding.evidence["source"] == "::/0"
    assert [r["cidr_ipv6"] for r in v6_finding.evidence["rules"]] == ["::/0"]
    assert [r["cidr_ipv4"] for r in v4_finding.evidence["rules"]] == ["0.0.0.0/0"]
    assert {r["rule_id"] for r in v6_finding.evidence["rules"]} == rule_ids(v6, CidrIpv6="::/0")
    change = IPV6.propose(v6_finding, PlanConfig())
    assert isinstance(change, RevokeSecurityGroupRules)
    assert [r.cidr_ipv6 for r in change.revoked] == ["::/0"]


def test_cis_numbers_and_remediation_kind():
    meta = ec2_admin_port_open_ipv6.METADATA
    assert (meta.cis_v3, meta.cis_v5, meta.remediation_kind) == ("5.3", "5.4", "revoke-security-group-rules")
