"""ListAccounts: which accounts an organization scan covers, what it records, and every named refusal."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from aegis.audit import read_trail
from aegis.control import HALT_ITEM
from aegis.missions_keys import CREATED_INDEX, ORG_SCAN_INDEX
from aegis_orgscan import errors
from aegis_orgscan.service import OrgScanService
from tests.unit.orgscan.conftest import BUCKET, MANAGEMENT, NOW, Organization

ORG_SCAN = "org-0123456789abcdef0123"


def task(**request: Any) -> dict[str, Any]:
    return {"action": "list", "org_scan_id": ORG_SCAN, "request": {"org_scan_id": ORG_SCAN} | request}


def items(aws: boto3.Session) -> list[dict[str, Any]]:
    body = aws.client("s3").get_object(Bucket=BUCKET, Key=f"org-scans/{ORG_SCAN}/items.json")["Body"].read()
    return json.loads(body)


def listed(aws: boto3.Session) -> list[str]:
    return [item["account_id"] for item in items(aws)]


def test_every_active_account_of_the_organization_is_listed_with_the_request(
    aws: boto3.Session, make_service: Any, organization: Organization, tables: dict[str, Any]
) -> None:
    answer = make_service().handle(task(regions=["us-east-1"], checks=["s3-public-access"], dry_run=True))

    assert answer == {
        "org_scan_id": ORG_SCAN,
        "bucket": BUCKET,
        "key": f"org-scans/{ORG_SCAN}/items.json",
        "accounts": 4,
    }
    # The suspended account is never scanned; the security account itself is (the agent reads it as itself).
    assert listed(aws) == organization.active
    assert organization.suspended not in listed(aws)
    assert next(i for i in items(aws) if i["account_id"] == MANAGEMENT) == {
        "org_scan_id": ORG_SCAN,
        "account_id": MANAGEMENT,
        "regions": ["us-east-1"],
        "checks": ["s3-public-access"],
        "dry_run": True,
    }
    item = tables["missions"].get_item(Key={"mission_id": f"org#{ORG_SCAN}"})["Item"]
    assert item == {
        "mission_id": f"org#{ORG_SCAN}",
        "kind": "org-scan",
        "org_scan_id": ORG_SCAN,
        "status": "scanning",
        "accounts": organization.active,
        "account_count": 4,
        "regions": ["us-east-1"],
        "check_ids": ["s3-public-access"],
        "dry_run": True,
        "max_changes": 200,
        "reserved_changes": 0,
        "items_key": f"org-scans/{ORG_SCAN}/items.json",
        "created_at": NOW.isoformat(),
        "updated_at": NOW.isoformat(),
    }
    (record,) = read_trail(tables["audit"], ORG_SCAN)
    assert (record["actor"], record["action"], record["outcome"]) == ("org-scan", "org_scan.listed", "listed")
    assert json.loads(record["details"])["account_count"] == 4


def test_the_organization_scan_item_stays_out_of_both_mission_indexes(
    make_service: Any, tables: dict[str, Any]
) -> None:
    make_service().handle(task())
    missions = tables["missions"]
    by_created = missions.query(
        IndexName=CREATED_INDEX, KeyConditionExpression="listing = :m", ExpressionAttributeValues={":m": "mission"}
    )
    by_org_scan = missions.query(
        IndexName=ORG_SCAN_INDEX, KeyConditionExpression="org_scan = :o", ExpressionAttributeValues={":o": ORG_SCAN}
    )
    assert by_created["Items"] == []
    assert by_org_scan["Items"] == []


def test_without_regions_or_checks_the_deployments_regions_apply_and_checks_stay_open(
    aws: boto3.Session, make_service: Any
) -> None:
    make_service().handle(task(regions=None, checks=None, dry_run=None, requested_at="2026-06-01T12:00:00+00:00"))
    assert {(tuple(i["regions"]), i["checks"], i["dry_run"]) for i in items(aws)} == {
        (("eu-west-1", "eu-central-1"), None, None)
    }


def test_an_ou_covers_its_accounts_and_every_ou_beneath_it(
    aws: boto3.Session, make_service: Any, organization: Organization
) -> None:
    make_service(organizational_units=(organization.workloads,)).handle(task())
    assert listed(aws) == sorted([organization.workload, organization.prod_account])


def test_a_nested_ou_alone_covers_only_its_own_accounts(
    aws: boto3.Session, make_service: Any, organization: Organization
) -> None:
    make_service(organizational_units=(organization.prod,)).handle(task())
    assert listed(aws) == [organization.prod_account]


def test_an_ou_beside_its_own_parent_lists_each_account_once(
    aws: boto3.Session, make_service: Any, organization: Organization
) -> None:
    make_service(organizational_units=(organization.prod, organization.workloads)).handle(task())
    assert listed(aws) == sorted([organization.workload, organization.prod_account])


def test_the_root_as_an_ou_covers_the_whole_organization_without_suspended_accounts(
    aws: boto3.Session, make_service: Any, organization: Organization
) -> None:
    make_service(organizational_units=(organization.root,)).handle(task())
    assert listed(aws) == organization.active


def test_include_keeps_only_its_accounts_within_the_ous_and_exclude_always_wins(
    aws: boto3.Session, make_service: Any, organization: Organization
) -> None:
    make_service(include_accounts=frozenset({organization.loose, organization.prod_account})).handle(task())
    assert listed(aws) == sorted([organization.loose, organization.prod_account])

    service = make_service(
        organizational_units=(organization.workloads,),
        include_accounts=frozenset({organization.loose, organization.prod_account, organization.workload}),
        exclude_accounts=frozenset({organization.workload}),
    )
    assert service.selected_accounts() == [organization.prod_account]
    assert make_service(exclude_accounts=frozenset({MANAGEMENT})).selected_accounts() == sorted(
        [organization.workload, organization.prod_account, organization.loose]
    )


def test_an_organization_scan_of_no_account_records_zero_and_writes_an_empty_list(
    aws: boto3.Session, make_service: Any, organization: Organization, tables: dict[str, Any]
) -> None:
    answer = make_service(exclude_accounts=frozenset(organization.active)).handle(task())
    assert answer["accounts"] == 0
    assert items(aws) == []
    item = tables["missions"].get_item(Key={"mission_id": f"org#{ORG_SCAN}"})["Item"]
    assert (item["accounts"], item["account_count"]) == ([], 0)


def test_listing_accounts_is_paginated(make_service: Any, organization: Organization) -> None:
    service: OrgScanService = make_service()
    pages = [
        {"Accounts": [{"Id": "111111111111", "State": "ACTIVE"}], "NextToken": "t"},
        {"Accounts": [{"Id": "222222222222", "Status": "ACTIVE"}, {"Id": "333333333333", "State": "SUSPENDED"}]},
    ]

    class Paginator:
        def paginate(self, **_: Any) -> Any:
            return iter(pages)

    class Organizations:
        def get_paginator(self, operation: str) -> Paginator:
            assert operation == "list_accounts"
            return Paginator()

    service.organizations = Organizations()
    assert service.selected_accounts() == ["111111111111", "222222222222"]


def test_a_retried_listing_keeps_the_accounts_recorded_first(
    aws: boto3.Session, make_service: Any, organization: Organization, tables: dict[str, Any]
) -> None:
    make_service(include_accounts=frozenset({organization.loose})).handle(task())
    tables["missions"].update_item(
        Key={"mission_id": f"org#{ORG_SCAN}"},
        UpdateExpression="SET reserved_changes = :n",
        ExpressionAttributeValues={":n": 3},
    )
    # The organization changed in between: the scan still covers what its item (and its cap) recorded.
    answer = make_service().handle(task())
    assert answer["accounts"] == 1
    assert listed(aws) == [organization.loose]
    item = tables["missions"].get_item(Key={"mission_id": f"org#{ORG_SCAN}"})["Item"]
    assert (item["accounts"], item["reserved_changes"]) == ([organization.loose], 3)


def test_a_wrong_organization_id_lists_nothing(aws: boto3.Session, make_service: Any, tables: dict[str, Any]) -> None:
    with pytest.raises(errors.WrongOrganization) as raised:
        make_service(organization_id="o-abcdefghij").handle(task())
    assert type(raised.value).__name__ == "OrgScan.WrongOrganization"
    assert "o-abcdefghij" not in str(raised.value)
    assert "Item" not in tables["missions"].get_item(Key={"mission_id": f"org#{ORG_SCAN}"})
    assert aws.client("s3").list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
    (record,) = read_trail(tables["audit"], ORG_SCAN)
    assert (record["action"], record["outcome"]) == ("org_scan.refused", "wrong-organization")


def test_an_empty_organization_id_is_not_configured(make_service: Any, tables: dict[str, Any]) -> None:
    with pytest.raises(errors.NotConfigured) as raised:
        make_service(organization_id="").handle(task())
    assert type(raised.value).__name__ == "OrgScan.NotConfigured"
    assert [r["outcome"] for r in read_trail(tables["audit"], ORG_SCAN)] == ["not-configured"]


def test_the_halt_flag_is_checked_before_anything_else(
    aws: boto3.Session, make_service: Any, tables: dict[str, Any]
) -> None:
    tables["control"].put_item(Item={"name": HALT_ITEM, "engaged": True, "engaged_at": NOW.isoformat()})
    # Even a deployment without an organization id answers halted: the kill switch comes first.
    with pytest.raises(errors.Halted) as raised:
        make_service(organization_id="").handle(task())
    assert type(raised.value).__name__ == "OrgScan.Halted"
    assert "Item" not in tables["missions"].get_item(Key={"mission_id": f"org#{ORG_SCAN}"})
    assert [r["outcome"] for r in read_trail(tables["audit"], ORG_SCAN)] == ["halted"]


@pytest.mark.parametrize(
    "event",
    [
        "list",
        {"action": "list", "org_scan_id": ORG_SCAN},
        {"action": "list", "org_scan_id": "org-xyz", "request": {"org_scan_id": "org-xyz"}},
        {"action": "list", "org_scan_id": ORG_SCAN, "request": {"org_scan_id": "org-ffffffffffffffffffff"}},
        {"action": "list", "org_scan_id": ORG_SCAN, "request": {"org_scan_id": ORG_SCAN, "regions": ["Mars"]}},
        {"action": "list", "org_scan_id": ORG_SCAN, "request": {"org_scan_id": ORG_SCAN, "dry_run": "yes"}},
        {"action": "list", "org_scan_id": ORG_SCAN, "request": {"org_scan_id": ORG_SCAN, "extra": 1}},
        {"action": "delete", "org_scan_id": ORG_SCAN},
        {"action": "summarize", "org_scan_id": ORG_SCAN, "failure": "no spaces allowed"},
    ],
)
def test_a_malformed_task_is_refused_by_name_without_echoing_it(make_service: Any, event: Any) -> None:
    with pytest.raises(errors.MalformedEvent) as raised:
        make_service().handle(event)
    assert type(raised.value).__name__ == "OrgScan.MalformedEvent"
    assert "Mars" not in str(raised.value)
    assert "yes" not in str(raised.value)
