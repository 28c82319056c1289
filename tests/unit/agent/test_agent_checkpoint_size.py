"""A large account must not kill a mission: a 1,000-finding mission (with the evidence the checks keep, and a 200-change
plan approved and applied) completes, and every checkpoint item stays under issue 9's 100 KB target, because the
checkpoint holds the mission's control state and references while the findings, the plan, the results and the
re-scan's verdicts are paged mission documents in the Missions table. Sizes are printed (`pytest -s`)."""

from __future__ import annotations

import json
from typing import Any

from aegis.audit import read_trail
from aegis.checks import CHECKS, PlanConfig
from aegis.checks.base import bucket_arn, security_group_arn, vpc_arn
from aegis.missions_keys import mission_id_for_event
from aegis.models import Finding, Severity
from aegis.partitions import partition_of
from aegis_agent.checkpointer import item_size
from aegis_agent.missions import MissionStore
from aegis_agent.state import Suppression
from tests.support.agent_world import (
    ACCOUNT,
    REGION,
    FakeScanner,
    all_items,
    approved,
    build_service,
    raw_text,
    scheduled_event,
    settings,
)

PLANNED, EXEMPT, SUPPRESSED, UNPLANNED = 200, 500, 200, 100
FINDINGS = PLANNED + EXEMPT + SUPPRESSED + UNPLANNED
TARGET_BYTES = 100 * 1024  # issue 9: the largest checkpoint item
DYNAMODB_ITEM_LIMIT = 400 * 1024
OPEN_PORTS = CHECKS["ec2-admin-port-open-ipv4"].METADATA
PUBLIC_BUCKET = CHECKS["s3-bucket-public"].METADATA
NO_FLOW_LOGS = CHECKS["ec2-vpc-flow-logs-off"].METADATA


def open_group_finding(index: int, exempt: bool) -> Finding:
    group_id = f"sg-{index:017x}"
    rules = [
        {
            "rule_id": f"sgr-{index:08x}{port:05d}",
            "is_egress": False,
            "ip_protocol": "tcp",
            "from_port": port,
            "to_port": port,
            "cidr_ipv4": "0.0.0.0/0",
        }
        for port in (22, 3389)
    ]
    return OPEN_PORTS.finding(
        resource_arn=security_group_arn(REGION, ACCOUNT, group_id),
        account_id=ACCOUNT,
        region=REGION,
        evidence={
            "group_id": group_id,
            "vpc_id": f"vpc-{index % 50:017x}",
            "source": "0.0.0.0/0",
            "exposed_ports": [22, 3389],
            "rules": rules,
        },
        tags={"aegis:exempt": "bastion host, reviewed quarterly", "team": "platform"} if exempt else {"team": "web"},
    )


def large_account() -> list[Finding]:
    """1,000 findings: open security groups to fix and others exempt by tag, public buckets suppressed by the
    SUPPRESSIONS setting, and VPCs without flow logs that stay unplanned (no log destination is configured)."""
    groups = [open_group_finding(i, exempt=i >= PLANNED) for i in range(PLANNED + EXEMPT)]
    buckets = [
        PUBLIC_BUCKET.finding(
            resource_arn=bucket_arn(partition_of(REGION), f"aegis-public-site-{i:04d}"),
            account_id=ACCOUNT,
            region=REGION,
            evidence={"public_acl": True, "public_policy": False, "block_public_access": {"configured": False}},
        )
        for i in range(SUPPRESSED)
    ]
    vpcs = [
        NO_FLOW_LOGS.finding(
            resource_arn=vpc_arn(REGION, ACCOUNT, f"vpc-{i:017x}"),
            account_id=ACCOUNT,
            region=REGION,
            evidence={"vpc_id": f"vpc-{i:017x}", "is_default": False, "flow_logs": 0},
        )
        for i in range(UNPLANNED)
    ]
    return [*groups, *buckets, *vpcs]


