"""A whole mission on the local stack with the audit export on: the chainer (fed by the Audit table's stream) links
every record the agent, validator, approval and executor wrote, stores the head with the mission when it completes,
exports the trail to the Object Lock bucket, and the report says the chain is intact."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from aegis.audit import read_trail
from aegis.audit_chain import LINK, POSITION, stored_head, verify_mission
from aegis_local.aws.stack import LocalStack
from aegis_local.scenario.demo import Console, DemoOptions, run_on_stack, stack_arguments
from aegis_local.scenario.phone import ApprovalPolicy

pytestmark = pytest.mark.e2e


def test_a_mission_trail_is_chained_anchored_and_exported_under_compliance_lock(tmp_path: Path) -> None:
    options = DemoOptions(
        policy=ApprovalPolicy(approve_all=True),
        checks=("kms-key-rotation-off", "ec2-ebs-default-encryption-off"),
        report_dir=tmp_path / "reports",
        parameters={"AuditExportRetentionDays": "1"},
    )
    output = io.StringIO()
    with LocalStack(**stack_arguments(options)) as stack:
        result = run_on_stack(stack, options, Console(output))
        assert result.exit_code == 0, output.getvalue()
        assert stack.drain_streams(10)
        dynamodb = stack.session().resource("dynamodb")
        audit = dynamodb.Table(stack.physical_id("AuditTable"))
        missions = dynamodb.Table(stack.physical_id("MissionsTable"))
        mission_id = result.run.mission_id
        verdict = verify_mission(audit, missions, mission_id)
        trail = sorted(read_trail(audit, mission_id), key=lambda r: int(r[POSITION]))
        head = stored_head(missions, mission_id)

        s3 = stack.client("s3")
        bucket = stack.physical_id("AuditExportBucket")
        [exported] = s3.list_objects_v2(Bucket=bucket, Prefix=f"audit/{mission_id}/")["Contents"]
        document = json.loads(s3.get_object(Bucket=bucket, Key=exported["Key"])["Body"].read())
        lock = s3.head_object(Bucket=bucket, Key=exported["Key"])
        configuration = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]

    assert verdict.intact, verdict.summary()
    # Every writer of the mission is in the one chain.
    assert {r["actor"] for r in trail} >= {"agent", "validator", "approval", "executor"}
    assert head is not None
    assert (head.position, head.link) == (int(trail[-1][POSITION]), trail[-1][LINK])
    assert trail[-1]["action"] == "mission.completed"
    assert result.report.audit_chain_intact
    assert f"up to the stored head at position {head.position}" in result.report.audit_chain
    assert "audit chain of" in output.getvalue()

    retention = configuration["Rule"]["DefaultRetention"]
    assert (retention["Mode"], retention["Days"]) == ("COMPLIANCE", 1)
    assert lock["ObjectLockMode"] == "COMPLIANCE"
    assert document["head"] == head.as_item()
    assert [r["seq"] for r in document["records"]] == [r["seq"] for r in sorted(trail, key=lambda r: r["seq"])]
    assert "intact" in document["verdict"]
