"""The executor end to end: every kind applied, verified and undone through the handler; drift; halt; idempotency and
crash recovery; what leaves the executor; and that nothing it was handed or issued is kept anywhere."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from botocore.exceptions import ClientError

from aegis.catalogue import Undo
from aegis.catalogue.kinds.revoke_security_group_rules import RevokeSecurityGroupRules, SecurityGroupRules
from aegis_executor import execute as execute_module
from aegis_executor.credentials import session_policy
from aegis_executor.errors import InvalidRequest, NoConnectedAccount, Throttled, UndoDisabled
from aegis_executor.remediations import remediation_for
from aegis_local.auth0 import (
    DEFAULT_CONNECTION,
    DEFAULT_PROVIDER_AUDIENCE,
    DEFAULT_SECOND_USER_SUB,
    DEFAULT_UNDO_PROVIDER_AUDIENCE,
)
from tests.support.changes import CASES
from tests.support.executor_world import ROLE_ARN, SECOND_APPROVER_SUB, UNDO_ROLE_ARN, World, handoff_of

RESULT_KEYS = {"change_id", "outcome", "reason", "verified_after"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_kind_is_applied_verified_and_undone_with_a_one_change_session(world: World, name: str) -> None:
    case = CASES[name]()
    change = case.change

    result = world.invoke(world.payload(change, world.approve(change)))

    assert set(result) == RESULT_KEYS
    assert result["change_id"] == change.change_id
    assert result["outcome"] == "applied", result["reason"]
    assert result["verified_after"] is not None
    assert case.facts() == case.facts_after
    applied_calls = list(world.remediation_calls)
    assert set(applied_calls) <= set(change.APPLY_ACTIONS + change.READ_ACTIONS)
    assert set(world.mutating_calls()) & set(change.APPLY_ACTIONS)

    (sts_call,) = world.sts_calls
    assert sts_call["RoleArn"] == ROLE_ARN
    assert sts_call["RoleSessionName"] == f"aegis-{change.change_id}"
    assert sts_call["DurationSeconds"] == 900
    assert json.loads(sts_call["Policy"]) == json.loads(session_policy(change))
    assert sts_call["token_claims"]["aud"] == DEFAULT_PROVIDER_AUDIENCE
    assert sts_call["token_claims"]["iss"] == world.emulator.provider_issuer(DEFAULT_CONNECTION)

    applied = world.audit("executor.applied")
    assert len(applied) == 1
    assert applied[0]["details"]["approver_sub"] == "auth0|aegis-approver"
    assert applied[0]["details"]["digest"] == change.digest
    assert applied[0]["details"]["before_state"] is not None
    (final,) = world.audit("executor.result")
    assert final["outcome"] == "applied"
    timings = final["details"]["timings_ms"]
    assert timings["approval_consumed"] <= timings["session_obtained"] <= timings["credential_dropped"]

    undo = Undo.of(change)
    world.remediation_calls.clear()
    undone = world.invoke(world.payload(undo, world.approve(undo)))

    assert undone["outcome"] == "applied", undone["reason"]
    assert undone["change_id"] == undo.change_id
    assert case.facts() == case.facts_before
    assert set(world.remediation_calls) <= set(change.UNDO_ACTIONS + change.READ_ACTIONS)
    assert world.sts_calls[1]["RoleSessionName"] == f"aegis-{undo.change_id}"
    assert json.loads(world.sts_calls[1]["Policy"]) == json.loads(session_policy(undo))
    # Undo goes through its own connection and role: a forward token cannot assume UndoRole (template tests).
    assert world.sts_calls[1]["RoleArn"] == UNDO_ROLE_ARN
    assert world.sts_calls[1]["token_claims"]["aud"] == DEFAULT_UNDO_PROVIDER_AUDIENCE
    assert world.sts_calls[1]["token_claims"]["iss"] == world.emulator.provider_issuer(DEFAULT_CONNECTION)
    # An undo widens access again (high risk): two distinct approvers, the first one's token exchanged.
    assert world.sts_calls[1]["token_claims"]["sub"] == "auth0|aegis-approver"
    undo_applied = world.audit("executor.applied")[1]["details"]
    assert [a["approver_sub"] for a in undo_applied["approvals"]] == ["auth0|aegis-approver", SECOND_APPROVER_SUB]
    assert "batch_root" not in undo_applied


@pytest.mark.parametrize("name", ["revoke-security-group-rules", "detach-policy", "enable-kms-key-rotation"])
def test_a_resource_changed_after_approval_is_reported_as_drift_and_left_alone(world: World, name: str) -> None:
    case = CASES[name]()
    approval = world.approve(case.change)
    case.drift()
    drifted = case.facts()

    result = world.invoke(world.payload(case.change, approval))

    assert result["outcome"] == "drift"
    assert "nothing was applied" in result["reason"]
    assert world.mutating_calls() == []
    assert case.facts() == drifted
    assert world.audit("executor.drift")


def test_undo_of_a_change_that_was_never_applied_is_drift(world: World) -> None:
    case = CASES["enable-ebs-default-encryption"]()
    undo = Undo.of(case.change)
    result = world.invoke(world.payload(undo, world.approve(undo)))
    assert result["outcome"] == "drift"
    assert world.mutating_calls() == []
    assert case.facts() == case.facts_before


def test_a_halt_between_approval_and_apply_applies_nothing_and_discards_the_approval_unopened(world: World) -> None:
    case = CASES["enable-kms-key-rotation"]()
    approval = world.approve(case.change)
    world.halt()

    result = world.invoke(world.payload(case.change, approval))

    assert result == {
        "change_id": case.change.change_id,
        "outcome": "halted",
        "reason": "kill switch engaged before the approval was used",
        "verified_after": None,
    }
    assert case.facts() == case.facts_before
    assert world.sts_calls == []
    # Never opened (no verification, no exchange, no session), and gone: a sealed approval does not outlive a halt.
    assert world.audit("executor.approval_verified") == []
    assert not world.handoff_exists(handoff_of(approval, case.change))
    assert [item["outcome"] for item in world.audit("executor.approval_discarded")] == ["discarded"]


def test_a_halt_during_apply_stops_the_next_mutating_call(world: World) -> None:
    case = CASES["revoke-security-group-rules"]()
    before: SecurityGroupRules = case.change.before  # type: ignore[attr-defined]
    https = next(r for r in before.rules if r.from_port == 443)
    # Revokes ingress rules and the egress rule: two mutating calls, the halt lands between them.
    change = RevokeSecurityGroupRules.propose(
        **case.change.model_dump(exclude={"kind", "change_id", "after", "before"}),
        before=before,
        after=SecurityGroupRules(group_id=before.group_id, rules=(https,)),
    )
    approval = world.approve(change)
    original = execute_module.assume_remediation_role

    def halt_after_first_mutation(*args: Any, **kwargs: Any) -> Any:
        session, facts = original(*args, **kwargs)
        session.events.register("after-call.ec2.RevokeSecurityGroupIngress", lambda **_: world.halt())
        return session, facts

    execute_module.assume_remediation_role = halt_after_first_mutation  # type: ignore[assignment]
    try:
        result = world.invoke(world.payload(change, approval))
    finally:
        execute_module.assume_remediation_role = original

    assert result["outcome"] == "halted"
    assert "RevokeSecurityGroupEgress" in result["reason"]
    assert "1 mutating calls had been sent" in result["reason"]
    facts = case.facts()
    assert (True, "-1", -1, "0.0.0.0/0") in facts, "the egress revoke was never sent"
    assert (False, "tcp", 22, "0.0.0.0/0") not in facts


def test_a_duplicate_invocation_returns_the_first_result_without_running_again(world: World) -> None:
    case = CASES["enable-ebs-default-encryption"]()
    payload = world.payload(case.change, world.approve(case.change))
    first = world.invoke(payload)
    started = len(world.audit("executor.started"))

    second = world.invoke(payload)

    assert second == first
    assert len(world.audit("executor.started")) == started
    assert len(world.sts_calls) == 1


def test_a_crash_after_apply_is_answered_with_the_first_result_on_retry(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = CASES["revoke-security-group-rules"]()
    payload = world.payload(case.change, world.approve(case.change))
    original_result = execute_module._Run.result
    results: list[dict[str, Any]] = []

    def crash_on_the_way_out(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        results.append(original_result(self, *args, **kwargs))
        raise RuntimeError("injected crash after apply, before the result is returned")

    monkeypatch.setattr(execute_module._Run, "result", crash_on_the_way_out)
    with pytest.raises(RuntimeError, match="injected crash"):
        world.invoke(payload)
    monkeypatch.setattr(execute_module._Run, "result", original_result)
    assert case.facts() == case.facts_after
    mutations = list(world.mutating_calls())

    retried = world.invoke(payload)

    assert retried == results[0]
    assert retried["outcome"] == "applied"
    assert world.mutating_calls() == mutations, "the retry applied nothing"
    assert len(world.sts_calls) == 1, "the retry obtained no credential"
    assert world.audit("executor.replayed")


class ProcessDied(BaseException):
    """Stands for the runtime killing the invocation (timeout, out of memory): no Python handler runs."""


def test_a_process_death_after_apply_is_answered_with_the_first_result_once_the_lock_expires(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = CASES["enable-kms-key-rotation"]()
    payload = world.payload(case.change, world.approve(case.change))

    def die(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise ProcessDied

    # Dies once the change is applied and verified, before the invocation reports its result.
    report = execute_module._Run.result
    monkeypatch.setattr(execute_module._Run, "result", die)
    with pytest.raises(ProcessDied):
        world.invoke(payload)
    monkeypatch.setattr(execute_module._Run, "result", report)
    assert case.facts() is True

    with pytest.raises(IdempotencyAlreadyInProgressError):
        world.invoke(payload)  # the dead invocation's lock holds until its Lambda time would have run out
    _let_in_progress_locks_expire(world)
    retried = world.invoke(payload)

    assert retried["outcome"] == "applied"
    assert retried["verified_after"] == {"rotation_enabled": True}
    assert len(world.sts_calls) == 1


def _let_in_progress_locks_expire(world: World) -> None:
    table = world.tables["idempotency"]
    for item in table.scan()["Items"]:
        if item.get("status") == "INPROGRESS":
            table.update_item(
                Key={"id": item["id"]},
                UpdateExpression="SET in_progress_expiration = :past",
                ExpressionAttributeValues={":past": int(time.time() * 1000) - 1},
            )


def test_a_duplicate_with_another_approval_for_the_same_change_is_refused(world: World) -> None:
    case = CASES["enable-ebs-default-encryption"]()
    world.invoke(world.payload(case.change, world.approve(case.change)))
    with pytest.raises(IdempotencyValidationError):
        world.invoke(world.payload(case.change, world.approve(case.change)))


def test_throttling_before_the_approval_is_used_is_retryable_and_the_retry_succeeds(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = CASES["enable-kms-key-rotation"]()
    approval = world.approve(case.change)
    payload = world.payload(case.change, approval)
    control_client = world.app.executor().control_table.meta.client

    def throttle(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "GetItem")

    control_client.meta.events.register("before-call.dynamodb.GetItem", throttle, unique_id="throttle")
    with pytest.raises(Throttled) as throttled:
        world.invoke(payload)
    assert type(throttled.value).__name__ == "Executor.Throttled"
    assert world.handoff_exists(handoff_of(approval, case.change))
    control_client.meta.events.unregister("before-call.dynamodb.GetItem", unique_id="throttle")

    assert world.invoke(payload)["outcome"] == "applied"


def test_throttling_after_the_approval_is_used_is_a_failed_outcome_not_a_retry(world: World) -> None:
    case = CASES["enable-kms-key-rotation"]()
    payload = world.payload(case.change, world.approve(case.change))
    original = execute_module.assume_remediation_role

    def throttled_session(*args: Any, **kwargs: Any) -> Any:
        session, facts = original(*args, **kwargs)

        def throttle(**_: Any) -> None:
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "EnableKeyRotation"
            )

        session.events.register("before-call.kms.EnableKeyRotation", throttle)
        return session, facts

    execute_module.assume_remediation_role = throttled_session  # type: ignore[assignment]
    try:
        result = world.invoke(payload)
    finally:
        execute_module.assume_remediation_role = original
    assert result["outcome"] == "failed"
    assert "throttled after the approval was used" in result["reason"]
    assert case.facts() is False


def test_an_approver_without_a_connected_account_gets_a_named_error_and_nothing_applied(world: World) -> None:
    case = CASES["enable-kms-key-rotation"]()
    token_response = world.ciba_token_response(case.change, sub=DEFAULT_SECOND_USER_SUB)
    approval = world.seal(token_response, case.change, sub=DEFAULT_SECOND_USER_SUB)

    with pytest.raises(NoConnectedAccount) as refused:
        world.invoke(world.payload(case.change, approval))

    assert type(refused.value).__name__ == "Executor.NoConnectedAccount"
    assert case.facts() is False
    assert world.sts_calls == []


def test_a_malformed_request_is_a_named_error_before_anything_is_touched(world: World) -> None:
    case = CASES["enable-ebs-default-encryption"]()
    approval = world.approve(case.change)
    payload = world.payload(case.change, approval)
    tampered = {**payload, "change": {**payload["change"], "after": {"enabled": False}}}
    (entry,) = payload["approval"]["approvals"]
    for bad, where in (
        ({}, "execution_arn"),
        ({**payload, "approval": {**payload["approval"], "decision": "denied"}}, "approval.decision"),
        ({**payload, "execution_arn": "not-an-arn"}, "execution_arn"),
        (tampered, "default encryption"),
        # The approvals are strictly typed: no entry, three, an unknown field, a coerced type, no handoff.
        ({**payload, "approval": {"decision": "approved", "approvals": []}}, "approval.approvals"),
        ({**payload, "approval": {"decision": "approved", "approvals": [entry] * 3}}, "approval.approvals"),
        ({**payload, "approval": {"decision": "approved", "approvals": [{**entry, "role": "admin"}]}}, "role"),
        ({**payload, "approval": {"decision": "approved", "approvals": [{**entry, "approved_at": 1}]}}, "approved_at"),
        ({**payload, "approval": {"decision": "approved", "approvals": [{**entry, "handoffs": {}}]}}, "handoffs"),
        # The old shape, one handoff id per approval, is not an approval any more.
        ({**payload, "approval": {**entry, "handoff_id": "h"}}, "approval.approvals"),
    ):
        with pytest.raises(InvalidRequest, match=where) as refused:
            world.invoke(bad)
        assert type(refused.value).__name__ == "Executor.InvalidRequest"
    assert world.handoff_exists(handoff_of(approval, case.change))
    assert world.audit() == []


def test_nothing_the_executor_was_handed_or_issued_is_stored_logged_or_returned(
    world: World, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level("INFO")
    results = []
    for name in ("revoke-security-group-rules", "detach-policy", "create-vpc-flow-logs"):
        change = CASES[name]().change
        results.append(world.invoke(world.payload(change, world.approve(change))))
        undo = Undo.of(change)
        results.append(world.invoke(world.payload(undo, world.approve(undo))))
    refused = CASES["enable-kms-key-rotation"]().change
    approval = world.seal(
        world.ciba_token_response(refused, DEFAULT_SECOND_USER_SUB), refused, sub=DEFAULT_SECOND_USER_SUB
    )
    with pytest.raises(NoConnectedAccount):
        world.invoke(world.payload(refused, approval))
    assert [r["outcome"] for r in results] == ["applied"] * 6

    secrets = world.emulator.issued_secrets() | world.issued_aws_secrets
    assert len(world.issued_aws_secrets) == 18
    places = {
        "tables": world.every_stored_item(),
        "powertools logs": world.log_stream.getvalue(),
        "other logs": caplog.text,
        "stdout/stderr": "".join(capsys.readouterr()),
        "results": json.dumps(results),
    }
    assert "change executed" in places["powertools logs"] + places["other logs"], "the check has logs to look at"
    for where, text in places.items():
        leaked = [secret[:12] for secret in secrets if secret in text]
        assert leaked == [], f"issued secrets found in {where}"


def test_a_change_that_does_not_take_effect_is_a_failed_outcome_with_the_state_read_back(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = CASES["enable-kms-key-rotation"]()
    fix = remediation_for(case.change)
    monkeypatch.setattr(fix, "apply", lambda session, change: None)  # AWS accepted, nothing changed
    world.app.executor().verify_delays = (0.0, 0.0)

    result = world.invoke(world.payload(case.change, world.approve(case.change)))

    assert result["outcome"] == "failed"
    assert result["reason"] == "the resource did not reach the approved after-state"
    assert result["verified_after"] == {"rotation_enabled": False}
    assert world.audit("executor.applied") == []


def test_sts_refusing_the_provider_token_is_a_failed_outcome_and_nothing_is_applied(world: World) -> None:
    case = CASES["enable-kms-key-rotation"]()
    sts = world.app.executor().sts

    def refuse(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "InvalidIdentityToken", "Message": "Couldn't retrieve verification key"}},
            "AssumeRoleWithWebIdentity",
        )

    sts.meta.events.register("before-call.sts.AssumeRoleWithWebIdentity", refuse)
    token_response = world.ciba_token_response(case.change)
    result = world.invoke(world.payload(case.change, world.seal(token_response, case.change)))

    assert result["outcome"] == "failed"
    assert result["reason"] == "AssumeRoleWithWebIdentity failed: InvalidIdentityToken"
    assert case.facts() is False


def test_an_undo_where_the_deployment_disables_undo_is_refused_before_its_approval_is_used(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = CASES["revoke-security-group-rules"]()
    undo = Undo.of(case.change)
    monkeypatch.setattr(world.app.executor(), "undo_role_arn", "")
    monkeypatch.setattr(world.app.executor(), "undo_connection", "")
    approval = world.approve(undo)

    with pytest.raises(UndoDisabled, match="undo is disabled") as refused:
        world.invoke(world.payload(undo, approval))

    assert type(refused.value).__name__ == "Executor.UndoDisabled"
    assert world.sts_calls == []
    assert world.remediation_calls == []
    # Never opened, and discarded: an approval that this deployment can never use must not stay behind.
    assert world.audit("executor.approval_verified") == []
    # An undo is high risk: both approvers' handoffs are discarded.
    assert len(approval) == 2
    assert not any(world.handoff_exists(handoff_of([entry], undo)) for entry in approval)
    assert [item["outcome"] for item in world.audit("executor.approval_discarded")] == ["discarded", "discarded"]
    assert [item["outcome"] for item in world.audit("executor.undo_disabled")] == ["refused"]
