from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from aegis_killswitch import aws_steps
from tests.support.iam_policy import Request, decision
from tests.support.killswitch_world import REMEDIATION_ROLE, SCAN_RULE, SCHEDULE_RULE, AwsWorld, wait_until

RULES = (SCHEDULE_RULE, SCAN_RULE)


def test_disabling_and_enabling_both_rules(aws_world: AwsWorld) -> None:
    outcome = aws_steps.set_rules_enabled(aws_world.events, RULES, enabled=False)
    assert outcome.ok, outcome.reason
    assert aws_world.rule_states() == {SCHEDULE_RULE: "DISABLED", SCAN_RULE: "DISABLED"}
    # Twice is harmless.
    assert aws_steps.set_rules_enabled(aws_world.events, RULES, enabled=False).ok
    outcome = aws_steps.set_rules_enabled(aws_world.events, RULES, enabled=True)
    assert outcome.ok, outcome.reason
    assert aws_world.rule_states() == {SCHEDULE_RULE: "ENABLED", SCAN_RULE: "ENABLED"}


def test_a_missing_rule_does_not_keep_the_other_enabled(aws_world: AwsWorld) -> None:
    outcome = aws_steps.set_rules_enabled(aws_world.events, ("no-such-rule", SCAN_RULE), enabled=False)
    assert not outcome.ok
    assert "no-such-rule" in outcome.reason
    assert outcome.details["disabled"] == [SCAN_RULE]
    assert aws_world.events.describe_rule(Name=SCAN_RULE)["State"] == "DISABLED"


def test_waiting_approvals_are_found_in_the_execution_history(aws_world: AwsWorld) -> None:
    arn = aws_world.start_mission("m-history", changes=3)
    tokens = aws_steps.waiting_task_tokens(aws_world.sfn, arn)
    assert sorted(tokens) == sorted(aws_world.scheduled_tokens(arn))
    assert len(tokens) == 3


def test_halting_missions_fails_every_waiting_approval_and_ends_every_execution(aws_world: AwsWorld) -> None:
    first = aws_world.start_mission("m-one", changes=2)
    second = aws_world.start_mission("m-two", changes=1)
    told: dict[str, dict[str, object]] = {}

    outcome = aws_steps.halt_missions(
        aws_world.sfn, aws_world.state_machine_arn, cause="test halt", on_mission_halted=told.__setitem__
    )

    assert outcome.ok, outcome.reason
    assert outcome.details["running_executions"] == 2
    assert outcome.details["approvals_failed"] == 3
    assert sorted(outcome.details["stopped"]) == sorted([first, second])
    wait_until(
        lambda: aws_world.status(first) != "RUNNING" and aws_world.status(second) != "RUNNING", what="executions end"
    )
    assert set(told) == {"m-one", "m-two"}
    assert told["m-one"]["approvals_failed"] == 2
    # Each change was failed with Approval.Halted: the state machine's Catch records it as a halted decision.
    history = aws_world.sfn.get_execution_history(executionArn=second)["events"]
    # The approval tasks' failures only: a task the stop interrupts (moto reports ResumeAgent's as States.Runtime
    # when the stop lands while it starts) is not what this asserts.
    failures = [
        e["taskFailedEventDetails"]["error"]
        for e in history
        if e["type"] == "TaskFailed" and e["taskFailedEventDetails"].get("resource") == "invoke.waitForTaskToken"
    ]
    assert failures == ["Approval.Halted"]


def test_halting_with_nothing_running_is_fine(aws_world: AwsWorld) -> None:
    aws_world.create_mission_state_machine()
    outcome = aws_steps.halt_missions(aws_world.sfn, aws_world.state_machine_arn, cause="nothing to do")
    assert outcome.ok
    assert outcome.details["running_executions"] == 0


def test_an_unknown_state_machine_is_reported(aws_world: AwsWorld) -> None:
    missing = aws_world.state_machine_arn + "-gone"
    outcome = aws_steps.halt_missions(aws_world.sfn, missing, cause="x")
    assert not outcome.ok
    assert "could not list running executions" in outcome.reason


def test_remediation_role_denies_every_session_while_halted_and_older_sessions_for_good(aws_world: AwsWorld) -> None:
    now = datetime(2030, 5, 4, 3, 2, 1, tzinfo=UTC)
    outcome = aws_steps.deny_remediation_sessions(aws_world.iam, (REMEDIATION_ROLE,), now)
    assert outcome.ok, outcome.reason
    # Unconditional: a session issued after the trigger (from a provider token handed out before it) is denied too.
    assert aws_world.halted_policy() == {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "AegisKillSwitchHalted", "Effect": "Deny", "Action": "*", "Resource": "*"}],
    }
    assert aws_world.deny_policy() == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AegisKillSwitchDenyOlderSessions",
                "Effect": "Deny",
                "Action": "*",
                "Resource": "*",
                "Condition": {"DateLessThan": {"aws:TokenIssueTime": "2030-05-04T03:02:01Z"}},
            }
        ],
    }


