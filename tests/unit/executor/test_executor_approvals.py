"""open_approval on its own: the real handoff store (moto DynamoDB and KMS) and the real token verifier, against a
scripted provider that signs whatever grant a test needs (tests.support.provider_double). Every way the approvals of
one change can fail to release exactly it — a batch's Merkle proof, the two-person rule, an expired approval, a
handoff named twice or not at all — is refused with its reason, and every handoff named for the change is gone.

The executor's handler, with approvals the Auth0 emulator really granted, is exercised in
tests/integration/executor/test_executor_batches_and_two_person.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from aegis.approvals.merkle import inclusion_proof, merkle_root
from aegis.catalogue import ChangeBase
from aegis.models import Risk
from aegis_auth.handoff import HandoffStore
from aegis_auth.rar import AEGIS_CHANGE_DETAILS_TYPE, batch_authorization_details, change_authorization_details
from aegis_executor.approval import (
    ApproverApproval,
    ApproverRecord,
    VerifiedApproval,
    approvers_needed,
    open_approval,
)
from aegis_executor.errors import ApprovalExpired, ApprovalInvalid, InvalidSettings
from aegis_executor.settings import ExecutorSettings
from aegis_jwt.errors import ProviderUnavailable
from aegis_jwt.verify import JwksCache, TokenVerifier
from tests.support.approval_plans import variant, variants
from tests.support.changes import ACCOUNT
from tests.support.changes import CASE_REGION as REGION
from tests.support.executor_world import TABLES, batch_request
from tests.support.provider_double import AUDIENCE, CLIENT_ID, ProviderDouble
from tests.support.stack import create_declared_tables

pytestmark = pytest.mark.usefixtures("aws")

EXECUTION_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:aegis-mission:m-approvals"
MISSION_ID = "m-approvals"
ALICE = "auth0|alice"
BOB = "auth0|bob"


class _Clock:
    """Wall-clock time, moved on when a test lets time pass."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class Bench:
    provider: ProviderDouble
    verifier: TokenVerifier
    table: Any
    sealer: HandoffStore
    # The executor's own store (no key id: it opens, never seals), on the bench's clock.
    store: HandoffStore
    clock: _Clock
    opened: list[dict[str, Any]] = field(default_factory=list)

    # --- tokens the provider grants -----------------------------------------------------------------------------
    def token(self, sub: str, details: list[dict[str, Any]], **claims: Any) -> dict[str, Any]:
        return self.provider.token_response(
            sub, digest=None, details_type=AEGIS_CHANGE_DETAILS_TYPE, authorization_details=details, **claims
        )

    def single_token(self, sub: str, change: ChangeBase, **claims: Any) -> dict[str, Any]:
        return self.token(sub, change_authorization_details(change), **claims)

    def batch_token(self, sub: str, changes: list[ChangeBase], **claims: Any) -> dict[str, Any]:
        return self.token(sub, batch_authorization_details(MISSION_ID, batch_request(changes, sub)), **claims)

    # --- what the approval function leaves behind -----------------------------------------------------------------
    def seal(self, token_response: dict[str, Any], changes: list[ChangeBase], sub: str) -> dict[str, Any]:
        """One handoff per change, the approver's answer naming them."""
        handoffs = {
            change.change_id: self.sealer.seal(
                token_response,
                execution_arn=EXECUTION_ARN,
                change_id=change.change_id,
                change_digest=change.digest,
                approver_sub=sub,
                expires_at=int(time.time()) + 600,
            )
            for change in changes
        }
        return {
            "decision": "approved",
            "approver_sub": sub,
            "approved_at": "2026-12-04T09:00:00Z",
            "handoffs": handoffs,
        }

    def exists(self, handoff_id: str) -> bool:
        return "Item" in self.table.get_item(Key={"handoff_id": handoff_id})

    # --- the executor's side --------------------------------------------------------------------------------------
    def open(
        self,
        change: ChangeBase,
        approvals: list[dict[str, Any]],
        proof: dict[str, Any] | None = None,
        two_person_risk: Risk | None = Risk.HIGH,
    ) -> VerifiedApproval:
        return open_approval(
            self.store,
            self.verifier,
            audience=AUDIENCE,
            approval_client_id=CLIENT_ID,
            execution_arn=EXECUTION_ARN,
            change=change,
            proof=proof,
            approvals=[ApproverApproval.model_validate(a) for a in approvals],
            required_approvers=approvers_needed(change, two_person_risk),
        )

    def refused(self, change: ChangeBase, approvals: list[dict[str, Any]], **kwargs: Any) -> str:
        """Open and expect a refusal; every handoff the approvals name for the change is gone."""
        with pytest.raises(ApprovalInvalid) as refused:
            self.open(change, approvals, **kwargs)
        self.assert_gone(change, approvals)
        return str(refused.value)

    def assert_gone(self, change: ChangeBase, approvals: list[dict[str, Any]]) -> None:
        named = [a["handoffs"][change.change_id] for a in approvals if change.change_id in a["handoffs"]]
        assert not any(self.exists(h) for h in named), "every handoff named for the change is gone"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> Iterator[Bench]:
    tables = create_declared_tables(boto3.resource("dynamodb", region_name=REGION), {"Handoff": TABLES["Handoff"]})
    kms = boto3.client("kms", region_name=REGION)
    key_id = kms.create_key(Description="handoff key")["KeyMetadata"]["KeyId"]
    provider = ProviderDouble()
    clock = _Clock()
    http = provider.client()
    verifier = TokenVerifier(provider.issuer, JwksCache(f"{provider.issuer}.well-known/jwks.json", http))
    bench = Bench(
        provider=provider,
        verifier=verifier,
        table=tables["Handoff"],
        sealer=HandoffStore(tables["Handoff"], kms, key_id=key_id),
        store=HandoffStore(tables["Handoff"], kms, clock=clock),
        clock=clock,
    )
    consume = bench.store.consume

    def watched(*args: Any, **kwargs: Any) -> Any:
        opened = consume(*args, **kwargs)
        bench.opened.append(opened.token_response)
        return opened

    monkeypatch.setattr(bench.store, "consume", watched)
    with http:
        yield bench


