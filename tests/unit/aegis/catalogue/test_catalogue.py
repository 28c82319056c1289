from __future__ import annotations

import json
import re

import pytest

from aegis.catalogue import KINDS, ChangeBase, InvalidChange, Undo, declared_actions, parse_change
from aegis.catalogue.forward import FORWARD_KINDS
from aegis.models import Risk
from tests.support.changes import one_of_each_kind


@pytest.fixture(params=one_of_each_kind(), ids=lambda change: change.kind)
def change(request: pytest.FixtureRequest) -> ChangeBase:
    return request.param


def test_every_kind_round_trips_through_untrusted_json(change: ChangeBase) -> None:
    wire = json.loads(change.model_dump_json())
    assert parse_change(wire) == change
    assert parse_change(change.model_dump_json()).digest == change.digest


def test_the_test_covers_every_forward_kind() -> None:
    assert {c.kind for c in one_of_each_kind()} == {k.model_fields["kind"].default for k in FORWARD_KINDS}
    assert set(KINDS) == {*(c.kind for c in one_of_each_kind()), "undo"}


def test_change_id_is_stable_and_the_digest_covers_every_field(change: ChangeBase) -> None:
    again = type(change).propose(**change.model_dump(exclude={"change_id", "kind"}))
    assert again.change_id == change.change_id
    assert again.digest == change.digest
    assert re.fullmatch(r"[0-9a-f]{64}", change.digest)
    riskier = change.model_copy(update={"risk": Risk.HIGH})
    assert riskier.digest != change.digest


def test_unknown_kind_is_refused() -> None:
    wire = json.loads(one_of_each_kind()[0].model_dump_json())
    wire["kind"] = "run-arbitrary-api-call"
    with pytest.raises(InvalidChange, match=r"kind|tag"):
        parse_change(wire)


def test_extra_field_is_refused(change: ChangeBase) -> None:
    wire = json.loads(change.model_dump_json())
    wire["api_call"] = "ec2:AuthorizeSecurityGroupIngress"
    with pytest.raises(InvalidChange):
        parse_change(wire)


def test_a_forged_change_id_is_refused(change: ChangeBase) -> None:
    wire = json.loads(change.model_dump_json())
    wire["change_id"] = "chg-" + "0" * 20
    with pytest.raises(InvalidChange, match="change_id"):
        parse_change(wire)


def test_editing_the_resource_after_the_fact_is_refused(change: ChangeBase) -> None:
    """The id is derived from the content: retargeting a change without re-deriving it fails validation."""
    wire = json.loads(change.model_dump_json())
    wire["resource_arn"] += "-other"
    with pytest.raises(InvalidChange):
        parse_change(wire)


def test_binding_message_fits_auth0_and_names_the_digest(change: ChangeBase) -> None:
    message = change.binding_message()
    assert len(message) <= 64
    assert re.fullmatch(r"[A-Za-z0-9 +\-_.,:#]+", message)
    assert message.endswith("#" + change.digest[:6])


def test_approval_properties_fit_auth0_limits(change: ChangeBase) -> None:
    props = change.approval_properties()
    assert len(props) <= 10
    assert all(re.fullmatch(r"[a-zA-Z0-9_.-]+", k) and len(v) <= 255 for k, v in props.items())
    assert props["digest"] == change.digest


def test_session_policy_names_only_declared_actions_and_never_wildcard_actions(change: ChangeBase) -> None:
    for phase in ("apply", "undo"):
        statements = change.session_policy_statements(phase)
        actions = {a for s in statements for a in s["Action"]}
        assert actions == set(change.actions(phase))
        assert all("*" not in a for a in actions)
        for statement in statements:
            if statement["Resource"] == "*":
                assert set(statement["Action"]) <= set(type(change).UNSCOPED_ACTIONS)
                assert statement["Condition"]["StringEquals"]["aws:RequestedRegion"] == change.region


def test_undo_restores_the_before_state_with_the_undo_actions(change: ChangeBase) -> None:
    undo = Undo.of(change)
    assert parse_change(undo.model_dump_json()) == undo
    assert undo.before == change.after
    assert undo.after == change.before
    assert set(undo.actions()) == set(type(change).UNDO_ACTIONS + type(change).READ_ACTIONS)
    assert undo.risk is Risk.HIGH


def test_an_undos_id_follows_from_the_originals_id_and_digest_alone(change: ChangeBase) -> None:
    # What an audit record names: the ops API and the validator find an undo's records by this id.
    assert Undo.change_id_of(change.change_id, change.digest) == Undo.of(change).change_id
    assert Undo.change_id_of(change.change_id, "0" * 64) != Undo.of(change).change_id


def test_undo_cannot_be_retargeted(change: ChangeBase) -> None:
    wire = json.loads(Undo.of(change).model_dump_json())
    wire["resource_arn"] = "arn:aws:s3:::someone-elses-bucket"
    with pytest.raises(InvalidChange):
        parse_change(wire)


def test_declared_actions_is_the_union_of_every_kind() -> None:
    actions = declared_actions()
    for change in one_of_each_kind():
        assert set(change.actions("apply")) | set(change.actions("undo")) <= actions
    # Undo must stay lossless: no kind may delete a policy version (replace-admin-policy-version keeps the old one).
    assert "iam:DeletePolicyVersion" not in actions
    assert all(":" in a and "*" not in a for a in actions)
