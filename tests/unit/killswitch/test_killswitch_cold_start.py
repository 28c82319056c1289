"""What a cold start of the kill switch loads for a direct invocation (authorised by IAM, no token to verify): the
handler and the kill switch with its clients, but no JWT verification (python-jose and the cryptography bindings
under it), which only the function URL's callers need. That those callers' tokens are verified is tested in
tests/unit/auth/test_jwt_callers, test_killswitch_caller_auth and the integration tests."""

from __future__ import annotations

from tests.support.cold_start import cold_start


def test_a_direct_invocation_cold_start_loads_no_jwt_verification() -> None:
    environment = {
        "CONTROL_TABLE": "Control",
        "AUDIT_TABLE": "Audit",
        "STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:aegis-mission",
        "SCHEDULE_RULE_NAME": "aegis-schedule",
        "SCAN_RULE_NAME": "aegis-scan",
        "AUTH0_ISSUER": "https://tenant.example.com/",
        "AUTH0_CLIENT_ID": "killswitch-client",
        "AUTH0_CLIENT_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:ks-AbCdEf",
        "AUTH0_AUDIENCE": "https://tenant.example.com/api/v2/",
        "APPROVER_SUBS": "auth0|approver-1",
        "REMEDIATION_ROLE_NAME": "RemediationRole",
        "OPS_API_AUDIENCE": "https://aegis.example.com/killswitch",
        "HANDOFF_TABLE": "Handoff",
        "POWERTOOLS_SERVICE_NAME": "aegis-killswitch",
        "POWERTOOLS_METRICS_NAMESPACE": "AegisCloud",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    modules = cold_start("killswitch", environment, then="module.kill_switch()")["modules"]
    assert "aegis_killswitch.service" in modules, "the probe built the kill switch"
    assert [m for m in modules if m.split(".")[0] in {"jose", "cryptography"}] == []
    assert "aegis_jwt.verify" not in modules