def kms_changes(n: int, risk: Risk = Risk.LOW) -> list[ChangeBase]:
    return variants("enable-kms-key-rotation", n, risk=risk)


# --- one change, one approver ---------------------------------------------------------------------------------------
def test_a_single_approval_opens_and_names_its_approver(bench: Bench) -> None:
    (change,) = kms_changes(1)
    approval = bench.seal(bench.single_token(ALICE, change), [change], ALICE)

    verified = bench.open(change, [approval])

    assert verified.approvers == (
        ApproverRecord(ALICE, approval["handoffs"][change.change_id], approval["approved_at"]),
    )
    assert verified.batch_root is None
    assert verified.access_token.get_secret_value() in bench.provider.issued
    assert verified.access_token.get_secret_value() not in repr(verified)
    bench.assert_gone(change, [approval])
    assert bench.opened == [{}], "the token response is cleared once verified"


def test_a_proof_with_a_single_change_approval_is_refused(bench: Bench) -> None:
    changes = kms_changes(2)
    approval = bench.seal(bench.single_token(ALICE, changes[0]), [changes[0]], ALICE)
    proof = inclusion_proof([c.digest for c in changes], changes[0].digest).as_json()

    assert "Merkle proof came with a single-change approval" in bench.refused(changes[0], [approval], proof=proof)


# --- batches --------------------------------------------------------------------------------------------------------
def _batch(bench: Bench, changes: list[ChangeBase], sub: str = ALICE) -> dict[str, Any]:
    return bench.seal(bench.batch_token(sub, changes), changes, sub)


def _proof(changes: list[ChangeBase], change: ChangeBase) -> dict[str, Any]:
    return inclusion_proof([c.digest for c in changes], change.digest).as_json()


@pytest.mark.parametrize("size", [2, 3, 5, 8])
def test_every_change_of_a_batch_opens_with_its_own_proof_under_the_signed_root(bench: Bench, size: int) -> None:
    changes = kms_changes(size)
    approval = _batch(bench, changes)
    root = merkle_root(c.digest for c in changes)

    for change in changes:
        verified = bench.open(change, [approval], proof=_proof(changes, change))
        assert verified.batch_root == root
        assert verified.approvers[0].handoff_id == approval["handoffs"][change.change_id]

    assert not any(bench.exists(h) for h in approval["handoffs"].values())
    assert bench.opened == [{}] * size


def test_a_batch_change_without_its_proof_is_refused(bench: Bench) -> None:
    changes = kms_changes(3)
    approval = _batch(bench, changes)
    assert "carries no Merkle proof" in bench.refused(changes[1], [approval], proof=None)


def test_another_changes_proof_is_refused(bench: Bench) -> None:
    changes = kms_changes(4)
    approval = _batch(bench, changes)
    reason = bench.refused(changes[0], [approval], proof=_proof(changes, changes[1]))
    assert "MerkleError" in reason
    assert "does not lead from the change digest to the root" in reason


