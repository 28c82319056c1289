"""The network ACL remediation replaces the approved ingress entries in place, by rule number, and nothing else: other
entries, egress entries and other ACLs stay as they are; an entry changed since approval, or an ACL that is gone, is
drift."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from aegis.catalogue.kinds.deny_nacl_admin_ingress import NaclEntry, NaclIngressEntries
from aegis_executor.remediations import remediation_for
from tests.support.changes import CASE_REGION as REGION
from tests.support.changes import CASES, NACL_SSH_ENTRY, create_network_acl

pytestmark = pytest.mark.usefixtures("aws")


def _entries(acl: str) -> set[tuple[Any, ...]]:
    [found] = boto3.client("ec2", region_name=REGION).describe_network_acls(NetworkAclIds=[acl])["NetworkAcls"]
    return {(e["RuleNumber"], e["Egress"], e["RuleAction"]) for e in found["Entries"]}


def test_entries_added_since_the_scan_and_other_acls_are_left_alone() -> None:
    other = create_network_acl(NACL_SSH_ENTRY, cidr="10.51.0.0/16")
    case = CASES["deny-nacl-admin-ingress"]()
    change = case.change
    acl = change.network_acl_id  # type: ignore[attr-defined]
    ec2 = boto3.client("ec2", region_name=REGION)
    later = NaclEntry(
        rule_number=130, protocol="6", rule_action="allow", cidr_ipv4="0.0.0.0/0", from_port=3389, to_port=3389
    )
    ec2.create_network_acl_entry(**later.replace_request(acl))
    fix = remediation_for(change)
    session = boto3.Session(region_name=REGION)

    assert fix.is_before(fix.read_current(session, change), change)
    fix.apply(session, change)

    assert fix.verify(session, change).ok
    assert (130, False, "allow") in _entries(acl)
    assert (110, False, "allow") in _entries(acl)
    assert _entries(other) == {(100, False, "allow")}


def test_an_entry_already_denied_by_hand_is_drift_not_applied() -> None:
    case = CASES["deny-nacl-admin-ingress"]()
    change = case.change
    acl = change.network_acl_id  # type: ignore[attr-defined]
    boto3.client("ec2", region_name=REGION).replace_network_acl_entry(
        **NACL_SSH_ENTRY.with_action("deny").replace_request(acl)
    )
    fix = remediation_for(change)
    session = boto3.Session(region_name=REGION)

    current = fix.read_current(session, change)

    assert not fix.is_before(current, change)
    assert not fix.is_after(current, change)  # the IPv6 entry still allows


def test_an_acl_that_is_gone_has_none_of_the_entries() -> None:
    case = CASES["deny-nacl-admin-ingress"]()
    change = case.change
    acl = change.network_acl_id  # type: ignore[attr-defined]
    boto3.client("ec2", region_name=REGION).delete_network_acl(NetworkAclId=acl)
    fix = remediation_for(change)

    current = fix.read_current(boto3.Session(region_name=REGION), change)

    assert current == NaclIngressEntries(entries=())
    assert not fix.is_before(current, change)
    assert not fix.is_after(current, change)
