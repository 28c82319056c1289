"""Every catalogue kind has a remediation that applies, verifies and undoes its change against moto, noticing drift,
and calling only the AWS operations its kind declares: run for every case of the shared builder
(tests/support/changes.py). What only one kind's remediation does is tested in `test_<kind>.py` beside this file."""

from __future__ import annotations

import boto3
import pytest

from aegis.catalogue import KINDS
from aegis_executor.remediations import REMEDIATIONS, NoRemediation, remediation, remediation_for
from aegis_executor.remediations.base import Remediation
from tests.support.action_recorder import ActionRecorder
from tests.support.changes import CASE_REGION as REGION
from tests.support.changes import CASES

pytestmark = pytest.mark.usefixtures("aws")


def test_every_forward_kind_of_the_catalogue_has_exactly_one_registered_remediation() -> None:
    forward_kinds = {kind for kind in KINDS if kind != "undo"}
    assert set(REMEDIATIONS) == forward_kinds
    for kind, registered in REMEDIATIONS.items():
        assert registered.kind == kind
        assert registered.change_type is KINDS[kind]
    assert {name.split("/")[0] for name in CASES} == forward_kinds


def test_registering_an_unknown_or_duplicate_kind_is_refused() -> None:
    with pytest.raises(NoRemediation):
        remediation("open-everything")(type("Bogus", (Remediation,), {}))
    with pytest.raises(NoRemediation):
        remediation("undo")(type("Bogus", (Remediation,), {}))
    with pytest.raises(ValueError, match="already registered"):
        remediation("detach-policy")(type("Again", (Remediation,), {}))


def _assert_called_only(recorder: ActionRecorder, mutating: tuple[str, ...], reads: tuple[str, ...], step: str) -> None:
    """The calls since the last take are among the step's declared actions and reads, and one of them mutates."""
    called = recorder.take()
    assert set(called) <= set(mutating + reads), called
    assert set(called) & set(mutating), f"{step} must have made a mutating call"


@pytest.mark.parametrize("name", sorted(CASES))
def test_apply_verify_and_undo_restore_the_resource_using_only_declared_actions(name: str) -> None:
    case = CASES[name]()
    change = case.change
    fix = remediation_for(change)
    session = boto3.Session(region_name=REGION)
    recorder = ActionRecorder(session)

    assert fix.is_before(fix.read_current(session, change), change)
    assert not fix.verify(session, change).ok, "verification must fail while the change is not applied"
    assert case.facts() == case.facts_before
    recorder.take()

    fix.apply(session, change)
    verification = fix.verify(session, change)
    assert verification.ok
    assert case.facts() == case.facts_after
    _assert_called_only(recorder, change.APPLY_ACTIONS, change.READ_ACTIONS, "apply")

    assert fix.is_after(fix.read_current(session, change), change)
    assert not fix.is_before(fix.read_current(session, change), change)
    recorder.take()

    fix.undo(session, change)
    undone = fix.verify_undone(session, change)
    assert undone.ok
    assert case.facts() == case.facts_before
    _assert_called_only(recorder, change.UNDO_ACTIONS, change.READ_ACTIONS, "undo")


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_resource_changed_since_approval_is_not_in_the_before_state(name: str) -> None:
    case = CASES[name]()
    fix = remediation_for(case.change)
    session = boto3.Session(region_name=REGION)
    case.drift()
    assert not fix.is_before(fix.read_current(session, case.change), case.change)
