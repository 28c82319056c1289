"""The undo-request rule is a mission trigger like the scan rules: a halt disables it and a re-arm enables it again,
so no undo mission starts while the kill switch is engaged (UNDO_RULE_NAME, template.yaml UndoRequestRule)."""

from __future__ import annotations

from aegis_killswitch import aws_steps
from aegis_killswitch.settings import KillSwitchSettings
from tests.support.killswitch_world import SCAN_RULE, SCHEDULE_RULE, AwsWorld

UNDO_RULE = "aegis-undo-requested"
ENVIRONMENT = {
    "CONTROL_TABLE": "aegis-control",
    "AUDIT_TABLE": "aegis-audit",
    "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:aegis-mission",
    "SCHEDULE_RULE_NAME": SCHEDULE_RULE,
    "SCAN_RULE_NAME": SCAN_RULE,
    "AUTH0_ISSUER": "https://tenant.example/",
    "AUTH0_CLIENT_ID": "killswitch-client",
    "AUTH0_CLIENT_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:killswitch",
    "REMEDIATION_ROLE_NAME": "aegis-remediation",
    "OPS_API_AUDIENCE": "https://aegis.example/ops",
    "HANDOFF_TABLE": "aegis-handoff",
}


def test_the_undo_rule_is_one_of_the_rules_a_halt_disables_when_the_template_names_it() -> None:
    named = KillSwitchSettings.from_env(ENVIRONMENT | {"UNDO_RULE_NAME": UNDO_RULE})
    assert named.rule_names == (SCHEDULE_RULE, SCAN_RULE, UNDO_RULE)
    # A deployment from before the undo rule existed keeps its two rules (an empty name is no rule).
    assert KillSwitchSettings.from_env(ENVIRONMENT).rule_names == (SCHEDULE_RULE, SCAN_RULE)
    assert KillSwitchSettings.from_env(ENVIRONMENT | {"UNDO_RULE_NAME": ""}).rule_names == (SCHEDULE_RULE, SCAN_RULE)


def test_a_halt_disables_the_undo_rule_and_a_rearm_enables_it(aws_world: AwsWorld) -> None:
    aws_world.events.put_rule(
        Name=UNDO_RULE,
        EventPattern='{"source": ["aegis.undo"], "detail-type": ["Undo Requested"]}',
        State="ENABLED",
    )
    rules = KillSwitchSettings.from_env(ENVIRONMENT | {"UNDO_RULE_NAME": UNDO_RULE}).rule_names

    assert aws_steps.set_rules_enabled(aws_world.events, rules, enabled=False).ok
    assert {name: aws_world.events.describe_rule(Name=name)["State"] for name in rules} == dict.fromkeys(
        rules, "DISABLED"
    )
    assert aws_steps.set_rules_enabled(aws_world.events, rules, enabled=True).ok
    assert aws_world.events.describe_rule(Name=UNDO_RULE)["State"] == "ENABLED"
