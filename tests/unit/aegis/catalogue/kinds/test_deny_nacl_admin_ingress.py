"""deny-nacl-admin-ingress: only ever turns whole ingress entries of one network ACL from allow into deny, each at
its own rule number, matching the same traffic."""

from __future__ import annotations

import pytest

from aegis.catalogue.base import PROPERTY_VALUE_MAX
from aegis.catalogue.kinds.deny_nacl_admin_ingress import DenyNaclAdminIngress, NaclEntry, NaclIngressEntries
from aegis.models import Risk
from tests.support.changes import (
    ACCOUNT,
    COMMON,
    NACL_ALL_IPV6_ENTRY,
    NACL_SSH_ENTRY,
    REGION,
    deny_nacl_admin_ingress_change,
)

ACL = "acl-0abc1234"
ACL_ARN = f"arn:aws:ec2:{REGION}:{ACCOUNT}:network-acl/{ACL}"


def _propose(before: tuple[NaclEntry, ...], after: tuple[NaclEntry, ...], **overrides: str) -> DenyNaclAdminIngress:
    fields = {
        "check_id": "ec2-nacl-admin-port-open",
        "resource_arn": ACL_ARN,
        "before": NaclIngressEntries(entries=before),
        "after": NaclIngressEntries(entries=after),
        **COMMON,
        "risk": Risk.HIGH,
    }
    return DenyNaclAdminIngress.propose(**(fields | overrides))


def test_turning_a_deny_into_an_allow_is_refused() -> None:
    denied = NACL_SSH_ENTRY.with_action("deny")
    with pytest.raises(ValueError, match="from allow to deny"):
        _propose((denied,), (NACL_SSH_ENTRY,))


def test_a_deny_that_matches_other_traffic_is_refused() -> None:
    narrower = NACL_SSH_ENTRY.model_copy(update={"rule_action": "deny", "cidr_ipv4": "10.0.0.0/8"})
    with pytest.raises(ValueError, match="matching the same traffic"):
        _propose((NACL_SSH_ENTRY,), (narrower,))


def test_leaving_out_or_adding_an_entry_is_refused() -> None:
    with pytest.raises(ValueError, match="exactly the entries before"):
        _propose((NACL_SSH_ENTRY, NACL_ALL_IPV6_ENTRY), (NACL_SSH_ENTRY.with_action("deny"),))
    with pytest.raises(ValueError, match="at least one entry"):
        _propose((), ())
    twice = NACL_ALL_IPV6_ENTRY.model_copy(update={"rule_number": 100})
    with pytest.raises(ValueError, match="each rule number once"):
        _propose((NACL_SSH_ENTRY, twice), (NACL_SSH_ENTRY.with_action("deny"), twice.with_action("deny")))


def test_the_catch_all_entry_cannot_be_named() -> None:
    catch_all = NaclEntry(rule_number=32767, protocol="-1", rule_action="allow", cidr_ipv4="0.0.0.0/0")
    with pytest.raises(ValueError, match="catch-all"):
        _propose((catch_all,), (catch_all.with_action("deny"),))


@pytest.mark.parametrize(
    "arn",
    [
        f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/sg-0abc1234",
        f"arn:aws:ec2:us-east-2:{ACCOUNT}:network-acl/{ACL}",
        f"arn:aws:ec2:{REGION}:210987654321:network-acl/{ACL}",
        f"arn:aws:ec2:{REGION}:{ACCOUNT}:network-acl/*",
    ],
)
def test_a_resource_that_is_not_an_acl_of_the_change_is_refused(arn: str) -> None:
    with pytest.raises(ValueError, match="network ACL ARN"):
        _propose((NACL_SSH_ENTRY,), (NACL_SSH_ENTRY.with_action("deny"),), resource_arn=arn)


def test_an_entry_has_exactly_one_source() -> None:
    with pytest.raises(ValueError, match="exactly one source"):
        NaclEntry(rule_number=1, protocol="-1", rule_action="allow")
    with pytest.raises(ValueError, match="exactly one source"):
        NaclEntry(rule_number=1, protocol="-1", rule_action="allow", cidr_ipv4="0.0.0.0/0", cidr_ipv6="::/0")


def test_the_approver_is_told_that_the_whole_entry_is_denied() -> None:
    change = deny_nacl_admin_ingress_change()
    assert isinstance(change, DenyNaclAdminIngress)
    assert change.summary() == "Deny NACL rule 100,120 on acl-0abc1234"
    texts = change.approval_properties()
    assert texts["before"] == "#100 in tcp/22-22 from 0.0.0.0/0 allow; #120 in all from ::/0 allow"
    assert texts["after"] == (
        "#100 in tcp/22-22 from 0.0.0.0/0 deny; #120 in all from ::/0 deny; "
        "denies ALL traffic each entry allowed, not only 22/3389"
    )
    assert len(change.binding_message()) <= 64


def test_an_acl_with_many_open_entries_is_split_into_changes_that_each_fit() -> None:
    entries = tuple(
        NACL_SSH_ENTRY.model_copy(update={"rule_number": number, "from_port": 0, "to_port": 65535})
        for number in range(100, 120)
    )
    change = _propose(entries, tuple(e.with_action("deny") for e in entries))
    assert change.overlong_properties()

    parts = change.split_for_approval()

    assert len(parts) > 1
    assert [e for part in parts for e in part.before.entries] == list(entries)  # type: ignore[attr-defined]
    for part in parts:
        assert all(len(text) <= PROPERTY_VALUE_MAX for text in part.approval_properties().values())


def test_the_session_policy_is_pinned_to_the_acl() -> None:
    change = deny_nacl_admin_ingress_change()
    for phase in ("apply", "undo"):
        scoped, unscoped = change.session_policy_statements(phase)
        assert (scoped["Action"], scoped["Resource"]) == (["ec2:ReplaceNetworkAclEntry"], [ACL_ARN])
        assert unscoped["Action"] == ["ec2:DescribeNetworkAcls"]


def test_an_entry_read_from_aws_replaces_exactly_itself() -> None:
    listed = {
        "CidrBlock": "0.0.0.0/0",
        "Egress": False,
        "PortRange": {"From": 3389, "To": 3389},
        "Protocol": "6",
        "RuleAction": "allow",
        "RuleNumber": 200,
    }
    entry = NaclEntry.from_aws(listed)
    assert entry.with_action("deny").replace_request(ACL) == {
        "NetworkAclId": ACL,
        "RuleNumber": 200,
        "Protocol": "6",
        "RuleAction": "deny",
        "Egress": False,
        "CidrBlock": "0.0.0.0/0",
        "PortRange": {"From": 3389, "To": 3389},
    }
    assert NACL_ALL_IPV6_ENTRY.replace_request(ACL) == {
        "NetworkAclId": ACL,
        "RuleNumber": 120,
        "Protocol": "-1",
        "RuleAction": "allow",
        "Egress": False,
        "Ipv6CidrBlock": "::/0",
    }
