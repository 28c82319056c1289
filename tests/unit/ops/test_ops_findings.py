"""GET /findings: the latest state of every CIS control, from the latest-findings items and the reports they name,
read with BatchGetItem only (never a scan, never a query of the history)."""

from __future__ import annotations

from aegis.checks import CHECKS
from tests.support.agent_world import bucket_finding, ebs_finding
from tests.unit.ops.test_ops_missions import dynamodb_operations
from tests.unit.ops.world import OpsWorld


def controls_by_check(world: OpsWorld) -> dict[str, dict]:
    answer = world.call("GET", "/findings")
    assert answer.status == 200, answer.body
    return {control["check_id"]: control for control in answer.json()["controls"]}


def test_every_control_of_the_catalogue_is_answered_even_never_scanned(world: OpsWorld) -> None:
    controls = controls_by_check(world)
    assert set(controls) == set(CHECKS)
    for check_id, control in controls.items():
        metadata = CHECKS[check_id].METADATA
        assert (control["cis_v5"], control["title"], control["severity"]) == (
            metadata.cis_v5,
            metadata.title,
            metadata.severity.value,
        )
        assert (control["state"], control["latest_mission_id"], control["resources"]) == ("not-scanned", None, [])


def test_each_resource_shows_its_latest_status_and_outcome_from_the_newest_mission(world: OpsWorld) -> None:
    # An older mission denied the bucket's fix; a newer one applied it. The EBS fix was applied and still fails.
    world.completed_mission("evt-old", [bucket_finding("site")], minutes=0, applied=False)
    newer, changes = world.completed_mission("evt-new", [bucket_finding("site")], minutes=30)
    ebs_mission, _ = world.completed_mission("evt-ebs", [ebs_finding()], minutes=40, fixed=False)
    operations = dynamodb_operations(world)

    controls = controls_by_check(world)

    bucket = controls["s3-bucket-public"]
    assert (bucket["latest_mission_id"], bucket["state"], bucket["dry_run"]) == (newer, "passing", False)
    [resource] = bucket["resources"]
    assert resource["resource_arn"] == "arn:aws:s3:::site"
    assert (resource["status"], resource["decision"], resource["outcome"], resource["verified"]) == (
        "passing",
        "approved",
        "applied",
        "fixed",
    )
    assert resource["change_id"] == changes[0].change_id
    ebs = controls["ec2-ebs-default-encryption-off"]
    assert (ebs["latest_mission_id"], ebs["state"]) == (ebs_mission, "failing")
    assert ebs["resources"][0]["verified"] == "still_failing"
    assert controls["iam-root-access-keys"]["state"] == "not-scanned"
    assert set(operations) == {"BatchGetItem"}


def test_a_check_whose_latest_mission_has_no_report_yet_says_so(world: OpsWorld) -> None:
    request = world.request("evt-pending")
    world.store.create(request, world.clock)
    world.store.record_latest_findings(request, ["s3-bucket-public"], "2026-03-01T12:10:00+00:00")
    control = controls_by_check(world)["s3-bucket-public"]
    assert (control["state"], control["latest_mission_id"], control["resources"]) == (
        "report-pending",
        request.mission_id,
        [],
    )


def test_controls_are_grouped_by_cis_v7_unless_the_caller_asks_for_another_version(world: OpsWorld) -> None:
    answer = world.call("GET", "/findings").json()
    assert answer["cis_version"] == "v7"
    ids = [(c["check_id"], c["cis"]) for c in answer["controls"]]
    assert all(cis == CHECKS[check_id].METADATA.cis_v7 for check_id, cis in ids)
    first_numbers = [tuple(int(n) for n in cis.split(",")[0].split(".")) for _, cis in ids]
    assert first_numbers == sorted(first_numbers)
    by_v5 = world.call("GET", "/findings", query={"cis": "v5"}).json()
    assert by_v5["cis_version"] == "v5"
    assert all(c["cis"] == CHECKS[c["check_id"]].METADATA.cis_v5 for c in by_v5["controls"])
    admin = next(c for c in answer["controls"] if c["check_id"] == "iam-admin-policy-attached")
    assert (admin["cis_v7"], admin["cis_v6"], admin["cis_v5"], admin["cis_v3"]) == ("2.14", "2.15", "1.15", "1.16")
    assert admin["fixes"][0] == CHECKS["iam-admin-policy-attached"].METADATA.remediation_kind


def test_a_cis_version_the_catalogue_does_not_carry_is_a_bad_request(world: OpsWorld) -> None:
    answer = world.call("GET", "/findings", query={"cis": "v4"})
    assert answer.status == 400
    assert "unknown CIS version" in answer.body
