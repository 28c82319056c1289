"""The checkpoint serializer refuses anything that is not plain data of a registered type, and any secret shape."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from langgraph.types import Command, Interrupt, Send
from pydantic import BaseModel, SecretStr

from aegis.catalogue.kinds.detach_policy import DetachPolicy, PolicyAttachments
from aegis.models import ChangeResult, Decision, Outcome, Risk
from aegis_agent.errors import CheckpointRefused
from aegis_agent.serializer import SecretRefusingSerializer
from aegis_agent.state import Plan, PlanStatus
from tests.support import planted_secrets
from tests.support.agent_world import bucket_finding
from tests.support.changes import one_of_each_kind

SECRET_SHAPES = {
    "jwt": planted_secrets.jwt,
    "aws-access-key-id": planted_secrets.access_key_id,
    "high-entropy": planted_secrets.high_entropy,
    "bearer": planted_secrets.bearer,
    "pem": planted_secrets.pem_private_key,
}


@pytest.fixture
def serde() -> SecretRefusingSerializer:
    return SecretRefusingSerializer()


def test_state_models_catalogue_and_langgraph_types_round_trip(serde: SecretRefusingSerializer) -> None:
    changes = tuple(one_of_each_kind())
    values = [
        {"findings": [bucket_finding("open-bucket", tags={"aegis:exempt": "public website"})]},
        Plan(status=PlanStatus.PROPOSED, changes=changes),
        [ChangeResult(change_id=changes[0].change_id, decision=Decision.APPROVED, outcome=Outcome.APPLIED)],
        Interrupt(value={"mission_id": "m-0123456789abcdef0123"}, id="abc"),
        Send("rescan", {"change_ids": [c.change_id for c in changes]}),
        {"step": 3, "ratio": 0.5, "flag": True, "nothing": None, "versions": {"__start__": "0001.5"}},
    ]
    for value in values:
        assert serde.loads_typed(serde.dumps_typed(value)) == value
    command = serde.loads_typed(serde.dumps_typed(Command(resume={"abc": {"results": []}})))
    assert command.resume == {"abc": {"results": []}}


def test_plan_with_every_catalogue_kind_comes_back_as_the_same_validated_members(
    serde: SecretRefusingSerializer,
) -> None:
    plan = Plan(status=PlanStatus.PROPOSED, changes=tuple(one_of_each_kind()))
    loaded = serde.loads_typed(serde.dumps_typed(plan))
    assert [type(c) for c in loaded.changes] == [type(c) for c in plan.changes]
    assert [c.digest for c in loaded.changes] == [c.digest for c in plan.changes]


@pytest.mark.parametrize("shape", sorted(SECRET_SHAPES))
@pytest.mark.parametrize(
    "place",
    ["top", "nested-dict", "dict-key", "list", "finding-tag", "finding-evidence", "error-message", "interrupt"],
)
def test_secret_shaped_strings_are_refused_wherever_they_hide(
    serde: SecretRefusingSerializer, shape: str, place: str
) -> None:
    secret = SECRET_SHAPES[shape]()
    value = {
        "top": secret,
        "nested-dict": {"a": {"b": [1, {"c": secret}]}},
        "dict-key": {secret: 1},
        "list": ["ok", secret],
        "finding-tag": bucket_finding("b", tags={"owner": secret}),
        "finding-evidence": bucket_finding("b", policy=secret),
        "error-message": RuntimeError(f"call failed with {secret}"),
        "interrupt": Interrupt(value={"note": secret}, id="i-1"),
    }[place]
    with pytest.raises(CheckpointRefused) as refused:
        serde.dumps_typed(value)
    assert refused.value.error_name == "Agent.SecretRefused"
    assert secret not in str(refused.value)
    assert serde.refusals == [refused.value]


def test_a_refusal_never_echoes_a_dict_key(serde: SecretRefusingSerializer) -> None:
    """A key may be the secret, whether or not it looks like one: refusals name entries by position."""
    key = "hunter2-correct-horse"
    with pytest.raises(CheckpointRefused) as refused:
        serde.dumps_typed({"config": {key: {"note": planted_secrets.jwt()}}})
    assert key not in refused.value.where
    assert key not in str(refused.value)
    assert refused.value.where == "${0}{0}{0}"


def test_a_secret_shaped_resource_name_is_an_identifier_in_a_change_and_text_anywhere_else(
    serde: SecretRefusingSerializer,
) -> None:
    name = planted_secrets.access_key_id()
    change = DetachPolicy.propose(
        check_id="iam-admin-policy-attached",
        resource_arn=f"arn:aws:iam::123456789012:policy/{name}",
        account_id="123456789012",
        region="us-east-1",
        risk=Risk.HIGH,
        before=PolicyAttachments(users=(name, "alice")),
        after=PolicyAttachments(),
    )
    plan = Plan(status=PlanStatus.PROPOSED, changes=(change,))
    assert serde.loads_typed(serde.dumps_typed(plan)) == plan
    with pytest.raises(CheckpointRefused) as refused:
        serde.dumps_typed(bucket_finding("b", tags={"owner": name}))
    assert refused.value.where == "$<Finding>.tags{0}"


class Unregistered(BaseModel):
    name: str


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (b"raw bytes", "bytes value"),
        (bytearray(b"x"), "bytes value"),
        (SecretStr("hunter2"), "secret container"),
        ({"password": SecretStr("hunter2")}, "secret container"),
        (Unregistered(name="x"), "unregistered type"),
        (datetime(2026, 1, 1, tzinfo=UTC), "unregistered type"),
        (object(), "unregistered type"),
        ({("tuple", "key"): 1}, "non-string key"),
        (Interrupt(value="x", id="i", response_schema=ChangeResult), "class object"),
    ],
)
def test_bytes_secret_containers_and_unknown_types_are_refused(
    serde: SecretRefusingSerializer, value: object, kind: str
) -> None:
    with pytest.raises(CheckpointRefused, match=kind):
        serde.dumps_typed(value)


def test_a_plain_error_is_stored_as_its_text(serde: SecretRefusingSerializer) -> None:
    stored = serde.loads_typed(serde.dumps_typed(ValueError("bucket listing failed: AccessDenied")))
    assert stored == "ValueError('bucket listing failed: AccessDenied')"


def test_aws_identifiers_and_digests_are_not_mistaken_for_secrets(serde: SecretRefusingSerializer) -> None:
    change = one_of_each_kind()[0]
    value = {
        "arn": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "digest": change.digest,
        "change_id": change.change_id,
        "checkpoint_id": "1f1eb9b5-31d4-66f0-bfff-0a4a0f258795",
        "version": "00000000000000000000000000000003.0.717511412212583",
    }
    assert serde.loads_typed(serde.dumps_typed(value)) == value


def test_loading_is_limited_to_registered_types(serde: SecretRefusingSerializer) -> None:
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    # Written by a permissive serializer (as an attacker with table access could): loads as plain data, not as the
    # class, so nothing of the attacker's choosing is imported or constructed.
    payload = JsonPlusSerializer().dumps_typed(Unregistered(name="x"))
    assert serde.loads_typed(payload) == {"name": "x"}