def test_a_1000_finding_mission_completes_with_every_checkpoint_item_under_100_kb(
    aws: Any, tables: dict[str, Any], sfn: Any
) -> None:
    findings = large_account()
    assert len(findings) == FINDINGS
    scanner = FakeScanner(
        findings,
        proposer=lambda finding: CHECKS[finding.check_id].propose(finding, PlanConfig()),
        resource_counts={OPEN_PORTS.resource_type: PLANNED + EXEMPT + 300},
    )
    agent_settings = settings(
        # The open groups are exempt by tag: a deployment that trusts such tags.
        trust_exemption_tags=True,
        max_changes_per_mission=PLANNED,
        suppressions=(Suppression(check_id=PUBLIC_BUCKET.check_id, resource_arn="*", reason="static websites"),),
    )
    starting = build_service(aws, scanner, agent_settings)
    started = starting.start_mission(scheduled_event())
    assert (started["status"], started["findings"], started["changes"]) == ("awaiting_approval", FINDINGS, PLANNED)

    # Resumed in a fresh container with every change approved and applied; half of them took effect.
    mission_id = mission_id_for_event(scheduled_event()["id"])
    planned = json.loads(sfn.describe_execution(executionArn=started["execution_arn"])["input"])["changes"]
    scanner.fix(*[change["resource_arn"] for change in planned[: PLANNED // 2]])
    resuming = build_service(aws, scanner, agent_settings)
    resumed = resuming.resume_mission(
        {"mission_id": mission_id, "results": approved([change["change_id"] for change in planned])}
    )
    assert resumed == {
        "mission_id": mission_id,
        "status": "completed",
        "plan_status": "proposed",
        "findings": FINDINGS,
        "changes": PLANNED,
    }

    report = MissionStore(tables["Missions"]).read_report(mission_id)
    assert report is not None
    totals = report.totals
    assert (totals.findings, totals.changes, totals.exempt, totals.suppressed, totals.unplanned) == (
        FINDINGS,
        PLANNED,
        EXEMPT,
        SUPPRESSED,
        UNPLANNED,
    )
    assert (totals.applied, totals.verified_fixed) == (PLANNED, PLANNED // 2)
    assert [(c.cis_v5, c.findings, c.fixed) for c in report.controls] == [
        (PUBLIC_BUCKET.cis_v5, SUPPRESSED, 0),
        (NO_FLOW_LOGS.cis_v5, UNPLANNED, 0),
        (OPEN_PORTS.cis_v5, PLANNED + EXEMPT, PLANNED // 2),
    ]
    assert report.by_severity == {
        Severity.CRITICAL.value: SUPPRESSED,
        Severity.HIGH.value: PLANNED + EXEMPT,
        Severity.MEDIUM.value: UNPLANNED,
    }
    trail = read_trail(tables["Audit"], mission_id)
    assert sum(1 for item in trail if item["action"] == "change.result") == PLANNED
    # Every exemption is audited, in parts of a bounded size.
    parts = sorted(
        (json.loads(item["details"]) for item in trail if item["action"] == "mission.exemptions"),
        key=lambda part: part["part"],
    )
    assert [part["part"] for part in parts] == list(range(1, parts[0]["parts"] + 1))
    assert len({e["finding_id"] for part in parts for e in part["exemptions"]}) == EXEMPT + SUPPRESSED

    checkpoint_items = all_items(tables["Checkpoints"])
    sizes = sorted(
        (item_size(item), item["SK"].split("#")[0], str(item.get("channel", ""))) for item in checkpoint_items
    )
    largest, kind, channel = sizes[-1]
    mission_items = all_items(tables["Missions"])
    documents: dict[str, list[int]] = {}
    for item in mission_items:
        documents.setdefault(str(item.get("record", "mission")), []).append(item_size(item))
    audit_largest = max(item_size(item) for item in trail)
    print(
        f"\n{FINDINGS}-finding mission, {PLANNED} changes: {len(checkpoint_items)} checkpoint items,"
        f" {sum(s for s, _, _ in sizes):,} bytes in all; largest {largest:,} bytes ({kind} {channel});"
        f" Missions items (count, largest bytes): "
        + ", ".join(f"{name} {len(s)}x {max(s):,}" for name, s in sorted(documents.items()))
        + f"; largest audit item {audit_largest:,} bytes"
    )
    assert largest < TARGET_BYTES
    assert max(starting.saver.largest_item_bytes, resuming.saver.largest_item_bytes) == largest
    # The findings' evidence is in the scan document, not in the checkpoint.
    assert "sgr-0000000000022" in raw_text(tables["Missions"])
    assert "sgr-0000000000022" not in raw_text(tables["Checkpoints"])
    # The documents beside the mission are pages and the audit lists come in parts: no item of the Missions or Audit
    # table nears DynamoDB's limit.
    assert max(max(s) for s in documents.values()) < DYNAMODB_ITEM_LIMIT // 2
    assert audit_largest < TARGET_BYTES