def test_a_reordered_proof_path_is_refused(bench: Bench) -> None:
    changes = kms_changes(5)
    approval = _batch(bench, changes)
    proof = _proof(changes, changes[2])
    assert len(proof["path"]) >= 2
    reordered = {**proof, "path": list(reversed(proof["path"]))}
    assert "does not lead from the change digest to the root" in bench.refused(changes[2], [approval], proof=reordered)


def test_a_proof_naming_another_tree_size_is_refused(bench: Bench) -> None:
    # The first leaf of 6: a proof claiming 5, 7 or 8 leaves walks the very same path and hashes to the same root
    # (RFC 9162 proofs do not bind the size alone); the count the approver signed refuses it all the same.
    changes = kms_changes(6)
    first = min(changes, key=lambda change: change.digest)
    proof = _proof(changes, first)
    assert (proof["leaf_index"], proof["tree_size"]) == (0, 6)
    for size in (5, 7, 8):
        reason = bench.refused(first, [_batch(bench, changes)], proof={**proof, "tree_size": size})
        assert "tree_size is not the batch's size" in reason
    assert bench.open(first, [_batch(bench, changes)], proof=proof).batch_root is not None


def test_a_malformed_proof_is_refused_after_its_handoff_is_consumed(bench: Bench) -> None:
    changes = kms_changes(3)
    approval = _batch(bench, changes)
    proof = {**_proof(changes, changes[0]), "path": ["not hex"]}
    assert "MerkleError" in bench.refused(changes[0], [approval], proof=proof)


def test_a_change_edited_after_its_batch_was_approved_is_refused_even_with_a_handoff_sealed_for_it(
    bench: Bench,
) -> None:
    changes = kms_changes(3)
    token = bench.batch_token(ALICE, changes)
    # The same change id (identity unchanged), another digest: its risk lowered after approval.
    edited = type(changes[1]).model_validate({**changes[1].model_dump(), "risk": Risk.MEDIUM})
    assert edited.change_id == changes[1].change_id
    assert edited.digest != changes[1].digest
    # Whoever edited it could also seal a handoff under the edited digest: the signed root still refuses it.
    approval = bench.seal(token, [edited], ALICE)

    reason = bench.refused(edited, [approval], proof=_proof(changes, changes[1]))

    assert "not proven part of the batch" in reason


def test_a_change_outside_the_batch_is_refused_whatever_proof_it_brings(bench: Bench) -> None:
    changes = kms_changes(4)
    outsider = variant("enable-kms-key-rotation", 99)
    token = bench.batch_token(ALICE, changes)
    for proof in (_proof(changes, changes[0]), _proof([*changes[1:], outsider], outsider)):
        approval = bench.seal(token, [outsider], ALICE)
        assert "not proven part of the batch" in bench.refused(outsider, [approval], proof=proof)


def test_a_token_granting_two_batches_is_refused(bench: Bench) -> None:
    changes = kms_changes(2)
    details = batch_authorization_details(MISSION_ID, batch_request(changes, ALICE))
    approval = bench.seal(bench.token(ALICE, details + details), changes, ALICE)
    assert "exactly one is allowed" in bench.refused(changes[0], [approval], proof=_proof(changes, changes[0]))


def test_a_token_granting_a_change_and_a_batch_is_refused(bench: Bench) -> None:
    changes = kms_changes(2)
    details = change_authorization_details(changes[0]) + batch_authorization_details(
        MISSION_ID, batch_request(changes, ALICE)
    )
    approval = bench.seal(bench.token(ALICE, details), changes, ALICE)
    assert "both an aegis-change and an aegis-batch" in bench.refused(changes[0], [approval])


# --- the two-person rule ----------------------------------------------------------------------------------------------
def test_two_distinct_approvers_open_a_high_risk_change_with_the_first_ones_token(bench: Bench) -> None:
    (change,) = kms_changes(1, Risk.HIGH)
    first_token = bench.single_token(ALICE, change)
    second_token = bench.single_token(BOB, change)
    approvals = [bench.seal(first_token, [change], ALICE), bench.seal(second_token, [change], BOB)]

    verified = bench.open(change, approvals)

    assert [a.approver_sub for a in verified.approvers] == [ALICE, BOB]
    assert verified.access_token.get_secret_value() == first_token["access_token"]
    bench.assert_gone(change, approvals)
    assert bench.opened == [{}, {}], "both token responses are cleared"


def test_one_approval_of_a_high_risk_change_is_refused(bench: Bench) -> None:
    (change,) = kms_changes(1, Risk.HIGH)
    approval = bench.seal(bench.single_token(ALICE, change), [change], ALICE)
    assert "needs two distinct approvers; 1 approval(s) given" in bench.refused(change, [approval])


