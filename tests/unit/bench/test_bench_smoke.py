"""Smoke runs of the scan-scale and checkpoint-size benchmarks with tiny sizes: they build what they say, measure the
real scanner and checkpointer, and print their tables. Plus the floor arithmetic, which needs no server."""

from __future__ import annotations

import dataclasses

import pytest

from bench import checkpoint_size, scan_scale
from bench.fixtures import AccountShape, BuiltAccount, FixtureError, MotoServer, build_account

ACCOUNT = BuiltAccount(
    shape=AccountShape(rules=5_000, buckets=500, policies=1_000),
    account_id="123456789012",
    region="us-east-1",
    rules=5_000,
    security_groups=101,
    default_groups_with_rules=1,
    open_ssh_groups=10,
    network_interfaces=2_500,
    vpcs=1,
    buckets=500,
    buckets_fully_blocked=250,
    public_acl_buckets=13,
    public_policy_buckets=12,
    policies=1_000,
    admin_policies_attached=20,
    admin_policies_unattached=20,
    roles=2,
    build_seconds=0.0,
)


def test_floor_is_a_page_per_1000_items_plus_the_per_bucket_and_per_finding_calls() -> None:
    floor = scan_scale.api_floor(ACCOUNT, server_lists_bucket_regions=True)
    assert floor["ec2.DescribeSecurityGroupRules"] == 5
    assert floor["ec2.DescribeSecurityGroups"] == 1
    assert floor["ec2.DescribeNetworkInterfaces"] == 1  # one default group: one filtered page beats 3 full ones
    assert floor["iam.GetAccountAuthorizationDetails"] == 2  # 1,000 policies + 2 roles
    assert floor["iam.ListPolicyTags"] == 20
    assert floor["s3.ListBuckets"] == 1
    assert floor["s3.GetPublicAccessBlock"] == 500
    assert floor["s3.GetBucketAcl"] == floor["s3.GetBucketPolicy"] == 250
    assert floor["s3.GetBucketTagging"] == 25
    assert "s3.GetBucketLocation" not in floor  # ListBuckets with MaxBuckets carries BucketRegion
    assert "iam.GetPolicyVersion" not in floor
    assert scan_scale.api_floor(ACCOUNT, server_lists_bucket_regions=False)["s3.GetBucketLocation"] == 25


def test_account_level_block_removes_every_per_bucket_call_from_the_floor() -> None:
    blocked = dataclasses.replace(ACCOUNT, shape=dataclasses.replace(ACCOUNT.shape, account_block_public_access=True))
    floor = scan_scale.api_floor(blocked, server_lists_bucket_regions=False)
    assert not [op for op in floor if op.startswith("s3.")]
    assert floor["s3control.GetPublicAccessBlock"] == 1


def test_fixture_builds_exact_counts_and_refuses_fewer_rules_than_the_region_has() -> None:
    with MotoServer() as server:
        built = build_account(server.session(), AccountShape(rules=103, buckets=4, policies=3))
        assert (built.rules, built.buckets, built.policies) == (103, 4, 3)
        assert built.security_groups == 4  # the default group and three of at most 50 rules each
        assert (built.admin_policies_attached, built.admin_policies_unattached, built.roles) == (1, 1, 1)
        assert (built.buckets_fully_blocked, built.public_acl_buckets, built.public_policy_buckets) == (2, 1, 1)
        assert built.open_ssh_groups == 1
        server.reset()
        with pytest.raises(FixtureError, match="already has 1 rules"):
            build_account(server.session(), AccountShape(rules=0, buckets=0, policies=0))


def test_scan_scale_prints_every_size_at_the_floor(capsys: pytest.CaptureFixture[str]) -> None:
    code = scan_scale.main(
        ["--sizes", "1,2", "--rules", "40", "--buckets", "6", "--policies", "3", "--no-issue4", "--repeats", "1"]
    )
    out = capsys.readouterr().out
    assert code == 0
    table = out.split("## API calls per resource type")[0].splitlines()
    rows = [line for line in table if line.startswith(("1x", "2x"))]
    assert [row.split()[0] for row in rows] == ["1x", "2x", "1x,"]
    counts = [row.split()[1:4] for row in rows[:2]] + [rows[2].split()[4:7]]
    assert counts == [["40", "6", "3"], ["80", "12", "6"], ["40", "6", "3"]]
    assert all(row.endswith("at floor") for row in rows), out
    assert "ABOVE" not in out
    assert "Findings that differ" not in out
    assert "Scan errors" not in out
    assert "cost grew" in out


def test_checkpoint_size_runs_a_real_mission_and_reports_its_items(capsys: pytest.CaptureFixture[str]) -> None:
    mission = checkpoint_size.measure(3)
    assert (mission.changes, mission.findings, mission.status) == (3, 3, "completed")
    assert mission.at_interrupt.items < mission.at_end.items
    assert mission.at_end.total == sum(sum(sizes) for sizes in mission.at_end.by_kind.values())
    assert {"checkpoint", "blob", "write"} <= set(mission.at_end.by_kind)
    assert 0 < mission.at_end.largest < checkpoint_size.TARGET_BYTES
    checkpoint_size.report([mission])
    out = capsys.readouterr().out
    assert "## Checkpoint size per mission" in out
    assert "100 KB target met" in out