def test_the_deny_cutoff_only_moves_forward(aws_world: AwsWorld) -> None:
    later = datetime(2030, 5, 4, 3, 2, 1, tzinfo=UTC)
    assert aws_steps.deny_remediation_sessions(aws_world.iam, (REMEDIATION_ROLE,), later).ok
    # A concurrent trigger that read the clock earlier but writes last must not shorten the cutoff.
    outcome = aws_steps.deny_remediation_sessions(aws_world.iam, (REMEDIATION_ROLE,), later - timedelta(seconds=5))
    assert outcome.ok
    assert outcome.details["sessions_issued_before"] == "2030-05-04T03:02:01Z"
    assert (
        aws_world.deny_policy()["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
        == "2030-05-04T03:02:01Z"
    )
    assert aws_steps.deny_remediation_sessions(aws_world.iam, (REMEDIATION_ROLE,), later + timedelta(hours=1)).ok
    assert (
        aws_world.deny_policy()["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"]
        == "2030-05-04T04:02:01Z"
    )


def test_a_missing_role_is_reported(aws_world: AwsWorld) -> None:
    outcome = aws_steps.deny_remediation_sessions(aws_world.iam, ("no-such-role",), datetime.now(UTC))
    assert not outcome.ok
    assert "no-such-role" in outcome.reason


class RefusesOnePolicy:
    """The moto IAM client, except that putting or deleting one policy name is refused (AccessDenied)."""

    def __init__(self, iam: Any, refused: str) -> None:
        self._iam = iam
        self._refused = refused

    def put_role_policy(self, **kwargs: Any) -> Any:
        if kwargs["PolicyName"] == self._refused:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "PutRolePolicy")
        return self._iam.put_role_policy(**kwargs)

    def delete_role_policy(self, **kwargs: Any) -> Any:
        if kwargs["PolicyName"] == self._refused:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "DeleteRolePolicy")
        return self._iam.delete_role_policy(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._iam, name)


@pytest.mark.parametrize("refused", ["AegisHalted", "AegisDenyOlderSessions"])
def test_each_deny_policy_is_attached_even_when_the_other_fails(aws_world: AwsWorld, refused: str) -> None:
    outcome = aws_steps.deny_remediation_sessions(
        RefusesOnePolicy(aws_world.iam, refused), (REMEDIATION_ROLE,), datetime.now(UTC)
    )
    assert not outcome.ok
    assert f"could not attach {refused}" in outcome.reason
    assert "AccessDenied" in outcome.reason
    attached = {name for name in ("AegisHalted", "AegisDenyOlderSessions") if aws_world.role_policy(name) is not None}
    assert attached == {"AegisHalted", "AegisDenyOlderSessions"} - {refused}


def test_lifting_removes_the_halted_policy_moves_the_cutoff_to_the_rearm_and_is_idempotent(aws_world: AwsWorld) -> None:
    triggered = datetime(2030, 5, 4, 3, 2, 1, 500_000, tzinfo=UTC)
    assert aws_steps.deny_remediation_sessions(aws_world.iam, (REMEDIATION_ROLE,), triggered).ok
    rearmed = triggered + timedelta(minutes=5)

    outcome = aws_steps.lift_halted_policy(aws_world.iam, (REMEDIATION_ROLE,), rearmed)

    assert outcome.ok, outcome.reason
    assert aws_world.halted_policy() is None
    assert aws_world.deny_policy() == aws_steps.deny_policy_document(aws_steps.session_cutoff(rearmed))
    again = aws_steps.lift_halted_policy(aws_world.iam, (REMEDIATION_ROLE,), rearmed)
    assert again.ok
    assert "carried no AegisHalted" in again.reason


def test_a_session_issued_while_halted_stays_denied_after_the_rearm(aws_world: AwsWorld) -> None:
    """A provider token handed out before the trigger can be exchanged during the halt: AegisHalted denies that
    session, and once it is lifted the deny-older policy must still cover it (it lives up to 15 minutes)."""
    triggered = datetime(2030, 5, 4, 3, 2, 1, tzinfo=UTC)
    rearmed = triggered + timedelta(minutes=5)
    during_halt = (triggered + timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    after_rearm = (rearmed + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert aws_steps.deny_remediation_sessions(aws_world.iam, (REMEDIATION_ROLE,), triggered).ok
    assert aws_steps.lift_halted_policy(aws_world.iam, (REMEDIATION_ROLE,), rearmed).ok

    remaining = [document for document in (aws_world.halted_policy(), aws_world.deny_policy()) if document is not None]

    def denied(issued: str) -> bool:
        request = Request("ec2:RevokeSecurityGroupIngress", "*", {"aws:TokenIssueTime": issued})
        return decision(remaining, request) == "Deny"

    assert denied(during_halt)
    assert not denied(after_rearm)


def test_a_role_whose_cutoff_cannot_be_moved_keeps_the_halted_policy(aws_world: AwsWorld) -> None:
    assert aws_steps.deny_remediation_sessions(aws_world.iam, (REMEDIATION_ROLE,), datetime.now(UTC)).ok
    outcome = aws_steps.lift_halted_policy(
        RefusesOnePolicy(aws_world.iam, "AegisDenyOlderSessions"), (REMEDIATION_ROLE,), datetime.now(UTC)
    )
    assert not outcome.ok
    assert "keeps AegisHalted" in outcome.reason
    assert aws_world.halted_policy() is not None


def test_a_halted_policy_that_cannot_be_lifted_is_reported_and_stays(aws_world: AwsWorld) -> None:
    assert aws_steps.deny_remediation_sessions(aws_world.iam, (REMEDIATION_ROLE,), datetime.now(UTC)).ok
    outcome = aws_steps.lift_halted_policy(
        RefusesOnePolicy(aws_world.iam, "AegisHalted"), (REMEDIATION_ROLE,), datetime.now(UTC)
    )
    assert not outcome.ok
    assert "still denies every session" in outcome.reason
    assert "AccessDenied" in outcome.reason
    assert aws_world.halted_policy() is not None