def test_the_same_approver_twice_is_refused_even_below_the_threshold(bench: Bench) -> None:
    for n, risk in enumerate((Risk.HIGH, Risk.LOW)):
        change = variant("enable-kms-key-rotation", n, risk=risk)
        approvals = [bench.seal(bench.single_token(ALICE, change), [change], ALICE) for _ in range(2)]
        assert "the same approver is named twice" in bench.refused(change, approvals)


def test_two_approvals_naming_one_handoff_are_refused_and_it_is_consumed_once(bench: Bench) -> None:
    (change,) = kms_changes(1, Risk.HIGH)
    approval = bench.seal(bench.single_token(ALICE, change), [change], ALICE)
    twin = {**approval, "approver_sub": BOB}

    reason = bench.refused(change, [approval, twin])

    assert "two approvals name one handoff" in reason
    assert "HandoffAlreadyConsumed" not in reason, "opened once, not twice"
    assert len(bench.opened) == 1


def test_an_approval_naming_no_handoff_still_costs_the_others_theirs(bench: Bench) -> None:
    changes = kms_changes(2, Risk.HIGH)
    alice = bench.seal(bench.single_token(ALICE, changes[0]), [changes[0]], ALICE)
    bob = bench.seal(bench.single_token(BOB, changes[1]), [changes[1]], BOB)

    assert "1 approval(s) name no handoff" in bench.refused(changes[0], [alice, bob])
    assert bench.exists(bob["handoffs"][changes[1].change_id]), "another change's handoff is that change's"


def test_a_token_of_another_approver_than_its_approval_is_refused(bench: Bench) -> None:
    (change,) = kms_changes(1)
    approval = bench.seal(bench.single_token(BOB, change), [change], ALICE)
    assert "the approver of the token, the handoff and the request differ" in bench.refused(change, [approval])


def test_approvals_of_one_change_from_different_requests_are_refused(bench: Bench) -> None:
    changes = kms_changes(2, Risk.HIGH)
    single = bench.seal(bench.single_token(ALICE, changes[0]), [changes[0]], ALICE)
    batched = _batch(bench, changes, BOB)
    reason = bench.refused(changes[0], [single, batched], proof=_proof(changes, changes[0]))
    assert "come from different requests" in reason


def test_one_forged_approval_refuses_the_change_and_both_handoffs_go(bench: Bench) -> None:
    (change,) = kms_changes(1, Risk.HIGH)
    forged = bench.single_token(BOB, change, azp="another-client")
    approvals = [bench.seal(bench.single_token(ALICE, change), [change], ALICE), bench.seal(forged, [change], BOB)]
    assert "issued to another client" in bench.refused(change, approvals)
    assert bench.opened == [{}, {}]


@pytest.mark.parametrize(
    ("threshold", "needed"),
    [
        (None, {Risk.LOW: 1, Risk.MEDIUM: 1, Risk.HIGH: 1}),
        (Risk.LOW, {Risk.LOW: 2, Risk.MEDIUM: 2, Risk.HIGH: 2}),
        (Risk.MEDIUM, {Risk.LOW: 1, Risk.MEDIUM: 2, Risk.HIGH: 2}),
        (Risk.HIGH, {Risk.LOW: 1, Risk.MEDIUM: 1, Risk.HIGH: 2}),
    ],
)
def test_approvers_needed_follows_the_threshold(threshold: Risk | None, needed: dict[Risk, int]) -> None:
    for risk, count in needed.items():
        assert approvers_needed(variant("enable-kms-key-rotation", 0, risk=risk), threshold) == count


def test_without_a_threshold_one_approval_opens_a_high_risk_change(bench: Bench) -> None:
    (change,) = kms_changes(1, Risk.HIGH)
    approval = bench.seal(bench.single_token(ALICE, change), [change], ALICE)
    assert bench.open(change, [approval], two_person_risk=None).approvers[0].approver_sub == ALICE


# --- expiry ---------------------------------------------------------------------------------------------------------
def test_an_expired_batch_approval_is_named_expired_and_consumed(bench: Bench) -> None:
    changes = kms_changes(3)
    approval = _batch(bench, changes)
    assert bench.open(changes[0], [approval], proof=_proof(changes, changes[0])).batch_root
    bench.clock.offset = 601.0  # the token's lifetime has passed before the next change's turn

    with pytest.raises(ApprovalExpired, match="expired before this change ran") as expired:
        bench.open(changes[1], [approval], proof=_proof(changes, changes[1]))

    assert type(expired.value).__name__ == "Executor.ApprovalExpired"
    bench.assert_gone(changes[1], [approval])
    assert bench.opened == [{}], "an expired handoff is never opened"


