"""`--drift`'s out-of-band edits: for every kind the seeded account's plan holds, the edit makes the executor's own
re-read see that the resource is no longer in the approved before-state (so it must refuse to apply), and where
the kind allows it the resource stays misconfigured."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from aegis.catalogue import ChangeBase
from aegis.checks.base import PlanConfig
from aegis_agent.scanner import AwsScanner, screen
from aegis_executor.remediations import remediation_for
from aegis_local.scenario.drift import DriftNotSupported, drift_resource, supports_drift
from aegis_local.scenario.seed import seed_account
from tests.support.changes import one_of_each_kind

REGION = "us-east-1"
# Kinds whose only possible difference from the before-state is the fix itself.
FIXED_BY_THE_EDIT = {
    "enable-ebs-default-encryption",
    "enable-kms-key-rotation",
    "detach-policy",
    "enable-trail-log-file-validation",
    "disable-rds-public-access",
}


@pytest.fixture
def planned(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[boto3.Session, list[ChangeBase]]]:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        seed_account(session, REGION)
        scanner = AwsScanner(lambda: boto3.Session(region_name=REGION), PlanConfig())
        outcome = screen(scanner.scan([REGION], None))
        changes = [c for c in (scanner.propose(f) for f in outcome.findings) if c is not None]
        yield session, changes


def test_each_edit_is_drift_the_executor_detects(planned: tuple[boto3.Session, list[ChangeBase]]) -> None:
    session, changes = planned
    by_kind: dict[str, ChangeBase] = {}
    for change in changes:
        by_kind.setdefault(change.kind, change)
    assert len(by_kind) == 14  # every kind of the seeded plan has a recipe
    failing_before = _failing(session)

    descriptions: dict[str, str] = {}
    for kind, change in by_kind.items():
        fix: Any = remediation_for(change)
        assert fix.is_before(fix.read_current(session, change), change), kind
        descriptions[kind] = drift_resource(change, lambda service: session.client(service, region_name=REGION))
        assert not fix.is_before(fix.read_current(session, change), change), f"{kind}: the executor would apply"

    assert "by hand" in descriptions["revoke-security-group-rules"]
    still_failing = _failing(session)
    for kind, change in by_kind.items():
        target = (change.check_id, change.resource_arn)
        assert target in failing_before
        assert (target in still_failing) is (kind not in FIXED_BY_THE_EDIT), kind


def _failing(session: boto3.Session) -> set[tuple[str, str]]:
    scanner = AwsScanner(lambda: boto3.Session(region_name=REGION), PlanConfig())
    return {(f.check_id, f.resource_arn) for f in screen(scanner.scan([REGION], None)).findings}


def test_kinds_without_a_recipe_are_refused_by_name() -> None:
    unsupported = [c for c in one_of_each_kind() if not supports_drift(c)]
    assert {c.kind for c in unsupported} >= {"create-multi-region-trail", "create-vpc-flow-logs"}
    with pytest.raises(DriftNotSupported, match="create-multi-region-trail"):
        drift_resource(next(c for c in unsupported if c.kind == "create-multi-region-trail"), lambda service: None)
