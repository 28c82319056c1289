"""Secret-shaped resource data is withheld from the state with a note saying where (never what), so a tag cannot
stop every scan and cannot reach a checkpoint."""

from __future__ import annotations

import secrets

from aegis.models import ScanError
from aegis_agent.scanner import ScanOutcome, _withheld_note, finding_id_of, screen
from aegis_agent.serializer import SecretRefusingSerializer
from tests.support.agent_world import ACCOUNT, BUCKET_CHECK, bucket_finding, ebs_finding

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhcHByb3ZlciIsImV4cCI6MTc2MDAwMDAwMH0.Zm9vYmFyYmF6cXV4"


def outcome(*findings, errors=()) -> ScanOutcome:  # type: ignore[no-untyped-def]
    return ScanOutcome(account_id=ACCOUNT, findings=list(findings), errors=list(errors))


def test_clean_data_passes_unchanged() -> None:
    findings = [bucket_finding("b", tags={"aegis:exempt": "static site"}), ebs_finding()]
    screened = screen(outcome(*findings))
    assert screened.findings == findings
    assert screened.withheld == []


def test_secret_shaped_tag_values_and_evidence_are_withheld_with_a_note() -> None:
    key = "AKIA" + secrets.token_hex(8).upper()
    finding = bucket_finding("b", tags={"aegis:exempt": JWT}, policy={"Statement": [{"Sid": key}]})
    screened = screen(outcome(finding))
    [kept] = screened.findings
    assert kept.tags == {"aegis:exempt": "<withheld>"}
    assert kept.evidence["policy"] == {"Statement": [{"Sid": "<withheld>"}]}
    assert {(n.field, n.kind, n.finding_id) for n in screened.withheld} == {
        ("tags.aegis:exempt", "jwt", finding.finding_id),
        # Named by position, never by a key: the policy's author chose the keys.
        ("evidence{1}{0}[0]{0}", "aws-access-key-id", finding.finding_id),
    }
    text = repr(screened)
    assert JWT not in text
    assert key not in text
    SecretRefusingSerializer().dumps_typed({"findings": screened.findings, "withheld": screened.withheld})


def test_a_secret_shaped_tag_key_is_dropped() -> None:
    finding = bucket_finding("b", tags={JWT: "x", "aegis:exempt": "ok"})
    screened = screen(outcome(finding))
    assert screened.findings[0].tags == {"aegis:exempt": "ok"}
    assert [n.field for n in screened.withheld] == ["tags[0].key"]
    assert JWT not in repr(screened)


def test_a_tag_other_than_the_exemption_is_named_by_position_only() -> None:
    finding = bucket_finding("b", tags={"aegis:exempt": "ok", "deploy-password": JWT})
    screened = screen(outcome(finding))
    assert [(n.field, n.kind) for n in screened.withheld] == [("tags[1]", "jwt")]
    assert "deploy-password" not in repr(screened.withheld)


def test_a_secret_shaped_key_in_evidence_is_dropped_and_never_named() -> None:
    finding = bucket_finding("b", policy={"Condition": {JWT: "x", "aws:SourceVpce": "vpce-1"}})
    screened = screen(outcome(finding))
    assert screened.findings[0].evidence["policy"] == {"Condition": {"aws:SourceVpce": "vpce-1"}}
    assert [(n.field, n.kind) for n in screened.withheld] == [("evidence{1}{0}{0}<key>", "jwt")]
    assert JWT not in repr(screened)


def test_resource_names_are_identifiers_where_the_check_declares_them() -> None:
    key_shaped = "AKIA" + secrets.token_hex(8).upper()
    finding = bucket_finding("b").model_copy(
        update={
            "check_id": "iam-admin-policy-attached",
            "resource_arn": f"arn:aws:iam::{ACCOUNT}:policy/{key_shaped}",
            "evidence": {"attachments": {"roles": [], "users": [key_shaped], "groups": []}, "note": key_shaped},
        }
    )
    screened = screen(outcome(finding))
    [kept] = screened.findings
    assert kept.resource_arn == finding.resource_arn
    assert kept.evidence == {"attachments": {"roles": [], "users": [key_shaped], "groups": []}, "note": "<withheld>"}
    assert [(n.field, n.kind) for n in screened.withheld] == [("evidence{1}", "aws-access-key-id")]


def test_a_finding_whose_identifier_looks_like_a_secret_is_left_out_entirely() -> None:
    token = secrets.token_urlsafe(40)
    finding = bucket_finding("b").model_copy(update={"title": f"bucket {token}"})
    screened = screen(outcome(finding, ebs_finding()))
    assert [f.check_id for f in screened.findings] == ["ec2-ebs-default-encryption-off"]
    assert [(n.check_id, n.field) for n in screened.withheld] == [(BUCKET_CHECK, "finding")]
    assert token not in repr(screened)


def test_a_scan_error_message_with_a_secret_is_withheld() -> None:
    error = ScanError(check_id=BUCKET_CHECK, region="us-east-1", error="AccessDenied", message=f"denied for {JWT}")
    screened = screen(outcome(errors=[error]))
    assert screened.errors == [error.model_copy(update={"message": "<withheld>"})]
    assert [(n.field, n.kind) for n in screened.withheld] == [("scan_error.message", "jwt")]


def test_the_scanners_withheld_values_become_notes_keyed_by_finding() -> None:
    from aegis.scan import WithheldValue

    value = WithheldValue(check_id=BUCKET_CHECK, resource_arn="arn:aws:s3:::b", field="tags.owner", kind="jwt")
    note = _withheld_note(value)
    assert (note.check_id, note.field, note.kind) == (BUCKET_CHECK, "tags.owner", "jwt")
    assert note.finding_id == finding_id_of(BUCKET_CHECK, "arn:aws:s3:::b") == bucket_finding("b").finding_id