def test_an_expired_approval_beside_a_forged_one_is_invalid_not_expired(bench: Bench) -> None:
    (change,) = kms_changes(1, Risk.HIGH)
    alice = bench.seal(bench.single_token(ALICE, change), [change], ALICE)
    bench.table.update_item(
        Key={"handoff_id": alice["handoffs"][change.change_id]},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": int(time.time()) - 1},
    )
    bob = bench.seal(bench.single_token(BOB, change, aud=["https://elsewhere.example/"]), [change], BOB)
    assert "audience" in bench.refused(change, [alice, bob])


# --- failures of the store itself -------------------------------------------------------------------------------------
def _throttle_deletes(bench: Bench, after: int) -> None:
    calls = {"n": 0}

    def maybe_throttle(**_: Any) -> None:
        calls["n"] += 1
        if calls["n"] > after:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "DeleteItem")

    bench.table.meta.client.meta.events.register("before-call.dynamodb.DeleteItem", maybe_throttle)


def test_a_store_failure_before_anything_is_consumed_is_raised_for_a_retry(bench: Bench) -> None:
    (change,) = kms_changes(1, Risk.HIGH)
    approvals = [bench.seal(bench.single_token(who, change), [change], who) for who in (ALICE, BOB)]
    _throttle_deletes(bench, after=0)

    with pytest.raises(ClientError, match="ThrottlingException"):
        bench.open(change, approvals)

    assert all(bench.exists(a["handoffs"][change.change_id]) for a in approvals), "a retry finds them all"


def test_a_store_failure_after_one_handoff_is_consumed_refuses_the_approval(bench: Bench) -> None:
    (change,) = kms_changes(1, Risk.HIGH)
    approvals = [bench.seal(bench.single_token(who, change), [change], who) for who in (ALICE, BOB)]
    _throttle_deletes(bench, after=1)

    with pytest.raises(ApprovalInvalid, match="could not be consumed \\(ClientError\\)"):
        bench.open(change, approvals)

    assert not bench.exists(approvals[0]["handoffs"][change.change_id])
    assert bench.opened == [{}]


# --- the setting ----------------------------------------------------------------------------------------------------
BASE_ENV = {
    "CONTROL_TABLE": "Control",
    "AUDIT_TABLE": "Audit",
    "HANDOFF_TABLE": "Handoff",
    "IDEMPOTENCY_TABLE": "Idempotency",
    "AUTH0_ISSUER": "https://tenant.example/",
    "AUTH0_CLIENT_ID": "executor",
    "AUTH0_CLIENT_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:s",
    "AUTH0_AUDIENCE": "https://aegis.example/api",
    "APPROVAL_CLIENT_ID": "approval",
    "TOKEN_VAULT_CONNECTION": "aws",
    "REMEDIATION_ROLE_ARN": "arn:aws:iam::123456789012:role/RemediationRole",
}


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, Risk.HIGH), ("high", Risk.HIGH), ("medium", Risk.MEDIUM), ("low", Risk.LOW), ("none", None)],
)
def test_the_two_person_threshold_is_read_from_the_environment(value: str | None, expected: Risk | None) -> None:
    env = BASE_ENV if value is None else {**BASE_ENV, "APPROVAL_TWO_PERSON_RISK": value}
    assert ExecutorSettings.from_env(env).two_person_risk == expected


def test_an_unknown_two_person_threshold_is_named_without_its_value() -> None:
    with pytest.raises(InvalidSettings) as invalid:
        ExecutorSettings.from_env({**BASE_ENV, "APPROVAL_TWO_PERSON_RISK": "critical-s3cr3t"})
    assert "APPROVAL_TWO_PERSON_RISK" in str(invalid.value)
    assert "s3cr3t" not in str(invalid.value)


def test_an_error_escaping_verification_leaves_no_token_response_behind(bench: Bench) -> None:
    (change,) = kms_changes(1, Risk.HIGH)
    approvals = [bench.seal(bench.single_token(who, change), [change], who) for who in (ALICE, BOB)]

    class Unavailable:
        def verify(self, *_: Any, **__: Any) -> Any:
            raise ProviderUnavailable("the provider could not be reached")

    bench.verifier = Unavailable()

    # The executor reports this as Executor.TokenExchangeFailed (the provider is not usable).
    with pytest.raises(ProviderUnavailable):
        bench.open(change, approvals)

    # Both handoffs were consumed; the one being verified and the one still waiting are both let go.
    assert bench.opened == [{}, {}]
    bench.assert_gone(change, approvals)
