"""A 200-finding mission (every finding remediable, every change proposed) keeps each DynamoDB item far below the
400 KB limit: the checkpoint items, and the mission item with its report. Sizes are printed (`pytest -s`)."""

from __future__ import annotations

import json
from typing import Any

from aegis.checks import CHECKS, PlanConfig
from aegis.checks.base import security_group_arn
from aegis_agent.checkpointer import item_size
from aegis_agent.missions import MissionStore, mission_id_for_event
from tests.unit.agent.agent_world import (
    ACCOUNT,
    REGION,
    FakeScanner,
    all_items,
    approved,
    build_service,
    scheduled_event,
    settings,
)

FINDINGS = 200
DYNAMODB_ITEM_LIMIT = 400 * 1024
# "Well under": half the limit leaves room for larger evidence than this mission's.
BUDGET = DYNAMODB_ITEM_LIMIT // 2
CHECK = CHECKS["ec2-admin-port-open-ipv4"]


def open_group_finding(index: int) -> Any:
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
    return CHECK.METADATA.finding(
        resource_arn=security_group_arn(REGION, ACCOUNT, group_id),
        account_id=ACCOUNT,
        region=REGION,
        evidence={
            "group_id": group_id,
            "vpc_id": f"vpc-{index:017x}",
            "source": "0.0.0.0/0",
            "exposed_ports": [22, 3389],
            "rules": rules,
        },
        tags={"aegis:exempt": ""} if index % 50 == 0 else None,
    )


def test_a_200_finding_mission_keeps_every_item_well_under_the_dynamodb_limit(
    aws: Any, tables: dict[str, Any], sfn: Any
) -> None:
    scanner = FakeScanner(
        [open_group_finding(i) for i in range(FINDINGS)],
        proposer=lambda finding: CHECKS[finding.check_id].propose(finding, PlanConfig()),
    )
    agent_settings = settings(max_changes_per_mission=FINDINGS)
    service = build_service(aws, scanner, agent_settings)
    started = service.start_mission(scheduled_event())
    assert (started["status"], started["findings"], started["changes"]) == ("awaiting_approval", FINDINGS, FINDINGS)

    mission_id = mission_id_for_event(scheduled_event()["id"])
    change_ids = [
        c["change_id"]
        for c in json.loads(sfn.describe_execution(executionArn=started["execution_arn"])["input"])["changes"]
    ]
    resumed = build_service(aws, scanner, agent_settings).resume_mission(
        {"mission_id": mission_id, "results": approved(change_ids)}
    )
    assert resumed["status"] == "completed"

    checkpoint_items = all_items(tables["Checkpoints"])
    sizes = sorted((item_size(item), item["SK"].split("#")[0], item.get("channel", "")) for item in checkpoint_items)
    largest, kind, channel = sizes[-1]
    mission_items = all_items(tables["Missions"])
    mission_item = item_size(tables["Missions"].get_item(Key={"mission_id": mission_id})["Item"])
    report_pages = [item_size(i) for i in mission_items if i.get("record") == "report-page"]
    print(
        f"\n200-finding mission: {len(checkpoint_items)} checkpoint items, {sum(s for s, _, _ in sizes)} bytes in all;"
        f" largest checkpoint item {largest} bytes ({kind} {channel});"
        f" mission item {mission_item} bytes; report {len(report_pages)} pages of at most {max(report_pages)} bytes;"
        f" DynamoDB item limit {DYNAMODB_ITEM_LIMIT}"
    )
    assert largest < BUDGET
    assert service.saver.largest_item_bytes == largest
    assert mission_item < BUDGET
    assert max(report_pages) < BUDGET
    report = MissionStore(tables["Missions"]).read_report(mission_id)
    assert report is not None
    assert (report.totals.findings, report.totals.changes, report.totals.applied) == (FINDINGS, FINDINGS, FINDINGS)
